package tcp

import (
	"math"
	"math/bits"
	"sync"
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
// An empty ring gives its memory back (release), and the next write takes
// a first chunk the size the last busy period peaked at, so a stream whose
// buffer empties now and then does not start small each time.
type ring struct {
	cs   *chunkList // nil while the ring holds no memory
	head int32      // offset of the first byte in the first chunk
	n    int32      // bytes held
	peak uint8      // log2 of the most bytes held in this busy period, rounded up
	last uint8      // peak of the previous busy period
}

// chunkList is a ring's chunks, front first; pooled with its slice so a
// busy ring does not allocate.
type chunkList struct{ c []*[]byte }

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
	for _, b := range r.cs.c {
		c += len(*b)
	}
	return c
}

// locate returns the chunk and the offset within it of the byte at pos,
// counted from the start of the first chunk.
func (r *ring) locate(pos int) (int, int) {
	first := len(*r.cs.c[0])
	if pos < first {
		return 0, pos
	}
	pos -= first
	return 1 + pos/ringChunk, pos % ringChunk
}

// write appends what fits of p under limit bytes and returns how much.
func (r *ring) write(p []byte, limit int) int {
	n := min(len(p), min(limit, maxRing)-int(r.n))
	if n <= 0 {
		return 0
	}
	if r.cs == nil {
		size := max(n, 1<<r.last)
		r.cs = chunkLists.Get().(*chunkList)
		r.cs.c = append(r.cs.c, getChunk(min(size, ringChunk)))
	}
	pos := int(r.head) + int(r.n)
	for done := 0; done < n; {
		i, off := r.locate(pos)
		if i == len(r.cs.c) {
			r.cs.c = append(r.cs.c, getChunk(ringChunk))
		}
		k := copy((*r.cs.c[i])[off:], p[done:n])
		done += k
		pos += k
	}
	r.n += int32(n)
	if int(r.n) > 1<<r.peak {
		r.peak = uint8(bits.Len(uint(r.n - 1)))
	}
	return n
}

// peek returns n bytes from offset off, in one or two parts; n is at most
// ringChunk.
func (r *ring) peek(off, n int) [2][]byte {
	if n == 0 {
		return [2][]byte{}
	}
	i, o := r.locate(int(r.head) + off)
	b := *r.cs.c[i]
	if o+n <= len(b) {
		return [2][]byte{b[o : o+n]}
	}
	return [2][]byte{b[o:], (*r.cs.c[i+1])[:n-(len(b)-o)]}
}

// read moves up to len(p) bytes into p.
func (r *ring) read(p []byte) int {
	n := min(len(p), int(r.n))
	for done := 0; done < n; {
		i, o := r.locate(int(r.head) + done)
		done += copy(p[done:n], (*r.cs.c[i])[o:])
	}
	r.discard(n)
	return n
}

// discard drops n bytes from the front, and the chunks read to their end.
func (r *ring) discard(n int) {
	if n <= 0 {
		return
	}
	r.n -= int32(n)
	head := int(r.head) + n
	c := r.cs.c
	drop := 0
	for drop < len(c)-1 && head >= len(*c[drop]) {
		head -= len(*c[drop])
		putChunk(c[drop])
		drop++
	}
	if drop > 0 {
		k := copy(c, c[drop:])
		clear(c[k:])
		r.cs.c = c[:k]
	}
	if r.n == 0 {
		head = 0
	}
	r.head = int32(head)
}

// release gives an empty ring's memory back to the pools.
func (r *ring) release() {
	if r.cs == nil || r.n != 0 {
		return
	}
	for i, b := range r.cs.c {
		putChunk(b)
		r.cs.c[i] = nil
	}
	r.cs.c = r.cs.c[:0]
	chunkLists.Put(r.cs)
	r.cs, r.head = nil, 0
	r.last, r.peak = r.peak, 0
}
