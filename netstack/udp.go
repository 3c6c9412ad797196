package netstack

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"

	"github.com/tapstack/tapstack/ip"
	"github.com/tapstack/tapstack/mono"
)

// UDP (RFC 768). One socket per local port; a socket bound to the
// unspecified address receives on every local address.
const (
	// udpReceiveBufferMax bounds a socket's queue, counted like Linux's
	// rmem_default: the memory the queued datagrams hold, not their length.
	udpReceiveBufferMax = 212992
	udpPayloadMax       = 0xffff - ip.IPv4MinHeaderLen - ip.UDPHeaderLen

	// Ephemeral ports, as Linux's ip_local_port_range.
	ephemeralFirst = 32768
	ephemeralLast  = 60999
)

// ErrWouldBlock is returned by the non-blocking socket calls when the call
// cannot complete now.
var ErrWouldBlock = errors.New("netstack: operation would block")

type udpDatagram struct {
	buf  *[]byte
	n    int
	from netip.AddrPort
}

// UDPConn is a UDP socket. It implements net.PacketConn, and net.Conn when
// connected (DialUDP). Besides the blocking calls it offers non-blocking
// ones (TryReadFrom, TryWriteTo) and a readiness callback (SetNotify) for
// callers that drive the stack themselves, such as the simulator.
type UDPConn struct {
	s *Stack

	// Guarded by s.mu.
	local   netip.AddrPort
	remote  netip.AddrPort // valid when connected
	rq      []udpDatagram
	rqHead  int
	rqBytes int
	readers waitList
	softErr error // from ICMP, reported once on a connected socket
	closed  bool
	notify  func()

	readDeadline, writeDeadline *deadlineTimer
}

// ListenUDP opens a UDP socket on laddr; port 0 picks an ephemeral port.
func (s *Stack) ListenUDP(laddr netip.AddrPort) (*UDPConn, error) {
	return s.openUDP(laddr, netip.AddrPort{})
}

// DialUDP opens a UDP socket connected to raddr. A zero laddr picks the
// source address by route and an ephemeral port.
func (s *Stack) DialUDP(laddr, raddr netip.AddrPort) (*UDPConn, error) {
	if !raddr.IsValid() || !raddr.Addr().Is4() || raddr.Port() == 0 {
		return nil, &net.OpError{Op: "dial", Net: "udp", Err: fmt.Errorf("invalid remote address %v", raddr)}
	}
	return s.openUDP(laddr, raddr)
}

func (s *Stack) openUDP(laddr, raddr netip.AddrPort) (*UDPConn, error) {
	op := "listen"
	if raddr.IsValid() {
		op = "dial"
	}
	fail := func(err error) (*UDPConn, error) {
		return nil, &net.OpError{Op: op, Net: "udp", Source: udpAddr(laddr), Addr: udpAddr(raddr), Err: err}
	}
	a, err := bindAddr(laddr)
	if err != nil {
		return fail(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkBindLocked(a); err != nil {
		return fail(err)
	}
	if raddr.IsValid() && a.IsUnspecified() {
		_, _, src, err := s.routeFromLocked(netip.Addr{}, raddr.Addr())
		if err != nil {
			return fail(err)
		}
		a = src
	}
	port := laddr.Port()
	if port == 0 {
		var ok bool
		if port, ok = s.ephemeralUDPPortLocked(); !ok {
			return fail(syscall.EADDRINUSE)
		}
	} else if s.udp[port] != nil {
		return fail(syscall.EADDRINUSE)
	}
	c := &UDPConn{s: s, local: netip.AddrPortFrom(a, port), remote: raddr,
		readDeadline: newDeadlineTimer(), writeDeadline: newDeadlineTimer()}
	if s.udp == nil {
		s.udp = make(map[uint16]*UDPConn)
	}
	s.udp[port] = c
	return c, nil
}

// ephemeralUDPPortLocked picks a free port: a random start, then the next
// free one (RFC 6056 §3.3.1).
func (s *Stack) ephemeralUDPPortLocked() (uint16, bool) {
	const n = ephemeralLast - ephemeralFirst + 1
	start := s.rand.Uint64() % n
	for i := uint64(0); i < n; i++ {
		p := uint16(ephemeralFirst + (start+i)%n)
		if s.udp[p] == nil {
			return p, true
		}
	}
	return 0, false
}

// bindAddr returns the local address a socket binds to: laddr's, or the
// unspecified address when laddr has none. Only IPv4 is supported.
func bindAddr(laddr netip.AddrPort) (netip.Addr, error) {
	a := laddr.Addr()
	if !a.IsValid() {
		return netip.IPv4Unspecified(), nil
	}
	if !a.Is4() {
		return a, errors.New("only IPv4 is supported")
	}
	return a, nil
}

// checkBindLocked says whether a socket may bind to a now: the stack is
// open and a is unspecified or one of ours.
func (s *Stack) checkBindLocked(a netip.Addr) error {
	if s.closed {
		return ErrClosed
	}
	if !a.IsUnspecified() && !s.isLocalAddrLocked(a) {
		return syscall.EADDRNOTAVAIL
	}
	return nil
}

func (s *Stack) isLocalAddrLocked(a netip.Addr) bool {
	for _, n := range s.nics {
		if n.hasAddr(a) {
			return true
		}
	}
	return false
}

// handleUDPLocked queues an inbound datagram on its socket.
func (s *Stack) handleUDPLocked(now mono.Time, nic *NIC, h ip.IPv4) {
	st := &s.stats.UDP
	st.Received++
	u, err := ip.ParseUDP(h.Payload())
	if err != nil {
		st.Malformed++
		return
	}
	if !nic.rxCsumOK && !u.ChecksumValid(h.Src(), h.Dst()) { // a zero checksum is accepted
		st.BadChecksum++
		return
	}
	from := netip.AddrPortFrom(h.Src(), u.SrcPort())
	c := s.udp[u.DstPort()]
	if c != nil && ((!c.local.Addr().IsUnspecified() && c.local.Addr() != h.Dst()) ||
		(c.remote.IsValid() && c.remote != from)) {
		c = nil
	}
	if c == nil {
		st.NoPort++
		s.icmpErrorLocked(now, nic, h, ip.ICMPv4DestinationUnreachable, ip.ICMPv4PortUnreachable)
		return
	}
	data := u.Payload()
	b := getBuf(len(data))
	if c.rqBytes+cap(*b) > udpReceiveBufferMax {
		putBuf(b)
		st.ReceiveBufferErrors++
		return
	}
	copy(*b, data)
	c.rq = append(c.rq, udpDatagram{buf: b, n: len(data), from: from})
	c.rqBytes += cap(*b)
	st.Delivered++
	c.readyLocked()
}

func (c *UDPConn) readyLocked() {
	c.readers.wakeLocked(&c.s.mu)
	if c.notify != nil {
		c.notify()
	}
}

// deliverSoftErrorLocked hands an ICMP-reported error about a datagram we
// sent (orig, as quoted) to the socket that sent it. Like Linux without
// IP_RECVERR, only connected sockets hear of it.
func (s *Stack) deliverSoftErrorLocked(orig ip.IPv4, errno syscall.Errno) {
	p := orig.Payload()
	if len(p) < 4 {
		return
	}
	sport, dport := uint16(p[0])<<8|uint16(p[1]), uint16(p[2])<<8|uint16(p[3])
	switch orig.Protocol() {
	case ip.ProtocolUDP:
		c := s.udp[sport]
		if c == nil || !c.remote.IsValid() || c.remote != netip.AddrPortFrom(orig.Dst(), dport) {
			return
		}
		c.softErr = errno
		c.readyLocked()
	case ip.ProtocolTCP:
		if s.tcpSoftError != nil {
			s.tcpSoftError(orig, errno)
		}
	}
}

// TryReadFrom copies the next datagram into p without blocking. It returns
// ErrWouldBlock when none is queued. A datagram longer than p is truncated,
// as recvfrom(2) does.
func (c *UDPConn) TryReadFrom(p []byte) (int, netip.AddrPort, error) {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	return c.readLocked(p)
}

func (c *UDPConn) readLocked(p []byte) (int, netip.AddrPort, error) {
	if c.closed {
		return 0, netip.AddrPort{}, net.ErrClosed
	}
	if c.rqHead < len(c.rq) {
		d := c.rq[c.rqHead]
		c.rq[c.rqHead] = udpDatagram{}
		c.rqHead++
		if c.rqHead == len(c.rq) {
			c.rq, c.rqHead = c.rq[:0], 0
		}
		c.rqBytes -= cap(*d.buf)
		n := copy(p, (*d.buf)[:d.n])
		putBuf(d.buf)
		return n, d.from, nil
	}
	if err := c.softErr; err != nil {
		c.softErr = nil
		return 0, netip.AddrPort{}, err
	}
	return 0, netip.AddrPort{}, ErrWouldBlock
}

// TryWriteTo sends p to addr (the connected peer when addr is zero). UDP
// never blocks on send; the error is ErrWouldBlock only for symmetry.
func (c *UDPConn) TryWriteTo(p []byte, addr netip.AddrPort) error {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	err := c.writeLocked(c.s.clock(), p, addr)
	c.s.endStepLocked()
	return err
}

func (c *UDPConn) writeLocked(now mono.Time, p []byte, to netip.AddrPort) error {
	if c.closed {
		return net.ErrClosed
	}
	if !to.IsValid() {
		if !c.remote.IsValid() {
			return syscall.EDESTADDRREQ
		}
		to = c.remote
	} else if c.remote.IsValid() && to != c.remote {
		return syscall.EISCONN
	}
	if !to.Addr().Is4() {
		return syscall.EAFNOSUPPORT
	}
	if len(p) > udpPayloadMax {
		return syscall.EMSGSIZE
	}
	if c.remote.IsValid() {
		if err := c.softErr; err != nil {
			c.softErr = nil
			return err
		}
	}
	s := c.s
	r, nh, src, err := s.routeFromLocked(c.local.Addr(), to.Addr())
	if err != nil {
		return err
	}
	off := r.NIC.ipPayloadOffset()
	n := off + ip.UDPHeaderLen + len(p)
	b := getBuf(n)
	*b = (*b)[:n]
	copy((*b)[off+ip.UDPHeaderLen:], p)
	f := ip.UDPFields{SrcPort: c.local.Port(), DstPort: to.Port()}
	if err := f.Encode((*b)[off:], src, to.Addr()); err != nil {
		putBuf(b)
		return err
	}
	s.stats.UDP.Sent++
	return s.sendIPv4Locked(now, r, nh, ipv4Out{proto: ip.ProtocolUDP, src: src, dst: to.Addr()}, b)
}

// SetNotify registers f to be called, with the stack's loop lock held,
// whenever the socket may have become readable. f must not call into the
// stack; it should only record that the socket is ready.
func (c *UDPConn) SetNotify(f func()) {
	c.s.mu.Lock()
	c.notify = f
	c.s.mu.Unlock()
}

// ReadFromUDPAddrPort reads a datagram, blocking until one arrives, the
// read deadline passes or the socket closes.
func (c *UDPConn) ReadFromUDPAddrPort(p []byte) (int, netip.AddrPort, error) {
	for {
		c.s.mu.Lock()
		n, from, err := c.readLocked(p)
		if err != ErrWouldBlock {
			c.s.mu.Unlock()
			if err != nil {
				return 0, from, c.opError("read", err)
			}
			return n, from, nil
		}
		woken := c.readers.block(&c.s.mu, c.readDeadline.wait())
		c.s.mu.Unlock()
		if !woken {
			return 0, netip.AddrPort{}, c.opError("read", os.ErrDeadlineExceeded)
		}
	}
}

// ReadFrom implements net.PacketConn.
func (c *UDPConn) ReadFrom(p []byte) (int, net.Addr, error) {
	n, from, err := c.ReadFromUDPAddrPort(p)
	if err != nil {
		return 0, nil, err
	}
	return n, udpAddr(from), nil
}

// Read implements net.Conn.
func (c *UDPConn) Read(p []byte) (int, error) {
	n, _, err := c.ReadFromUDPAddrPort(p)
	return n, err
}

// WriteToUDPAddrPort sends p to addr.
func (c *UDPConn) WriteToUDPAddrPort(p []byte, addr netip.AddrPort) (int, error) {
	select {
	case <-c.writeDeadline.wait():
		return 0, c.opError("write", os.ErrDeadlineExceeded)
	default:
	}
	if err := c.TryWriteTo(p, addr); err != nil {
		return 0, c.opError("write", err)
	}
	return len(p), nil
}

// WriteTo implements net.PacketConn.
func (c *UDPConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	ap, err := addrPortOf(addr)
	if err != nil {
		return 0, c.opError("write", err)
	}
	return c.WriteToUDPAddrPort(p, ap)
}

// Write implements net.Conn for a connected socket.
func (c *UDPConn) Write(p []byte) (int, error) {
	return c.WriteToUDPAddrPort(p, netip.AddrPort{})
}

// Close closes the socket; blocked calls return net.ErrClosed.
func (c *UDPConn) Close() error {
	s := c.s
	s.mu.Lock()
	if c.closed {
		s.mu.Unlock()
		return c.opError("close", net.ErrClosed)
	}
	c.closeLocked()
	s.mu.Unlock()
	return nil
}

// closeLocked releases the port and the queue and wakes blocked calls,
// which then fail with net.ErrClosed.
func (c *UDPConn) closeLocked() {
	s := c.s
	c.closed = true
	if s.udp[c.local.Port()] == c {
		delete(s.udp, c.local.Port())
	}
	for i := c.rqHead; i < len(c.rq); i++ {
		putBuf(c.rq[i].buf)
	}
	c.rq, c.rqHead, c.rqBytes = nil, 0, 0
	c.readyLocked()
	c.readDeadline.stop()
	c.writeDeadline.stop()
}

// LocalAddr implements net.Conn and net.PacketConn.
func (c *UDPConn) LocalAddr() net.Addr { return udpAddr(c.LocalAddrPort()) }

// LocalAddrPort returns the bound address and port.
func (c *UDPConn) LocalAddrPort() netip.AddrPort {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	return c.local
}

// RemoteAddr implements net.Conn; nil when not connected.
func (c *UDPConn) RemoteAddr() net.Addr {
	if !c.remote.IsValid() {
		return nil
	}
	return udpAddr(c.remote)
}

// SetDeadline implements net.Conn.
func (c *UDPConn) SetDeadline(t time.Time) error {
	moveDeadline(c.s, c.readDeadline, t, func() { c.readers.wakeLocked(&c.s.mu) })
	c.writeDeadline.set(t) // a write never blocks
	return nil
}

// SetReadDeadline implements net.Conn.
func (c *UDPConn) SetReadDeadline(t time.Time) error {
	moveDeadline(c.s, c.readDeadline, t, func() { c.readers.wakeLocked(&c.s.mu) })
	return nil
}

// SetWriteDeadline implements net.Conn.
func (c *UDPConn) SetWriteDeadline(t time.Time) error { c.writeDeadline.set(t); return nil }

func (c *UDPConn) opError(op string, err error) error {
	var src, addr net.Addr = c.LocalAddr(), c.RemoteAddr()
	if addr == nil {
		return &net.OpError{Op: op, Net: "udp", Addr: src, Err: err}
	}
	return &net.OpError{Op: op, Net: "udp", Source: src, Addr: addr, Err: err}
}

func udpAddr(a netip.AddrPort) net.Addr {
	if !a.IsValid() {
		return nil
	}
	return net.UDPAddrFromAddrPort(a)
}

// addrPortOf converts a net.Addr from a caller into an AddrPort.
func addrPortOf(a net.Addr) (netip.AddrPort, error) {
	switch a := a.(type) {
	case *net.UDPAddr:
		ap := a.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
	case *net.TCPAddr:
		ap := a.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
	case nil:
		return netip.AddrPort{}, syscall.EDESTADDRREQ
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("address %v: %w", a, err)
	}
	return ap, nil
}

var _ net.PacketConn = (*UDPConn)(nil)
var _ net.Conn = (*UDPConn)(nil)
