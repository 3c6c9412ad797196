package tcp

import (
	"testing"
)

func payload(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i * 7)
	}
	return b
}

// Three duplicate ACKs retransmit the first unacknowledged segment at once
// and enter fast recovery (RFC 5681 §3.2, RFC 6582).
func TestFastRetransmit(t *testing.T) {
	h := established(t, func(c *Config) { c.NoSACK = true })
	data := payload(6 * 1460)
	h.Write(string(data))
	if got := len(h.Took()); got != 6 {
		t.Fatalf("sent %d segments", got)
	}
	dup := S{Flags: ACK, Seq: 301, Ack: 101, Wnd: hWnd}
	h.Send(dup)
	h.Send(dup)
	h.ExpectNothing()
	h.Send(dup)
	h.Expect(S{Flags: ACK, Seq: 101, Ack: 301, Wnd: hWnd, Data: data[:1460]})
	if !h.c.inRecov || h.c.ssthresh != 3*1460 || h.c.cwnd != 6*1460 {
		t.Fatalf("recovery %v ssthresh %d cwnd %d", h.c.inRecov, h.c.ssthresh, h.c.cwnd)
	}
	// A partial ACK (up to the second segment) retransmits the next hole.
	h.Send(S{Flags: ACK, Seq: 301, Ack: 101 + 1460, Wnd: hWnd})
	h.Expect(S{Flags: ACK, Seq: 101 + 1460, Ack: 301, Wnd: hWnd, Data: data[1460:2920]})
	// The full ACK ends recovery with cwnd deflated to ssthresh.
	h.Send(S{Flags: ACK, Seq: 301, Ack: 101 + 6*1460, Wnd: hWnd})
	if h.c.inRecov || h.c.cwnd != 2*1460 { // min(ssthresh, max(FlightSize, SMSS) + SMSS)
		t.Fatalf("after full ACK: recovery %v cwnd %d", h.c.inRecov, h.c.cwnd)
	}
	if h.stats.FastRetransmits != 1 {
		t.Fatalf("fast retransmits %d", h.stats.FastRetransmits)
	}
}

// With SACK, the duplicate ACKs' blocks go to the scoreboard and the
// retransmission fills the first hole.
func TestFastRetransmitSACK(t *testing.T) {
	h := established(t)
	data := payload(6 * 1460)
	h.Write(string(data))
	h.Took()
	for i := 1; i <= 3; i++ {
		d := S{Flags: ACK, Seq: 301, Ack: 101, Wnd: hWnd}
		d.Opts.NumSACK = 1
		d.Opts.SACKBlocks[0] = SACKBlock{101 + 1460, seqv(101 + uint32(i+1)*1460)}
		h.Send(d)
	}
	h.Expect(S{Flags: ACK, Seq: 101, Ack: 301, Wnd: hWnd, Data: data[:1460]})
}
