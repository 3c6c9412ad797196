package netstack

import (
	"cmp"
	"fmt"
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
	// The model: each deadline's instant and arming order. Re-arming for
	// the instant it has keeps its order.
	at := make([]mono.Time, len(ds))
	order := make([]int, len(ds))
	armed := 0
	set := func(i int, t mono.Time) {
		if at[i] != t {
			armed++
			at[i], order[i] = t, armed
		}
		h.set(ds[i], t)
	}
	for i := range ds {
		ds[i] = newDeadline(func(mono.Time) { fired = append(fired, i) })
		at[i] = mono.Never
		set(i, mono.Time(r.IntN(50)))
	}
	// Re-arm some (often for the instant they have) and stop others, as
	// owners do.
	for i := 0; i < len(ds); i += 3 {
		if i%2 == 0 {
			set(i, at[i])
		} else {
			set(i, mono.Time(r.IntN(50)))
		}
	}
	for i := 1; i < len(ds); i += 7 {
		h.stop(ds[i])
		at[i] = mono.Never
	}
	var want []int
	for i := range ds {
		if got := h.when(ds[i]); got != at[i] {
			t.Fatalf("deadline %d armed for %v, want %v", i, got, at[i])
		}
		if at[i] != mono.Never {
			want = append(want, i)
		}
	}
	slices.SortFunc(want, func(a, b int) int { return cmp.Or(cmp.Compare(at[a], at[b]), cmp.Compare(order[a], order[b])) })
	h.fire(mono.Time(1000))
	if !slices.Equal(fired, want) {
		t.Fatalf("fired %v\nwant  %v", fired, want)
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
	if h.next() != mono.Never || d.index != -1 || h.when(d) != mono.Never {
		t.Fatal("Never did not disarm")
	}
}

// BenchmarkTimerHeap re-arms one of n armed deadlines per step, as a
// connection restarting its retransmission timer does, and fires what is
// due; the handlers re-arm themselves.
func BenchmarkTimerHeap(b *testing.B) {
	for _, n := range []int{16, 1024} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			var h timerHeap
			var off [4096]mono.Time
			r := rand.New(rand.NewPCG(1, 2))
			for i := range off {
				off[i] = mono.Time(1 + r.IntN(2*n))
			}
			k := 0
			step := func() mono.Time { k++; return off[k%len(off)] }
			ds := make([]*deadline, n)
			for i := range ds {
				ds[i] = newDeadline(func(now mono.Time) { h.set(ds[i], now+step()) })
				h.set(ds[i], step())
			}
			var now mono.Time
			b.ReportAllocs()
			for b.Loop() {
				h.set(ds[k%n], now+step())
				now++
				h.fire(now)
			}
		})
	}
}
