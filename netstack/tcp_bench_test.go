package netstack

import (
	"math/rand/v2"
	"net"
	"net/netip"
	"runtime"
	"testing"

	"github.com/tapstack/tapstack/mono"
	"github.com/tapstack/tapstack/tcp"
)

// benchNet joins two stacks with links that recycle their frame buffers, so
// the benchmarks see only the stack's own allocations.
type benchNet struct {
	now     mono.Time
	pending []benchFrame
	free    [][]byte
}

type benchFrame struct {
	to   *NIC
	data []byte
}

type benchLink struct {
	n  *benchNet
	to *NIC // set once both NICs exist
}

func (l *benchLink) Transmit(frames [][]byte, offset int) {
	for _, f := range frames {
		var b []byte
		if k := len(l.n.free); k > 0 {
			b, l.n.free = l.n.free[k-1][:0], l.n.free[:k-1]
		}
		l.n.pending = append(l.n.pending, benchFrame{to: l.to, data: append(b, f[offset:]...)})
	}
}

func (n *benchNet) deliver() {
	var one [1][]byte
	for i := 0; i < len(n.pending); i++ {
		f := n.pending[i]
		if f.to != nil { // nil: an announcement sent while the link was being joined
			one[0] = f.data
			f.to.s.Receive(n.now, f.to, one[:])
		}
		n.free = append(n.free, f.data)
	}
	n.pending = n.pending[:0]
}

func newBenchPair(tb testing.TB) (n *benchNet, a, b *Stack) {
	n = &benchNet{now: 1}
	clock := func() mono.Time { return n.now }
	a = New(Config{Clock: clock, Rand: rand.NewPCG(1, 2)})
	b = New(Config{Clock: clock, Rand: rand.NewPCG(3, 4)})
	la, lb := &benchLink{n: n}, &benchLink{n: n}
	na, err := a.AddNIC(NICConfig{Name: "a0", LinkAddr: net.HardwareAddr{2, 0, 0, 0, 0, 1},
		Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")}}, la)
	if err != nil {
		tb.Fatal(err)
	}
	nb, err := b.AddNIC(NICConfig{Name: "b0", LinkAddr: net.HardwareAddr{2, 0, 0, 0, 0, 2},
		Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.2/24")}}, lb)
	if err != nil {
		tb.Fatal(err)
	}
	la.to, lb.to = nb, na
	tb.Cleanup(func() { a.Close(); b.Close() })
	n.deliver()
	return n, a, b
}

func (n *benchNet) connect(tb testing.TB, a *Stack, ln *TCPListener) (c, sv *TCPConn) {
	c, err := a.StartDialTCP(netip.AddrPort{}, ln.AddrPort())
	if err != nil {
		tb.Fatal(err)
	}
	n.deliver()
	sv, err = ln.TryAccept()
	if err != nil || c.State() != tcp.Established {
		tb.Fatalf("no connection: %v, client %v", err, c.State())
	}
	return c, sv
}

// BenchmarkTCPBulk is one-way bulk transfer between two stacks in memory:
// both stacks' send and receive paths, no link delay.
func BenchmarkTCPBulk(b *testing.B) {
	n, sa, sb := newBenchPair(b)
	ln, _ := sb.ListenTCP(netip.MustParseAddrPort("10.0.0.2:5001"))
	c, sv := n.connect(b, sa, ln)
	chunk := make([]byte, 64<<10)
	rbuf := make([]byte, 64<<10)
	b.SetBytes(int64(len(chunk)))
	b.ReportAllocs()
	for b.Loop() {
		for off := 0; off < len(chunk); {
			k, _ := c.TryWrite(chunk[off:])
			off += k
			n.deliver()
			for {
				m, _ := sv.TryRead(rbuf)
				if m == 0 {
					break
				}
			}
			n.deliver()
		}
	}
}

// BenchmarkTCPSegment is one full-sized segment through both stacks:
// written, built in place, received, acknowledged, read. It must not
// allocate.
func BenchmarkTCPSegment(b *testing.B) {
	n, sa, sb := newBenchPair(b)
	ln, _ := sb.ListenTCP(netip.MustParseAddrPort("10.0.0.2:5001"))
	c, sv := n.connect(b, sa, ln)
	c.SetNoDelay(true)
	seg := make([]byte, c.c.MSS())
	rbuf := make([]byte, 64<<10)
	step := func() {
		c.TryWrite(seg)
		n.deliver()
		sv.TryRead(rbuf)
		n.deliver()
	}
	for range 100 {
		step()
	}
	b.SetBytes(int64(len(seg)))
	b.ReportAllocs()
	for b.Loop() {
		step()
	}
}

func TestTCPSegmentPathDoesNotAllocate(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("allocation counts need a normal build")
	}
	res := testing.Benchmark(BenchmarkTCPSegment)
	if a := res.AllocsPerOp(); a != 0 {
		t.Fatalf("%d allocations per segment, want 0", a)
	}
}

// BenchmarkTCPIdleConnMemory reports the heap an idle established
// connection holds, both ends counted once each (bytes/conn is per end).
func BenchmarkTCPIdleConnMemory(b *testing.B) {
	const conns = 1000
	for b.Loop() {
		b.StopTimer()
		n, sa, sb := newBenchPair(b)
		ln, _ := sb.ListenTCP(netip.MustParseAddrPort("10.0.0.2:80"))
		var m0, m1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m0)
		keep := make([]*TCPConn, 0, 2*conns)
		msg := []byte("hello")
		buf := make([]byte, 16)
		b.StartTimer()
		for range conns {
			c, sv := n.connect(b, sa, ln)
			// Some traffic each way, then idle.
			c.TryWrite(msg)
			n.deliver()
			sv.TryRead(buf)
			sv.TryWrite(msg)
			n.deliver()
			c.TryRead(buf)
			n.deliver()
			keep = append(keep, c, sv)
		}
		b.StopTimer()
		// Let delayed ACKs go out: the connections are idle from here on.
		n.now += mono.Time(1e9)
		sa.Advance(n.now)
		sb.Advance(n.now)
		n.deliver()
		runtime.GC()
		runtime.ReadMemStats(&m1)
		b.ReportMetric(float64(m1.HeapAlloc-m0.HeapAlloc)/float64(2*conns), "bytes/conn")
		runtime.KeepAlive(keep)
		b.StartTimer()
	}
}
