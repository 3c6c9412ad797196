package netstack

import (
	"github.com/tapstack/tapstack/internal/heapq"
	"github.com/tapstack/tapstack/mono"
)

// timerHeap holds the next deadline of every object in the stack that has one
// (a TCP connection, the ARP cache, the reassembler). Each owner keeps a
// *deadline; the heap orders them. Ties fire in arming order, so a run on the
// virtual clock replays exactly.
type timerHeap struct {
	q heapq.Queue[*deadline]
}

// deadline is one owner's entry in the timerHeap.
type deadline struct {
	index int // position in the heap, -1 when not armed
	fire  func(now mono.Time)
}

func newDeadline(fire func(now mono.Time)) *deadline {
	return &deadline{index: -1, fire: fire}
}

// set arms d for at, or disarms it when at is mono.Never.
func (h *timerHeap) set(d *deadline, at mono.Time) {
	if at != mono.Never && h.q.When(&d.index) == at {
		return // armed for at already: it keeps its place among ties
	}
	h.q.Set(&d.index, at, d)
}

// stop disarms d.
func (h *timerHeap) stop(d *deadline) { h.q.Remove(&d.index) }

// when returns the instant d is armed for, or mono.Never.
func (h *timerHeap) when(d *deadline) mono.Time { return h.q.When(&d.index) }

// next returns the earliest deadline, or mono.Never.
func (h *timerHeap) next() mono.Time { return h.q.Next() }

// fire runs, in order, every deadline due at or before now. A handler may
// re-arm its own or other deadlines; ones armed for now or earlier fire in
// the same call.
func (h *timerHeap) fire(now mono.Time) {
	for h.q.Len() > 0 && h.q.Next() <= now {
		h.q.Pop().fire(now)
	}
}

// items and less let tests check the heap's invariant.
func (h *timerHeap) items(yield func(int, *deadline) bool) { h.q.All()(yield) }
func (h *timerHeap) less(i, j int) bool                    { return h.q.Less(i, j) }
