package checksum

import (
	"encoding/binary"
	"math/bits"
)

// sumGeneric is Sum in portable Go, without the vector kernel.
func sumGeneric(b []byte, initial uint16) uint16 { return sumGo(b, initial, false) }

// sumGo computes Sum. With bulk set (only where useBulk allows it), long
// inputs go to the architecture's sumBulk kernel instead.
//
// It adds the buffer as little-endian 64-bit words with end-around carry and
// swaps the folded result to network order at the end: the ones'-complement
// sum is byte-order independent (RFC 1071 §2(B)), and swapping the bytes of a
// folded sum is the same as having summed big-endian words. Every load goes
// through encoding/binary, so any alignment is fine.
func sumGo(b []byte, initial uint16, bulk bool) uint16 {
	// initial joins last, with one end-around add to the buffer's folded
	// sum: callers chain sums (a pseudo-header's, then the segment's), and
	// the less of a sum that waits for the one before, the shorter the
	// chain (folding initial in before the fold made every chained sum
	// wait through it).
	if bulk && len(b) >= bulkMin {
		return Combine(initial, bits.ReverseBytes16(Fold(sumBulk(b))))
	}
	var acc uint64
	// Add-with-carry chains: bits.Add64 with the carry passed straight on
	// compiles to ADC. Each chain starts afresh and parks its carry out in
	// carries, so chains depend on each other through acc alone, not through
	// a carry moved in and out of the flags.
	var carries, c uint64
	i := 0
	for ; len(b)-i >= 64; i += 64 {
		w := (*[64]byte)(b[i : i+64 : i+64]) // full slice expressions: no pointer masking
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
	// Under 64 bytes left: whole words in chains of four, two and one.
	if len(b)-i >= 32 {
		w := (*[32]byte)(b[i : i+32 : i+32])
		acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(w[0:]), 0)
		acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(w[8:]), c)
		acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(w[16:]), c)
		acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(w[24:]), c)
		carries += c
		i += 32
	}
	if len(b)-i >= 16 {
		w := (*[16]byte)(b[i : i+16 : i+16])
		acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(w[0:]), 0)
		acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(w[8:]), c)
		carries += c
		i += 16
	}
	if len(b)-i >= 8 {
		acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(b[i:i+8:i+8]), 0)
		carries += c
		i += 8
	}
	// The last 0..7 bytes make one zero-padded word t. Their first byte is at
	// an even offset, so it is t's low byte.
	var t uint64
	if n := len(b); n >= 8 {
		// Reload the 8 bytes ending the buffer and shift out the 8-(n-i)
		// already summed: all of them when n == i. (Two shifts, so that
		// neither reaches 64.)
		t = binary.LittleEndian.Uint64(b[n-8:]) >> 8 >> ((56 - 8*uint(n-i)) & 63)
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
	// t < 2^56 and carries < 2^58 (at most one per 8 bytes): their sum
	// does not overflow, and after a carry out acc is small enough that
	// adding c cannot carry again.
	acc, c = bits.Add64(acc, t+carries, 0)
	return Combine(initial, bits.ReverseBytes16(Fold(acc+c)))
}
