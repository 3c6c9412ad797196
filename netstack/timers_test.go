package netstack

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/tapstack/tapstack/mono"
)

func TestTimerHeapFiresInOrder(t *testing.T) {
	var h timerHeap
	var fired []int
	r := rand.New(rand.NewPCG(1, 2))
	ds := make([]*deadline, 200)
	want := make([]mono.Time, 0, len(ds))
	for i := range ds {
		i := i
		ds[i] = newDeadline(func(mono.Time) { fired = append(fired, i) })
		at := mono.Time(r.IntN(50))
		h.set(ds[i], at)
	}
	// Re-arm some and stop others, as owners do.
	for i := 0; i < len(ds); i += 3 {
		h.set(ds[i], mono.Time(r.IntN(50)))
	}
	for i := 1; i < len(ds); i += 7 {
		h.stop(ds[i])
	}
	for _, d := range ds {
		if d.index >= 0 {
			want = append(want, d.at)
		}
	}
	slices.Sort(want)
	h.fire(mono.Time(1000))
	if len(fired) != len(want) {
		t.Fatalf("fired %d, want %d", len(fired), len(want))
	}
	for k := 1; k < len(fired); k++ {
		a, b := ds[fired[k-1]], ds[fired[k]]
		if a.at > b.at || (a.at == b.at && a.seq > b.seq) {
			t.Fatalf("fired out of order at %d: %v/%d then %v/%d", k, a.at, a.seq, b.at, b.seq)
		}
	}
	if h.next() != mono.Never {
		t.Fatalf("heap not empty after firing all: next %v", h.next())
	}
}

func TestTimerHeapRearmFromHandler(t *testing.T) {
	var h timerHeap
	count := 0
	var d *deadline
	d = newDeadline(func(now mono.Time) {
		count++
		if count < 3 {
			h.set(d, now+10)
		}
	})
	h.set(d, 10)
	h.fire(15)
	if count != 1 || h.next() != 25 {
		t.Fatalf("after 15: count %d next %v", count, h.next())
	}
	h.fire(100)
	if count != 2 || h.next() != 110 {
		t.Fatalf("after 100: count %d next %v, want re-armed at 110", count, h.next())
	}
	h.set(d, mono.Never)
	if h.next() != mono.Never || d.index != -1 {
		t.Fatal("Never did not disarm")
	}
}
