// Package checksum owns the Internet checksum (RFC 1071) and its incremental
// update (RFC 1624), used by IPv4, ICMP, UDP and TCP.
//
// Sums here are the folded 16-bit ones'-complement sum, not yet complemented:
// a header's checksum field holds ^Sum(...). Sums compose, so a checksum over a
// pseudo-header, a header and a payload held in separate slices is
// Combine(Combine(pseudo, Sum(hdr, 0)), Sum(payload, 0)) — provided every slice
// but the last has even length (SumVec handles odd boundaries).
package checksum

import "encoding/binary"

// Sum returns the ones'-complement sum of b added to initial.
// An odd trailing byte is treated as padded with a zero byte.
func Sum(b []byte, initial uint16) uint16 {
	acc := uint64(initial)
	for len(b) >= 2 {
		acc += uint64(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		acc += uint64(b[0]) << 8
	}
	return Fold(acc)
}

// Fold reduces a 64-bit accumulator of 16-bit words to a 16-bit
// ones'-complement sum.
func Fold(acc uint64) uint16 {
	acc = (acc >> 32) + (acc & 0xffffffff)
	acc = (acc >> 32) + (acc & 0xffffffff)
	acc = (acc >> 16) + (acc & 0xffff)
	acc = (acc >> 16) + (acc & 0xffff)
	return uint16(acc)
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
		s := uint64(Sum(b, 0))
		if odd {
			// This element starts at an odd offset: its words are byte-swapped.
			s = (s>>8 | s<<8) & 0xffff
		}
		acc += s
		if len(b)%2 == 1 {
			odd = !odd
		}
	}
	return Fold(acc)
}

// PseudoHeaderV4 returns the sum of the IPv4 pseudo-header (RFC 793 §3.1,
// RFC 768): source, destination, protocol and upper-layer length.
func PseudoHeaderV4(src, dst [4]byte, proto uint8, length uint16) uint16 {
	acc := uint64(binary.BigEndian.Uint16(src[0:])) + uint64(binary.BigEndian.Uint16(src[2:])) +
		uint64(binary.BigEndian.Uint16(dst[0:])) + uint64(binary.BigEndian.Uint16(dst[2:])) +
		uint64(proto) + uint64(length)
	return Fold(acc)
}

// PseudoHeaderV6 returns the sum of the IPv6 pseudo-header (RFC 8200 §8.1).
func PseudoHeaderV6(src, dst [16]byte, proto uint8, length uint32) uint16 {
	acc := uint64(Sum(src[:], 0)) + uint64(Sum(dst[:], 0)) +
		uint64(length>>16) + uint64(length&0xffff) + uint64(proto)
	return Fold(acc)
}

// Update returns a header checksum field (the complemented value) after a
// 16-bit word covered by it changed from old to new (RFC 1624, eqn. 3).
func Update(field, old, new uint16) uint16 {
	return ^Combine(Combine(^field, ^old), new)
}
