package tcp

import (
	"errors"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// The TCB's size is part of the idle-connection budget (a million
// connection pairs in under 2 GiB): 448 bytes is a Go size class, and the
// allocator rounds anything larger up to the next (480, 512) or, past 512,
// adds a header. What only some connections need belongs in a side
// structure.
func TestConnSize(t *testing.T) {
	if n := unsafe.Sizeof(Conn{}); n > 448 {
		t.Fatalf("Conn is %d bytes, over its 448-byte budget", n)
	}
}

// Buffer bounds stop at 2 GiB - 1, what a ring can hold (Linux's socket
// buffer sizes are ints too).
func TestBufferBoundsClamped(t *testing.T) {
	h := newHarness(t, func(cfg *Config) { cfg.SendBufferMax, cfg.ReceiveBufferMax = 1<<40, 1<<40 })
	if snd, rcv := h.c.BufferSizes(); snd != 1<<31-1 || rcv != 1<<31-1 {
		t.Fatalf("from the Config: %d, %d", snd, rcv)
	}
	h.c.SetBufferSizes(1<<35, 1<<33)
	if snd, rcv := h.c.BufferSizes(); snd != 1<<31-1 || rcv != 1<<31-1 {
		t.Fatalf("set: %d, %d", snd, rcv)
	}
	h.c.SetBufferSizes(100_000, 200_000)
	if snd, rcv := h.c.BufferSizes(); snd != 100_000 || rcv != 200_000 {
		t.Fatalf("set: %d, %d", snd, rcv)
	}
}

// sideState reports which side structures c holds.
func sideState(c *Conn) (extra, ooo, sb, snd, rcv bool) {
	return c.x != nil, c.ooo != nil, c.sb != nil, c.snd.cs != nil, c.rcv.cs != nil
}

func wantNoSideState(t *testing.T, c *Conn, when string) {
	t.Helper()
	if x, o, sb, snd, rcv := sideState(c); x || o || sb || snd || rcv {
		t.Fatalf("%s: holds extra %v, out-of-order queue %v, scoreboard %v, send buffer %v, receive buffer %v",
			when, x, o, sb, snd, rcv)
	}
}

// A connection that exchanged data and went quiet holds nothing beyond
// its TCB: buffers, queue, scoreboard and extras are all back in their
// pools or never made.
func TestIdleConnHoldsNoSideState(t *testing.T) {
	h := established(t)
	wantNoSideState(t, h.c, "after the handshake")
	h.Write(string(payload(3000)))
	h.Send(S{Flags: ACK, Seq: 301, Ack: 101 + 2920, Wnd: hWnd}) // Nagle holds the last 80 bytes until here
	h.Send(S{Flags: ACK, Seq: 301, Ack: 101 + 3000, Wnd: hWnd})
	if out := h.Took(); len(out) != 3 {
		t.Fatalf("sent %d segments, want 3", len(out))
	}
	h.Send(S{Flags: ACK | PSH, Seq: 301, Ack: 101 + 3000, Wnd: hWnd, Data: payload(500)})
	if got := h.ReadAll(); len(got) != 500 {
		t.Fatalf("read %d bytes", len(got))
	}
	h.Advance(time.Second)
	h.Took()
	wantNoSideState(t, h.c, "idle after an exchange")
	if h.c.cc != nil {
		t.Fatal("the default congestion control allocated an algorithm")
	}
}

// The out-of-order queue comes from its pool with the first segment
// beyond a hole, reports its SACK blocks, and goes back once the hole is
// filled, or when the connection leaves for TIME-WAIT or CLOSED, or is
// reset; a segment it cannot keep does not leave an empty one behind.
func TestOutOfOrderQueueComesAndGoes(t *testing.T) {
	h := established(t)
	d := payload(300)
	h.Send(S{Flags: ACK, Seq: 401, Ack: 101, Wnd: hWnd, Data: d[100:200]})
	if h.c.ooo == nil || h.c.ooo.len() != 1 {
		t.Fatal("no out-of-order queue after a segment beyond a hole")
	}
	var sack Options
	sack.SACKBlocks[0], sack.NumSACK = SACKBlock{seqv(401), seqv(501)}, 1
	h.Expect(S{Flags: ACK, Seq: 101, Ack: 301, Wnd: hWnd, Opts: sack})
	h.Send(S{Flags: ACK, Seq: 301, Ack: 101, Wnd: hWnd, Data: d[:100]})
	if h.c.ooo != nil {
		t.Fatal("the queue stayed after the hole was filled")
	}
	h.Expect(S{Flags: ACK, Seq: 101, Ack: 501, Wnd: hWnd - 200})
	if got := h.ReadAll(); got != string(d[:200]) {
		t.Fatalf("read %q", got)
	}

	// A fresh queue that cannot keep the segment is given back at once.
	h.cfg.OOOSegmentsMax = 0
	h.Send(S{Flags: ACK, Seq: 601, Ack: 101, Wnd: hWnd, Data: d[:10]})
	if h.c.ooo != nil {
		t.Fatal("an empty queue kept after a refused segment")
	}
	h.cfg.OOOSegmentsMax = 256
	h.Took()

	// Queued data is dropped, and the queue given back, when the
	// connection closes...
	h.Send(S{Flags: ACK, Seq: 601, Ack: 101, Wnd: hWnd, Data: d[:10]})
	if h.c.ooo == nil {
		t.Fatal("no queue")
	}
	if err := h.c.Abort(h.now); err != nil {
		t.Fatal(err)
	}
	if h.c.ooo != nil {
		t.Fatal("CLOSED kept its out-of-order queue")
	}

	// ...and when it is reset for reuse; the pooled queue comes back empty,
	// its SACK reports forgotten.
	h = established(t)
	h.Send(S{Flags: ACK, Seq: 601, Ack: 101, Wnd: hWnd, Data: d[:10]})
	q := h.c.ooo
	h.c.Reset(&h.cfg, h.c.Endpoint())
	if h.c.ooo != nil || q.len() != 0 || q.size() != 0 || q.nSackRecent != 0 {
		t.Fatalf("after Reset: queue kept %v, pooled one holds %d segments, %d bytes, %d SACK reports",
			h.c.ooo != nil, q.len(), q.size(), q.nSackRecent)
	}
}

// A FIN arriving into TIME-WAIT's path gives the queue back too.
func TestOutOfOrderQueueGoesAtTimeWait(t *testing.T) {
	h := established(t)
	h.c.Close(h.now)
	h.Expect(S{Flags: ACK | FIN, Seq: 101, Ack: 301, Wnd: hWnd})
	h.Send(S{Flags: ACK, Seq: 301, Ack: 102, Wnd: hWnd})
	h.wantState(FinWait2)
	h.Send(S{Flags: ACK, Seq: 311, Ack: 102, Wnd: hWnd, Data: payload(10)})
	if h.c.ooo == nil {
		t.Fatal("no queue in FIN-WAIT-2")
	}
	h.Send(S{Flags: ACK | FIN, Seq: 301, Ack: 102, Wnd: hWnd, Data: payload(10)})
	h.wantState(TimeWait)
	if h.c.ooo != nil {
		t.Fatal("TIME-WAIT kept the out-of-order queue")
	}
}

// The extra record (errors, counters, undo) is made the first time one is
// set, carries what Info and Err report, and goes with Reset.
func TestExtraMadeWhenNeeded(t *testing.T) {
	h := established(t)
	h.Write("data")
	h.Took()
	if h.c.x != nil {
		t.Fatal("extra made before it was needed")
	}
	h.c.SoftError(syscall.EHOSTUNREACH)
	if h.c.x == nil || h.c.Err() != nil {
		t.Fatalf("a soft error: extra %v, Err %v", h.c.x != nil, h.c.Err())
	}
	h.AdvanceToDeadline()
	if info := h.c.Info(); info.Timeouts != 1 || info.Retransmits != 1 {
		t.Fatalf("after a timeout: %d timeouts, %d retransmissions", info.Timeouts, info.Retransmits)
	}
	for h.c.State() != Closed {
		h.AdvanceToDeadline()
	}
	if !errors.Is(h.c.Err(), syscall.EHOSTUNREACH) {
		t.Fatalf("gave up with %v, want the soft error", h.c.Err())
	}
	h.c.Reset(&h.cfg, h.c.Endpoint())
	if h.c.x != nil || h.c.Err() != nil || h.c.Info().Timeouts != 0 {
		t.Fatal("Reset kept the extra record")
	}

	h = established(t)
	h.Send(S{Flags: RST, Seq: 301})
	if !errors.Is(h.c.Err(), ErrConnReset) {
		t.Fatalf("reset by peer: Err %v", h.c.Err())
	}
}

// NewReno kept in the TCB behaves exactly as the NewReno object a Config
// can ask for: the same segments and the same windows through slow start,
// fast recovery, partial ACKs, a timeout and congestion avoidance.
func TestInlineNewRenoMatchesNewReno(t *testing.T) {
	noSACK := func(cfg *Config) { cfg.NoSACK = true; cfg.SendBufferMax = 1 << 22; cfg.ReceiveBufferMax = 1 << 20 }
	inline := established(t, noSACK)
	object := established(t, noSACK, func(cfg *Config) { cfg.NewCongestionControl = NewNewReno })
	for _, h := range []*harness{inline, object} {
		h.c.SetBufferSizes(1<<22, 0) // one Write takes the whole run's data
	}
	if inline.c.cc != nil || object.c.cc == nil {
		t.Fatal("fixtures do not differ in their congestion control")
	}
	step := func(what string, f func(h *harness)) {
		t.Helper()
		f(inline)
		f(object)
		a, b := inline.Took(), object.Took()
		if segList(a) != segList(b) {
			t.Fatalf("%s: segments differ:\ninline: %s\nobject: %s", what, segList(a), segList(b))
		}
		if ia, ib := inline.c.Info(), object.c.Info(); ia != ib {
			t.Fatalf("%s: inline %+v, object %+v", what, ia, ib)
		}
	}
	step("write", func(h *harness) { h.Write(string(payload(400 * 1460))) })
	una := uint32(101)
	ack := func(n uint32) func(h *harness) {
		return func(h *harness) { h.Send(S{Flags: ACK, Seq: 301, Ack: seqv(n), Wnd: 0xffff}) }
	}
	for range 30 { // slow start
		una += 2 * 1460
		step("ack", ack(una))
	}
	for range 4 { // a loss: duplicate ACKs, fast retransmit and recovery
		step("dup ack", ack(una))
	}
	for range 3 { // partial ACKs
		una += 1460
		step("partial ack", ack(una))
	}
	step("timeout", func(h *harness) { h.AdvanceToDeadline() })
	for range 200 { // slow start again, then avoidance
		una += 1460
		step("ack after timeout", ack(una))
	}
	if info := inline.c.Info(); info.Cwnd <= info.Ssthresh || info.FastRecoveries != 1 || info.Timeouts != 1 {
		t.Fatalf("the run did not reach congestion avoidance after a recovery and a timeout: %+v", info)
	}
}

// OPEN on a connection that was open before starts a new one (RFC 9293
// §3.10.1): a FIN queued by the old one's CLOSE, its buffered data and its
// error are gone; what the user set stays.
func TestReopenStartsAfresh(t *testing.T) {
	h := newHarness(t)
	c := h.c
	c.NoDelay = true
	c.SetBufferSizes(100000, 0)
	if err := c.Connect(h.now); err != nil {
		t.Fatal(err)
	}
	h.Send(S{Flags: SYN, Seq: 300, Wnd: hWnd}) // simultaneous open
	h.wantState(SynReceived)
	c.Close(h.now) // a FIN queued behind the handshake
	c.Abort(h.now)
	h.wantState(Closed)
	h.Took()
	h.Advance(time.Second)
	if err := c.Connect(h.now); err != nil {
		t.Fatalf("Connect after Abort: %v", err)
	}
	h.checkInvariants()
	got := h.Took()
	if len(got) != 1 || got[0].Flags != SYN {
		t.Fatalf("sent %v, want one SYN", got)
	}
	if c.finQueued || c.closeErr() != nil || c.snd.Len() != 0 {
		t.Fatalf("the old connection's FIN %v, error %v or %d bytes stayed", c.finQueued, c.closeErr(), c.snd.Len())
	}
	if snd, _ := c.BufferSizes(); !c.NoDelay || snd != 100000 {
		t.Fatalf("user settings lost: NoDelay %v, send buffer %d", c.NoDelay, snd)
	}
}
