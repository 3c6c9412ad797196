package sim_test

import (
	"bytes"
	"fmt"
	"net/netip"
	"time"

	"github.com/tapstack/tapstack/mono"
	"github.com/tapstack/tapstack/sim"
	"github.com/tapstack/tapstack/sim/impair"
)

// Two hosts on a lossy link with a three-second partition; four TCP
// connections of 1 MiB each, verified, with each connection's own state
// sampled, the wire traced and captured, and the run's digest.
func Example() {
	w := sim.New(sim.Config{Seed: 1})
	defer w.Close()
	a, _ := w.AddHost("a")
	b, _ := w.AddHost("b")
	lossy := impair.Config{Loss: impair.Percent, Delay: 10 * time.Millisecond, Jitter: time.Millisecond,
		Burst:      impair.GilbertElliott{P: impair.Percent / 2, R: 30 * impair.Percent, LossBad: impair.Always},
		Partitions: []impair.Interval{{Start: mono.Time(time.Second), End: mono.Time(4 * time.Second)}}}
	if _, err := w.Link(sim.End{Host: a, Addr: netip.MustParsePrefix("10.0.0.1/24")},
		sim.End{Host: b, Addr: netip.MustParsePrefix("10.0.0.2/24")}, lossy, lossy); err != nil {
		panic(err)
	}
	trace := w.TraceTCP()
	var pcap bytes.Buffer
	if err := w.Capture(sim.CaptureConfig{Delivered: &pcap}); err != nil {
		panic(err)
	}
	run, err := w.StartTransfer(sim.Transfer{Transport: sim.TCP{}, Client: a, Server: b, Port: 80,
		Conns: 4, Bytes: 1 << 20, SampleInfo: true})
	if err != nil {
		panic(err)
	}
	if err := w.RunUntil(run.Done, mono.Time(time.Hour)); err != nil {
		panic(err) // an integrity failure, or the hour passed
	}
	for _, c := range run.Conns {
		trace.Attach(c.ClientInfo) // so the plot draws the sender's cwnd
		fmt.Printf("connection %d: %d bytes verified; srtt never below the path's 18ms: %v\n",
			c.ID, c.Verified, c.ClientInfo.SRTT.Min >= 18*time.Millisecond)
	}
	var svg bytes.Buffer
	if err := sim.WriteSVG(&svg, trace.Flows()); err != nil {
		panic(err)
	}
	_ = w.Digest() // the same for every run of this seed
	// Output:
	// connection 0: 1048576 bytes verified; srtt never below the path's 18ms: true
	// connection 1: 1048576 bytes verified; srtt never below the path's 18ms: true
	// connection 2: 1048576 bytes verified; srtt never below the path's 18ms: true
	// connection 3: 1048576 bytes verified; srtt never below the path's 18ms: true
}
