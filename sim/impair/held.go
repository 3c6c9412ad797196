package impair

import (
	"github.com/tapstack/tapstack/internal/heapq"
	"github.com/tapstack/tapstack/mono"
)

// held is one copy waiting for its delivery instant: the frame is
// buf[off:off+n], in a buffer the wrapper owns.
type held struct {
	at  mono.Time
	buf []byte
	off int
	n   int
}

// heldQueue holds the copies by (at, order of decision): equal instants
// leave in decision order.
type heldQueue struct {
	q     heapq.Queue[held]
	bytes int // sum of n
}

func (q *heldQueue) len() int { return q.q.Len() }

// next is the earliest instant held, or mono.Never.
func (q *heldQueue) next() mono.Time { return q.q.Next() }

// push adds h and reports whether it is now the earliest.
func (q *heldQueue) push(h held) bool {
	q.bytes += h.n
	return q.q.Push(h.at, h)
}

// pop removes and returns the earliest copy; the queue must not be empty.
func (q *heldQueue) pop() held {
	h := q.q.Pop()
	q.bytes -= h.n
	return h
}

// bufPool recycles the wrapper's frame buffers. It is bounded: beyond
// poolMax free buffers the garbage collector takes them.
type bufPool struct{ free [][]byte }

const (
	poolMax  = 256
	bufSmall = 2048 // smallest buffer: one Ethernet frame with headroom
)

// get returns a buffer of length size.
func (p *bufPool) get(size int) []byte {
	if n := len(p.free); n > 0 {
		b := p.free[n-1]
		p.free[n-1] = nil
		p.free = p.free[:n-1]
		if cap(b) >= size {
			return b[:size]
		}
	}
	c := bufSmall
	for c < size {
		c *= 2
	}
	return make([]byte, size, c)
}

func (p *bufPool) put(b []byte) {
	if b != nil && len(p.free) < poolMax {
		p.free = append(p.free, b[:0])
	}
}
