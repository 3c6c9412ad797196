package sim

import "github.com/tapstack/tapstack/mono"

// Timer is a callback scheduled on the world's clock (World.At). Timers due
// at the same instant fire in the order they were armed.
type Timer struct {
	w     *World
	at    mono.Time
	seq   uint64 // arming order: breaks ties
	index int    // position in the heap, -1 when not armed
	fire  func()
}

// Stop disarms t; it reports whether t was armed.
func (t *Timer) Stop() bool {
	if t.index < 0 {
		return false
	}
	t.w.timers.remove(t)
	return true
}

// Reset re-arms t for at (mono.Never disarms it).
func (t *Timer) Reset(at mono.Time) { t.w.timers.set(t, at) }

// When returns the instant t is armed for, or mono.Never.
func (t *Timer) When() mono.Time {
	if t.index < 0 {
		return mono.Never
	}
	return t.at
}

// timerHeap is a min-heap of armed timers by (at, seq). Indexed, so a timer
// moves or stops in O(log n) and a stopped one leaves nothing behind to
// wake the clock for.
type timerHeap struct {
	items []*Timer
	seq   uint64
}

func (h *timerHeap) less(i, j int) bool {
	a, b := h.items[i], h.items[j]
	return a.at < b.at || (a.at == b.at && a.seq < b.seq)
}

func (h *timerHeap) swap(i, j int) {
	h.items[i], h.items[j] = h.items[j], h.items[i]
	h.items[i].index = i
	h.items[j].index = j
}

func (h *timerHeap) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !h.less(i, p) {
			return
		}
		h.swap(i, p)
		i = p
	}
}

func (h *timerHeap) down(i int) {
	n := len(h.items)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && h.less(r, l) {
			m = r
		}
		if !h.less(m, i) {
			return
		}
		h.swap(i, m)
		i = m
	}
}

func (h *timerHeap) set(t *Timer, at mono.Time) {
	if at == mono.Never {
		h.remove(t)
		return
	}
	h.seq++
	t.at, t.seq = at, h.seq
	if t.index < 0 {
		t.index = len(h.items)
		h.items = append(h.items, t)
		h.up(t.index)
		return
	}
	h.down(t.index)
	h.up(t.index)
}

func (h *timerHeap) remove(t *Timer) {
	i := t.index
	if i < 0 {
		return
	}
	last := len(h.items) - 1
	if i != last {
		h.swap(i, last)
	}
	h.items[last] = nil
	h.items = h.items[:last]
	t.index = -1
	if i != last {
		h.down(i)
		h.up(i)
	}
}

func (h *timerHeap) next() mono.Time {
	if len(h.items) == 0 {
		return mono.Never
	}
	return h.items[0].at
}

// pop disarms and returns the earliest timer; the heap must not be empty.
func (h *timerHeap) pop() *Timer {
	t := h.items[0]
	h.remove(t)
	return t
}
