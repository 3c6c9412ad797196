// Package heapq is a min-heap of values ordered by an instant and then by
// the order they were queued in: values due at one instant leave first in,
// first out, so a run on a virtual clock replays exactly. It takes instants
// as values and never reads a clock.
//
// It is written out rather than built on container/heap so that nothing is
// boxed: once its array has grown, queueing and taking allocate nothing.
//
// A queued value may be tracked: its owner keeps an int that the queue keeps
// equal to the value's position (-1 when it is not queued), so that it can
// be moved or removed in O(log n).
package heapq

import (
	"iter"

	"github.com/tapstack/tapstack/mono"
)

// Queue is the heap. The zero value is an empty queue.
type Queue[T any] struct {
	items []entry[T]
	seq   uint64 // order of queueing: breaks ties of at
}

type entry[T any] struct {
	at  mono.Time
	seq uint64
	pos *int // a tracked value's position, kept by its owner; nil if untracked
	v   T
}

func (a *entry[T]) before(b *entry[T]) bool {
	return a.at < b.at || (a.at == b.at && a.seq < b.seq)
}

// Len returns the number of values queued.
func (q *Queue[T]) Len() int { return len(q.items) }

// Next returns the earliest instant queued, or mono.Never.
func (q *Queue[T]) Next() mono.Time {
	if len(q.items) == 0 {
		return mono.Never
	}
	return q.items[0].at
}

// Push queues v, untracked, for at and reports whether it is now the
// earliest.
func (q *Queue[T]) Push(at mono.Time, v T) bool {
	q.seq++
	q.items = append(q.items, entry[T]{})
	return q.up(len(q.items)-1, entry[T]{at: at, seq: q.seq, v: v}) == 0
}

// Pop removes and returns the earliest value; the queue must not be empty.
func (q *Queue[T]) Pop() T { return q.removeAt(0) }

// Set queues v for at and tracks its position in *pos, which must be -1 if
// v is not queued. If it is queued, it moves to at (and is replaced by v),
// after the values already queued for at. mono.Never removes it.
func (q *Queue[T]) Set(pos *int, at mono.Time, v T) {
	if at == mono.Never {
		q.Remove(pos)
		return
	}
	q.seq++
	e := entry[T]{at: at, seq: q.seq, pos: pos, v: v}
	if i := *pos; i >= 0 {
		q.place(i, e)
		return
	}
	q.items = append(q.items, entry[T]{})
	q.up(len(q.items)-1, e)
}

// Remove removes the tracked value at *pos, if queued, and reports whether
// it was.
func (q *Queue[T]) Remove(pos *int) bool {
	if *pos < 0 {
		return false
	}
	q.removeAt(*pos)
	return true
}

// When returns the instant the tracked value at *pos is queued for, or
// mono.Never.
func (q *Queue[T]) When(pos *int) mono.Time {
	if *pos < 0 {
		return mono.Never
	}
	return q.items[*pos].at
}

// All yields the queued values with their positions, in the heap's order,
// for checks of its invariant. The queue must not change meanwhile.
func (q *Queue[T]) All() iter.Seq2[int, T] {
	return func(yield func(int, T) bool) {
		for i := range q.items {
			if !yield(i, q.items[i].v) {
				return
			}
		}
	}
}

// Less reports whether the value at position i leaves before the one at j.
func (q *Queue[T]) Less(i, j int) bool { return q.items[i].before(&q.items[j]) }

func (q *Queue[T]) removeAt(i int) T {
	s := q.items
	e := &s[i]
	v, pos := e.v, e.pos
	last := len(s) - 1
	moved := s[last]
	s[last] = entry[T]{} // drop its references
	q.items = s[:last]
	if i < last {
		q.place(i, moved)
	}
	if pos != nil {
		*pos = -1
	}
	return v
}

// place puts e in the hole at i, or moves the hole up or down to where e
// belongs. Entries move into the hole one copy a level rather than a swap.
func (q *Queue[T]) place(i int, e entry[T]) {
	if i > 0 && e.before(&q.items[(i-1)/2]) {
		q.up(i, e)
	} else {
		q.down(i, e)
	}
}

// up moves the hole at i towards the root while e leaves before the hole's
// parent, puts e in it and returns where.
func (q *Queue[T]) up(i int, e entry[T]) int {
	s := q.items
	for i > 0 {
		p := (i - 1) / 2
		if !e.before(&s[p]) {
			break
		}
		put(s, i, &s[p])
		i = p
	}
	put(s, i, &e)
	return i
}

// down moves the hole at i away from the root while a child leaves before
// e, and puts e in it.
func (q *Queue[T]) down(i int, e entry[T]) {
	s := q.items
	for c := 2*i + 1; c < len(s); c = 2*i + 1 {
		if r := c + 1; r < len(s) && s[r].before(&s[c]) {
			c = r
		}
		if !s[c].before(&e) {
			break
		}
		put(s, i, &s[c])
		i = c
	}
	put(s, i, &e)
}

// put copies e to s[i] and, if it is tracked, tells its owner.
func put[T any](s []entry[T], i int, e *entry[T]) {
	s[i] = *e
	if e.pos != nil {
		*e.pos = i
	}
}
