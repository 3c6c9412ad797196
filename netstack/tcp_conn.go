package netstack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tapstack/tapstack/mono"
	"github.com/tapstack/tapstack/tcp"
)

// TCPConn is a TCP connection. It implements net.Conn, plus the methods of
// *net.TCPConn a Go program uses (CloseWrite, SetNoDelay, SetKeepAlive,
// SetKeepAlivePeriod, SetLinger, SetReadBuffer, SetWriteBuffer), and
// non-blocking TryRead/TryWrite with a readiness callback (SetNotify) for
// callers that drive the stack themselves, such as the simulator.
//
// As with Go's own connections, Nagle's algorithm is off by default
// (SetNoDelay(true)).
type TCPConn struct {
	s *Stack

	// Guarded by s.mu.
	c                 *tcp.Conn
	dl                deadline
	ln                *TCPListener // the listener it came from, until accepted
	waits             *connWaits   // made when a call first blocks
	notify            func()
	inSynQ, inAcceptQ bool
	closed            bool // Close was called
	linger0           bool // Close resets

	// deadlines is made by the first Set*Deadline: most connections never
	// have one, and a million idle ones would carry 48 bytes each for
	// nothing. Set*Deadline may race with Read and Write, hence atomic.
	deadlines atomic.Pointer[connDeadlines]
}

// connWaits are the goroutines blocked in a connection's reads and writes
// (and its dial, among the writers).
type connWaits struct{ readers, writers waitList }

// waitsLocked returns tc's waitLists, making them on first use: most
// connections of a busy server never block.
func (tc *TCPConn) waitsLocked() *connWaits {
	if tc.waits == nil {
		tc.waits = new(connWaits)
	}
	return tc.waits
}

// wakeLocked wakes readers and writers blocked on tc.
func (tc *TCPConn) wakeLocked(readers, writers bool) {
	if w := tc.waits; w != nil {
		if readers {
			w.readers.wakeLocked(&tc.s.mu)
		}
		if writers {
			w.writers.wakeLocked(&tc.s.mu)
		}
	}
}

// connDeadlines are a connection's read and write deadlines.
type connDeadlines struct{ read, write deadlineTimer }

// deadlineTimers returns the connection's deadlines, making them on first
// use.
func (tc *TCPConn) deadlineTimers() *connDeadlines {
	if d := tc.deadlines.Load(); d != nil {
		return d
	}
	tc.deadlines.CompareAndSwap(nil, new(connDeadlines))
	return tc.deadlines.Load()
}

// readDeadline and writeDeadline return channels closed when the deadline
// passes; nil (never ready) when none was ever set.
func (tc *TCPConn) readDeadline() <-chan struct{} {
	if d := tc.deadlines.Load(); d != nil {
		return d.read.wait()
	}
	return nil
}

func (tc *TCPConn) writeDeadline() <-chan struct{} {
	if d := tc.deadlines.Load(); d != nil {
		return d.write.wait()
	}
	return nil
}

// key is the connection's 4-tuple, from its TCB: the endpoint never
// changes, so reading it needs no lock, and idle connections do not carry
// a second copy.
func (tc *TCPConn) key() tcpKey {
	local, remote := tc.c.Addrs()
	return tcpKey{local: local, remote: remote}
}

func newTCPConn(s *Stack, c *tcp.Conn) *TCPConn {
	tc := &TCPConn{s: s, c: c}
	tc.dl = deadline{index: -1, fire: tc.onTimerLocked}
	c.NoDelay = true
	return tc
}

func (tc *TCPConn) onTimerLocked(now mono.Time) {
	tc.c.OnTimer(now)
	tc.afterLocked(now)
}

// afterLocked does what follows every call into the connection: re-arm
// its deadline, wake whoever waits on what changed, hand a completed
// handshake to its listener, and forget a closed connection.
func (tc *TCPConn) afterLocked(now mono.Time) tcp.Events {
	s := tc.s
	ev := tc.c.TakeEvents()
	s.timers.set(&tc.dl, tc.c.Deadline())
	st := tc.c.State()
	if tc.inSynQ && st != tcp.SynReceived {
		tc.inSynQ = false
		tc.ln.synQueue--
	}
	if ev&tcp.EventEstablished != 0 && tc.ln != nil && !tc.inAcceptQ {
		tc.ln.enqueueLocked(now, tc)
	}
	tc.wakeLocked(ev&(tcp.EventReadable|tcp.EventClosed) != 0,
		ev&(tcp.EventWritable|tcp.EventClosed|tcp.EventEstablished) != 0)
	if st == tcp.Closed {
		s.tcp.conns.remove(tc)
		s.timers.stop(&tc.dl)
	}
	if ev != 0 && tc.notify != nil {
		tc.notify()
	}
	return ev
}

// DialTCP connects to raddr. A zero laddr picks the source address by
// route and an ephemeral port (RFC 6056). It returns once the handshake
// completes, fails, or ctx ends.
func (s *Stack) DialTCP(ctx context.Context, laddr, raddr netip.AddrPort) (*TCPConn, error) {
	fail := func(err error) (*TCPConn, error) {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Source: tcpAddr(laddr), Addr: tcpAddr(raddr), Err: err}
	}
	if !raddr.IsValid() || !raddr.Addr().Is4() || raddr.Port() == 0 {
		return fail(fmt.Errorf("invalid remote address %v", raddr))
	}
	tc, err := s.startDial(laddr, raddr)
	if err != nil {
		return fail(err)
	}
	for {
		s.mu.Lock()
		st, cerr := tc.c.State(), tc.c.Err()
		if st == tcp.Closed && !tc.closed || s.closed {
			s.mu.Unlock()
			if cerr == nil {
				cerr = ErrClosed
			}
			return fail(cerr)
		}
		if st != tcp.SynSent && st != tcp.SynReceived {
			// Only this call could wait on tc so far: what it waited on
			// goes, so that an idle connection keeps nothing of it.
			tc.waits = nil
			s.mu.Unlock()
			return tc, nil
		}
		woken := tc.waitsLocked().writers.block(&s.mu, ctx.Done())
		s.mu.Unlock()
		if !woken {
			tc.abort()
			err := ctx.Err()
			if errors.Is(err, context.DeadlineExceeded) {
				err = os.ErrDeadlineExceeded
			}
			return fail(err)
		}
	}
}

// StartDialTCP starts a connection to raddr and returns at once, the
// connection in SYN-SENT: for callers that drive the stack themselves. The
// connection is writable (TryWrite, SetNotify) once established.
func (s *Stack) StartDialTCP(laddr, raddr netip.AddrPort) (*TCPConn, error) {
	if !raddr.IsValid() || !raddr.Addr().Is4() || raddr.Port() == 0 {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Addr: tcpAddr(raddr), Err: fmt.Errorf("invalid remote address %v", raddr)}
	}
	tc, err := s.startDial(laddr, raddr)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Source: tcpAddr(laddr), Addr: tcpAddr(raddr), Err: err}
	}
	return tc, nil
}

func (s *Stack) startDial(laddr, raddr netip.AddrPort) (*TCPConn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	a := laddr.Addr()
	if a.IsValid() && !a.IsUnspecified() && !s.isLocalAddrLocked(a) {
		return nil, syscall.EADDRNOTAVAIL
	}
	_, _, src, err := s.routeFromLocked(a, raddr.Addr())
	if err != nil {
		return nil, err
	}
	port := laddr.Port()
	if port == 0 {
		var ok bool
		if port, ok = s.ephemeralTCPPortLocked(src, raddr); !ok {
			s.stats.TCP.EphemeralMissing++
			return nil, syscall.EADDRNOTAVAIL
		}
	}
	key := tcpKey{local: netip.AddrPortFrom(src, port), remote: raddr}
	if s.tcp.conns.get(key) != nil {
		return nil, syscall.EADDRINUSE
	}
	now := s.clock()
	c := tcp.NewConn(&s.tcp.cfg, s.endpointLocked(key.local, raddr))
	tc := newTCPConn(s, c)
	s.tcp.conns.put(key, tc)
	err = c.Connect(now)
	tc.afterLocked(now)
	s.endStepLocked()
	return tc, err
}

// Dial connects to address on network "tcp" or "tcp4", like net.Dial.
func (s *Stack) Dial(network, address string) (net.Conn, error) {
	return s.DialContext(context.Background(), network, address)
}

// DialContext is Dial with a context, the shape http.Transport.DialContext
// takes.
func (s *Stack) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	if network != "tcp" && network != "tcp4" {
		return nil, &net.OpError{Op: "dial", Net: network, Err: net.UnknownNetworkError(network)}
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	c, err := s.DialTCP(ctx, netip.AddrPort{}, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
	if err != nil {
		return nil, err
	}
	return c, nil
}

// abort resets the connection (ABORT).
func (tc *TCPConn) abort() {
	s := tc.s
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock()
	tc.closed = true
	if tc.c.State() != tcp.Closed {
		_ = tc.c.Abort(now)
	}
	tc.afterLocked(now)
	s.endStepLocked()
}

// TryRead reads what is buffered without blocking: ErrWouldBlock when
// nothing is, io.EOF at the end of the stream.
func (tc *TCPConn) TryRead(p []byte) (int, error) {
	s := tc.s
	s.mu.Lock()
	defer s.mu.Unlock()
	return tc.readLocked(p)
}

func (tc *TCPConn) readLocked(p []byte) (int, error) {
	s := tc.s
	if tc.closed || s.closed {
		return 0, net.ErrClosed
	}
	now := s.clock()
	n, err := tc.c.Read(now, p)
	tc.afterLocked(now)
	s.endStepLocked()
	if err == tcp.ErrWouldBlock {
		err = ErrWouldBlock
	}
	return n, err
}

// Read implements net.Conn.
func (tc *TCPConn) Read(p []byte) (int, error) {
	s := tc.s
	s.mu.Lock()
	for {
		n, err := tc.readLocked(p)
		if err != ErrWouldBlock {
			s.mu.Unlock()
			switch {
			case err == nil || err == io.EOF:
				return n, err
			default:
				return n, tc.opError("read", err)
			}
		}
		if !tc.waitsLocked().readers.block(&s.mu, tc.readDeadline()) {
			s.mu.Unlock()
			return 0, tc.opError("read", os.ErrDeadlineExceeded)
		}
	}
}

// TryWrite queues what fits of p without blocking and returns how much;
// ErrWouldBlock when the send buffer is full.
func (tc *TCPConn) TryWrite(p []byte) (int, error) {
	s := tc.s
	s.mu.Lock()
	defer s.mu.Unlock()
	return tc.writeLocked(p)
}

func (tc *TCPConn) writeLocked(p []byte) (int, error) {
	s := tc.s
	if tc.closed || s.closed {
		return 0, net.ErrClosed
	}
	now := s.clock()
	n, err := tc.c.Write(now, p)
	tc.afterLocked(now)
	s.endStepLocked()
	if err == tcp.ErrWouldBlock {
		err = ErrWouldBlock
	}
	return n, err
}

// Write implements net.Conn: it returns once all of p is queued.
func (tc *TCPConn) Write(p []byte) (int, error) {
	s := tc.s
	total := 0
	for {
		select {
		case <-tc.writeDeadline():
			return total, tc.opError("write", os.ErrDeadlineExceeded)
		default:
		}
		s.mu.Lock()
		n, err := tc.writeLocked(p[total:])
		total += n
		if err == nil && total == len(p) {
			s.mu.Unlock()
			return total, nil
		}
		if err != nil && err != ErrWouldBlock {
			s.mu.Unlock()
			return total, tc.opError("write", err)
		}
		if err == nil { // a part: the rest after others had the lock
			s.mu.Unlock()
			continue
		}
		woken := tc.waitsLocked().writers.block(&s.mu, tc.writeDeadline())
		s.mu.Unlock()
		if !woken {
			return total, tc.opError("write", os.ErrDeadlineExceeded)
		}
	}
}

// Close closes the connection: a FIN after the queued data, or a RST when
// unread data would be lost (RFC 2525 §2.17, as Linux) or SetLinger(0)
// asked for one. Blocked calls return net.ErrClosed.
func (tc *TCPConn) Close() error {
	s := tc.s
	s.mu.Lock()
	if tc.closed {
		s.mu.Unlock()
		return tc.opError("close", net.ErrClosed)
	}
	tc.closed = true
	now := s.clock()
	if tc.c.State() != tcp.Closed {
		if tc.linger0 || tc.c.Readable() > 0 {
			_ = tc.c.Abort(now)
		} else {
			_ = tc.c.Close(now)
		}
		tc.c.SetOrphan(now)
	}
	tc.afterLocked(now)
	tc.wakeLocked(true, true)
	s.endStepLocked()
	s.mu.Unlock()
	if d := tc.deadlines.Load(); d != nil {
		d.read.stop()
		d.write.stop()
	}
	return nil
}

// CloseWrite shuts down the sending side: a FIN follows the queued data.
func (tc *TCPConn) CloseWrite() error {
	return tc.call("close", func(now mono.Time) error {
		if tc.c.State() == tcp.SynSent {
			return syscall.ENOTCONN
		}
		return tc.c.Close(now)
	})
}

// call runs f on the connection under the loop lock.
func (tc *TCPConn) call(op string, f func(now mono.Time) error) error {
	s := tc.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if tc.closed || s.closed {
		return tc.opError(op, net.ErrClosed)
	}
	now := s.clock()
	err := f(now)
	tc.afterLocked(now)
	s.endStepLocked()
	if err != nil {
		return tc.opError(op, err)
	}
	return nil
}

// SetNoDelay turns Nagle's algorithm off (true, the default) or on.
func (tc *TCPConn) SetNoDelay(noDelay bool) error {
	return tc.call("set", func(now mono.Time) error { tc.c.NoDelay = noDelay; return nil })
}

// SetKeepAlive turns keepalive probes on or off.
func (tc *TCPConn) SetKeepAlive(on bool) error {
	return tc.call("set", func(now mono.Time) error { tc.c.SetKeepAlive(now, on, 0); return nil })
}

// SetKeepAlivePeriod sets the idle time before the first keepalive probe.
func (tc *TCPConn) SetKeepAlivePeriod(d time.Duration) error {
	return tc.call("set", func(now mono.Time) error { tc.c.SetKeepAlive(now, tc.c.KeepAlive, d); return nil })
}

// SetLinger with 0 makes Close reset the connection; any other value keeps
// the graceful close (Close never blocks here).
func (tc *TCPConn) SetLinger(sec int) error {
	return tc.call("set", func(now mono.Time) error { tc.linger0 = sec == 0; return nil })
}

// SetReadBuffer bounds the receive buffer (SO_RCVBUF).
func (tc *TCPConn) SetReadBuffer(bytes int) error {
	return tc.call("set", func(now mono.Time) error { tc.c.SetBufferSizes(0, bytes); return nil })
}

// SetWriteBuffer bounds the send buffer (SO_SNDBUF).
func (tc *TCPConn) SetWriteBuffer(bytes int) error {
	return tc.call("set", func(now mono.Time) error { tc.c.SetBufferSizes(bytes, 0); return nil })
}

// SetNotify registers f to be called, with the stack's loop lock held,
// whenever the connection may have become readable or writable or changed
// state. f must not call into the stack.
func (tc *TCPConn) SetNotify(f func()) {
	tc.s.mu.Lock()
	tc.notify = f
	tc.s.mu.Unlock()
}

// BytesAcked returns how many bytes written to the connection the peer
// has acknowledged: where a failed-over application resumes.
func (tc *TCPConn) BytesAcked() uint64 {
	tc.s.mu.Lock()
	defer tc.s.mu.Unlock()
	return tc.c.BytesAcked()
}

// Info returns a snapshot of the connection's TCP state: RTT, windows,
// congestion control and its own retransmission counts.
func (tc *TCPConn) Info() tcp.Info {
	tc.s.mu.Lock()
	defer tc.s.mu.Unlock()
	return tc.c.Info()
}

// State returns the connection's TCP state.
func (tc *TCPConn) State() tcp.State {
	tc.s.mu.Lock()
	defer tc.s.mu.Unlock()
	return tc.c.State()
}

// LocalAddr implements net.Conn.
func (tc *TCPConn) LocalAddr() net.Addr { return tcpAddr(tc.c.Endpoint().Local) }

// RemoteAddr implements net.Conn.
func (tc *TCPConn) RemoteAddr() net.Addr { return tcpAddr(tc.c.Endpoint().Remote) }

// LocalAddrPort returns the local address and port.
func (tc *TCPConn) LocalAddrPort() netip.AddrPort { return tc.c.Endpoint().Local }

// RemoteAddrPort returns the peer's address and port.
func (tc *TCPConn) RemoteAddrPort() netip.AddrPort { return tc.c.Endpoint().Remote }

// SetDeadline implements net.Conn.
func (tc *TCPConn) SetDeadline(t time.Time) error {
	_ = tc.SetReadDeadline(t)
	return tc.SetWriteDeadline(t)
}

// SetReadDeadline implements net.Conn.
func (tc *TCPConn) SetReadDeadline(t time.Time) error {
	if t.IsZero() && tc.deadlines.Load() == nil {
		return nil // no deadline, as before
	}
	moveDeadline(tc.s, &tc.deadlineTimers().read, t, func() { tc.wakeLocked(true, false) })
	return nil
}

// SetWriteDeadline implements net.Conn.
func (tc *TCPConn) SetWriteDeadline(t time.Time) error {
	if t.IsZero() && tc.deadlines.Load() == nil {
		return nil
	}
	moveDeadline(tc.s, &tc.deadlineTimers().write, t, func() { tc.wakeLocked(false, true) })
	return nil
}

func (tc *TCPConn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Source: tcpAddr(tc.c.Endpoint().Local), Addr: tcpAddr(tc.c.Endpoint().Remote), Err: err}
}

func tcpAddr(a netip.AddrPort) net.Addr {
	if !a.IsValid() {
		return nil
	}
	return net.TCPAddrFromAddrPort(a)
}

var _ net.Conn = (*TCPConn)(nil)
