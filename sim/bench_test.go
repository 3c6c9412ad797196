package sim

import (
	"net/netip"
	"testing"
	"time"

	"github.com/tapstack/tapstack/mono"
	"github.com/tapstack/tapstack/sim/impair"
)

// lossy60s is a minute of simulated time on a lossy, reordering,
// duplicating, corrupting 20ms link: four 1200-byte datagram flows at
// 1000 datagrams/s each (about 40 Mbit/s) and a client making requests
// throughout. It returns the frames put on the wire.
func lossy60s(b *testing.B, seed uint64) uint64 {
	cfg := impair.Config{Loss: impair.Percent, Reorder: impair.Percent, Duplicate: impair.Percent / 2,
		Corrupt: impair.Percent / 10, Delay: 10 * time.Millisecond, Jitter: time.Millisecond}
	w := New(Config{Seed: seed})
	defer w.Close()
	a := must(w.AddHost("a"))(b)
	h := must(w.AddHost("b"))(b)
	must(w.Link(End{Host: a, Addr: prefixA}, End{Host: h, Addr: prefixB}, cfg, cfg))(b)
	sink := must(w.ListenUDPSink(h, 9))(b)
	for i := range 4 {
		f := UDPFlow{ID: uint32(i), Dst: netip.AddrPortFrom(addrB, 9), Size: 1200, Count: 60_000, Interval: time.Millisecond}
		if err := sink.Expect(f); err != nil {
			b.Fatal(err)
		}
		must(w.SendUDP(a, f))(b)
	}
	must(w.ListenUDPEcho(h, 7))(b)
	must(w.StartRequests(a, Requests{ID: 9, Dst: netip.AddrPortFrom(addrB, 7), Count: 1 << 20}))(b)
	if err := w.Run(mono.Time(60 * time.Second)); err != nil {
		b.Fatal(err)
	}
	var frames uint64
	for _, d := range w.Dirs() {
		frames += d.Stats().Frames
	}
	return frames
}

// BenchmarkLossy60s reports how much faster than real time a busy lossy
// minute runs: by the wall clock (x-realtime) and by the CPU time the
// process used (x-realtime-cpu, which a loaded machine does not deflate;
// it includes the garbage collector's). The goal is at least 100.
func BenchmarkLossy60s(b *testing.B) {
	b.ReportAllocs()
	var frames uint64
	cpu := cpuTime()
	for i := 0; b.Loop(); i++ {
		frames += lossy60s(b, uint64(i))
	}
	cpu = cpuTime() - cpu
	b.ReportMetric(60*float64(b.N)/b.Elapsed().Seconds(), "x-realtime")
	if cpu > 0 {
		b.ReportMetric(60*float64(b.N)/cpu.Seconds(), "x-realtime-cpu")
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(frames), "ns/frame")
}

// BenchmarkIdleHour is an hour of two idle hosts whose neighbour entries
// age out: it costs a handful of steps.
func BenchmarkIdleHour(b *testing.B) {
	b.ReportAllocs()
	var steps uint64
	for b.Loop() {
		w := New(Config{Seed: 1})
		a := must(w.AddHost("a"))(b)
		h := must(w.AddHost("b"))(b)
		must(w.Link(End{Host: a, Addr: prefixA}, End{Host: h, Addr: prefixB}, impair.Config{}, impair.Config{}))(b)
		must(w.StartPing(a, Ping{Dst: addrB, Count: 1}))(b)
		if err := w.Run(mono.Time(time.Hour)); err != nil {
			b.Fatal(err)
		}
		steps += w.Steps()
		w.Close()
	}
	b.ReportMetric(float64(steps)/float64(b.N), "steps/op")
}

func BenchmarkPatternFill(b *testing.B) {
	p := NewPattern(1, 1)
	buf := make([]byte, 1184)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		p.Fill(buf, uint64(i*len(buf)))
	}
}

func BenchmarkPatternCheck(b *testing.B) {
	p := NewPattern(1, 1)
	buf := make([]byte, 1184)
	p.Fill(buf, 0)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		if p.Check(buf, 0) >= 0 {
			b.Fatal("mismatch")
		}
	}
}

// BenchmarkLossyTCP60s is a minute of simulated time of two TCP
// connections moving bulk data over a 1% lossy, reordering 20ms link
// limited to 50 Mbit/s with a 1 MiB queue.
func BenchmarkLossyTCP60s(b *testing.B) {
	b.ReportAllocs()
	var frames, verified uint64
	cpu := cpuTime()
	for i := 0; b.Loop(); i++ {
		cfg := impair.Config{Loss: impair.Percent, Reorder: impair.Percent, Delay: 10 * time.Millisecond,
			Rate: 50_000_000, Queue: 1 << 20}
		w := New(Config{Seed: uint64(i)})
		a := must(w.AddHost("a"))(b)
		h := must(w.AddHost("b"))(b)
		must(w.Link(End{Host: a, Addr: prefixA}, End{Host: h, Addr: prefixB}, cfg, cfg))(b)
		run := must(w.StartTransfer(Transfer{Transport: TCP{}, Client: a, Server: h, Port: 80, Conns: 2, Bytes: 1 << 40}))(b)
		if err := w.Run(mono.Time(60 * time.Second)); err != nil {
			b.Fatal(err)
		}
		for _, d := range w.Dirs() {
			frames += d.Stats().Frames
		}
		verified += uint64(run.Verified())
		w.Close()
	}
	cpu = cpuTime() - cpu
	b.ReportMetric(60*float64(b.N)/b.Elapsed().Seconds(), "x-realtime")
	if cpu > 0 {
		b.ReportMetric(60*float64(b.N)/cpu.Seconds(), "x-realtime-cpu")
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(frames), "ns/frame")
	b.ReportMetric(float64(verified)*8/60/float64(b.N)/1e6, "Mbit/s-simulated")
}

// BenchmarkSampleInfo is a lossy transfer of 4 × 4 MiB with and without
// sampling each connection's tcp.Info: the cost of the stack's view.
func BenchmarkSampleInfo(b *testing.B) {
	for _, sample := range []bool{false, true} {
		b.Run(map[bool]string{false: "off", true: "on"}[sample], func(b *testing.B) {
			b.ReportAllocs()
			cpu := cpuTime()
			defer func() { b.ReportMetric(float64((cpuTime()-cpu).Nanoseconds())/float64(b.N), "cpu-ns/op") }()
			for b.Loop() {
				cfg := impair.Config{Loss: impair.Percent, Delay: 10 * time.Millisecond, Jitter: time.Millisecond}
				w := New(Config{Seed: 1})
				a := must(w.AddHost("a"))(b)
				h := must(w.AddHost("b"))(b)
				must(w.Link(End{Host: a, Addr: prefixA}, End{Host: h, Addr: prefixB}, cfg, cfg))(b)
				run := must(w.StartTransfer(Transfer{Transport: TCP{}, Client: a, Server: h, Port: 80, Conns: 4, Bytes: 4 << 20, SampleInfo: sample}))(b)
				if err := w.RunUntil(run.Done, mono.Time(time.Hour)); err != nil {
					b.Fatal(err)
				}
				w.Close()
			}
		})
	}
}
