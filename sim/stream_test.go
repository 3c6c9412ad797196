package sim

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/tapstack/tapstack/mono"
	"github.com/tapstack/tapstack/netstack"
	"github.com/tapstack/tapstack/sim/impair"
)

// memTransport is a test double of a reliable byte-stream transport, for
// the transfer application's own tests: bytes written at one end appear
// at the other delay later, in order, through World timers; a bounded
// window of unacknowledged bytes makes writes block. It can damage a
// stream (flip) or end it early (cut) to show that the checks notice.
type memTransport struct {
	delay     time.Duration
	window    int
	flip      int64 // stream offset of connection 0 to damage, or -1
	cut       int64 // connection 0 ends after this many bytes, or -1
	listeners map[netip.AddrPort]*memListener
}

func newMemTransport() *memTransport {
	return &memTransport{delay: 10 * time.Millisecond, window: 32 << 10, flip: -1, cut: -1,
		listeners: make(map[netip.AddrPort]*memListener)}
}

type memListener struct {
	q      []*memEnd
	notify func()
}

func (l *memListener) TryAccept() (Stream, error) {
	if len(l.q) == 0 {
		return nil, netstack.ErrWouldBlock
	}
	e := l.q[0]
	l.q = l.q[1:]
	return e, nil
}
func (l *memListener) SetNotify(f func()) { l.notify = f }
func (l *memListener) Close() error       { return nil }

func (m *memTransport) Listen(h *Host, port uint16) (StreamListener, error) {
	l := &memListener{notify: func() {}}
	m.listeners[netip.AddrPortFrom(h.Addr(), port)] = l
	return l, nil
}

func (m *memTransport) Dial(h *Host, raddr netip.AddrPort) (Stream, error) {
	l := m.listeners[raddr]
	if l == nil {
		return nil, errors.New("connection refused")
	}
	w := h.w
	c := &memEnd{m: m, w: w, id: len(l.q), notify: func() {}}
	s := &memEnd{m: m, w: w, id: -1, notify: func() {}, connected: true}
	c.peer, s.peer = s, c
	w.After(m.delay, func() { l.q = append(l.q, s); l.notify() })
	w.After(2*m.delay, func() { c.connected = true; c.notify() })
	return c, nil
}

type memEnd struct {
	m         *memTransport
	w         *World
	id        int // the client's connection number; -1 on the server
	peer      *memEnd
	rbuf      []byte
	eof       bool
	inFlight  int
	written   int64
	connected bool
	shut      bool
	closed    bool
	notify    func()
}

func (e *memEnd) TryWrite(p []byte) (int, error) {
	if e.closed || e.shut {
		return 0, net.ErrClosed
	}
	n := min(len(p), e.m.window-e.inFlight)
	if !e.connected || n == 0 {
		return 0, netstack.ErrWouldBlock
	}
	chunk := append([]byte(nil), p[:n]...)
	off := e.written
	if e.id == 0 && e.m.flip >= off && e.m.flip < off+int64(n) {
		chunk[e.m.flip-off] ^= 0x10
	}
	if e.id == 0 && e.m.cut >= 0 && off+int64(n) > e.m.cut {
		chunk = chunk[:max(e.m.cut-off, 0)]
	}
	e.written += int64(n)
	e.inFlight += n
	e.w.After(e.m.delay, func() {
		e.peer.rbuf = append(e.peer.rbuf, chunk...)
		e.inFlight -= n
		e.peer.notify()
		e.notify()
	})
	return n, nil
}

func (e *memEnd) TryRead(p []byte) (int, error) {
	if e.closed {
		return 0, net.ErrClosed
	}
	if len(e.rbuf) > 0 {
		n := copy(p, e.rbuf)
		e.rbuf = e.rbuf[n:]
		return n, nil
	}
	if e.eof {
		return 0, io.EOF
	}
	return 0, netstack.ErrWouldBlock
}

func (e *memEnd) CloseWrite() error {
	if !e.shut {
		e.shut = true
		e.w.After(e.m.delay, func() { e.peer.eof = true; e.peer.notify() })
	}
	return nil
}

func (e *memEnd) Close() error {
	e.CloseWrite()
	e.closed = true
	return nil
}

func (e *memEnd) SetNotify(f func()) { e.notify = f }

func startMemTransfer(t *testing.T, m *memTransport, conns int, n int64) (*pair, *TransferRun) {
	t.Helper()
	p := newPair(t, 1, impair.Config{}, impair.Config{})
	run := must(p.w.StartTransfer(Transfer{Transport: m, Client: p.a, Server: p.b, Port: 80, Conns: conns, Bytes: n, Chunk: 5000}))(t)
	return p, run
}

func TestTransferOverMemStreams(t *testing.T) {
	p, run := startMemTransfer(t, newMemTransport(), 3, 100_000)
	if err := p.w.RunUntil(run.Done, mono.Time(time.Hour)); err != nil {
		t.Fatal(err)
	}
	for _, c := range run.Conns {
		if c.Verified != 100_000 || c.Written != 100_000 || c.Received == mono.Never || c.Closed <= c.Received {
			t.Errorf("connection %d: %+v", c.ID, c)
		}
	}
	if run.Verified() != 300_000 {
		t.Errorf("verified %d bytes", run.Verified())
	}
}

func TestTransferNoticesDamage(t *testing.T) {
	for _, c := range []struct {
		name      string
		flip, cut int64
		want      string
	}{
		{"flipped byte", 16 + 4242, -1, "connection 0: byte 4242 differs"},
		{"flipped header", 5, -1, "stream header"},
		{"cut short", -1, 16 + 999, "connection 0 ended after 999 of 10000 bytes"},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := newMemTransport()
			m.flip, m.cut = c.flip, c.cut
			p, run := startMemTransfer(t, m, 2, 10_000)
			err := p.w.RunUntil(run.Done, mono.Time(time.Hour))
			if !errors.Is(err, ErrIntegrity) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("run: %v; want an integrity error with %q", err, c.want)
			}
		})
	}
}
