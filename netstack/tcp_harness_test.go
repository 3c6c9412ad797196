package netstack

import (
	"errors"
	"io"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/tapstack/tapstack/mono"
	"github.com/tapstack/tapstack/tcp"
)

// TCP helpers over testNet: connections driven with the non-blocking calls
// from the test's goroutine on the virtual clock.

// runUntilCond delivers frames and fires timers in time order until cond
// holds or the virtual clock passes limit from now; it reports cond.
func (n *testNet) runUntilCond(cond func() bool, limit time.Duration, stacks ...*Stack) bool {
	end := n.now.Add(limit)
	for {
		n.deliver()
		if cond() {
			return true
		}
		next := mono.Never
		for _, s := range stacks {
			next = mono.Min(next, s.NextDeadline())
		}
		if next > end {
			n.now = end
			return cond()
		}
		n.now = max(n.now, next)
		for _, s := range stacks {
			s.Advance(n.now)
		}
	}
}

// tcpPair connects a client on a to a listener on b at port and returns
// both ends, established.
func (n *testNet) tcpPair(a, b *Stack, port uint16) (client, server *TCPConn) {
	n.t.Helper()
	ln, err := b.ListenTCP(netip.AddrPortFrom(addrB, port))
	if err != nil {
		n.t.Fatal(err)
	}
	n.t.Cleanup(func() { ln.Close() })
	client, err = a.StartDialTCP(netip.AddrPort{}, netip.AddrPortFrom(addrB, port))
	if err != nil {
		n.t.Fatal(err)
	}
	ok := n.runUntilCond(func() bool {
		if server == nil {
			server, _ = ln.TryAccept()
		}
		return server != nil && client.State() == tcp.Established
	}, 10*time.Second, a, b)
	if !ok {
		n.t.Fatalf("no connection: client %v, accepted %v", client.State(), server != nil)
	}
	return client, server
}

// stream is a deterministic byte stream for integrity checks.
type stream struct {
	r   *rand.ChaCha8
	buf [4096]byte
	off int
	n   int64 // bytes produced
}

func newStream(seed byte) *stream {
	var s [32]byte
	s[0] = seed
	return &stream{r: rand.NewChaCha8(s), off: 4096}
}

// next returns the stream's next k bytes (k <= 4096), valid until the next call.
func (s *stream) next(k int) []byte {
	if s.off+k > len(s.buf) {
		rest := copy(s.buf[:], s.buf[s.off:])
		_, _ = s.r.Read(s.buf[rest:])
		s.off = 0
	}
	p := s.buf[s.off : s.off+k]
	s.off += k
	s.n += int64(k)
	return p
}

// transfer is one direction of a bulk transfer: w writes total bytes of a
// stream, r reads and checks them, then w closes its side.
type transfer struct {
	w, r       *TCPConn
	total      int64
	src, check *stream
	pending    []byte // produced but not yet accepted by TryWrite
	written    int64
	read       int64
	closed     bool
	eof        bool
	rbuf       []byte
	err        error
}

func newTransfer(w, r *TCPConn, total int64, seed byte) *transfer {
	return &transfer{w: w, r: r, total: total, src: newStream(seed), check: newStream(seed), rbuf: make([]byte, 64<<10)}
}

// step moves what it can without blocking and reports progress.
func (x *transfer) step() bool {
	progress := false
	for x.written < x.total {
		if len(x.pending) == 0 {
			x.pending = x.src.next(int(min(4096, x.total-x.written)))
		}
		n, err := x.w.TryWrite(x.pending)
		x.pending = x.pending[n:]
		x.written += int64(n)
		if n > 0 {
			progress = true
		}
		if err != nil {
			if !errors.Is(err, ErrWouldBlock) {
				x.err = err
			}
			break
		}
	}
	if x.written == x.total && !x.closed {
		x.closed = true
		if err := x.w.CloseWrite(); err != nil {
			x.err = err
		}
		progress = true
	}
	for !x.eof {
		n, err := x.r.TryRead(x.rbuf)
		for off := 0; off < n; {
			k := min(n-off, 4096)
			want := x.check.next(k)
			for i := range k {
				if x.rbuf[off+i] != want[i] {
					x.err = errors.New("stream corrupted")
					return false
				}
			}
			off += k
		}
		x.read += int64(n)
		if n > 0 {
			progress = true
		}
		if err == io.EOF {
			x.eof = true
			progress = true
			break
		}
		if err != nil {
			if !errors.Is(err, ErrWouldBlock) {
				x.err = err
			}
			break
		}
	}
	return progress
}

func (x *transfer) done() bool { return x.eof || x.err != nil }

// runTransfers runs the transfers to completion on the virtual clock.
func (n *testNet) runTransfers(limit time.Duration, stacks []*Stack, xs ...*transfer) {
	n.t.Helper()
	end := n.now.Add(limit)
	for {
		progress := false
		for _, x := range xs {
			if x.step() {
				progress = true
			}
		}
		if len(n.pending) > 0 {
			n.deliver()
			continue
		}
		all := true
		for _, x := range xs {
			if x.err != nil {
				n.t.Fatalf("transfer: %v (read %d of %d)", x.err, x.read, x.total)
			}
			all = all && x.done()
		}
		if all {
			return
		}
		if progress {
			continue
		}
		next := mono.Never
		for _, s := range stacks {
			next = mono.Min(next, s.NextDeadline())
		}
		if next > end {
			for _, x := range xs {
				n.t.Logf("transfer: wrote %d read %d of %d; writer %v reader %v", x.written, x.read, x.total, x.w.State(), x.r.State())
			}
			n.t.Fatalf("transfers stalled at %v", n.now)
		}
		n.now = max(n.now, next)
		for _, s := range stacks {
			s.Advance(n.now)
		}
	}
}
