package tcp

import (
	"errors"
	"testing"
	"time"
)

// SYN retransmission: 1 s initial RTO doubling, six retries, then
// ETIMEDOUT at 1+2+4+8+16+32+64 = 127 s, as Linux.
func TestSYNRetransmitBackoff(t *testing.T) {
	h := newHarness(t)
	h.c.SetISS(100)
	h.c.Connect(h.now)
	syn := S{Flags: SYN, Seq: 100, Wnd: hWnd, Opts: synOpts}
	h.Expect(syn)
	want := time.Second
	for i := 0; i < 6; i++ {
		if d := h.AdvanceToDeadline(); d != want {
			t.Fatalf("retry %d after %v, want %v", i+1, d, want)
		}
		h.Expect(syn)
		want *= 2
	}
	if d := h.AdvanceToDeadline(); d != want {
		t.Fatalf("gave up after %v, want %v", d, want)
	}
	h.ExpectNothing()
	h.wantState(Closed)
	if !errors.Is(h.c.Err(), ErrTimeout) {
		t.Fatalf("err %v", h.c.Err())
	}
}

// After a retransmitted SYN there is no RTT sample (Karn) and the RTO
// starts at 3 s (RFC 6298 §5.7).
func TestSYNRetransmittedNoSample(t *testing.T) {
	h := newHarness(t)
	h.c.SetISS(100)
	h.c.Connect(h.now)
	h.Took()
	h.AdvanceToDeadline()
	h.Took()
	h.Advance(100 * time.Millisecond)
	h.Send(S{Flags: SYN | ACK, Seq: 300, Ack: 101, Wnd: hWnd, Opts: synOpts})
	h.Took()
	if h.c.SRTT() != 0 || h.c.RTO() != 3*time.Second {
		t.Fatalf("SRTT %v RTO %v, want 0 and 3s", h.c.SRTT(), h.c.RTO())
	}
}

// The handshake's RTT sets SRTT, RTTVAR and RTO (RFC 6298 §2.2), and the
// RTO is clamped to the configured minimum.
func TestRTTFromHandshake(t *testing.T) {
	h := newHarness(t)
	h.c.SetISS(100)
	h.c.Connect(h.now)
	h.Took()
	h.Advance(50 * time.Millisecond)
	h.Send(S{Flags: SYN | ACK, Seq: 300, Ack: 101, Wnd: hWnd, Opts: synOpts})
	h.Took()
	if h.c.SRTT() != 50*time.Millisecond || h.c.rttvar != 25*time.Millisecond {
		t.Fatalf("SRTT %v RTTVAR %v", h.c.SRTT(), h.c.rttvar)
	}
	if h.c.RTO() != 200*time.Millisecond { // 50+4*25 = 150 ms, clamped to 200
		t.Fatalf("RTO %v", h.c.RTO())
	}
	// A second sample of 300 ms: RTTVAR = 3/4*25 + 1/4*250, SRTT = 7/8*50 + 1/8*300.
	h.Write("x")
	h.Took()
	h.Advance(300 * time.Millisecond)
	// The RTO (200 ms) fired first: that segment was retransmitted, so the
	// ACK yields no sample (Karn's rule) and the backed-off RTO stays.
	h.Expect(S{Flags: ACK | PSH, Seq: 101, Ack: 301, Wnd: hWnd, Data: []byte("x")})
	h.Send(S{Flags: ACK, Seq: 301, Ack: 102, Wnd: hWnd})
	if h.c.SRTT() != 50*time.Millisecond || h.c.RTO() != 400*time.Millisecond {
		t.Fatalf("after a retransmitted segment: SRTT %v RTO %v, want 50ms 400ms", h.c.SRTT(), h.c.RTO())
	}
	h.Write("y")
	h.Took()
	h.Advance(300 * time.Millisecond)
	h.Send(S{Flags: ACK, Seq: 301, Ack: 103, Wnd: hWnd})
	wantVar := (3*25*time.Millisecond + 250*time.Millisecond) / 4
	wantSRTT := (7*50*time.Millisecond + 300*time.Millisecond) / 8
	if h.c.SRTT() != wantSRTT || h.c.rttvar != wantVar || h.c.RTO() != wantSRTT+4*wantVar {
		t.Fatalf("SRTT %v RTTVAR %v RTO %v, want %v %v %v", h.c.SRTT(), h.c.rttvar, h.c.RTO(), wantSRTT, wantVar, wantSRTT+4*wantVar)
	}
}

// Data retransmission: the RTO doubles on every timeout, the segment is
// resent from SND.UNA, and after Retries2 timeouts the connection gives up.
func TestDataRetransmitBackoff(t *testing.T) {
	h := established(t, func(c *Config) { c.Retries2 = 4 })
	h.Write("hello")
	seg := S{Flags: ACK | PSH, Seq: 101, Ack: 301, Wnd: hWnd, Data: []byte("hello")}
	h.Expect(seg)
	rto := h.c.RTO()
	for i := 0; i < 4; i++ {
		if d := h.AdvanceToDeadline(); d != rto {
			t.Fatalf("timeout %d after %v, want %v", i+1, d, rto)
		}
		h.Expect(seg)
		rto *= 2
	}
	h.AdvanceToDeadline()
	h.ExpectNothing()
	h.wantState(Closed)
	if !errors.Is(h.c.Err(), ErrTimeout) {
		t.Fatalf("err %v", h.c.Err())
	}
	if h.stats.Timeouts != 4 || h.stats.Retransmits != 4 {
		t.Fatalf("timeouts %d retransmits %d", h.stats.Timeouts, h.stats.Retransmits)
	}
}

// A retransmission timeout collapses cwnd to one segment and go-back-N
// resends from SND.UNA; the ACK of the first resent segment lets the next
// two go (slow start).
func TestRTOGoBackN(t *testing.T) {
	h := established(t)
	data := make([]byte, 4*1460)
	for i := range data {
		data[i] = byte(i)
	}
	h.Write(string(data))
	if got := h.Took(); len(got) != 4 {
		t.Fatalf("sent %d segments, want 4 (IW10)", len(got))
	}
	h.AdvanceToDeadline()
	h.Expect(S{Flags: ACK, Seq: 101, Ack: 301, Wnd: hWnd, Data: data[:1460]})
	if h.c.Cwnd() != 1460 {
		t.Fatalf("cwnd %d after RTO", h.c.Cwnd())
	}
	h.Send(S{Flags: ACK, Seq: 301, Ack: 101 + 1460, Wnd: hWnd})
	h.Expect(
		S{Flags: ACK, Seq: 101 + 1460, Ack: 301, Wnd: hWnd, Data: data[1460:2920]},
		S{Flags: ACK, Seq: 101 + 2920, Ack: 301, Wnd: hWnd, Data: data[2920:4380]},
	)
}
