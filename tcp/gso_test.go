package tcp

import "testing"

// With a TSO link (Endpoint.GSOMax), new data goes as super-segments of
// whole segments up to what the windows allow, which the link cuts at
// SegmentSize; retransmissions stay one segment long.
func TestSuperSegments(t *testing.T) {
	h := newHarness(t)
	h.c.ep.gsoMax = 65000
	h.open(synOpts)
	data := payload(40 * 1460)
	h.Write(string(data))
	out := h.Took()
	if len(out) != 1 || len(out[0].Data) != 10*1460 || h.c.SegmentSize() != 1460 {
		t.Fatalf("first flight: %s, segment size %d", segList(out), h.c.SegmentSize())
	}
	// The ACK of it grows cwnd by the ten segments it acknowledges (slow
	// start counts every byte, as Linux's).
	h.Send(S{Flags: ACK, Seq: 301, Ack: 101 + 10*1460, Wnd: 65535})
	out = h.Took()
	if len(out) != 1 || len(out[0].Data) != 20*1460 || out[0].Seq != 101+10*1460 {
		t.Fatalf("second flight: %s", segList(out))
	}
	// A timeout resends one segment, not the super-segment.
	h.AdvanceToDeadline()
	out = h.Took()
	if len(out) != 1 || len(out[0].Data) != 1460 || out[0].Seq != 101+10*1460 {
		t.Fatalf("retransmission: %s", segList(out))
	}
}

// A super-segment ends on a segment boundary unless it carries the last of
// the data, so no short segment goes out in the middle of a stream.
func TestSuperSegmentTail(t *testing.T) {
	h := newHarness(t)
	h.c.ep.gsoMax = 65000
	h.open(synOpts)
	h.Write(string(payload(3*1460 + 100)))
	out := h.Took()
	if len(out) != 1 || len(out[0].Data) != 3*1460+100 || out[0].Flags&PSH == 0 {
		t.Fatalf("all the data with its short tail: %s", segList(out))
	}
	h.Send(S{Flags: ACK, Seq: 301, Ack: 101 + 3*1460 + 100, Wnd: 65535})
	h.c.cwnd = 4*1460 + 500 // the window ends inside a segment
	h.Write(string(payload(8 * 1460)))
	out = h.Took()
	if len(out) != 1 || len(out[0].Data) != 4*1460 {
		t.Fatalf("window-limited: %s", segList(out))
	}
}
