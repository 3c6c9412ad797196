package checksum

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"
)

// refSum is RFC 1071 §4.1 transcribed: big-endian 16-bit words added one at a
// time, an odd last byte padded with zero, carries folded back at the end.
func refSum(b []byte, initial uint16) uint16 {
	s := uint64(initial)
	for len(b) >= 2 {
		s += uint64(b[0])<<8 | uint64(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint64(b[0]) << 8
	}
	for s>>16 != 0 {
		s = s>>16 + s&0xffff
	}
	return uint16(s)
}

// impls are the Sum implementations compiled into this build; each is checked
// against refSum. On amd64 Sum takes the AVX2 kernel for long inputs when the
// CPU has it, and sumGeneric is the portable code every other build uses.
var impls = []struct {
	name string
	fn   func([]byte, uint16) uint16
}{
	{"Sum", Sum},
	{"generic", sumGeneric},
}

func TestRFC1071Example(t *testing.T) {
	// RFC 1071 §3: the words 0001 f203 f4f5 f6f7 sum to ddf2.
	b := []byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}
	for _, im := range impls {
		if got := im.fn(b, 0); got != 0xddf2 {
			t.Errorf("%s = %#04x, want 0xddf2", im.name, got)
		}
	}
	if got := Checksum(b, 0); got != 0x220d {
		t.Errorf("Checksum = %#04x, want 0x220d", got)
	}
}

func TestIPv4HeaderVector(t *testing.T) {
	// A 20-byte IPv4 header (192.168.0.1 -> 192.168.0.199, UDP) whose
	// checksum field holds b861.
	h := []byte{
		0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
		0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
	}
	if got := Sum(h, 0); got != 0xffff {
		t.Errorf("Sum over a valid header = %#04x, want 0xffff", got)
	}
	z := append([]byte(nil), h...)
	z[10], z[11] = 0, 0
	if got := Checksum(z, 0); got != 0xb861 {
		t.Errorf("Checksum with field zeroed = %#04x, want 0xb861", got)
	}
}

// fill returns a buffer of n bytes starting at offset off inside a larger
// allocation, so that unaligned starts are exercised.
func fill(r *rand.Rand, n, off int, pattern byte) []byte {
	buf := make([]byte, off+n+8)
	for i := range buf {
		switch pattern {
		case 0:
			buf[i] = byte(r.Uint32())
		case 1:
			buf[i] = 0xff
		case 2:
			buf[i] = 0
		default:
			// Mostly 0xff with a few random bytes: long carry runs.
			if r.IntN(64) == 0 {
				buf[i] = byte(r.Uint32())
			} else {
				buf[i] = 0xff
			}
		}
	}
	return buf[off : off+n]
}

func TestSumMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	lengths := []int{}
	for n := 0; n <= 600; n++ {
		lengths = append(lengths, n)
	}
	lengths = append(lengths, 1023, 1024, 1025, 1499, 1500, 1501, 4095, 4096,
		9000, 65535, 65536, 65537, 70000)
	initials := []uint16{0, 1, 0x8000, 0xfffe, 0xffff}
	for _, im := range impls {
		for _, n := range lengths {
			// Offsets 0..63 put the start at every position relative to a
			// 32-byte boundary, whatever the allocation's alignment.
			for off := 0; off < 64; off++ {
				for pattern := byte(0); pattern < 4; pattern++ {
					if off >= 8 && (n < 250 || n > 330) && off%7 != 0 || n > 600 && off%3 != 0 {
						continue // keep the cases cheap
					}
					b := fill(r, n, off, pattern)
					init := initials[r.IntN(len(initials))]
					if got, want := im.fn(b, init), refSum(b, init); got != want {
						t.Fatalf("%s(len %d, offset %d, pattern %d, initial %#04x) = %#04x, want %#04x",
							im.name, n, off, pattern, init, got, want)
					}
				}
			}
		}
	}
}

func TestSumAllOnesAndZeros(t *testing.T) {
	// All-0xff data sums to 0xffff (negative zero), never to 0; all-zero data
	// sums to 0. A carry lost anywhere in the 64-bit accumulation shows here.
	for _, im := range impls {
		for _, n := range []int{2, 8, 64, 128, 256, 1500, 65536} {
			ones := fill(nil, n, 1, 1)
			if got := im.fn(ones, 0); got != 0xffff {
				t.Errorf("%s(%d x 0xff) = %#04x, want 0xffff", im.name, n, got)
			}
			if got := im.fn(ones, 0xffff); got != 0xffff {
				t.Errorf("%s(%d x 0xff, 0xffff) = %#04x, want 0xffff", im.name, n, got)
			}
			zeros := make([]byte, n)
			if got := im.fn(zeros, 0); got != 0 {
				t.Errorf("%s(%d x 0x00) = %#04x, want 0", im.name, n, got)
			}
		}
		if got := im.fn(nil, 0x1234); got != 0x1234 {
			t.Errorf("%s(nil, 0x1234) = %#04x, want 0x1234", im.name, got)
		}
		if got := im.fn([]byte{0xab}, 0); got != 0xab00 {
			t.Errorf("%s([ab]) = %#04x, want 0xab00", im.name, got)
		}
	}
}

func TestSumVecOddBoundaries(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for iter := 0; iter < 2000; iter++ {
		n := r.IntN(3000)
		if iter%100 == 0 {
			n = 65536 + r.IntN(100)
		}
		all := fill(r, n, r.IntN(8), byte(iter%4))
		// Cut at random points, odd ones included, with empty pieces too.
		var bufs [][]byte
		for rest := all; ; {
			k := r.IntN(len(rest) + 1)
			if r.IntN(4) == 0 {
				k = r.IntN(min(len(rest), 3) + 1)
			}
			bufs = append(bufs, rest[:k])
			rest = rest[k:]
			if len(rest) == 0 {
				break
			}
		}
		init := uint16(r.Uint32())
		if got, want := SumVec(bufs, init), refSum(all, init); got != want {
			t.Fatalf("SumVec(%d pieces of %d bytes, %#04x) = %#04x, want %#04x", len(bufs), n, init, got, want)
		}
	}
	if got := SumVec(nil, 0xbeef); got != 0xbeef {
		t.Errorf("SumVec(nil, 0xbeef) = %#04x", got)
	}
	// Three single bytes: 01 | 02 | 03 is the words 0102 0300.
	if got := SumVec([][]byte{{1}, {2}, {3}}, 0); got != 0x0402 {
		t.Errorf("SumVec(01|02|03) = %#04x, want 0x0402", got)
	}
}

func TestFold(t *testing.T) {
	for _, c := range []struct {
		in   uint64
		want uint16
	}{
		{0, 0},
		{1, 1},
		{0xffff, 0xffff},
		{0x10000, 1},
		{0x1fffe, 0xffff},
		{0xffffffff, 0xffff},
		{0x100000000, 1},
		{0xffffffffffffffff, 0xffff},
		{0x8000000000000000, 0x8000},
		{0x0001000200030004, 0x000a},
		{0xfffffffffffffffe, 0xfffe},
	} {
		if got := Fold(c.in); got != c.want {
			t.Errorf("Fold(%#x) = %#04x, want %#04x", c.in, got, c.want)
		}
	}
	// Fold agrees with word-by-word folding for random accumulators.
	r := rand.New(rand.NewPCG(5, 6))
	for range 10000 {
		x := r.Uint64()
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], x)
		if got, want := Fold(x), refSum(b[:], 0); got != want {
			t.Fatalf("Fold(%#x) = %#04x, want %#04x", x, got, want)
		}
	}
}

func TestCombine(t *testing.T) {
	for _, c := range []struct{ a, b, want uint16 }{
		{0, 0, 0},
		{0, 0xffff, 0xffff},
		{0xffff, 0xffff, 0xffff},
		{0xffff, 1, 1},
		{0x8000, 0x8000, 1},
		{0xfffe, 1, 0xffff},
		{0xfffe, 2, 1},
		{0x1234, 0x4321, 0x5555},
	} {
		if got := Combine(c.a, c.b); got != c.want {
			t.Errorf("Combine(%#04x, %#04x) = %#04x, want %#04x", c.a, c.b, got, c.want)
		}
		if got := Combine(c.b, c.a); got != c.want {
			t.Errorf("Combine(%#04x, %#04x) = %#04x, want %#04x", c.b, c.a, got, c.want)
		}
	}
	// Combining the sums of two even-length halves is the sum of the whole.
	r := rand.New(rand.NewPCG(7, 8))
	for range 2000 {
		b := fill(r, r.IntN(200), 0, byte(r.IntN(4)))
		k := r.IntN(len(b)/2+1) * 2
		if got, want := Combine(Sum(b[:k], 0), Sum(b[k:], 0)), refSum(b, 0); got != want {
			t.Fatalf("Combine of halves split at %d of %d = %#04x, want %#04x", k, len(b), got, want)
		}
	}
}

func TestUpdate(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for iter := range 20000 {
		// A header with its checksum field at offset 10, as in IPv4.
		h := fill(r, 20+4*r.IntN(11), 0, byte(iter%4))
		h[10], h[11] = 0, 0
		binary.BigEndian.PutUint16(h[10:], Checksum(h, 0))
		i := 2 * r.IntN(len(h)/2)
		if i == 10 {
			continue
		}
		old := binary.BigEndian.Uint16(h[i:])
		nw := uint16(r.Uint32())
		if iter%7 == 0 {
			nw = old
		}
		field := binary.BigEndian.Uint16(h[10:])
		got := Update(field, old, nw)
		binary.BigEndian.PutUint16(h[i:], nw)
		h[10], h[11] = 0, 0
		if allZero(h) {
			// The documented exception: recomputation gives 0xffff, eqn. 3
			// the other zero.
			if got != 0 {
				t.Fatalf("Update to an all-zero header = %#04x, want 0x0000", got)
			}
			continue
		}
		if want := Checksum(h, 0); got != want {
			t.Fatalf("Update(%#04x, %#04x, %#04x) at %d = %#04x, recomputed %#04x", field, old, nw, i, got, want)
		}
		// The updated field verifies: the header sums to 0xffff with it.
		binary.BigEndian.PutUint16(h[10:], got)
		if s := Sum(h, 0); s != 0xffff {
			t.Fatalf("header with updated checksum sums to %#04x", s)
		}
	}
}

func allZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

func TestUpdate32(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for range 20000 {
		// An IPv4 header whose source address (offset 12) is rewritten.
		h := fill(r, 20, 0, byte(r.IntN(4)))
		h[0] |= 0x40 // never all zero
		h[10], h[11] = 0, 0
		binary.BigEndian.PutUint16(h[10:], Checksum(h, 0))
		old := binary.BigEndian.Uint32(h[12:])
		nw := r.Uint32()
		got := Update32(binary.BigEndian.Uint16(h[10:]), old, nw)
		binary.BigEndian.PutUint32(h[12:], nw)
		h[10], h[11] = 0, 0
		if want := Checksum(h, 0); got != want {
			t.Fatalf("Update32(%#08x -> %#08x) = %#04x, recomputed %#04x", old, nw, got, want)
		}
	}
}

func TestPseudoHeaderV4(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	for range 10000 {
		var src, dst [4]byte
		binary.BigEndian.PutUint32(src[:], r.Uint32())
		binary.BigEndian.PutUint32(dst[:], r.Uint32())
		proto, length := uint8(r.Uint32()), uint16(r.Uint32())
		// RFC 793 §3.1: src, dst, zero, protocol, length: 12 bytes.
		p := append(append(src[:], dst[:]...), 0, proto, byte(length>>8), byte(length))
		if got, want := PseudoHeaderV4(src, dst, proto, length), refSum(p, 0); got != want {
			t.Fatalf("PseudoHeaderV4(%v, %v, %d, %d) = %#04x, want %#04x", src, dst, proto, length, got, want)
		}
	}
	ff := [4]byte{0xff, 0xff, 0xff, 0xff}
	if got := PseudoHeaderV4(ff, ff, 0, 0xffff); got != 0xffff {
		t.Errorf("all-ones PseudoHeaderV4 = %#04x, want 0xffff", got)
	}
	if got := PseudoHeaderV4([4]byte{}, [4]byte{}, 0, 0); got != 0 {
		t.Errorf("all-zero PseudoHeaderV4 = %#04x, want 0", got)
	}
}

func TestPseudoHeaderV6(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	for i := range 10000 {
		var src, dst [16]byte
		for j := range src {
			src[j], dst[j] = byte(r.Uint32()), byte(r.Uint32())
			if i%5 == 0 {
				src[j], dst[j] = 0xff, 0xff
			}
		}
		proto, length := uint8(r.Uint32()), r.Uint32()
		// RFC 8200 §8.1: src, dst, 32-bit length, 3 zero bytes, next header.
		p := append(append(src[:], dst[:]...),
			byte(length>>24), byte(length>>16), byte(length>>8), byte(length), 0, 0, 0, proto)
		if got, want := PseudoHeaderV6(src, dst, proto, length), refSum(p, 0); got != want {
			t.Fatalf("PseudoHeaderV6(%x, %x, %d, %d) = %#04x, want %#04x", src, dst, proto, length, got, want)
		}
	}
}

// FuzzSum checks Sum and the portable sumGeneric against refSum on buffers of
// 0..70000 bytes at any offset. The fuzzer's bytes are placed at the start of
// a buffer whose rest comes from a PRNG seeded by the input, so that long
// lengths are reached without long inputs; fill picks random, 0xff-heavy or
// zero padding to drive carries. The same buffer, cut at a point picked by the
// seed, checks SumVec.
func FuzzSum(f *testing.F) {
	f.Add([]byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}, uint32(8), uint8(0), uint8(0), uint16(0), uint64(0))
	f.Add([]byte{0xff}, uint32(1500), uint8(1), uint8(1), uint16(0xffff), uint64(1))
	f.Add([]byte{}, uint32(65536), uint8(3), uint8(0), uint16(0x1234), uint64(2))
	f.Add([]byte{1, 2, 3}, uint32(70000), uint8(7), uint8(3), uint16(1), uint64(3))
	f.Fuzz(func(t *testing.T, data []byte, n uint32, off, pattern uint8, initial uint16, seed uint64) {
		n %= 70001
		r := rand.New(rand.NewPCG(seed, uint64(n)))
		b := fill(r, int(n), int(off%64), pattern%4)
		copy(b, data)
		want := refSum(b, initial)
		for _, im := range impls {
			if got := im.fn(b, initial); got != want {
				t.Fatalf("%s(len %d, offset %d, initial %#04x) = %#04x, want %#04x", im.name, n, off%64, initial, got, want)
			}
		}
		k := 0
		if n > 0 {
			k = int(seed % uint64(n+1))
		}
		if got := SumVec([][]byte{b[:k], b[k:]}, initial); got != want {
			t.Fatalf("SumVec(split %d of %d) = %#04x, want %#04x", k, n, got, want)
		}
	})
}

var sink uint16

// benchSizes runs loop, which must call the function under test directly (an
// indirect call would keep Sum from being inlined as it is in real callers),
// over random buffers of 64 B, 1500 B and 64 KiB.
func benchSizes(b *testing.B, off int, loop func(*testing.B, []byte)) {
	for _, n := range []int{64, 1500, 64 << 10} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			buf := fill(rand.New(rand.NewPCG(1, 1)), n, off, 0)
			b.SetBytes(int64(n))
			b.ReportAllocs()
			loop(b, buf)
		})
	}
}

func BenchmarkSum(b *testing.B) {
	benchSizes(b, 0, func(b *testing.B, buf []byte) {
		var s uint16
		for b.Loop() {
			s += Sum(buf, 0)
		}
		sink = s
	})
}

// BenchmarkSumChained starts each sum from the one before, as a segment's
// sum starts from its pseudo-header's: the latency of a sum, where
// BenchmarkSum measures its throughput.
func BenchmarkSumChained(b *testing.B) {
	benchSizes(b, 0, func(b *testing.B, buf []byte) {
		var s uint16
		for b.Loop() {
			s = Sum(buf, s)
		}
		sink = s
	})
}

// BenchmarkSumUnaligned starts every buffer at an odd address.
func BenchmarkSumUnaligned(b *testing.B) {
	benchSizes(b, 1, func(b *testing.B, buf []byte) {
		var s uint16
		for b.Loop() {
			s += Sum(buf, 0)
		}
		sink = s
	})
}

// BenchmarkSumGeneric is the portable path, which other architectures and
// CPUs without AVX2 take.
func BenchmarkSumGeneric(b *testing.B) {
	benchSizes(b, 0, func(b *testing.B, buf []byte) {
		var s uint16
		for b.Loop() {
			s += sumGeneric(buf, 0)
		}
		sink = s
	})
}
