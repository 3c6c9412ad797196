package tcp

import (
	"bytes"
	"testing"
)

// A ring that empties and fills again starts at the size its last busy
// period reached, so a stream does not copy its data into ever larger
// chunks on every cycle; a ring whose use shrank starts smaller.
func TestRingStartsAtLastPeakSize(t *testing.T) {
	var r ring
	p := make([]byte, 32<<10)
	for i := range p {
		p[i] = byte(i)
	}
	for range 4 {
		r.write(p, 1<<30)
	}
	if got := r.Cap(); got != 128<<10 {
		t.Fatalf("cap after 128 KiB = %d", got)
	}
	r.discard(r.Len())
	r.release()
	if r.Cap() != 0 {
		t.Fatalf("released ring holds %d bytes", r.Cap())
	}
	// The next busy period starts at 128 KiB: no chunk change, no copy.
	r.write(p, 1<<30)
	first := r.b
	for range 3 {
		r.write(p, 1<<30)
	}
	if r.b != first || r.Cap() != 128<<10 {
		t.Fatalf("ring regrew: cap %d, same chunk %v", r.Cap(), r.b == first)
	}
	got := make([]byte, 32<<10)
	for range 4 {
		if n := r.read(got); n != len(got) || !bytes.Equal(got, p) {
			t.Fatalf("read %d bytes, equal %v", n, bytes.Equal(got, p))
		}
	}
	r.release()
	// A quiet period: 100 bytes at a time. The chunk after it is small.
	r.write(p[:100], 1<<30)
	r.discard(100)
	r.release()
	r.write(p[:100], 1<<30)
	if got := r.Cap(); got != 1<<chunkMinShift {
		t.Fatalf("cap after a quiet period = %d, want %d", got, 1<<chunkMinShift)
	}
	r.discard(100)
	r.release()
}

// BenchmarkRingStream fills a ring with four 32 KiB writes and drains it,
// as a stream's send or receive buffer does between empty moments.
func BenchmarkRingStream(b *testing.B) {
	var r ring
	p := make([]byte, 32<<10)
	b.SetBytes(4 << 15)
	b.ReportAllocs()
	for b.Loop() {
		for range 4 {
			r.write(p, 1<<30)
		}
		for range 4 {
			r.read(p)
		}
		r.release()
	}
}
