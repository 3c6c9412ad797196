package tcp

import "testing"

// Shrinking the receive buffer below the window already offered must not
// lose what the peer then sends within that window: every byte
// acknowledged is readable.
func TestShrinkingReceiveBufferKeepsOfferedWindow(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.ReceiveBufferMax = 64 << 10 })
	h.open(synOpts)
	offered := int(h.c.RcvNxt.Size(h.c.rcvAdv))
	if offered <= 8192 {
		t.Fatalf("offered window %d: the test needs more than 8192", offered)
	}
	h.c.SetBufferSizes(0, 4096)
	at := uint32(peerISS + 1)
	data := make([]byte, 1400)
	for i := range data {
		data[i] = byte(i)
	}
	sent := 0
	for sent+len(data) <= offered && sent < 8*len(data) {
		h.Send(S{Flags: ACK, Seq: seqv(at), Ack: ourISS + 1, Wnd: 1000, Data: data})
		at += uint32(len(data))
		sent += len(data)
	}
	h.AdvanceToDeadline()
	if got := int(h.c.RcvNxt - seqv(peerISS+1)); got != sent {
		t.Fatalf("RCV.NXT advanced %d bytes, sent %d within the window", got, sent)
	}
	buf := make([]byte, 1<<16)
	read := 0
	for {
		n, err := h.c.Read(h.now, buf)
		read += n
		if n == 0 || err != nil {
			break
		}
	}
	if read != sent {
		t.Fatalf("read %d of %d acknowledged bytes", read, sent)
	}
}
