//go:build !purego

package checksum

func sum(b []byte, initial uint16) uint16 { return sumGo(b, initial, useBulk) }

// bulkMin is the length from which the AVX2 kernel beats the scalar loop: its
// setup and horizontal reduction cost about as much as summing 128 bytes with
// add-with-carry (see BenchmarkSum and BenchmarkSumGeneric).
const bulkMin = 256

// useBulk reports whether the CPU has AVX2 and the OS saves YMM state.
var useBulk = detectAVX2()

// sumBulk sums the first len(b)&^31 bytes of b as little-endian words with
// AVX2 and returns an accumulator below 2^62, congruent to their sum modulo
// 0xffff, and the number of bytes it consumed.
//
//go:noescape
func sumBulk(b []byte) (acc uint64, n int)

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
