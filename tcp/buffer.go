package tcp

import (
	"sort"
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
// It must hold a window's worth: a window of thousands of segments that
// loses one holds the rest here until the retransmission arrives, so
// finding a segment's place is a binary search and the front is taken
// without moving the rest.
// A connection takes one from a pool when a segment arrives out of order
// and gives it back once the hole is filled, so connections receiving in
// order carry none; the SACK blocks to report describe queued data and
// live with it. A nil queue is empty.
type oooQueue struct {
	all   []oooSeg // the queue is all[head:]
	head  int
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

// dataEnd is where the segment's data ends.
func (s *oooSeg) dataEnd() seq.Value { return s.seq.Add(seq.Size(s.n)) }

// end is where the segment's sequence space ends, its FIN counted.
func (s *oooSeg) end() seq.Value {
	e := s.dataEnd()
	if s.fin {
		e = e.Add(1)
	}
	return e
}

func (q *oooQueue) len() int {
	if q == nil {
		return 0
	}
	return len(q.all) - q.head
}

// segs returns the queued segments, in order.
func (q *oooQueue) segs() []oooSeg { return q.all[q.head:] }

// size returns the memory the queue holds.
func (q *oooQueue) size() int {
	if q == nil {
		return 0
	}
	return q.bytes
}

// insert queues [at, at+len(p)) and reports whether it was kept, and if not
// whether it was a duplicate: wholly covered by the nearest segment queued
// at or before it. (One inside a longer segment further back is kept:
// segments may overlap, and taking them in order trims what was already
// taken.) A segment that is not a duplicate and is not kept did not fit
// the bounds. overlap is the first run of its bytes already held, for a
// D-SACK block, if any.
func (q *oooQueue) insert(at seq.Value, p []byte, fin bool, maxSegs, maxBytes int) (kept, dup bool, overlap SACKBlock) {
	end := at.Add(seq.Size(len(p)))
	segs := q.segs()
	// i: the first segment starting after at; arrivals usually go last.
	i := len(segs)
	if i > 0 && !segs[i-1].seq.LessThanEq(at) {
		i = sort.Search(len(segs), func(k int) bool { return segs[k].seq.GreaterThan(at) })
	}
	if i > 0 {
		s := &segs[i-1]
		if s.dataEnd().GreaterThanEq(end) && (s.fin || !fin) && len(p) > 0 {
			return false, true, SACKBlock{}
		}
		if s.dataEnd().GreaterThan(at) {
			overlap = SACKBlock{at, seq.Min(s.dataEnd(), end)}
		}
	}
	if overlap == (SACKBlock{}) && i < len(segs) && segs[i].seq.LessThan(end) {
		overlap = SACKBlock{segs[i].seq, seq.Min(segs[i].dataEnd(), end)}
	}
	if len(segs) >= maxSegs {
		return false, false, SACKBlock{}
	}
	var b *[]byte
	if len(p) > 0 {
		b = getChunk(len(p))
		if q.bytes+len(*b) > maxBytes {
			putChunk(b)
			return false, false, SACKBlock{}
		}
		copy(*b, p)
		q.bytes += len(*b)
	}
	if q.head > 0 && len(q.all) == cap(q.all) {
		// Reuse the room taken segments left at the front.
		n := copy(q.all, q.all[q.head:])
		clear(q.all[n:])
		q.all, q.head = q.all[:n], 0
	}
	i += q.head
	q.all = append(q.all, oooSeg{})
	copy(q.all[i+1:], q.all[i:])
	q.all[i] = oooSeg{seq: at, b: b, n: len(p), fin: fin}
	return true, false, overlap
}

func (q *oooQueue) popFront() {
	s := &q.all[q.head]
	if s.b != nil {
		q.bytes -= len(*s.b)
		putChunk(s.b)
	}
	*s = oooSeg{}
	q.head++
	if q.head == len(q.all) {
		q.all, q.head = q.all[:0], 0
	}
}

func (q *oooQueue) clear() {
	for q.len() > 0 {
		q.popFront()
	}
}
