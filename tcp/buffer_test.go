package tcp

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/tapstack/tapstack/internal/bufpool"
)

// A ring never moves what it holds: growing adds chunks behind the first.
func TestRingGrowsWithoutCopying(t *testing.T) {
	var r ring
	p := make([]byte, 32<<10)
	r.write(p, 1<<30)
	first := r.cs.c[0]
	for range 7 {
		r.write(p, 1<<30)
	}
	if r.cs.c[0] != first {
		t.Fatal("the first chunk was replaced as the ring grew")
	}
	if r.Len() != 256<<10 || r.Cap() < r.Len() || r.Cap() > r.Len()+ringChunk {
		t.Fatalf("len %d cap %d", r.Len(), r.Cap())
	}
	// Reading gives chunks back as it passes them.
	r.read(make([]byte, 200<<10))
	if r.Cap() > r.Len()+2*ringChunk {
		t.Fatalf("after reading, len %d cap %d", r.Len(), r.Cap())
	}
	r.discard(r.Len())
	r.release()
	if r.Cap() != 0 || r.cs != nil {
		t.Fatalf("released ring holds %d bytes", r.Cap())
	}
}

// A ring that empties and fills again starts with a first chunk the size
// its last busy period needed (up to ringChunk); after a quiet period it
// starts small again.
func TestRingStartsAtLastPeakSize(t *testing.T) {
	var r ring
	p := make([]byte, 48<<10)
	r.write(p, 1<<30)
	r.write(p[:100], 1<<30)
	r.discard(r.Len())
	r.release()
	r.write(p[:10], 1<<30)
	if got := len(*r.cs.c[0].b); got != ringChunk {
		t.Fatalf("first chunk after a 48 KiB period = %d, want %d", got, ringChunk)
	}
	r.discard(r.Len())
	r.release()
	r.write(p[:100], 1<<30)
	if got := len(*r.cs.c[0].b); got != 2048 {
		t.Fatalf("first chunk after a quiet period = %d, want %d", got, 2048)
	}
	r.discard(r.Len())
	r.release()
}

// adoptedSlack returns the memory of the adopted buffers r holds, and a
// chunk for each, which the chunk written before it may have left unfilled.
func (r *ring) adoptedSlack() int {
	n := 0
	if r.cs != nil {
		for _, s := range r.cs.c {
			if s.adopted {
				n += cap(*s.b) + ringChunk
			}
		}
	}
	return n
}

// The ring against a bytes.Buffer model: random writes under a limit,
// peeks of up to a segment at random offsets, reads, discards and
// releases.
func TestRingModel(t *testing.T) {
	t.Run("send", func(t *testing.T) { testRingModel(t, false) })
	t.Run("receive", func(t *testing.T) { testRingModel(t, true) })
}

// testRingModel runs the model; with adopt, a tenth of the steps adopt a
// buffer instead of copying.
func testRingModel(t *testing.T, adopt bool) {
	rng := rand.New(rand.NewPCG(1, 2))
	src := make([]byte, 1<<20)
	for i := range src {
		src[i] = byte(rng.Uint32())
	}
	var r ring
	var model []byte
	next := 0
	for step := range 20000 {
		switch op := rng.IntN(10); {
		case op < 4: // write
			n := rng.IntN(100 << 10)
			if next+n > len(src) {
				next = 0
			}
			limit := 1 << 20
			got := r.write(src[next:next+n], limit)
			want := min(n, limit-len(model))
			if got != want {
				t.Fatalf("step %d: write %d = %d, want %d", step, n, got, want)
			}
			model = append(model, src[next:next+got]...)
			next += got
		case op < 5 && adopt: // adopt a frame-sized buffer holding the next bytes
			n := rng.IntN(bufpool.Frame-256) + 1
			if next+n > len(src) {
				next = 0
			}
			b := bufpool.GetFrame()
			off := rng.IntN(bufpool.Frame - n + 1)
			copy((*b)[off:], src[next:next+n])
			limit := 1 << 20
			if !r.adopt(b, off, n, limit) {
				if len(model)+n <= limit {
					t.Fatalf("step %d: adopt %d holding %d declined", step, n, len(model))
				}
				bufpool.Put(b)
				continue
			}
			model = append(model, src[next:next+n]...)
			next += n
		case op < 6: // peek
			if len(model) == 0 || r.cs.adopted > 0 {
				continue
			}
			off := rng.IntN(len(model))
			n := min(rng.IntN(ringChunk)+1, len(model)-off)
			p := r.peek(off, n)
			got := append(append([]byte(nil), p[0]...), p[1]...)
			if !bytes.Equal(got, model[off:off+n]) {
				t.Fatalf("step %d: peek(%d, %d) differs", step, off, n)
			}
		case op < 8: // read
			buf := make([]byte, rng.IntN(200<<10))
			n := r.read(buf)
			if want := min(len(buf), len(model)); n != want || !bytes.Equal(buf[:n], model[:n]) {
				t.Fatalf("step %d: read %d of %d, want %d", step, n, len(buf), want)
			}
			model = model[n:]
		case op < 9: // discard
			n := rng.IntN(len(model) + 1)
			r.discard(n)
			model = model[n:]
		default:
			r.release()
		}
		if r.Len() != len(model) {
			t.Fatalf("step %d: len %d, model %d", step, r.Len(), len(model))
		}
		if limit := len(model) + 2*ringChunk + r.adoptedSlack(); r.Cap() > limit {
			t.Fatalf("step %d: cap %d holding %d", step, r.Cap(), len(model))
		}
	}
}

// BenchmarkRingStream fills a ring with four 32 KiB writes and drains it,
// as a stream's send or receive buffer does between empty moments.
func BenchmarkRingStream(b *testing.B) { benchRing(b, 4, 32<<10, false) }

// BenchmarkRingFill fills a ring to 4 MiB in 64 KiB writes and drains it,
// every period starting small as a fresh connection's: a buffer that grows
// to the window and empties.
func BenchmarkRingFill(b *testing.B) { benchRing(b, 64, 64<<10, true) }

func benchRing(b *testing.B, writes, size int, fresh bool) {
	var r ring
	p := make([]byte, size)
	b.SetBytes(int64(writes * size))
	b.ReportAllocs()
	for b.Loop() {
		for range writes {
			r.write(p, 1<<30)
		}
		for range writes {
			r.read(p)
		}
		r.release()
		if fresh {
			r.last = 0
		}
	}
}

// Bytes an output holds (a frame a device has yet to write) stay as they
// were after the ring lets go of them, however the ring and the pool are
// used meanwhile; releasing the holds gives the chunks back.
func TestRingHoldOutlivesDiscard(t *testing.T) {
	for _, size := range []int{3000, 100 << 10} {
		var r ring
		src := make([]byte, size)
		for i := range src {
			src[i] = byte(i*13 + 1)
		}
		r.write(src, 1<<30)
		n := min(size, ringChunk)
		p := r.peek(0, n)
		refs := r.hold(0, n)
		want := append(append([]byte(nil), p[0]...), p[1]...)
		r.discard(r.Len()) // all acknowledged
		junk := make([]byte, 300<<10)
		for i := range junk {
			junk[i] = 0xee
		}
		r.write(junk, 1<<30)
		for range 8 {
			b := bufpool.Get(ringChunk)
			copy(*b, junk)
			bufpool.Put(b)
		}
		if got := append(append([]byte(nil), p[0]...), p[1]...); !bytes.Equal(got, want) {
			t.Fatalf("%d-byte ring: held bytes changed after the ring let go of them", size)
		}
		for _, ref := range refs {
			if ref != nil {
				ref.Release()
			}
		}
		r.discard(r.Len())
		r.release()
	}
}
