package tcp

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
	"time"

	"github.com/tapstack/tapstack/mono"
	"github.com/tapstack/tapstack/tcp/seq"
)

// ISN returns RFC 6528's initial sequence number for a 4-tuple:
// M + F(localip, localport, remoteip, remoteport, secretkey), where M is a
// timer ticking every 4 microseconds (from the injected clock) and F is
// SipHash-2-4 keyed with the secret, as Linux uses.
func ISN(key *[16]byte, local, remote netip.AddrPort, now mono.Time) seq.Value {
	h := tupleHash(key, local, remote, 0)
	return seq.Value(uint32(h) + uint32(int64(now)/int64(4*time.Microsecond)))
}

// tupleHash is SipHash-2-4 of the 4-tuple and an extra word.
func tupleHash(key *[16]byte, local, remote netip.AddrPort, extra uint64) uint64 {
	la, ra := local.Addr().As16(), remote.Addr().As16()
	k0 := binary.LittleEndian.Uint64(key[:8])
	k1 := binary.LittleEndian.Uint64(key[8:])
	m := [5]uint64{
		binary.LittleEndian.Uint64(la[:8]), binary.LittleEndian.Uint64(la[8:]),
		binary.LittleEndian.Uint64(ra[:8]), binary.LittleEndian.Uint64(ra[8:]),
		uint64(local.Port())<<16 | uint64(remote.Port()) | extra<<32,
	}
	return sipHash24(k0, k1, m[:], extra>>32)
}

// sipHash24 hashes whole 64-bit words plus a final word (SipHash-2-4 over
// 8*len(m)+8 bytes).
func sipHash24(k0, k1 uint64, m []uint64, last uint64) uint64 {
	v0 := k0 ^ 0x736f6d6570736575
	v1 := k1 ^ 0x646f72616e646f6d
	v2 := k0 ^ 0x6c7967656e657261
	v3 := k1 ^ 0x7465646279746573
	round := func() {
		v0 += v1
		v1 = bits.RotateLeft64(v1, 13)
		v1 ^= v0
		v0 = bits.RotateLeft64(v0, 32)
		v2 += v3
		v3 = bits.RotateLeft64(v3, 16)
		v3 ^= v2
		v0 += v3
		v3 = bits.RotateLeft64(v3, 21)
		v3 ^= v0
		v2 += v1
		v1 = bits.RotateLeft64(v1, 17)
		v1 ^= v2
		v2 = bits.RotateLeft64(v2, 32)
	}
	word := func(w uint64) {
		v3 ^= w
		round()
		round()
		v0 ^= w
	}
	for _, w := range m {
		word(w)
	}
	word(last)
	word(uint64(8*len(m)+8) << 56)
	v2 ^= 0xff
	round()
	round()
	round()
	round()
	return v0 ^ v1 ^ v2 ^ v3
}
