package netstack

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"

	"github.com/tapstack/tapstack/mono"
	"github.com/tapstack/tapstack/tcp"
)

// tcpBacklog bounds a listener's SYN queue and its accept queue, each
// (Linux's somaxconn is 4096; Go passes it as the backlog).
const tcpBacklog = 4096

// TCPListener is a listening TCP socket. It implements net.Listener.
// Handshakes in progress sit in a bounded SYN queue; when it is full, SYNs
// are answered with SYN cookies and no state is kept. Completed
// connections wait in a bounded accept queue.
type TCPListener struct {
	s    *Stack
	addr netip.AddrPort

	// Guarded by s.mu.
	backlog  int
	synQueue int        // connections in SYN-RECEIVED
	acceptQ  []*TCPConn // established, not yet accepted
	waiters  waitList
	notify   func()
	closed   bool
	deadline *deadlineTimer
}

// ListenTCP listens on laddr; port 0 picks an ephemeral port, an
// unspecified address listens on every local address.
func (s *Stack) ListenTCP(laddr netip.AddrPort) (*TCPListener, error) {
	fail := func(err error) (*TCPListener, error) {
		return nil, &net.OpError{Op: "listen", Net: "tcp", Addr: tcpAddr(laddr), Err: err}
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
	port := laddr.Port()
	if port == 0 {
		const n = ephemeralLast - ephemeralFirst + 1
		start := s.rand.Uint64() % n
		for i := uint64(0); i < n; i++ {
			if p := uint16(ephemeralFirst + (start+i)%n); s.tcp.listeners[p] == nil {
				port = p
				break
			}
		}
		if port == 0 {
			return fail(syscall.EADDRINUSE)
		}
	} else if s.tcp.listeners[port] != nil {
		return fail(syscall.EADDRINUSE)
	}
	ln := &TCPListener{s: s, addr: netip.AddrPortFrom(a, port), backlog: tcpBacklog, deadline: newDeadlineTimer()}
	s.tcp.listeners[port] = ln
	return ln, nil
}

// Listen listens on address for network "tcp" or "tcp4", like net.Listen.
func (s *Stack) Listen(network, address string) (net.Listener, error) {
	if network != "tcp" && network != "tcp4" {
		return nil, &net.OpError{Op: "listen", Net: network, Err: net.UnknownNetworkError(network)}
	}
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Err: err}
	}
	var ap netip.AddrPort
	if host == "" {
		host = "0.0.0.0"
	}
	ap, err = netip.ParseAddrPort(net.JoinHostPort(host, port))
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Err: fmt.Errorf("address %q: %w", address, err)}
	}
	ln, err := s.ListenTCP(ap)
	if err != nil {
		return nil, err
	}
	return ln, nil
}

// SetBacklog bounds the SYN queue and the accept queue (listen(2)'s
// backlog).
func (ln *TCPListener) SetBacklog(n int) {
	ln.s.mu.Lock()
	ln.backlog = max(n, 1)
	ln.s.mu.Unlock()
}

// inputLocked runs a segment for no connection through a LISTEN-state TCB.
// A SYN (or an ACK bearing a valid SYN cookie) makes it a connection.
// reuse is the TIME-WAIT connection the segment's SYN replaces, if any.
func (ln *TCPListener) inputLocked(now mono.Time, key tcpKey, seg *tcp.Segment, reuse *tcp.Conn) {
	s := ln.s
	t := &s.tcp
	if ev, _ := tcp.Classify(seg.Flags); (ev == tcp.SegACK || ev == tcp.SegFIN) && len(ln.acceptQ) >= ln.backlog {
		// Perhaps a SYN cookie's ACK, with nowhere to put the connection:
		// drop it and let the peer retry, as Linux does.
		s.stats.TCP.ListenOverflows++
		return
	}
	c := t.scratch
	c.Reset(&t.cfg, s.endpointLocked(key.local, key.remote))
	if reuse != nil {
		c.SetISS(reuse.ReuseISS())
	}
	full := ln.synQueue >= ln.backlog || len(ln.acceptQ) >= ln.backlog
	_ = c.Listen(now, full)
	c.Input(now, seg)
	switch c.State() {
	case tcp.Listen, tcp.Closed:
		return
	}
	t.scratch = new(tcp.Conn)
	tc := newTCPConn(s, c)
	tc.ln = ln
	if c.State() == tcp.SynReceived {
		tc.inSynQ = true
		ln.synQueue++
	}
	t.conns.put(key, tc)
	tc.afterLocked(now)
}

// enqueueLocked puts an established connection on the accept queue.
func (ln *TCPListener) enqueueLocked(now mono.Time, tc *TCPConn) {
	if ln.closed || len(ln.acceptQ) >= ln.backlog {
		if !ln.closed {
			ln.s.stats.TCP.ListenOverflows++
		}
		_ = tc.c.Abort(now)
		tc.ln = nil
		return
	}
	tc.inAcceptQ = true
	ln.acceptQ = append(ln.acceptQ, tc)
	ln.waiters.wakeLocked(&ln.s.mu)
	if ln.notify != nil {
		ln.notify()
	}
}

// TryAccept returns an established connection without blocking, or
// ErrWouldBlock.
func (ln *TCPListener) TryAccept() (*TCPConn, error) {
	ln.s.mu.Lock()
	defer ln.s.mu.Unlock()
	return ln.acceptLocked()
}

func (ln *TCPListener) acceptLocked() (*TCPConn, error) {
	if ln.closed || ln.s.closed {
		return nil, net.ErrClosed
	}
	if len(ln.acceptQ) == 0 {
		return nil, ErrWouldBlock
	}
	tc := ln.acceptQ[0]
	copy(ln.acceptQ, ln.acceptQ[1:])
	ln.acceptQ[len(ln.acceptQ)-1] = nil
	ln.acceptQ = ln.acceptQ[:len(ln.acceptQ)-1]
	tc.ln, tc.inAcceptQ = nil, false
	return tc, nil
}

// AcceptTCP waits for a connection.
func (ln *TCPListener) AcceptTCP() (*TCPConn, error) {
	for {
		ln.s.mu.Lock()
		tc, err := ln.acceptLocked()
		if err != ErrWouldBlock {
			ln.s.mu.Unlock()
			if err != nil {
				return nil, ln.opError(err)
			}
			return tc, nil
		}
		woken := ln.waiters.block(&ln.s.mu, ln.deadline.wait())
		ln.s.mu.Unlock()
		if !woken {
			return nil, ln.opError(os.ErrDeadlineExceeded)
		}
	}
}

// Accept implements net.Listener.
func (ln *TCPListener) Accept() (net.Conn, error) {
	tc, err := ln.AcceptTCP()
	if err != nil {
		return nil, err
	}
	return tc, nil
}

// Close stops listening: blocked Accepts return net.ErrClosed and
// connections not yet accepted are reset.
func (ln *TCPListener) Close() error {
	s := ln.s
	s.mu.Lock()
	if ln.closed {
		s.mu.Unlock()
		return ln.opError(net.ErrClosed)
	}
	ln.closed = true
	if s.tcp.listeners[ln.addr.Port()] == ln {
		delete(s.tcp.listeners, ln.addr.Port())
	}
	now := s.clock()
	for _, tc := range ln.acceptQ {
		tc.closed = true
		_ = tc.c.Abort(now)
		tc.c.SetOrphan(now)
		tc.ln, tc.inAcceptQ = nil, false
		tc.afterLocked(now)
	}
	ln.acceptQ = nil
	ln.waiters.wakeLocked(&ln.s.mu)
	s.endStepLocked()
	s.mu.Unlock()
	ln.deadline.stop()
	return nil
}

// SetDeadline sets the deadline for Accept.
func (ln *TCPListener) SetDeadline(t time.Time) error {
	moveDeadline(ln.s, ln.deadline, t, func() { ln.waiters.wakeLocked(&ln.s.mu) })
	return nil
}

// SetNotify registers f to be called, with the loop lock held, when a
// connection is ready to accept. f must not call into the stack.
func (ln *TCPListener) SetNotify(f func()) {
	ln.s.mu.Lock()
	ln.notify = f
	ln.s.mu.Unlock()
}

// Addr implements net.Listener.
func (ln *TCPListener) Addr() net.Addr { return tcpAddr(ln.addr) }

// AddrPort returns the listening address and port.
func (ln *TCPListener) AddrPort() netip.AddrPort { return ln.addr }

func (ln *TCPListener) opError(err error) error {
	return &net.OpError{Op: "accept", Net: "tcp", Addr: tcpAddr(ln.addr), Err: err}
}

var _ net.Listener = (*TCPListener)(nil)
