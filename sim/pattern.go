package sim

import (
	"encoding/binary"

	"github.com/tapstack/tapstack/sim/impair"
)

// Pattern is the byte stream one flow or connection carries: pseudo-random,
// determined by a key, and addressable at any offset, so a receiver checks
// what arrives without keeping a copy of what was sent, and a byte in the
// wrong place (reordered, duplicated, corrupted, from another flow) fails
// the check. Byte i is byte i%8 of SplitMix64(key + i/8), little-endian.
type Pattern struct{ key uint64 }

// NewPattern returns the pattern of flow or connection number id under a
// World's seed.
func NewPattern(seed, id uint64) Pattern {
	return Pattern{key: impair.DeriveSeed(seed, id^0x7061747465726e) /* "pattern" */}
}

func (p Pattern) block(k uint64) uint64 { return impair.SplitMix64(p.key + k) }

// Fill writes the pattern's bytes [off, off+len(b)) into b.
func (p Pattern) Fill(b []byte, off uint64) {
	for len(b) > 0 {
		if off%8 == 0 && len(b) >= 32 {
			// Four independent blocks a turn keep the multipliers busy.
			k := off / 8
			binary.LittleEndian.PutUint64(b[0:], p.block(k))
			binary.LittleEndian.PutUint64(b[8:], p.block(k+1))
			binary.LittleEndian.PutUint64(b[16:], p.block(k+2))
			binary.LittleEndian.PutUint64(b[24:], p.block(k+3))
			b, off = b[32:], off+32
			continue
		}
		k, j := off/8, int(off%8)
		if j == 0 && len(b) >= 8 {
			binary.LittleEndian.PutUint64(b, p.block(k))
			b, off = b[8:], off+8
			continue
		}
		var blk [8]byte
		binary.LittleEndian.PutUint64(blk[:], p.block(k))
		n := copy(b, blk[j:])
		b, off = b[n:], off+uint64(n)
	}
}

// Check reports the index in b of the first byte that differs from the
// pattern's bytes [off, off+len(b)), or -1 if none does.
func (p Pattern) Check(b []byte, off uint64) int {
	for i := 0; i < len(b); {
		at := off + uint64(i)
		k, j := at/8, int(at%8)
		if j == 0 && len(b)-i >= 32 {
			c := b[i : i+32]
			d := (binary.LittleEndian.Uint64(c[0:]) ^ p.block(k)) | (binary.LittleEndian.Uint64(c[8:]) ^ p.block(k+1)) |
				(binary.LittleEndian.Uint64(c[16:]) ^ p.block(k+2)) | (binary.LittleEndian.Uint64(c[24:]) ^ p.block(k+3))
			if d == 0 {
				i += 32
				continue
			}
		}
		if j == 0 && len(b)-i >= 8 && binary.LittleEndian.Uint64(b[i:]) == p.block(k) {
			i += 8
			continue
		}
		// A partial block, or a whole one that differs: byte by byte.
		var blk [8]byte
		binary.LittleEndian.PutUint64(blk[:], p.block(k))
		for ; j < 8 && i < len(b); j, i = j+1, i+1 {
			if b[i] != blk[j] {
				return i
			}
		}
	}
	return -1
}
