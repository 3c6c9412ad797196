package tcp

import "testing"

// A peer that fills every window we offer has nothing cut off: the right
// edge we advertise (SEG.ACK + SEG.WND<<scale) does not creep left as
// in-order data fills the buffer. Scaling drops the window's low bits; they
// stay offered, so a later ACK may show an edge at most 1<<scale - 1 bytes
// left of an earlier one, never more (RFC 9293 §3.8.6.2.2, SHLD-14). Linux
// sends up to the edge it last saw; what we cut off it sends again.
func TestAdvertisedEdgeDoesNotCreepLeft(t *testing.T) {
	h := newHarness(t)
	h.c.SetBufferSizes(0, 1<<20) // fixed: no autotuning
	opts := synOpts
	opts.WindowScale = 7
	h.open(opts)
	scale := h.c.RcvScale
	if scale == 0 {
		t.Fatal("no window scaling: the test needs it")
	}
	at := uint32(peerISS + 1)
	edge := uint32(h.c.rcvAdv) // what the handshake's ACK offered
	data := make([]byte, 1448)
	acks := 0
	for i := 0; int32(edge-at) > 0; i++ {
		n := min(uint32(len(data)), edge-at)
		h.Send(S{Flags: ACK, Seq: seqv(at), Ack: ourISS + 1, Wnd: 1000, Data: data[:n]})
		at += n
		out := h.Took()
		if len(out) == 0 && edge == at {
			h.AdvanceToDeadline() // the delayed ACK
			out = h.Took()
		}
		for _, s := range out {
			acks++
			e := uint32(s.Ack) + uint32(s.Wnd)<<scale
			if back := int32(edge - e); back >= 1<<scale {
				t.Fatalf("segment %d: ACK %d window %d<<%d puts the edge at %d, %d bytes left of %d advertised before",
					i, s.Ack, s.Wnd, scale, e, back, edge)
			}
			if int32(e-edge) > 0 {
				edge = e
			}
		}
		if i > 10000 {
			t.Fatal("the window never closed")
		}
	}
	if h.stats.TrimmedBeyondWindow != 0 || uint32(h.c.RcvNxt) != at || acks < 100 {
		t.Errorf("%d segments cut to the window; RCV.NXT %d, sent up to %d; %d ACKs",
			h.stats.TrimmedBeyondWindow, h.c.RcvNxt, at, acks)
	}
}
