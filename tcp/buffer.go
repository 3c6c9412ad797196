package tcp

import (
	"sync"

	"github.com/tapstack/tapstack/internal/bufpool"

	"github.com/tapstack/tapstack/tcp/seq"
)

// Buffers grow on demand in chunks from internal/bufpool and go back to it
// as soon as they are empty, so an idle connection holds no buffer memory
// at all, and a busy one reuses chunks without allocating.
func getChunk(n int) *[]byte { return bufpool.Get(n) }

func putChunk(b *[]byte) { bufpool.Put(b) }

// sendBuffer holds the data from SND.UNA on: unacknowledged, then unsent.
type sendBuffer struct{ ring }

// recvBuffer holds in-order data the user has not read.
type recvBuffer struct{ ring }

// oooQueue holds segments received beyond a hole, sorted by sequence
// number, each copied into its own chunk. It is bounded in segments and in
// bytes; what does not fit is dropped (the sender will retransmit it).
// A connection takes one from a pool when a segment arrives out of order
// and gives it back once the hole is filled, so connections receiving in
// order carry none; the SACK blocks to report describe queued data and
// live with it. A nil queue is empty.
type oooQueue struct {
	segs  []oooSeg
	bytes int // memory held

	sackRecent  [MaxSACKBlocks]SACKBlock // blocks to report, the latest arrival's first
	nSackRecent int
}

var oooQueues = sync.Pool{New: func() any { return new(oooQueue) }}

// takeOOO returns c's out-of-order queue, taking one from the pool if
// needed.
func (c *Conn) takeOOO() *oooQueue {
	if c.ooo == nil {
		c.ooo = oooQueues.Get().(*oooQueue)
	}
	return c.ooo
}

// releaseOOO drops what the queue holds and gives it back to the pool.
func (c *Conn) releaseOOO() {
	if q := c.ooo; q != nil {
		q.clear()
		q.nSackRecent = 0
		c.ooo = nil
		oooQueues.Put(q)
	}
}

type oooSeg struct {
	seq seq.Value
	b   *[]byte
	n   int
	fin bool
}

func (q *oooQueue) len() int {
	if q == nil {
		return 0
	}
	return len(q.segs)
}

// size returns the memory the queue holds.
func (q *oooQueue) size() int {
	if q == nil {
		return 0
	}
	return q.bytes
}

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
}

func (q *oooQueue) clear() {
	for len(q.segs) > 0 {
		q.popFront()
	}
}
