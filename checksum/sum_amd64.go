//go:build !purego

package checksum

func sum(b []byte, initial uint16) uint16 { return sumGo(b, initial, useBulk) }

// bulkMin is the length from which the AVX2 kernel beats the scalar loop; it
// is about even at 96 bytes (fixed costs: two masked loads, a horizontal
// reduction, VZEROUPPER) and ahead from 128 on. sumBulk needs at least 64.
const bulkMin = 128

// useBulk reports whether the CPU has AVX2 and the OS saves YMM state.
var useBulk = detectAVX2()

// sumBulk returns a value below 2^32 congruent modulo 0xffff to the sum of b
// as little-endian 16-bit words. It needs AVX2 and len(b) >= 64.
//
//go:noescape
func sumBulk(b []byte) uint64

func cpuid(leaf, sub uint32) (a, b, c, d uint32)

func xgetbv0() (lo uint32)

func detectAVX2() bool {
	maxLeaf, _, _, _ := cpuid(0, 0)
	if maxLeaf < 7 {
		return false
	}
	_, _, c1, _ := cpuid(1, 0)
	const osxsave, avx = 1 << 27, 1 << 28
	if c1&osxsave == 0 || c1&avx == 0 {
		return false
	}
	const xmmYmm = 1<<1 | 1<<2 // XCR0: SSE and AVX state enabled by the OS
	if xgetbv0()&xmmYmm != xmmYmm {
		return false
	}
	_, b7, _, _ := cpuid(7, 0)
	return b7&(1<<5) != 0
}
