package netstack

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/tapstack/tapstack/tcp"
)

// tableConns makes n connections with distinct tuples, for the table alone.
func tableConns(n int) ([]tcpKey, []*TCPConn) {
	cfg := &tcp.Config{}
	cfg.Defaults()
	keys := make([]tcpKey, n)
	conns := make([]*TCPConn, n)
	for i := range n {
		k := tcpKey{
			local:  netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, 1}), uint16(40000+i)),
			remote: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), 80),
		}
		keys[i] = k
		conns[i] = &TCPConn{c: tcp.NewConn(cfg, tcp.Endpoint{Local: k.local, Remote: k.remote})}
	}
	return keys, conns
}

// checkTable asserts that exactly the live connections are found, each
// under its own tuple.
func checkTable(t *testing.T, tb *connTable, keys []tcpKey, conns []*TCPConn, live []bool) {
	t.Helper()
	n := 0
	for i, k := range keys {
		got := tb.get(k)
		switch {
		case live[i] && got != conns[i]:
			t.Fatalf("tuple %d: got %p, want %p", i, got, conns[i])
		case !live[i] && got != nil:
			t.Fatalf("tuple %d removed, still found", i)
		}
		if live[i] {
			n++
		}
	}
	if tb.len() != n {
		t.Fatalf("len %d, want %d", tb.len(), n)
	}
	seen := 0
	tb.each(func(*TCPConn) { seen++ })
	if seen != n {
		t.Fatalf("each visited %d, want %d", seen, n)
	}
}

// Colliding hashes must never find another tuple's connection: with the
// hash narrowed to a bit or to nothing, every lookup, insertion and
// removal order still gives each tuple its own connection.
func TestConnTableCollisions(t *testing.T) {
	for _, mask := range []uint64{0, 1, 7, ^uint64(0)} {
		var tb connTable
		tb.init(&[16]byte{1, 2, 3})
		tb.mask = mask
		keys, conns := tableConns(64)
		live := make([]bool, len(keys))
		r := rand.New(rand.NewPCG(mask, 1))
		for range 2000 {
			i := r.IntN(len(keys))
			if live[i] {
				tb.remove(conns[i])
			} else {
				tb.put(keys[i], conns[i])
			}
			live[i] = !live[i]
			if j := r.IntN(len(keys)); !live[j] {
				// Removing what is not there changes nothing.
				tb.remove(conns[j])
			}
			checkTable(t, &tb, keys, conns, live)
		}
		if mask == 0 {
			// Everything collides: one tuple holds the hash, the rest
			// are in the second map.
			for i := range keys {
				if !live[i] {
					tb.put(keys[i], conns[i])
					live[i] = true
				}
			}
			if len(tb.byHash) != 1 || len(tb.more) != len(keys)-1 {
				t.Fatalf("all colliding: %d by hash, %d more", len(tb.byHash), len(tb.more))
			}
			checkTable(t, &tb, keys, conns, live)
		}
	}
}

// put replaces a tuple's connection wherever it is kept.
func TestConnTableReplace(t *testing.T) {
	var tb connTable
	tb.init(&[16]byte{})
	tb.mask = 0
	keys, conns := tableConns(3)
	for i := range keys {
		tb.put(keys[i], conns[i])
	}
	_, other := tableConns(3)
	for i := range keys {
		// other's connections have the same tuples.
		tb.put(keys[i], other[i])
		if tb.get(keys[i]) != other[i] || tb.len() != 3 {
			t.Fatalf("tuple %d not replaced (len %d)", i, tb.len())
		}
	}
}

// The hash spreads tuples that differ in one field only.
func TestConnTableHashSpreads(t *testing.T) {
	var tb connTable
	tb.init(&[16]byte{9})
	seen := map[uint64]bool{}
	for i := range 1 << 16 {
		k := tcpKey{
			local:  netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, 1}), uint16(i)),
			remote: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, 2}), 80),
		}
		seen[tb.hash(k)] = true
		k.local, k.remote = netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), 80), k.local
		seen[tb.hash(k)] = true
	}
	if len(seen) != 2<<16 {
		t.Fatalf("%d distinct hashes of %d tuples", len(seen), 2<<16)
	}
}

// Two stacks whose tables put every connection under one hash still
// connect, carry data and close each connection on its own, and a
// segment for a tuple nobody has is refused rather than handed to a
// connection that shares its hash.
func TestTCPAllTuplesCollide(t *testing.T) {
	n := newTestNet(t)
	a, b, _, _ := n.pair(1500)
	for _, s := range []*Stack{a, b} {
		s.mu.Lock()
		s.tcp.conns.mask = 0
		s.mu.Unlock()
	}
	ln, err := b.ListenTCP(netip.AddrPortFrom(addrB, 80))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const conns = 6
	var cs, svs []*TCPConn
	for range conns {
		c, err := a.StartDialTCP(netip.AddrPort{}, netip.AddrPortFrom(addrB, 80))
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	n.runUntilCond(func() bool {
		for {
			sv, err := ln.TryAccept()
			if err != nil {
				break
			}
			svs = append(svs, sv)
		}
		return len(svs) == conns
	}, 10*time.Second, a, b)
	if len(svs) != conns {
		t.Fatalf("accepted %d of %d", len(svs), conns)
	}
	if a.tcp.conns.len() != conns || b.tcp.conns.len() != conns || len(a.tcp.conns.more) != conns-1 {
		t.Fatalf("tables: a %d (%d more), b %d", a.tcp.conns.len(), len(a.tcp.conns.more), b.tcp.conns.len())
	}

	refused, err := a.StartDialTCP(netip.AddrPort{}, netip.AddrPortFrom(addrB, 81))
	if err != nil {
		t.Fatal(err)
	}
	n.runUntilCond(func() bool { return refused.State() == tcp.Closed }, time.Second, a, b)
	if _, err := refused.TryRead(make([]byte, 1)); err == nil || b.Stats().TCP.NoPort != 1 {
		t.Fatalf("dial to a closed port: read error %v, NoPort %d", err, b.Stats().TCP.NoPort)
	}

	// Each client sends its own stream; the server end of the same tuple
	// must read exactly it.
	bySrc := map[netip.AddrPort]*TCPConn{}
	for _, sv := range svs {
		bySrc[sv.RemoteAddrPort()] = sv
	}
	var xs []*transfer
	for i, c := range cs {
		sv := bySrc[c.LocalAddrPort()]
		if sv == nil {
			t.Fatalf("no server end for %v", c.LocalAddrPort())
		}
		xs = append(xs, newTransfer(c, sv, 100<<10, byte(i+1)), newTransfer(sv, c, 50<<10, byte(i+101)))
	}
	n.runTransfers(time.Minute, []*Stack{a, b}, xs...)
	for i := range cs {
		cs[i].Close()
		svs[i].Close()
	}
	n.runUntilCond(func() bool { return a.tcp.conns.len() == 0 && b.tcp.conns.len() == 0 }, 2*time.Minute, a, b)
	if a.tcp.conns.len() != 0 || b.tcp.conns.len() != 0 {
		t.Fatalf("after close: a holds %d, b %d", a.tcp.conns.len(), b.tcp.conns.len())
	}
}
