// Package seq owns TCP sequence-number arithmetic (RFC 9293 §3.4).
//
// Sequence numbers live in a circular space of 2^32 values, so every
// operation here is modulo 2^32 and ordering is by the sign of the 32-bit
// difference, as Linux's before()/after() do: v is less than w when
// int32(v-w) < 0. That ordering is only meaningful for values less than 2^31
// apart; two values exactly 2^31 apart each compare less than the other.
// TCP keeps far less than 2^31 bytes in any window, so this never arises
// between values a connection compares.
//
// Value is a point in sequence space, Size a length in it; the types keep the
// two from being mixed up (Value + Value means nothing).
package seq

// Value is a sequence number: SEG.SEQ, SND.UNA, RCV.NXT and so on.
type Value uint32

// Size is a length in sequence space: SEG.LEN, SND.WND, bytes in flight.
type Size uint32

// LessThan reports whether v comes before w.
func (v Value) LessThan(w Value) bool { return int32(v-w) < 0 }

// LessThanEq reports whether v comes before w or equals it.
func (v Value) LessThanEq(w Value) bool { return int32(v-w) <= 0 }

// GreaterThan reports whether v comes after w.
func (v Value) GreaterThan(w Value) bool { return int32(v-w) > 0 }

// GreaterThanEq reports whether v comes after w or equals it.
func (v Value) GreaterThanEq(w Value) bool { return int32(v-w) >= 0 }

// InRange reports whether first <= v < end, the half-open range going forward
// from first to end. The range is empty when first == end.
func (v Value) InRange(first, end Value) bool { return v-first < end-first }

// InWindow reports whether first <= v < first+size, RFC 9293's acceptability
// test for one end of a segment (RCV.NXT =< SEG.SEQ < RCV.NXT+RCV.WND).
// The window is empty when size is 0.
func (v Value) InWindow(first Value, size Size) bool { return Size(v-first) < size }

// Add returns v advanced by s.
func (v Value) Add(s Size) Value { return v + Value(s) }

// Sub returns v moved back by s.
func (v Value) Sub(s Size) Value { return v - Value(s) }

// Size returns the length of the range from v up to end, that is end-v modulo
// 2^32: SND.UNA.Size(SND.NXT) is the number of octets in flight.
func (v Value) Size(end Value) Size { return Size(end - v) }

// Max returns whichever of a and b comes later.
func Max(a, b Value) Value {
	if a.LessThan(b) {
		return b
	}
	return a
}

// Min returns whichever of a and b comes earlier.
func Min(a, b Value) Value {
	if a.LessThan(b) {
		return a
	}
	return b
}
