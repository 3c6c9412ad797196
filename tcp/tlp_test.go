package tcp

import (
	"testing"
	"time"

	"github.com/tapstack/tapstack/mono"
)

// tlpHarness is an established connection with SACK, tail loss probes on
// and a measured RTT of 50 ms, ten segments written and sent.
func tlpHarness(t *testing.T) *harness {
	h := established(t, func(c *Config) { c.NoTLP = false })
	h.c.srtt, h.c.rttvar, h.c.rto = 50*time.Millisecond, 10*time.Millisecond, 300*time.Millisecond
	h.Write(string(payload(10 * 1460)))
	if got := segNumbers(h.Took()); len(got) != 10 {
		t.Fatalf("sent %v, want ten segments", got)
	}
	return h
}

// The last segments lost, no duplicate ACKs come: two RTTs after the last
// ACK the last segment goes again, long before the 300 ms RTO; its ACK
// acknowledges everything and no timeout or recovery follows.
func TestTailLossProbeRepairsTail(t *testing.T) {
	h := tlpHarness(t)
	_, r := seg(7)
	h.Send(S{Flags: ACK, Seq: 301, Ack: r, Wnd: hWnd}) // 0-7 arrived, 8 and 9 lost
	h.Took()
	want := max(2*h.c.srtt, h.c.srtt+4*h.c.rttvar)
	if d := h.AdvanceToDeadline(); d != want || want >= h.c.rto {
		t.Fatalf("probe after %v, want max(2*SRTT, SRTT+4*RTTVAR) = %v (RTO %v)", d, want, h.c.rto)
	}
	if got := segNumbers(h.Took()); len(got) != 1 || got[0] != 9 {
		t.Fatalf("probe sent %v, want the last segment, 9", got)
	}
	if h.stats.LossProbes != 1 || h.stats.Timeouts != 0 {
		t.Fatalf("loss probes %d, timeouts %d", h.stats.LossProbes, h.stats.Timeouts)
	}
	// The probe filled the tail but 8 is still missing: the peer SACKs 9,
	// and the probe's SACK starts recovery: 8 goes at once.
	h.Send(S{Flags: ACK, Seq: 301, Ack: r, Wnd: hWnd, Opts: Options{NumSACK: 1, SACKBlocks: [4]SACKBlock{sackOf(9, 9)}}})
	if got := segNumbers(h.Took()); len(got) != 1 || got[0] != 8 {
		t.Fatalf("after the probe's SACK sent %v, want segment 8", got)
	}
	_, end := seg(9)
	h.Send(S{Flags: ACK, Seq: 301, Ack: end, Wnd: hWnd})
	if h.stats.Timeouts != 0 || h.stats.FastRetransmits != 1 {
		t.Fatalf("timeouts %d, fast recoveries %d; want 0 and 1", h.stats.Timeouts, h.stats.FastRetransmits)
	}
}

// A probe whose ACK acknowledges everything ends the episode with no
// recovery at all.
func TestTailLossProbeAloneRepairs(t *testing.T) {
	h := tlpHarness(t)
	_, r := seg(8)
	h.Send(S{Flags: ACK, Seq: 301, Ack: r, Wnd: hWnd}) // only 9 lost
	h.Took()
	h.AdvanceToDeadline()
	if got := segNumbers(h.Took()); len(got) != 1 || got[0] != 9 {
		t.Fatalf("probe sent %v, want 9", got)
	}
	_, end := seg(9)
	h.Send(S{Flags: ACK, Seq: 301, Ack: end, Wnd: hWnd})
	if h.c.rtoAt != mono.Never || h.stats.FastRetransmits != 0 || h.stats.Timeouts != 0 {
		t.Fatalf("after the probe's ACK: RTO at %v, fast recoveries %d, timeouts %d", h.c.rtoAt, h.stats.FastRetransmits, h.stats.Timeouts)
	}
}

// One probe per episode: unanswered, the retransmission timeout follows it.
// Without SACK, or with NoTLP, there is no probe.
func TestTailLossProbeOnceThenTimeout(t *testing.T) {
	h := tlpHarness(t)
	h.AdvanceToDeadline()
	if h.stats.LossProbes != 1 {
		t.Fatalf("loss probes %d", h.stats.LossProbes)
	}
	h.Took()
	if d := h.AdvanceToDeadline(); d != 300*time.Millisecond {
		t.Fatalf("timeout %v after the probe, want the RTO, 300ms", d)
	}
	if h.stats.Timeouts != 1 || h.stats.LossProbes != 1 {
		t.Fatalf("timeouts %d, probes %d", h.stats.Timeouts, h.stats.LossProbes)
	}

	for _, tweak := range []func(*Config){
		func(c *Config) { c.NoTLP = true },
		func(c *Config) { c.NoTLP, c.NoSACK = false, true },
	} {
		h := established(t, tweak)
		h.c.srtt, h.c.rto = 50*time.Millisecond, 300*time.Millisecond
		h.Write(string(payload(3 * 1460)))
		h.Took()
		if d := h.AdvanceToDeadline(); d != 300*time.Millisecond || h.stats.LossProbes != 0 {
			t.Fatalf("without probes: first timer after %v, %d probes", d, h.stats.LossProbes)
		}
	}
}

func sackOf(from, to int) SACKBlock {
	l, _ := seg(from)
	_, r := seg(to)
	return SACKBlock{l, r}
}

// The probe timeout is 2*SRTT on a steady path and SRTT+4*RTTVAR on a
// jittery one.
func TestProbeTimeoutFollowsJitter(t *testing.T) {
	h := established(t)
	h.c.srtt, h.c.rttvar = 10*time.Millisecond, time.Millisecond
	if got := h.c.pto(); got != 20*time.Millisecond {
		t.Fatalf("steady: PTO %v, want 20ms", got)
	}
	h.c.rttvar = 20 * time.Millisecond
	if got := h.c.pto(); got != 90*time.Millisecond {
		t.Fatalf("jittery: PTO %v, want 90ms", got)
	}
}

// With data waiting behind a full congestion window and room in the peer's
// window, the probe is a new segment (RFC 8985 §7.3, as Linux), not the
// last one again: new data reveals a lost tail as well, and delivers more.
func TestTailLossProbeSendsNewData(t *testing.T) {
	h := tlpHarness(t)
	h.Write(string(payload(2 * 1460))) // behind cwnd: not sent
	if got := h.Took(); len(got) != 0 {
		t.Fatalf("sent %d segments beyond the congestion window", len(got))
	}
	nxt := h.c.SndNxt
	h.AdvanceToDeadline()
	got := h.Took()
	if l, _ := seg(10); len(got) != 1 || got[0].Seq != l || len(got[0].Data) != 1460 {
		t.Fatalf("probe %v, want new segment 10", got)
	}
	if h.c.SndNxt != nxt.Add(1460) || h.stats.LossProbes != 1 || h.stats.Retransmits != 0 {
		t.Fatalf("SND.NXT %v (was %v), loss probes %d, retransmits %d", h.c.SndNxt, nxt, h.stats.LossProbes, h.stats.Retransmits)
	}
	// The peer's window full: the probe is the last segment again.
	h2 := tlpHarness(t)
	h2.c.SndWnd = 10 * 1460
	h2.Write(string(payload(1460)))
	h2.Took()
	h2.AdvanceToDeadline()
	if got := segNumbers(h2.Took()); len(got) != 1 || got[0] != 9 || h2.stats.Retransmits != 1 {
		t.Fatalf("with a full peer window the probe sent %v (retransmits %d), want segment 9 again", got, h2.stats.Retransmits)
	}
}
