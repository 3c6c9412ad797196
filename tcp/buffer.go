package tcp

import (
	"math/bits"
	"sync"

	"github.com/tapstack/tapstack/tcp/seq"
)

// Buffers grow on demand in power-of-two chunks from a pool and go back to
// it as soon as they are empty, so an idle connection holds no buffer
// memory at all, and a busy one reuses chunks without allocating.
const (
	chunkMinShift = 11 // 2 KiB
	chunkMaxShift = 23 // 8 MiB
)

var chunkPools [chunkMaxShift + 1]sync.Pool

// getChunk returns a buffer of at least n bytes: a pooled power of two up
// to 8 MiB, a fresh one beyond.
func getChunk(n int) *[]byte {
	shift := max(bits.Len(uint(n-1)), chunkMinShift)
	if shift > chunkMaxShift {
		b := make([]byte, n)
		return &b
	}
	if v := chunkPools[shift].Get(); v != nil {
		return v.(*[]byte)
	}
	b := make([]byte, 1<<shift)
	return &b
}

func putChunk(b *[]byte) {
	n := len(*b)
	if n&(n-1) != 0 || n < 1<<chunkMinShift || n > 1<<chunkMaxShift {
		return
	}
	chunkPools[bits.Len(uint(n-1))].Put(b)
}

// ring is a byte queue over a pooled chunk that grows by doubling.
//
// An empty ring gives its chunk back, and the next write takes a chunk the
// size the last busy period peaked at: a stream whose buffer empties now
// and then (an echo, a request-response exchange, a sender whose data is
// all acknowledged) would otherwise grow from the smallest chunk and copy
// its data into each larger one on every cycle.
type ring struct {
	b    *[]byte
	head int
	n    int
	peak uint8 // log2 of the chunk the bytes held so far this period needed
	last uint8 // peak of the previous busy period: where the next one starts
}

// Len returns the bytes held.
func (r *ring) Len() int { return r.n }

// Cap returns the memory held.
func (r *ring) Cap() int {
	if r.b == nil {
		return 0
	}
	return len(*r.b)
}

// grow makes room for need bytes in all.
func (r *ring) grow(need int) {
	if need <= r.Cap() {
		return
	}
	if r.b == nil && int(r.last) > chunkMinShift {
		need = max(need, 1<<r.last)
	}
	nb := getChunk(need)
	if r.b != nil {
		p := r.peek(0, r.n)
		k := copy(*nb, p[0])
		copy((*nb)[k:], p[1])
		putChunk(r.b)
	}
	r.b, r.head = nb, 0
}

// write appends what fits of p under limit bytes and returns how much.
func (r *ring) write(p []byte, limit int) int {
	n := min(len(p), limit-r.n)
	if n <= 0 {
		return 0
	}
	r.grow(r.n + n)
	if r.n+n > 1<<r.peak {
		r.peak = uint8(bits.Len(uint(r.n + n - 1)))
	}
	c := len(*r.b)
	tail := (r.head + r.n) % c
	k := copy((*r.b)[tail:], p[:n])
	copy(*r.b, p[k:n])
	r.n += n
	return n
}

// peek returns n bytes from offset off, in one or two parts.
func (r *ring) peek(off, n int) [2][]byte {
	if n == 0 {
		return [2][]byte{}
	}
	c := len(*r.b)
	start := (r.head + off) % c
	if start+n <= c {
		return [2][]byte{(*r.b)[start : start+n]}
	}
	return [2][]byte{(*r.b)[start:], (*r.b)[:n-(c-start)]}
}

// read moves up to len(p) bytes into p.
func (r *ring) read(p []byte) int {
	n := min(len(p), r.n)
	if n == 0 {
		return 0
	}
	q := r.peek(0, n)
	k := copy(p, q[0])
	copy(p[k:], q[1])
	r.discard(n)
	return n
}

// discard drops n bytes from the front.
func (r *ring) discard(n int) {
	r.n -= n
	if r.n == 0 {
		r.head = 0
		return
	}
	r.head = (r.head + n) % len(*r.b)
}

// release gives an empty ring's chunk back to the pool.
func (r *ring) release() {
	if r.b != nil && r.n == 0 {
		putChunk(r.b)
		r.b, r.head = nil, 0
		r.last, r.peak = r.peak, 0
	}
}

// sendBuffer holds the data from SND.UNA on: unacknowledged, then unsent.
type sendBuffer struct{ ring }

// recvBuffer holds in-order data the user has not read.
type recvBuffer struct{ ring }

// oooQueue holds segments received beyond a hole, sorted by sequence
// number, each copied into its own chunk. It is bounded in segments and in
// bytes; what does not fit is dropped (the sender will retransmit it).
type oooQueue struct {
	segs  []oooSeg
	bytes int // memory held
}

type oooSeg struct {
	seq seq.Value
	b   *[]byte
	n   int
	fin bool
}

func (q *oooQueue) len() int { return len(q.segs) }

// insert queues [at, at+len(p)) and reports whether it was kept. A segment
// wholly covered by one already queued is a duplicate and is not.
func (q *oooQueue) insert(at seq.Value, p []byte, fin bool, maxSegs, maxBytes int) bool {
	end := at.Add(seq.Size(len(p)))
	i := 0
	for i < len(q.segs) && q.segs[i].seq.LessThanEq(at) {
		s := &q.segs[i]
		if s.seq.Add(seq.Size(s.n)).GreaterThanEq(end) && (s.fin || !fin) && len(p) > 0 {
			return false
		}
		i++
	}
	if len(q.segs) >= maxSegs {
		return false
	}
	var b *[]byte
	if len(p) > 0 {
		b = getChunk(len(p))
		if q.bytes+len(*b) > maxBytes {
			putChunk(b)
			return false
		}
		copy(*b, p)
		q.bytes += len(*b)
	}
	q.segs = append(q.segs, oooSeg{})
	copy(q.segs[i+1:], q.segs[i:])
	q.segs[i] = oooSeg{seq: at, b: b, n: len(p), fin: fin}
	return true
}

func (q *oooQueue) popFront() {
	s := q.segs[0]
	if s.b != nil {
		q.bytes -= len(*s.b)
		putChunk(s.b)
	}
	copy(q.segs, q.segs[1:])
	q.segs[len(q.segs)-1] = oooSeg{}
	q.segs = q.segs[:len(q.segs)-1]
	if len(q.segs) == 0 {
		q.segs = nil
	}
}

func (q *oooQueue) clear() {
	for len(q.segs) > 0 {
		q.popFront()
	}
}
