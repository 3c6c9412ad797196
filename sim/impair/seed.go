package impair

import (
	"math/bits"
	"math/rand/v2"
)

// Streams of a master seed used by this package; a simulator with many links
// may number its own streams from StreamUser up.
const (
	StreamTx   uint64 = 0 // WrapDevice: frames written
	StreamRx   uint64 = 1 // WrapDevice: frames read
	StreamUser uint64 = 2
)

const golden = 0x9e3779b97f4a7c15 // 2^64 / phi: SplitMix64's increment

// SplitMix64 is SplitMix64's output function (Steele, Lea, Flood 2014): a
// bijective mix of x into a well-distributed 64-bit value.
func SplitMix64(x uint64) uint64 {
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// DeriveSeed returns the seed of stream number stream under master: the
// (stream+1)th output of a SplitMix64 generator seeded with master. Streams
// of one master are independent for any practical purpose, so one seed on a
// command line reproduces every link direction of a run.
func DeriveSeed(master, stream uint64) uint64 {
	return SplitMix64(master + (stream+1)*golden)
}

// source is one PRNG stream. Bounded draws are done here, not by rand.Rand,
// so the mapping from PCG output to decisions is ours and cannot change with
// a Go release.
type source struct{ pcg rand.PCG }

func (s *source) seed(seed, stream uint64) {
	s.pcg.Seed(DeriveSeed(seed, 2*stream), DeriveSeed(seed, 2*stream+1))
}

// below returns a uniform value in [0, n), n > 0 (Lemire's method).
func (s *source) below(n uint64) uint64 {
	hi, lo := bits.Mul64(s.pcg.Uint64(), n)
	if lo < n {
		thresh := -n % n
		for lo < thresh {
			hi, lo = bits.Mul64(s.pcg.Uint64(), n)
		}
	}
	return hi
}

// chance reports true with probability p. It draws only when 0 < p < 1, so
// an impairment that is off or certain consumes nothing.
func (s *source) chance(p Prob) bool {
	switch {
	case p == 0:
		return false
	case p >= Always:
		return true
	}
	return s.below(uint64(Always)) < uint64(p)
}
