package netstack

import (
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"

	"github.com/tapstack/tapstack/mono"
)

// testNet is a deterministic in-memory network for the core's tests: stacks
// on a virtual clock joined by links that carry frames in order, pumped by
// the test's own goroutine. Nothing in it waits on the wall clock.
type testNet struct {
	t       testing.TB
	now     mono.Time
	pending []testFrame
	// drop, when set, decides whether a frame is lost in transit.
	drop func(from *NIC, frame []byte) bool
	// sent records every frame put on a link, for assertions.
	sent []testFrame
}

type testFrame struct {
	link *testLink // its ends are looked up on delivery: a NIC announces itself while it is being added
	data []byte
}

func (f testFrame) from() *NIC { return f.link.from }

type testLink struct {
	n        *testNet
	from, to *NIC
}

func (l *testLink) Transmit(frames [][]byte, offset int) {
	for _, f := range frames {
		tf := testFrame{link: l, data: append([]byte(nil), f[offset:]...)}
		l.n.sent = append(l.n.sent, tf)
		l.n.pending = append(l.n.pending, tf)
	}
}

func newTestNet(t testing.TB) *testNet { return &testNet{t: t, now: 1} }

func (n *testNet) newStack(seed uint64) *Stack {
	return New(Config{Clock: func() mono.Time { return n.now }, Rand: rand.NewPCG(seed, seed^0x5eed)})
}

// pair makes two stacks, A at 10.0.0.1 and B at 10.0.0.2 on 10.0.0.0/24,
// joined by an Ethernet link with the given MTU.
func (n *testNet) pair(mtu int) (a, b *Stack, na, nb *NIC) {
	a, b = n.newStack(1), n.newStack(2)
	na, nb = n.join(a, b, mtu)
	return a, b, na, nb
}

// join gives a and b the addresses and link of pair.
func (n *testNet) join(a, b *Stack, mtu int) (na, nb *NIC) {
	la, lb := &testLink{n: n}, &testLink{n: n}
	var err error
	na, err = a.AddNIC(NICConfig{Name: "a0", LinkAddr: net.HardwareAddr{2, 0, 0, 0, 0, 1}, MTU: mtu,
		Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")}}, la)
	if err != nil {
		n.t.Fatal(err)
	}
	nb, err = b.AddNIC(NICConfig{Name: "b0", LinkAddr: net.HardwareAddr{2, 0, 0, 0, 0, 2}, MTU: mtu,
		Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.2/24")}}, lb)
	if err != nil {
		n.t.Fatal(err)
	}
	la.from, la.to = na, nb
	lb.from, lb.to = nb, na
	n.t.Cleanup(func() { a.Close(); b.Close() })
	return na, nb
}

// deliver carries every pending frame, including those sent in reply,
// without advancing time.
func (n *testNet) deliver() {
	for len(n.pending) > 0 {
		f := n.pending[0]
		n.pending = n.pending[1:]
		if f.link.to == nil || (n.drop != nil && n.drop(f.link.from, f.data)) {
			continue
		}
		f.link.to.s.Receive(n.now, f.link.to, [][]byte{f.data})
	}
}

// runUntil delivers frames and fires timers in time order until the
// virtual clock would pass limit.
func (n *testNet) runUntil(limit mono.Time, stacks ...*Stack) {
	for {
		n.deliver()
		next := mono.Never
		for _, s := range stacks {
			next = mono.Min(next, s.NextDeadline())
		}
		if next > limit {
			n.now = limit
			return
		}
		n.now = max(n.now, next)
		for _, s := range stacks {
			s.Advance(n.now)
		}
	}
}

var (
	addrA = netip.MustParseAddr("10.0.0.1")
	addrB = netip.MustParseAddr("10.0.0.2")
)
