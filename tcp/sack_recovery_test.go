package tcp

import (
	"testing"
	"time"

	"github.com/tapstack/tapstack/tcp/seq"
)

// seg returns the i-th 1460-byte segment's sequence range of the
// established fixture's data.
func seg(i int) (seq.Value, seq.Value) {
	l := seqv(101 + uint32(i)*1460)
	return l, l.Add(1460)
}

// sackACK is a duplicate ACK of 101 carrying blocks, each [from, to] in
// segment numbers, the first block first.
func sackACK(blocks ...[2]int) S {
	s := S{Flags: ACK, Seq: 301, Ack: 101, Wnd: hWnd}
	for i, b := range blocks {
		l, _ := seg(b[0])
		_, r := seg(b[1])
		s.Opts.SACKBlocks[i] = SACKBlock{l, r}
	}
	s.Opts.NumSACK = len(blocks)
	return s
}

// retransmitted returns the segment numbers among out.
func segNumbers(out []S) []int {
	var n []int
	for _, s := range out {
		n = append(n, int(seqv(101).Size(s.Seq))/1460)
	}
	return n
}

func sameInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// RFC 6675: with segments 0, 2 and 4 of ten lost, recovery begins when
// three segments' worth is SACKed above SND.UNA, each hole goes once when
// enough is SACKed above it to call it lost and pipe leaves room in cwnd,
// and nothing SACKed is sent again.
func TestSACKRecoveryPipe(t *testing.T) {
	h := established(t)
	h.Write(string(payload(10 * 1460)))
	if n := len(h.Took()); n != 10 {
		t.Fatalf("sent %d segments, want 10", n)
	}
	steps := []struct {
		ack  S
		want []int
	}{
		{sackACK([2]int{1, 1}), nil},
		{sackACK([2]int{3, 3}, [2]int{1, 1}), nil},
		// Three segments SACKed above SND.UNA: segment 0 is lost. cwnd
		// becomes ssthresh (5 segments, NewReno), and pipe — segments 2,
		// 4 and 6-9 not yet deemed lost, plus the retransmission — is 7.
		{sackACK([2]int{5, 5}, [2]int{3, 3}, [2]int{1, 1}), []int{0}},
		// Segment 2 is lost now, but pipe is 5 = cwnd.
		{sackACK([2]int{5, 6}, [2]int{3, 3}, [2]int{1, 1}), nil},
		// Segment 4 is lost too; pipe is 3: both holes go.
		{sackACK([2]int{5, 7}, [2]int{3, 3}, [2]int{1, 1}), []int{2, 4}},
		{sackACK([2]int{5, 8}, [2]int{3, 3}, [2]int{1, 1}), nil},
		{sackACK([2]int{5, 9}, [2]int{3, 3}, [2]int{1, 1}), nil},
	}
	for i, st := range steps {
		h.Send(st.ack)
		if got := segNumbers(h.Took()); !sameInts(got, st.want) {
			t.Fatalf("dup ACK %d: sent segments %v, want %v", i+1, got, st.want)
		}
	}
	if !h.c.inRecov || h.c.cwnd != 5*1460 {
		t.Fatalf("recovery %v cwnd %d", h.c.inRecov, h.c.cwnd)
	}
	// Partial ACKs send nothing more: every hole is out.
	_, r := seg(1)
	h.Send(S{Flags: ACK, Seq: 301, Ack: r, Wnd: hWnd, Opts: sackACK([2]int{5, 9}, [2]int{3, 3}).Opts})
	h.ExpectNothing()
	_, r = seg(9)
	h.Send(S{Flags: ACK, Seq: 301, Ack: r, Wnd: hWnd})
	if h.c.inRecov || h.c.cwnd != 5*1460 || h.c.sb != nil {
		t.Fatalf("after the full ACK: recovery %v cwnd %d scoreboard %v", h.c.inRecov, h.c.cwnd, h.c.sb)
	}
	if got := h.c.Info(); got.Retransmits != 3 || got.FastRecoveries != 1 || got.Timeouts != 0 {
		t.Fatalf("info %+v", got)
	}
}

// A retransmission that is lost again is sent again as soon as three
// segments sent after it are SACKed, without waiting for the timeout.
func TestSACKLostRetransmission(t *testing.T) {
	h := established(t)
	h.Write(string(payload(10 * 1460)))
	h.Took()
	h.Send(sackACK([2]int{1, 1}))
	h.Send(sackACK([2]int{1, 2}))
	h.Send(sackACK([2]int{1, 3}))
	if got := segNumbers(h.Took()); !sameInts(got, []int{0}) {
		t.Fatalf("fast retransmit sent %v", got)
	}
	// The rest of the window is SACKed: pipe falls to the retransmission
	// alone, and new data goes.
	h.Write(string(payload(5 * 1460)))
	h.Send(sackACK([2]int{1, 9}))
	if got := segNumbers(h.Took()); !sameInts(got, []int{10, 11, 12, 13}) {
		t.Fatalf("after SACK of the window: sent %v, want new segments 10-13", got)
	}
	// Each SACK of new data makes room for more new data; segment 0 goes
	// again only when a third segment sent after its retransmission
	// arrives.
	h.Send(sackACK([2]int{10, 10}, [2]int{1, 9}))
	h.Send(sackACK([2]int{10, 11}, [2]int{1, 9}))
	if got := segNumbers(h.Took()); !sameInts(got, []int{14}) {
		t.Fatalf("after two SACKs of new data: sent %v, want the last new segment", got)
	}
	h.Send(sackACK([2]int{10, 12}, [2]int{1, 9}))
	if got := segNumbers(h.Took()); !sameInts(got, []int{0}) {
		t.Fatalf("segment 0 not sent again: %v", got)
	}
	if h.c.Info().Timeouts != 0 {
		t.Fatal("a timeout")
	}
}

// After a timeout with SACK, the scoreboard stays: only the holes go
// again, in slow start, and SACKed data is not resent (as Linux).
func TestSACKTimeoutResendsHolesOnly(t *testing.T) {
	h := established(t)
	h.Write(string(payload(6 * 1460)))
	h.Took()
	h.Send(sackACK([2]int{1, 1}))
	h.Send(sackACK([2]int{3, 3}, [2]int{1, 1}))
	// Two dup ACKs: no recovery yet. The timer fires.
	h.AdvanceToDeadline()
	if got := segNumbers(h.Took()); !sameInts(got, []int{0}) {
		t.Fatalf("timeout sent %v", got)
	}
	if h.c.cwnd != 1460 {
		t.Fatalf("cwnd %d", h.c.cwnd)
	}
	_, r := seg(1)
	h.Send(S{Flags: ACK, Seq: 301, Ack: r, Wnd: hWnd, Opts: sackACK([2]int{3, 3}).Opts})
	// Slow start with two segments acknowledged: cwnd 3.
	// Everything below SND.NXT at the timeout is lost: holes 2, 4 and 5
	// go; 3 is SACKed and skipped.
	if got := segNumbers(h.Took()); !sameInts(got, []int{2, 4, 5}) {
		t.Fatalf("after the first ACK: sent %v, want holes 2, 4 and 5", got)
	}
}

// establishedTS is the established fixture with timestamps on both sides.
func establishedTS(t *testing.T) *harness {
	h := newHarness(t, func(c *Config) { c.NoTimestamps = false })
	opts := synOpts
	opts.HasTimestamps, opts.TSVal = true, 7
	h.open(opts)
	return h
}

// RFC 2883 §5: when the peer reports every retransmission of a recovery
// as a duplicate, the recovery was needless (reordering, not loss) and the
// window is put back.
func TestDSACKUndo(t *testing.T) {
	h := established(t)
	h.Write(string(payload(10 * 1460)))
	h.Took()
	before := h.c.cwnd
	h.Send(sackACK([2]int{1, 1}))
	h.Send(sackACK([2]int{1, 2}))
	h.Send(sackACK([2]int{1, 3}))
	h.Took()
	if h.c.cwnd >= before {
		t.Fatalf("cwnd %d not reduced from %d", h.c.cwnd, before)
	}
	// Segment 0 was only late: everything is acknowledged, then the
	// retransmission arrives and is reported as a duplicate.
	_, end := seg(9)
	h.Send(S{Flags: ACK, Seq: 301, Ack: end, Wnd: hWnd})
	l, r := seg(0)
	d := S{Flags: ACK, Seq: 301, Ack: end, Wnd: hWnd}
	d.Opts.NumSACK, d.Opts.SACKBlocks[0] = 1, SACKBlock{l, r}
	h.Send(d)
	if h.c.cwnd < before || h.c.Info().SpuriousUndos != 1 || h.stats.Undos != 1 {
		t.Fatalf("after D-SACK: cwnd %d (before recovery %d), undos %d", h.c.cwnd, before, h.stats.Undos)
	}
}

// The same needless recovery found by timestamps (RFC 3522): the ACK that
// ends it echoes the original's timestamp, older than the retransmission's.
func TestEifelUndo(t *testing.T) {
	h := establishedTS(t)
	h.Write(string(payload(10 * 1460)))
	first := h.Took()[0].Opts.TSVal
	before := h.c.cwnd
	h.Advance(10 * time.Millisecond)
	for i := 1; i <= 3; i++ {
		a := sackACK([2]int{1, i})
		a.Opts.HasTimestamps, a.Opts.TSVal, a.Opts.TSEcr = true, 8, first
		h.Send(a)
	}
	rtx := h.Took()
	if len(rtx) == 0 || rtx[0].Opts.TSVal == first {
		t.Fatalf("retransmission %v carries the original's timestamp", rtx)
	}
	// (Timestamps make the segments 1448 bytes: the blocks above are
	// only approximately segments, which does not matter here.)
	h.Send(S{Flags: ACK, Seq: 301, Ack: h.c.SndNxt, Wnd: hWnd, Opts: Options{HasTimestamps: true, TSVal: 9, TSEcr: first}})
	if h.c.cwnd < before || h.stats.Undos != 1 {
		t.Fatalf("cwnd %d (before recovery %d), undos %d", h.c.cwnd, before, h.stats.Undos)
	}
}

// With timestamps, the first ACK of new data after a timeout gives an RTT
// sample, so the doubled RTO does not outlive the loss (RFC 7323 §4.1).
func TestTimestampSampleAfterTimeout(t *testing.T) {
	h := establishedTS(t)
	rto := h.c.RTO()
	h.Write("x")
	h.Took()
	h.AdvanceToDeadline()
	rtx := h.Took()
	if len(rtx) != 1 || h.c.RTO() != 2*rto {
		t.Fatalf("timeout: sent %d, RTO %v", len(rtx), h.c.RTO())
	}
	h.Advance(20 * time.Millisecond)
	h.Send(S{Flags: ACK, Seq: 301, Ack: 102, Wnd: hWnd, Opts: Options{HasTimestamps: true, TSVal: 8, TSEcr: rtx[0].Opts.TSVal}})
	if h.c.RTO() >= 2*rto {
		t.Fatalf("RTO %v still backed off after an ACK with a timestamp", h.c.RTO())
	}
}

// After an outage the peer's duplicate ACK may echo a timestamp from before
// it (the ACK of the original was lost): that is no RTT sample.
func TestTimestampSampleIgnoresOldEcho(t *testing.T) {
	h := establishedTS(t)
	h.Write("x")
	orig := h.Took()[0].Opts.TSVal
	h.Advance(10 * time.Second) // an outage: the timer backs off
	h.Took()
	rto := h.c.RTO()
	h.Send(S{Flags: ACK, Seq: 301, Ack: 102, Wnd: hWnd, Opts: Options{HasTimestamps: true, TSVal: 8, TSEcr: orig}})
	if h.c.SRTT() > time.Second || h.c.RTO() != rto {
		t.Fatalf("SRTT %v, RTO %v (was %v): a sample from the old echo", h.c.SRTT(), h.c.RTO(), rto)
	}
}

// RFC 2018 §4: the first block reports the latest arrival, even with more
// holes than an ACK has room for; the others repeat the latest reported.
func TestSACKBlocksLatestFirst(t *testing.T) {
	h := established(t)
	for _, i := range []int{2, 4, 6, 8, 10, 12} {
		l, _ := seg(i)
		l = seqv(301).Add(seqv(101).Size(l)) // the same layout in the peer's space
		h.Send(S{Flags: ACK, Seq: l, Ack: 101, Wnd: hWnd, Data: payload(1460)})
	}
	out := h.Took()
	last := out[len(out)-1]
	blockOf := func(i int) SACKBlock {
		l, r := seg(i)
		d := seqv(101).Size(seqv(301))
		return SACKBlock{l.Add(d), r.Add(d)}
	}
	if last.Opts.NumSACK != 4 || last.Opts.SACKBlocks[0] != blockOf(12) ||
		last.Opts.SACKBlocks[1] != blockOf(10) || last.Opts.SACKBlocks[3] != blockOf(6) {
		t.Fatalf("SACK blocks %v", last.Opts)
	}
	// Filling the hole below 12 merges the two into the first block.
	l, _ := seg(11)
	l = seqv(301).Add(seqv(101).Size(l))
	h.Send(S{Flags: ACK, Seq: l, Ack: 101, Wnd: hWnd, Data: payload(1460)})
	out = h.Took()
	want := SACKBlock{blockOf(10).Left, blockOf(12).Right}
	if got := out[len(out)-1].Opts; got.SACKBlocks[0] != want || got.SACKBlocks[1] != blockOf(8) {
		t.Fatalf("after filling a hole: %v", got)
	}
}
