package tcp

import (
	"bytes"
	"testing"

	"github.com/tapstack/tapstack/internal/bufpool"
)

// A connection keeps a large in-order segment in the buffer it arrived in
// (Segment.Buf) and copies the rest; the bytes read back in order either
// way.
func TestAdoptKeepsLargeInOrderSegments(t *testing.T) {
	h := established(t, func(c *Config) { c.ReceiveBufferMax = 1 << 20 })
	pattern := func(n, seed int) []byte {
		p := make([]byte, n)
		for i := range p {
			p[i] = byte(i*7 + seed)
		}
		return p
	}
	offer := func(at int, p []byte, buf *[]byte) bool {
		t.Helper()
		seg := Segment{Seq: seqv(uint32(at)), Ack: ourISS + 1, Flags: ACK, Window: hWnd, Payload: p, Buf: buf}
		h.c.Input(h.now, &seg)
		h.checkInvariants()
		return seg.Buf == nil
	}
	inBuf := func(p []byte, off int) (*[]byte, []byte) {
		b := bufpool.Get(len(p) + off)
		copy((*b)[off:], p)
		return b, (*b)[off : off+len(p)]
	}

	big := pattern(20000, 1)
	b, p := inBuf(big, 64)
	if !offer(peerISS+1, p, b) {
		t.Fatal("a 20000-byte in-order segment in a 32 KiB buffer was copied")
	}
	small := pattern(1000, 2)
	sb, sp := inBuf(small, 0)
	if offer(peerISS+1+20000, sp, sb) {
		t.Fatal("a 1000-byte segment was kept in a 2 KiB buffer")
	}
	other := pattern(20000, 3)
	ob, _ := inBuf(other, 0)
	if offer(peerISS+1+21000, other, ob) {
		t.Fatal("a segment was kept in a buffer it does not lie in")
	}
	gapped := pattern(20000, 4)
	gb, gp := inBuf(gapped, 0)
	if offer(peerISS+1+61000, gp, gb) {
		t.Fatal("an out-of-order segment was kept in its buffer")
	}
	if got := h.stats.SegmentsAdopted; got != 1 {
		t.Errorf("SegmentsAdopted = %d, want 1", got)
	}
	want := append(append(append([]byte(nil), big...), small...), other...)
	if got := h.ReadAll(); !bytes.Equal([]byte(got), want) {
		t.Fatalf("read %d bytes, not the %d sent in order", len(got), len(want))
	}
}
