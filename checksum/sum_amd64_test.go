//go:build !purego

package checksum

import (
	"math/bits"
	"math/rand/v2"
	"testing"

	"golang.org/x/sys/cpu"
)

// TestDetectAVX2 checks our CPUID/XGETBV probe against x/sys/cpu's, which
// applies the same OS-support rule.
func TestDetectAVX2(t *testing.T) {
	if useBulk != cpu.X86.HasAVX2 {
		t.Fatalf("detectAVX2() = %v, x/sys/cpu says %v", useBulk, cpu.X86.HasAVX2)
	}
	t.Logf("AVX2 kernel in use: %v", useBulk)
}

// TestSumBulkDirect runs the kernel on its own from its minimum length, so a
// fault in it shows even if the dispatch threshold moves.
func TestSumBulkDirect(t *testing.T) {
	if !useBulk {
		t.Skip("no AVX2 on this CPU")
	}
	r := rand.New(rand.NewPCG(19, 20))
	for n := 64; n < 400; n++ {
		for off := 0; off < 32; off++ {
			b := fill(r, n, off, byte(n%4))
			got := bits.ReverseBytes16(Fold(sumBulk(b)))
			if want := refSum(b, 0); got != want {
				t.Fatalf("sumBulk(len %d, offset %d) folds to %#04x, want %#04x", n, off, got, want)
			}
		}
	}
}
