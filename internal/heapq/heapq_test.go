package heapq

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/tapstack/tapstack/mono"
)

// check fails t unless every entry is below its parent and every tracked
// value's position is its index.
func check[T any](t *testing.T, q *Queue[T]) {
	t.Helper()
	for i := range q.items {
		if p := q.items[i].pos; p != nil && *p != i {
			t.Fatalf("entry %d records position %d", i, *p)
		}
		if i > 0 && q.Less(i, (i-1)/2) {
			t.Fatalf("entry %d leaves before its parent", i)
		}
	}
}

type item struct {
	id    int
	index int
}

// ref is the model: what is queued, by (at, order of queueing).
type ref struct {
	at  mono.Time
	seq int
	id  int
}

func TestQueueMatchesModel(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var q Queue[*item]
	items := make([]*item, 64)
	for i := range items {
		items[i] = &item{id: i, index: -1}
	}
	var model []ref
	seq, nextID := 0, len(items)
	drop := func(id int) {
		model = slices.DeleteFunc(model, func(x ref) bool { return x.id == id })
	}
	for step := range 10000 {
		at := mono.Time(r.IntN(40)) // few instants: many ties
		switch op := r.IntN(10); {
		case op < 2: // untracked
			first := q.Push(at, &item{id: nextID, index: -1})
			seq++
			model = append(model, ref{at, seq, nextID})
			nextID++
			if want := slices.MinFunc(model, cmpRef).id == nextID-1; first != want {
				t.Fatalf("step %d: Push reported first %v, want %v", step, first, want)
			}
		case op < 5: // arm or move a tracked one
			it := items[r.IntN(len(items))]
			q.Set(&it.index, at, it)
			drop(it.id)
			seq++
			model = append(model, ref{at, seq, it.id})
		case op < 6:
			it := items[r.IntN(len(items))]
			q.Set(&it.index, mono.Never, it)
			drop(it.id)
		case op < 7:
			it := items[r.IntN(len(items))]
			queued := slices.ContainsFunc(model, func(x ref) bool { return x.id == it.id })
			if got := q.Remove(&it.index); got != queued {
				t.Fatalf("step %d: Remove %d reported %v, want %v", step, it.id, got, queued)
			}
			drop(it.id)
		default:
			if len(model) == 0 {
				continue
			}
			want := slices.MinFunc(model, cmpRef)
			if q.Next() != want.at {
				t.Fatalf("step %d: Next %v, want %v", step, q.Next(), want.at)
			}
			if got := q.Pop(); got.id != want.id || got.index != -1 {
				t.Fatalf("step %d: Pop gave %d (index %d), want %d at %v", step, got.id, got.index, want.id, want.at)
			}
			drop(want.id)
		}
		check(t, &q)
		if q.Len() != len(model) {
			t.Fatalf("step %d: Len %d, model %d", step, q.Len(), len(model))
		}
		for _, it := range items {
			want := mono.Never
			if k := slices.IndexFunc(model, func(x ref) bool { return x.id == it.id }); k >= 0 {
				want = model[k].at
			}
			if got := q.When(&it.index); got != want {
				t.Fatalf("step %d: When(%d) %v, want %v", step, it.id, got, want)
			}
		}
	}
}

func cmpRef(a, b ref) int { return cmp.Or(cmp.Compare(a.at, b.at), cmp.Compare(a.seq, b.seq)) }

func TestTiesLeaveInQueueingOrder(t *testing.T) {
	var q Queue[int]
	for i := range 8 {
		q.Push(5, i)
	}
	q.Push(4, 100)
	got := []int{}
	for q.Len() > 0 {
		got = append(got, q.Pop())
	}
	if want := []int{100, 0, 1, 2, 3, 4, 5, 6, 7}; !slices.Equal(got, want) {
		t.Fatalf("order %v, want %v", got, want)
	}

	// Set moves a tracked value behind those already queued for its instant,
	// even when the instant is the one it had.
	a, b := &item{index: -1}, &item{index: -1}
	var tq Queue[*item]
	tq.Set(&a.index, 7, a)
	tq.Set(&b.index, 7, b)
	tq.Set(&a.index, 7, a)
	if x := tq.Pop(); x != b {
		t.Fatal("re-set value did not move behind its tie")
	}
	if tq.Pop() != a || a.index != -1 || b.index != -1 || tq.Next() != mono.Never {
		t.Fatal("queue not emptied, or positions left set")
	}
}

func TestPopDropsReferences(t *testing.T) {
	var q Queue[[]byte]
	for i := range 4 {
		q.Push(mono.Time(i), make([]byte, 1))
	}
	q.Pop()
	if tail := q.items[:len(q.items)+1]; tail[len(q.items)].v != nil {
		t.Fatal("vacated slot still holds the value")
	}
}

func TestSteadyStateAllocatesNothing(t *testing.T) {
	var q Queue[*item]
	var v Queue[[3]int]
	items := make([]*item, 100)
	for i := range items {
		items[i] = &item{id: i, index: -1}
		q.Set(&items[i].index, mono.Time(i), items[i])
		v.Push(mono.Time(i), [3]int{i})
	}
	k := 0
	allocs := testing.AllocsPerRun(1000, func() {
		k++
		it := q.Pop()
		q.Set(&it.index, mono.Time(k*7%300), it)
		q.Set(&items[k%100].index, mono.Time(k*13%300), items[k%100])
		x := v.Pop()
		v.Push(mono.Time(k*11%300), x)
	})
	if allocs != 0 {
		t.Fatalf("%v allocs per run", allocs)
	}
}

// BenchmarkTracked moves one of 256 tracked values and takes the earliest,
// which is queued again.
func BenchmarkTracked(b *testing.B) {
	const n = 256
	off := offsets(n)
	var q Queue[*item]
	items := make([]*item, n)
	k := 0
	for i := range items {
		items[i] = &item{id: i, index: -1}
		q.Set(&items[i].index, off[k%len(off)], items[i])
		k++
	}
	var now mono.Time
	b.ReportAllocs()
	for b.Loop() {
		it := items[k%n]
		q.Set(&it.index, now+off[k%len(off)], it)
		k++
		now = q.Next()
		it = q.Pop()
		q.Set(&it.index, now+off[k%len(off)], it)
		k++
	}
}

// BenchmarkValues takes the earliest of 256 frame-sized values and queues
// another.
func BenchmarkValues(b *testing.B) {
	type frame struct {
		at  mono.Time
		buf []byte
		n   int
	}
	const n = 256
	off := offsets(n)
	var q Queue[frame]
	k := 0
	buf := make([]byte, 64)
	for range n {
		at := off[k%len(off)]
		q.Push(at, frame{at: at, buf: buf, n: k})
		k++
	}
	var now mono.Time
	b.ReportAllocs()
	for b.Loop() {
		now = q.Next()
		f := q.Pop()
		f.at = now + off[k%len(off)]
		q.Push(f.at, f)
		k++
	}
}

func offsets(n int) []mono.Time {
	r := rand.New(rand.NewPCG(1, 2))
	off := make([]mono.Time, 4096)
	for i := range off {
		off[i] = mono.Time(1 + r.IntN(2*n))
	}
	return off
}
