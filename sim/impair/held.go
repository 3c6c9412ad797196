package impair

import "github.com/tapstack/tapstack/mono"

// held is one copy waiting for its delivery instant: the frame is
// buf[off:off+n], in a buffer the wrapper owns.
type held struct {
	at  mono.Time
	seq uint64 // decision order: equal instants leave in it
	buf []byte
	off int
	n   int
}

// heldQueue is a min-heap of copies by (at, seq). It is hand-written rather
// than container/heap so that push and pop do not box (allocate).
type heldQueue struct {
	items []held
	seq   uint64
	bytes int // sum of n
}

func (q *heldQueue) len() int { return len(q.items) }

// next is the earliest instant held, or mono.Never.
func (q *heldQueue) next() mono.Time {
	if len(q.items) == 0 {
		return mono.Never
	}
	return q.items[0].at
}

func (q *heldQueue) less(i, j int) bool {
	a, b := &q.items[i], &q.items[j]
	return a.at < b.at || (a.at == b.at && a.seq < b.seq)
}

// push adds h and reports whether it is now the earliest.
func (q *heldQueue) push(h held) bool {
	h.seq = q.seq
	q.seq++
	q.bytes += h.n
	q.items = append(q.items, h)
	i := len(q.items) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !q.less(i, p) {
			break
		}
		q.items[i], q.items[p] = q.items[p], q.items[i]
		i = p
	}
	return i == 0
}

// pop removes and returns the earliest copy; the queue must not be empty.
func (q *heldQueue) pop() held {
	h := q.items[0]
	last := len(q.items) - 1
	q.items[0] = q.items[last]
	q.items[last] = held{} // drop the buffer reference
	q.items = q.items[:last]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < last && q.less(l, m) {
			m = l
		}
		if r < last && q.less(r, m) {
			m = r
		}
		if m == i {
			break
		}
		q.items[i], q.items[m] = q.items[m], q.items[i]
		i = m
	}
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
