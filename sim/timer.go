package sim

import (
	"github.com/tapstack/tapstack/internal/heapq"
	"github.com/tapstack/tapstack/mono"
)

// Timer is a callback scheduled on the world's clock (World.At). Timers due
// at the same instant fire in the order they were armed.
type Timer struct {
	w     *World
	index int // position in the heap, -1 when not armed
	fire  func()
}

// Stop disarms t; it reports whether t was armed.
func (t *Timer) Stop() bool { return t.w.timers.q.Remove(&t.index) }

// Reset re-arms t for at (mono.Never disarms it).
func (t *Timer) Reset(at mono.Time) { t.w.timers.set(t, at) }

// When returns the instant t is armed for, or mono.Never.
func (t *Timer) When() mono.Time { return t.w.timers.q.When(&t.index) }

// timerHeap is a min-heap of armed timers by (instant, arming order).
// Indexed, so a timer moves or stops in O(log n) and a stopped one leaves
// nothing behind to wake the clock for.
type timerHeap struct {
	q heapq.Queue[*Timer]
}

// set arms t for at, behind the timers already armed for at, even if t was.
func (h *timerHeap) set(t *Timer, at mono.Time) { h.q.Set(&t.index, at, t) }

func (h *timerHeap) next() mono.Time { return h.q.Next() }

// pop disarms and returns the earliest timer; the heap must not be empty.
func (h *timerHeap) pop() *Timer { return h.q.Pop() }
