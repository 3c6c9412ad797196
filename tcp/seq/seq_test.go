package seq

import (
	"math"
	"math/rand/v2"
	"testing"
)

const maxV = Value(math.MaxUint32)

func TestCompare(t *testing.T) {
	tests := []struct {
		v, w                   Value
		lt, le, gt, ge, equals bool
	}{
		{v: 0, w: 0, le: true, ge: true, equals: true},
		{v: 1, w: 2, lt: true, le: true},
		{v: 2, w: 1, gt: true, ge: true},
		{v: maxV, w: maxV, le: true, ge: true, equals: true},
		// Wraparound: 2^32-1 comes just before 0.
		{v: maxV, w: 0, lt: true, le: true},
		{v: 0, w: maxV, gt: true, ge: true},
		{v: maxV - 9, w: 10, lt: true, le: true},
		{v: 10, w: maxV - 9, gt: true, ge: true},
		// The largest distance that still orders: 2^31-1.
		{v: 0, w: 1<<31 - 1, lt: true, le: true},
		{v: 1<<31 - 1, w: 0, gt: true, ge: true},
		{v: 1 << 31, w: maxV, lt: true, le: true},
		// Exactly 2^31 apart: each is "less" than the other (as Linux's before()).
		{v: 0, w: 1 << 31, lt: true, le: true},
		{v: 1 << 31, w: 0, lt: true, le: true},
		// 2^31+1 ahead is behind.
		{v: 0, w: 1<<31 + 1, gt: true, ge: true},
	}
	for _, tt := range tests {
		if got := tt.v.LessThan(tt.w); got != tt.lt {
			t.Errorf("%d.LessThan(%d) = %v, want %v", tt.v, tt.w, got, tt.lt)
		}
		if got := tt.v.LessThanEq(tt.w); got != tt.le {
			t.Errorf("%d.LessThanEq(%d) = %v, want %v", tt.v, tt.w, got, tt.le)
		}
		if got := tt.v.GreaterThan(tt.w); got != tt.gt {
			t.Errorf("%d.GreaterThan(%d) = %v, want %v", tt.v, tt.w, got, tt.gt)
		}
		if got := tt.v.GreaterThanEq(tt.w); got != tt.ge {
			t.Errorf("%d.GreaterThanEq(%d) = %v, want %v", tt.v, tt.w, got, tt.ge)
		}
		if got := tt.v == tt.w; got != tt.equals {
			t.Errorf("%d == %d is %v, want %v", tt.v, tt.w, got, tt.equals)
		}
	}
}

func TestInRange(t *testing.T) {
	tests := []struct {
		v, first, end Value
		want          bool
	}{
		{v: 5, first: 5, end: 10, want: true},
		{v: 9, first: 5, end: 10, want: true},
		{v: 10, first: 5, end: 10, want: false}, // end is exclusive
		{v: 4, first: 5, end: 10, want: false},
		{v: 5, first: 5, end: 5, want: false}, // empty range
		// Ranges crossing 2^32.
		{v: maxV - 1, first: maxV - 1, end: 3, want: true},
		{v: maxV, first: maxV - 1, end: 3, want: true},
		{v: 0, first: maxV - 1, end: 3, want: true},
		{v: 2, first: maxV - 1, end: 3, want: true},
		{v: 3, first: maxV - 1, end: 3, want: false},
		{v: maxV - 2, first: maxV - 1, end: 3, want: false},
		// A range of almost the whole space.
		{v: 1 << 31, first: 1, end: 0, want: true},
		{v: 0, first: 1, end: 0, want: false},
	}
	for _, tt := range tests {
		if got := tt.v.InRange(tt.first, tt.end); got != tt.want {
			t.Errorf("%d.InRange(%d, %d) = %v, want %v", tt.v, tt.first, tt.end, got, tt.want)
		}
	}
}

func TestInWindow(t *testing.T) {
	tests := []struct {
		v, first Value
		size     Size
		want     bool
	}{
		{v: 100, first: 100, size: 1, want: true},
		{v: 101, first: 100, size: 1, want: false},
		{v: 99, first: 100, size: 10, want: false},
		{v: 109, first: 100, size: 10, want: true},
		{v: 110, first: 100, size: 10, want: false},
		{v: 100, first: 100, size: 0, want: false}, // a zero window holds nothing
		// Windows that wrap.
		{v: maxV, first: maxV - 5, size: 65535, want: true},
		{v: 0, first: maxV - 5, size: 65535, want: true},
		{v: 65528, first: maxV - 5, size: 65535, want: true},
		{v: 65529, first: maxV - 5, size: 65535, want: false},
		{v: maxV - 6, first: maxV - 5, size: 65535, want: false},
		// The largest scaled window (65535 << 14).
		{v: 65535<<14 - 1, first: 0, size: 65535 << 14, want: true},
		{v: 65535 << 14, first: 0, size: 65535 << 14, want: false},
	}
	for _, tt := range tests {
		if got := tt.v.InWindow(tt.first, tt.size); got != tt.want {
			t.Errorf("%d.InWindow(%d, %d) = %v, want %v", tt.v, tt.first, tt.size, got, tt.want)
		}
		// InWindow(first, size) is InRange(first, first+size) for size < 2^32.
		if got := tt.v.InRange(tt.first, tt.first.Add(tt.size)); got != tt.want {
			t.Errorf("%d.InRange(%d, %d+%d) = %v, want %v", tt.v, tt.first, tt.first, tt.size, got, tt.want)
		}
	}
}

func TestArithmetic(t *testing.T) {
	tests := []struct {
		v    Value
		s    Size
		add  Value
		sub  Value
		name string
	}{
		{name: "plain", v: 1000, s: 10, add: 1010, sub: 990},
		{name: "add wraps", v: maxV - 1, s: 3, add: 1, sub: maxV - 4},
		{name: "sub wraps", v: 2, s: 5, add: 7, sub: maxV - 2},
		{name: "zero", v: 7, s: 0, add: 7, sub: 7},
		{name: "full turn minus one", v: 5, s: Size(math.MaxUint32), add: 4, sub: 6},
	}
	for _, tt := range tests {
		if got := tt.v.Add(tt.s); got != tt.add {
			t.Errorf("%s: %d.Add(%d) = %d, want %d", tt.name, tt.v, tt.s, got, tt.add)
		}
		if got := tt.v.Sub(tt.s); got != tt.sub {
			t.Errorf("%s: %d.Sub(%d) = %d, want %d", tt.name, tt.v, tt.s, got, tt.sub)
		}
		if got := tt.v.Size(tt.add); got != tt.s {
			t.Errorf("%s: %d.Size(%d) = %d, want %d", tt.name, tt.v, tt.add, got, tt.s)
		}
		if got := tt.sub.Size(tt.v); got != tt.s {
			t.Errorf("%s: %d.Size(%d) = %d, want %d", tt.name, tt.sub, tt.v, got, tt.s)
		}
	}
}

func TestMaxMin(t *testing.T) {
	tests := []struct{ a, b, max, min Value }{
		{a: 1, b: 2, max: 2, min: 1},
		{a: 2, b: 1, max: 2, min: 1},
		{a: 3, b: 3, max: 3, min: 3},
		{a: maxV, b: 0, max: 0, min: maxV}, // 0 follows 2^32-1
		{a: 0, b: maxV, max: 0, min: maxV},
		{a: maxV - 100, b: 100, max: 100, min: maxV - 100},
	}
	for _, tt := range tests {
		if got := Max(tt.a, tt.b); got != tt.max {
			t.Errorf("Max(%d, %d) = %d, want %d", tt.a, tt.b, got, tt.max)
		}
		if got := Min(tt.a, tt.b); got != tt.min {
			t.Errorf("Min(%d, %d) = %d, want %d", tt.a, tt.b, got, tt.min)
		}
	}
}

// TestAgainstUnwrapped checks the modular operations against plain int64
// arithmetic on unwrapped positions: any two positions less than 2^31 apart,
// taken modulo 2^32 from any base, must order and measure as the integers do.
func TestAgainstUnwrapped(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const span = 1<<31 - 1
	for i := 0; i < 100000; i++ {
		base := int64(r.Uint32())
		// Positions near the wrap point are the interesting ones: bias to them.
		if i%2 == 0 {
			base = math.MaxUint32 - int64(r.IntN(1000))
		}
		a := base + r.Int64N(span)
		b := a + r.Int64N(2*span+1) - span // |b-a| <= 2^31-1
		va, vb := Value(uint32(a)), Value(uint32(b))
		if got, want := va.LessThan(vb), a < b; got != want {
			t.Fatalf("%d.LessThan(%d) = %v; unwrapped %d < %d is %v", va, vb, got, a, b, want)
		}
		if got, want := va.LessThanEq(vb), a <= b; got != want {
			t.Fatalf("%d.LessThanEq(%d) = %v, want %v", va, vb, got, want)
		}
		if got, want := va.GreaterThan(vb), a > b; got != want {
			t.Fatalf("%d.GreaterThan(%d) = %v, want %v", va, vb, got, want)
		}
		if got, want := va.GreaterThanEq(vb), a >= b; got != want {
			t.Fatalf("%d.GreaterThanEq(%d) = %v, want %v", va, vb, got, want)
		}
		if a <= b {
			if got := va.Size(vb); int64(got) != b-a {
				t.Fatalf("%d.Size(%d) = %d, want %d", va, vb, got, b-a)
			}
			if got := va.Add(Size(b - a)); got != vb {
				t.Fatalf("%d.Add(%d) = %d, want %d", va, b-a, got, vb)
			}
			if got := vb.Sub(Size(b - a)); got != va {
				t.Fatalf("%d.Sub(%d) = %d, want %d", vb, b-a, got, va)
			}
			// A point in [a, b].
			c := a + r.Int64N(b-a+1)
			vc := Value(uint32(c))
			if got, want := vc.InRange(va, vb), c < b; got != want {
				t.Fatalf("%d.InRange(%d, %d) = %v, want %v", vc, va, vb, got, want)
			}
			if got, want := vc.InWindow(va, Size(b-a)), c < b; got != want {
				t.Fatalf("%d.InWindow(%d, %d) = %v, want %v", vc, va, b-a, got, want)
			}
			// A point before a is outside.
			vd := va.Sub(Size(1 + r.Int64N(span)))
			if vd.InRange(va, vb) || vd.InWindow(va, Size(b-a)) {
				t.Fatalf("%d is in [%d, %d)", vd, va, vb)
			}
		}
	}
}
