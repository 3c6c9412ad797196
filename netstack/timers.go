package netstack

import "github.com/tapstack/tapstack/mono"

// timerHeap holds the next deadline of every object in the stack that has one
// (a TCP connection, the ARP cache, the reassembler). Each owner keeps a
// *deadline; the heap orders them. Ties fire in arming order, so a run on the
// virtual clock replays exactly.
type timerHeap struct {
	items []*deadline
	seq   uint64
}

// deadline is one owner's entry in the timerHeap.
type deadline struct {
	at    mono.Time
	seq   uint64 // arming order, breaks ties deterministically
	index int    // position in the heap, -1 when not armed
	fire  func(now mono.Time)
}

func newDeadline(fire func(now mono.Time)) *deadline {
	return &deadline{index: -1, fire: fire}
}

func (h *timerHeap) less(i, j int) bool {
	a, b := h.items[i], h.items[j]
	if a.at != b.at {
		return a.at < b.at
	}
	return a.seq < b.seq
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

// set arms d for at, or disarms it when at is mono.Never.
func (h *timerHeap) set(d *deadline, at mono.Time) {
	if at == mono.Never {
		h.stop(d)
		return
	}
	if d.index >= 0 && d.at == at {
		return
	}
	h.seq++
	d.at, d.seq = at, h.seq
	if d.index < 0 {
		d.index = len(h.items)
		h.items = append(h.items, d)
		h.up(d.index)
		return
	}
	h.down(d.index)
	h.up(d.index)
}

// stop disarms d.
func (h *timerHeap) stop(d *deadline) {
	i := d.index
	if i < 0 {
		return
	}
	last := len(h.items) - 1
	if i != last {
		h.swap(i, last)
	}
	h.items[last] = nil
	h.items = h.items[:last]
	d.index = -1
	if i != last {
		h.down(i)
		h.up(i)
	}
}

// next returns the earliest deadline, or mono.Never.
func (h *timerHeap) next() mono.Time {
	if len(h.items) == 0 {
		return mono.Never
	}
	return h.items[0].at
}

// fire runs, in order, every deadline due at or before now. A handler may
// re-arm its own or other deadlines; ones armed for now or earlier fire in
// the same call.
func (h *timerHeap) fire(now mono.Time) {
	for len(h.items) > 0 && h.items[0].at <= now {
		d := h.items[0]
		h.stop(d)
		d.fire(now)
	}
}
