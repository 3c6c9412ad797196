// Package checksum owns the Internet checksum (RFC 1071) and its incremental
// update (RFC 1624), used by IPv4, ICMP, UDP and TCP.
//
// Sums here are the folded 16-bit ones'-complement sum, not yet complemented:
// a header's checksum field holds ^Sum(...) (Checksum does both). Sums
// compose, so a checksum over a pseudo-header, a header and a payload held in
// separate slices is
// Combine(Combine(pseudo, Sum(hdr, 0)), Sum(payload, 0)) — provided every slice
// but the last has even length (SumVec handles odd boundaries).
//
// A sum is 0 only when everything summed is zero; otherwise it is in
// 1..0xffff, 0xffff standing for the ones'-complement negative zero. So a
// received header or segment whose checksum is right sums to 0xffff.
//
// Every function takes slices at any address and of any length, never
// allocates, and has no state: safe for concurrent use. Sum adds 64-bit words
// with add-with-carry in portable Go; on amd64 CPUs with AVX2, inputs of 128
// bytes and more go to a vector kernel instead (build tag purego turns it
// off). Both give identical results.
package checksum

import (
	"encoding/binary"
	"math/bits"
)

// Sum returns the ones'-complement sum of b added to initial.
// An odd trailing byte is treated as padded with a zero byte.
func Sum(b []byte, initial uint16) uint16 {
	return sum(b, initial)
}

// Checksum returns the value for a checksum field covering b: the complement
// of Sum(b, initial), where initial is typically a pseudo-header sum and the
// field's own bytes in b are zero. (UDP, RFC 768, sends a computed 0x0000 as
// 0xffff; that is the caller's business.)
func Checksum(b []byte, initial uint16) uint16 {
	return ^Sum(b, initial)
}

// Fold reduces a 64-bit accumulator of 16-bit words to a 16-bit
// ones'-complement sum.
func Fold(acc uint64) uint16 {
	// Adding a value to itself rotated by half its width leaves hi+lo plus
	// the carry out of lo+hi, an end-around-carry add, in the top half.
	acc = (acc + bits.RotateLeft64(acc, 32)) >> 32
	x := uint32(acc)
	return uint16((x + bits.RotateLeft32(x, 16)) >> 16)
}

// Combine adds two ones'-complement sums.
func Combine(a, b uint16) uint16 {
	s := uint32(a) + uint32(b)
	return uint16(s + s>>16)
}

// SumVec returns the ones'-complement sum of the concatenation of bufs added
// to initial; elements may have any length, odd ones included.
func SumVec(bufs [][]byte, initial uint16) uint16 {
	acc := uint64(initial)
	odd := false // an odd number of bytes has been summed so far
	for _, b := range bufs {
		if len(b) == 0 {
			continue
		}
		s := Sum(b, 0)
		if odd {
			// This element starts at an odd offset: its words are byte-swapped.
			s = bits.ReverseBytes16(s)
		}
		acc += uint64(s)
		if len(b)%2 == 1 {
			odd = !odd
		}
	}
	return Fold(acc)
}

// PseudoHeaderV4 returns the sum of the IPv4 pseudo-header (RFC 793 §3.1,
// RFC 768): source, destination, protocol and upper-layer length.
func PseudoHeaderV4(src, dst [4]byte, proto uint8, length uint16) uint16 {
	acc := uint64(binary.BigEndian.Uint32(src[:])) + uint64(binary.BigEndian.Uint32(dst[:])) +
		uint64(proto) + uint64(length)
	return Fold(acc)
}

// PseudoHeaderV6 returns the sum of the IPv6 pseudo-header (RFC 8200 §8.1):
// source, destination, 32-bit upper-layer length and next header.
func PseudoHeaderV6(src, dst [16]byte, proto uint8, length uint32) uint16 {
	// Four 64-bit big-endian words with end-around carry; length and proto
	// are far below 2^63, so their additions cannot carry out twice.
	acc, c := bits.Add64(binary.BigEndian.Uint64(src[0:]), binary.BigEndian.Uint64(src[8:]), 0)
	acc, c = bits.Add64(acc, binary.BigEndian.Uint64(dst[0:]), c)
	acc, c = bits.Add64(acc, binary.BigEndian.Uint64(dst[8:]), c)
	acc, c = bits.Add64(acc, uint64(length)+uint64(proto), c)
	return Fold(acc + c)
}

// Update returns a header checksum field (the complemented value) after a
// 16-bit word covered by it changed from old to new (RFC 1624, eqn. 3).
//
// It matches recomputing the checksum except where the covered data becomes
// all zero: recomputation then gives 0xffff, Update 0x0000 (the two zeros).
func Update(field, old, new uint16) uint16 {
	return ^Combine(Combine(^field, ^old), new)
}

// Update32 is Update for a 32-bit field made of two 16-bit words at an even
// offset, such as an IPv4 address or a TCP sequence number.
func Update32(field uint16, old, new uint32) uint16 {
	s := Combine(Combine(^field, ^uint16(old>>16)), ^uint16(old))
	return ^Combine(Combine(s, uint16(new>>16)), uint16(new))
}
