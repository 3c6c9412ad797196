package checksum

import (
	"encoding/binary"
	"math/bits"
)

// sumGeneric is Sum in portable Go, without the vector kernel.
func sumGeneric(b []byte, initial uint16) uint16 { return sumGo(b, initial, false) }

// sumGo computes Sum. With bulk set (and only where useBulk allows it), long
// inputs first go through the architecture's sumBulk kernel.
//
// It adds the buffer as little-endian 64-bit words with end-around carry and
// swaps the folded result to network order at the end: the ones'-complement
// sum is byte-order independent (RFC 1071 §2(B)), and swapping the bytes of a
// folded sum is the same as having summed big-endian words. Every load goes
// through encoding/binary, so any alignment is fine.
func sumGo(b []byte, initial uint16, bulk bool) uint16 {
	acc := uint64(bits.ReverseBytes16(initial))
	if bulk && len(b) >= bulkMin {
		a, n := sumBulk(b)
		acc += a // both below 2^62
		b = b[n:]
	}
	// One add-with-carry chain per 64 bytes: bits.Add64 with the carry passed
	// straight on compiles to ADC. Each block starts a fresh chain and parks its
	// carry out in carries, so the loop-carried dependency is the eight adds
	// alone, not a carry moved through a register as well.
	var carries, c uint64
	i := 0
	for ; len(b)-i >= 64; i += 64 {
		w := b[i : i+64 : i+64] // full slice expression: no end-of-array masking
		acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(w[0:]), 0)
		acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(w[8:]), c)
		acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(w[16:]), c)
		acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(w[24:]), c)
		acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(w[32:]), c)
		acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(w[40:]), c)
		acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(w[48:]), c)
		acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(w[56:]), c)
		carries += c
	}
	// Up to seven whole words are left. Adding their 32-bit halves into a
	// plain 64-bit sum needs no carry chain (2^32 ≡ 1 modulo 0xffff).
	var halves uint64
	for ; len(b)-i >= 8; i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		halves += x&0xffffffff + x>>32
	}
	// The last 0..7 bytes make one zero-padded word t. Their first byte is at
	// an even offset, so it is t's low byte.
	var t uint64
	if n := len(b); n >= 8 {
		// Reload the 8 bytes ending the buffer and shift out those already
		// summed (all of them, a shift by 64, when nothing is left).
		t = binary.LittleEndian.Uint64(b[n-8:]) >> (64 - 8*uint(n-i))
	} else {
		// Fewer than 8 bytes in all: i is 0.
		if n >= 4 {
			t = uint64(binary.LittleEndian.Uint32(b))
		}
		if n&2 != 0 {
			t |= uint64(binary.LittleEndian.Uint16(b[n&4:])) << (8 * (n & 4))
		}
		if n&1 != 0 {
			t |= uint64(b[n-1]) << (8 * (n - 1))
		}
	}
	// t < 2^56, carries < 2^58 (one per 64 bytes) and halves < 2^36: their sum
	// does not overflow, and after a carry out acc is small enough that adding
	// c cannot carry again.
	acc, c = bits.Add64(acc, t+carries+halves, 0)
	return bits.ReverseBytes16(Fold(acc + c))
}
