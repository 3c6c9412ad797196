package tcp

import (
	"math"
	"math/bits"
	"sync"

	"github.com/tapstack/tapstack/internal/bufpool"
)

// ringChunk is the size of every chunk of a ring but its first. A ring that
// outgrows one chunk adds chunks of this size and never copies what it
// holds; a segment (at most 64 KiB, see superSegment) read from a ring
// lies in at most two chunks.
const ringChunk = 64 << 10

// ring is a byte queue over pooled chunks: a first chunk sized to what the
// ring is expected to hold (up to ringChunk), then chunks of ringChunk
// bytes as it fills. Bytes are read from the front and written at the
// back; a chunk read to its end goes back to the pool.
//
// A receive buffer may also adopt a buffer that already holds its bytes (a
// frame the device reader filled) instead of copying them: the buffer joins
// the chunk list as it is and goes back to the pool once read. While a ring
// holds an adopted buffer, chunks are no longer at fixed offsets and
// finding a byte walks the list (send buffers, which peek at any offset,
// never adopt).
//
// An empty ring gives its memory back (release), and the next write takes
// a first chunk the size the last busy period peaked at, so a stream whose
// buffer empties now and then does not start small each time.
type ring struct {
	cs   *chunkList // nil while the ring holds no memory
	n    int32      // bytes held
	peak uint8      // log2 of the most bytes held in this busy period, rounded up
	last uint8      // peak of the previous busy period
}

// chunkList is a ring's chunks, front first; pooled with its slice so a
// busy ring does not allocate.
type chunkList struct {
	c       []span
	adopted int // spans in c that were adopted
}

// span is a chunk and the bytes of it that the ring holds, (*b)[lo:hi].
// Only the last span has bytes written after hi; the first is read from lo.
//
// A send buffer's chunk that an output holds (hold) gets a Ref, which the
// ring counts as one holder: the chunk goes back to the pool when the ring
// and every frame pointing into it have let go, and the bytes a frame
// points at are never written again.
type span struct {
	b       *[]byte
	ref     *bufpool.Ref // nil until the chunk is first held
	lo, hi  int32
	adopted bool
}

// free gives s's chunk back, or the ring's hold on it.
func (s *span) free() {
	if s.ref != nil {
		s.ref.Release()
	} else {
		putChunk(s.b)
	}
	*s = span{}
}

var chunkLists = sync.Pool{New: func() any { return new(chunkList) }}

// maxRing bounds what a ring may hold (its offsets are 32-bit).
const maxRing = math.MaxInt32 - ringChunk

// Len returns the bytes held.
func (r *ring) Len() int { return int(r.n) }

// Cap returns the memory held.
func (r *ring) Cap() int {
	if r.cs == nil {
		return 0
	}
	c := 0
	for _, s := range r.cs.c {
		c += cap(*s.b)
	}
	return c
}

// locate returns the span holding the byte at off (counted from the first
// byte held) and its index in the span's chunk. Without adopted spans the
// chunks after the first are all ringChunk long and full but for the last.
func (r *ring) locate(off int) (int, int) {
	c := r.cs.c
	if r.cs.adopted == 0 {
		first := int(c[0].hi - c[0].lo)
		if off < first {
			return 0, int(c[0].lo) + off
		}
		off -= first
		return 1 + off/ringChunk, off % ringChunk
	}
	i := 0
	for i < len(c)-1 && off >= int(c[i].hi-c[i].lo) {
		off -= int(c[i].hi - c[i].lo)
		i++
	}
	return i, int(c[i].lo) + off
}

// write copies in what fits of p under limit bytes and returns how much.
func (r *ring) write(p []byte, limit int) int {
	n := min(len(p), min(limit, maxRing)-int(r.n))
	if n <= 0 {
		return 0
	}
	if r.cs == nil {
		r.cs = chunkLists.Get().(*chunkList)
		r.cs.c = append(r.cs.c, span{b: getChunk(min(max(n, 1<<r.last), ringChunk))})
	}
	for done := 0; done < n; {
		if len(r.cs.c) == 0 {
			r.cs.c = append(r.cs.c, span{b: getChunk(ringChunk)})
		}
		last := &r.cs.c[len(r.cs.c)-1]
		if int(last.hi) == len(*last.b) || last.adopted {
			r.cs.c = append(r.cs.c, span{b: getChunk(ringChunk)})
			last = &r.cs.c[len(r.cs.c)-1]
		}
		k := copy((*last.b)[last.hi:], p[done:n])
		last.hi += int32(k)
		done += k
	}
	r.grew(n)
	return n
}

// adopt appends the n bytes at (*b)[off:] to the ring without copying them
// and takes b, which goes back to the pool once they are read. It declines,
// returning false, when they would not all fit under limit.
func (r *ring) adopt(b *[]byte, off, n, limit int) bool {
	if n <= 0 || n > min(limit, maxRing)-int(r.n) || off+n > len(*b) {
		return false
	}
	if r.cs == nil {
		r.cs = chunkLists.Get().(*chunkList)
	} else if k := len(r.cs.c) - 1; k >= 0 && r.cs.c[k].hi == r.cs.c[k].lo {
		// An empty last chunk (the front one, read to its end) makes way.
		if r.cs.c[k].adopted {
			r.cs.adopted--
		}
		r.cs.c[k].free()
		r.cs.c = r.cs.c[:k]
	}
	r.cs.c = append(r.cs.c, span{b: b, lo: int32(off), hi: int32(off + n), adopted: true})
	r.cs.adopted++
	r.grew(n)
	return true
}

// grew accounts for n bytes added.
func (r *ring) grew(n int) {
	r.n += int32(n)
	if int(r.n) > 1<<r.peak {
		r.peak = uint8(bits.Len(uint(r.n - 1)))
	}
}

// peek returns n bytes from offset off, in one or two parts; n is at most
// ringChunk, and the ring has adopted nothing.
func (r *ring) peek(off, n int) [2][]byte {
	if n == 0 {
		return [2][]byte{}
	}
	i, o := r.locate(off)
	s := r.cs.c[i]
	if o+n <= int(s.hi) {
		return [2][]byte{(*s.b)[o : o+n]}
	}
	next := r.cs.c[i+1]
	return [2][]byte{(*s.b)[o:s.hi], (*next.b)[next.lo : int(next.lo)+n-(int(s.hi)-o)]}
}

// read moves up to len(p) bytes into p.
func (r *ring) read(p []byte) int {
	n := min(len(p), int(r.n))
	for done, i := 0, 0; done < n; i++ {
		s := r.cs.c[i]
		done += copy(p[done:n], (*s.b)[s.lo:s.hi])
	}
	r.discard(n)
	return n
}

// discard drops n bytes from the front, and the chunks read to their end
// (the last chunk stays, to be written on).
func (r *ring) discard(n int) {
	if n <= 0 {
		return
	}
	r.n -= int32(n)
	c := r.cs.c
	drop := 0
	for {
		s := &c[drop]
		k := min(n, int(s.hi-s.lo))
		s.lo += int32(k)
		n -= k
		if s.lo < s.hi || drop == len(c)-1 {
			break
		}
		if s.adopted {
			r.cs.adopted--
		}
		s.free()
		drop++
	}
	if drop > 0 {
		k := copy(c, c[drop:])
		clear(c[k:])
		c = c[:k]
		r.cs.c = c
	}
	if r.n == 0 && !c[0].adopted {
		if c[0].ref != nil {
			// Frames may still point at what it held: write on elsewhere.
			c[0].free()
			r.cs.c = c[:0]
		} else {
			c[0].lo, c[0].hi = 0, 0
		}
	}
}

// hold returns the chunks under the n bytes from off (as peek gives them),
// each held once more for the caller, who releases them when done; nil
// for a part peek would not return.
func (r *ring) hold(off, n int) (refs [2]*bufpool.Ref) {
	if n == 0 {
		return refs
	}
	i, o := r.locate(off)
	refs[0] = r.cs.c[i].share()
	if o+n > int(r.cs.c[i].hi) {
		refs[1] = r.cs.c[i+1].share()
	}
	return refs
}

// share adds a holder to s's chunk, giving it a Ref first if it has none.
func (s *span) share() *bufpool.Ref {
	if s.ref == nil {
		s.ref = bufpool.NewRef(s.b)
	}
	s.ref.Hold()
	return s.ref
}

// release gives an empty ring's memory back to the pools.
func (r *ring) release() {
	if r.cs == nil || r.n != 0 {
		return
	}
	for i := range r.cs.c {
		r.cs.c[i].free()
	}
	r.cs.c = r.cs.c[:0]
	r.cs.adopted = 0
	chunkLists.Put(r.cs)
	r.cs = nil
	r.last, r.peak = r.peak, 0
}
