package sim

import (
	"math"
	"net/netip"
	"testing"
	"time"

	"github.com/tapstack/tapstack/mono"
	"github.com/tapstack/tapstack/sim/impair"
)

// Impairments observed end to end: what the wire decided, counted by an
// observer, must match what the stacks and applications saw.

// wireCount counts the frames of one direction carrying UDP to port 9.
type wireCount struct {
	sent, dropped, dups  uint64
	delivered, corrupted uint64 // copies
	dropReasons          [impair.NumReasons + 1]uint64
	deliveredAt          []mono.Time
	fates                []bool // per frame sent, in order: true if dropped
}

func isIPv4(f []byte) bool { return len(f) >= 34 && f[12] == 0x08 && f[13] == 0x00 }

// isUDP reports whether f carries UDP to port (with a 20-byte IPv4 header).
func isUDP(f []byte, port uint16) bool {
	return isIPv4(f) && f[14+9] == 17 && len(f) >= 42 && uint16(f[36])<<8|uint16(f[37]) == port
}

func countUDP(w *World, d *Dir) *wireCount {
	c := &wireCount{}
	w.Observe(func(e *WireEvent) {
		// A corrupted copy may no longer look like what it was; the tests
		// that corrupt send nothing else over IPv4.
		if e.Dir != d || !(isUDP(e.Frame, 9) || (e.Corrupted && isIPv4(e.Frame))) {
			return
		}
		switch e.Kind {
		case Sent:
			c.sent++
			c.fates = append(c.fates, false)
			if e.Copies == 2 {
				c.dups++
			}
		case Dropped:
			c.sent++
			c.dropped++
			c.dropReasons[e.Reason]++
			c.fates = append(c.fates, true)
		case Delivered:
			c.delivered++
			c.deliveredAt = append(c.deliveredAt, e.At)
			if e.Corrupted {
				c.corrupted++
			}
		}
	})
	return c
}

// flowAB runs a UDP flow from a to b's sink and returns what the sink got.
func flowAB(t *testing.T, p *pair, f UDPFlow, extra time.Duration) FlowStats {
	t.Helper()
	f.Dst = netip.AddrPortFrom(addrB, 9)
	sink := must(p.w.ListenUDPSink(p.b, 9))(t)
	if err := sink.Expect(f); err != nil {
		t.Fatal(err)
	}
	s := must(p.w.SendUDP(p.a, f))(t)
	if err := p.w.RunUntil(s.Task().Done, mono.Time(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := p.w.RunFor(extra); err != nil {
		t.Fatal(err)
	}
	return sink.Flow(f.ID)
}

// near checks that got is within k standard deviations of a binomial
// count of n trials with probability p.
func near(t *testing.T, what string, got, n uint64, p float64) {
	t.Helper()
	mean := float64(n) * p
	sd := math.Sqrt(float64(n) * p * (1 - p))
	if math.Abs(float64(got)-mean) > 5*sd+1 {
		t.Errorf("%s: %d of %d, expected %.0f ± %.0f", what, got, n, mean, 5*sd)
	}
}

func TestLoss(t *testing.T) {
	p := newPair(t, 1, impair.Config{Loss: 10 * impair.Percent, Delay: time.Millisecond}, impair.Config{Delay: time.Millisecond})
	c := countUDP(p.w, p.l.AB)
	st := flowAB(t, p, UDPFlow{ID: 1, Count: 20000, Size: 200, Interval: 100 * time.Microsecond}, time.Second)
	near(t, "UDP frames lost", c.dropped, c.sent, 0.10)
	if c.dropReasons[impair.DropLoss] != c.dropped {
		t.Errorf("drops by reason %v", c.dropReasons)
	}
	// Every datagram the wire delivered reached the application, once.
	if st.Unique != c.delivered || st.Received != c.delivered || st.Duplicates != 0 {
		t.Errorf("wire delivered %d, sink got %+v", c.delivered, st)
	}
	if st.Unique > 18500 || st.Unique < 17000 {
		t.Errorf("%d of 20000 datagrams arrived at 10%% loss", st.Unique)
	}
	if got := p.l.AB.Impair().Dropped[impair.DropLoss]; got < c.dropped {
		t.Errorf("impair stats count %d losses, the observer %d", got, c.dropped)
	}
}

func TestBurstLoss(t *testing.T) {
	// Bursts of 1/R = 4 frames on average; P/(P+R) = 1/26 of frames lost.
	ge := impair.GilbertElliott{P: impair.Percent, R: 25 * impair.Percent, LossBad: impair.Always}
	p := newPair(t, 1, impair.Config{Burst: ge, Delay: time.Millisecond}, impair.Config{Delay: time.Millisecond})
	c := countUDP(p.w, p.l.AB)
	st := flowAB(t, p, UDPFlow{ID: 1, Count: 50000, Size: 100, Interval: 50 * time.Microsecond}, time.Second)
	var bursts, lost, run uint64
	for _, dropped := range c.fates {
		if dropped {
			lost++
			if run == 0 {
				bursts++
			}
			run++
		} else {
			run = 0
		}
	}
	frac := float64(lost) / float64(c.sent)
	if frac < 0.025 || frac > 0.055 {
		t.Errorf("%.2f%% lost, want about %.2f%%", 100*frac, 100.0/26)
	}
	if mean := float64(lost) / float64(bursts); mean < 3.2 || mean > 4.8 {
		t.Errorf("bursts of %.2f frames on average, want about 4", mean)
	}
	if c.dropReasons[impair.DropBurst] != lost || st.Unique != c.delivered {
		t.Errorf("drops by reason %v; wire delivered %d, sink got %d", c.dropReasons, c.delivered, st.Unique)
	}
}

func TestDuplication(t *testing.T) {
	p := newPair(t, 1, impair.Config{Duplicate: 10 * impair.Percent, Delay: time.Millisecond}, impair.Config{Delay: time.Millisecond})
	c := countUDP(p.w, p.l.AB)
	st := flowAB(t, p, UDPFlow{ID: 1, Count: 10000, Size: 300, Interval: 100 * time.Microsecond}, time.Second)
	near(t, "UDP frames duplicated", c.dups, c.sent, 0.10)
	// UDP delivers duplicates: the application sees each one.
	if st.Duplicates != c.dups || st.Unique != 10000 || st.Received != c.delivered {
		t.Errorf("wire duplicated %d and delivered %d; sink got %+v", c.dups, c.delivered, st)
	}
}

func TestCorruptionIsCaught(t *testing.T) {
	p := newPair(t, 1, impair.Config{Corrupt: 5 * impair.Percent, Delay: time.Millisecond}, impair.Config{Delay: time.Millisecond})
	c := countUDP(p.w, p.l.AB)
	// The sink fails the run if a single damaged payload reaches it.
	st := flowAB(t, p, UDPFlow{ID: 1, Count: 20000, Size: 1400, Interval: 100 * time.Microsecond}, time.Second)
	near(t, "UDP frames corrupted", c.corrupted, c.delivered, 0.05)
	// Each intact copy is delivered, each corrupted one is dropped by a
	// check and counted.
	if st.Received != c.delivered-c.corrupted {
		t.Errorf("%d copies, %d corrupted; the sink got %d", c.delivered, c.corrupted, st.Received)
	}
	bs := p.b.Stats()
	caught := bs.IPv4.BadChecksum + bs.IPv4.Malformed + bs.IPv4.Truncated + bs.UDP.BadChecksum + bs.UDP.Malformed
	if caught != c.corrupted {
		t.Errorf("%d corrupted copies, %d caught: %+v %+v", c.corrupted, caught, bs.IPv4, bs.UDP)
	}
	// Most bits are in the payload, where the UDP checksum catches them;
	// the IPv4 header's share (20 of 1428 bytes) has its own checksum.
	if bs.UDP.BadChecksum == 0 || bs.IPv4.BadChecksum+bs.IPv4.Malformed+bs.IPv4.Truncated == 0 {
		t.Errorf("checksums caught nothing in one of the layers: %+v %+v", bs.IPv4, bs.UDP)
	}
}

func TestReorder(t *testing.T) {
	cfg := impair.Config{Reorder: 10 * impair.Percent, Delay: 5 * time.Millisecond} // held 10ms
	p := newPair(t, 1, cfg, impair.Config{Delay: 5 * time.Millisecond})
	var held uint64
	p.w.Observe(func(e *WireEvent) {
		if e.Kind == Sent && e.Dir == p.l.AB && isUDP(e.Frame, 9) {
			held = p.l.AB.Impair().Reordered // after this frame's decision
		}
	})
	st := flowAB(t, p, UDPFlow{ID: 1, Count: 5000, Size: 100, Interval: time.Millisecond}, time.Second)
	// A held copy arrives after the ~10 frames sent in its hold; only the
	// last few frames of the flow have none behind them.
	if st.Reordered > held || st.Reordered+10 < held || st.Unique != 5000 {
		t.Errorf("%d copies held; sink got %+v", held, st)
	}
	near(t, "frames held", held, 5000, 0.10)
}

// Jitter spreads each frame's delay over [Delay-Jitter, Delay+Jitter]
// without reordering the flow.
func TestJitter(t *testing.T) {
	cfg := impair.Config{Delay: 10 * time.Millisecond, Jitter: 5 * time.Millisecond}
	p := newPair(t, 1, cfg, impair.Config{Delay: time.Millisecond})
	var sentAt []mono.Time
	var lo, hi, sum time.Duration = time.Hour, 0, 0
	p.w.Observe(func(e *WireEvent) {
		if e.Dir != p.l.AB || !isUDP(e.Frame, 9) {
			return
		}
		switch e.Kind {
		case Sent:
			sentAt = append(sentAt, e.At)
		case Delivered:
			// Sparse frames, so each arrives before the next is sent.
			d := e.At.Sub(sentAt[len(sentAt)-1])
			lo, hi, sum = min(lo, d), max(hi, d), sum+d
		}
	})
	st := flowAB(t, p, UDPFlow{ID: 1, Count: 2000, Size: 100, Interval: 20 * time.Millisecond}, time.Second)
	if st.Unique != 2000 || st.Reordered != 0 {
		t.Fatalf("sink got %+v", st)
	}
	if mean := sum / 2000; lo < 5*time.Millisecond || hi > 15*time.Millisecond || hi-lo < 9*time.Millisecond ||
		mean < 9700*time.Microsecond || mean > 10300*time.Microsecond {
		t.Errorf("delays span [%v, %v], mean %v; want [5ms, 15ms] around 10ms", lo, hi, mean)
	}
}

func TestPartition(t *testing.T) {
	part := []impair.Interval{{Start: mono.Time(2 * time.Second), End: mono.Time(5 * time.Second)}}
	cfg := impair.Config{Delay: time.Millisecond, Partitions: part}
	p := newPair(t, 1, cfg, cfg)
	c := countUDP(p.w, p.l.AB)
	var inWindow int
	p.w.Observe(func(e *WireEvent) {
		if e.Kind == Delivered && e.At >= part[0].Start && e.At < part[0].End {
			inWindow++
		}
	})
	must(p.w.ListenUDPEcho(p.b, 7))(t)
	var q *Requester
	p.w.At(mono.Time(1900*time.Millisecond), func() {
		q = must(p.w.StartRequests(p.a, Requests{ID: 2, Dst: netip.AddrPortFrom(addrB, 7), Count: 400,
			Timeout: 100 * time.Millisecond, MaxTimeout: time.Second}))(t)
	})
	st := flowAB(t, p, UDPFlow{ID: 1, Count: 800, Size: 100, Interval: 10 * time.Millisecond}, time.Second)
	if err := p.w.RunUntil(q.Task().Done, mono.Time(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if inWindow != 0 {
		t.Errorf("%d frames delivered during the partition", inWindow)
	}
	// Datagrams sent in [2s, 5s), or in the millisecond before it (they
	// would arrive inside it), are lost; no other.
	if c.dropReasons[impair.DropPartition] != c.dropped || st.Unique != c.delivered || st.Unique < 495 || st.Unique > 505 {
		t.Errorf("drops by reason %v, wire delivered %d, sink got %+v", c.dropReasons, c.delivered, st)
	}
	// Requests stall in the partition, are retried and complete after it.
	if q.Completed() != 400 || q.Retransmits == 0 || q.Finished < part[0].End {
		t.Errorf("requests: %d completed, %d retransmits, finished at %v", q.Completed(), q.Retransmits, q.Finished)
	}
}

func TestRateLimit(t *testing.T) {
	const rate = 1_000_000
	cfg := impair.Config{Rate: rate, Queue: 20000, Delay: time.Millisecond}
	p := newPair(t, 1, cfg, impair.Config{Delay: time.Millisecond})
	// Offer ten times the rate: 1250-byte payloads (1292-byte frames) every
	// millisecond for 4 seconds.
	st := flowAB(t, p, UDPFlow{ID: 1, Count: 4000, Size: 1250, Interval: time.Millisecond}, time.Second)
	d := p.l.AB
	if d.Impair().Dropped[impair.DropQueue] == 0 {
		t.Error("no frame dropped at the queue")
	}
	const frame = 1250 + 8 + 20 + 14
	span := st.Last.Sub(st.First)
	bps := float64((st.Unique-1)*frame*8) / span.Seconds()
	if bps > rate*1.001 || bps < rate*0.97 {
		t.Errorf("throughput %.0f bit/s over %v, want %d", bps, span, rate)
	}
	// Everything delivered fits the rate plus the queue.
	total := float64(d.Stats().DeliveredBytes * 8)
	if bound := rate*(time.Duration(p.w.Now())).Seconds() + 20000*8; total > bound {
		t.Errorf("%.0f bits delivered, more than the rate and queue allow (%.0f)", total, bound)
	}
}

func TestMTU(t *testing.T) {
	p := newPair(t, 1, impair.Config{MTU: 1000}, impair.Config{})
	c := countUDP(p.w, p.l.AB)
	st := flowAB(t, p, UDPFlow{ID: 1, Count: 10, Size: 1000, Interval: time.Millisecond}, time.Second)
	if st.Unique != 0 || c.dropReasons[impair.DropMTU] != 10 {
		t.Errorf("1042-byte frames over an MTU of 1000: sink got %d, drops %v", st.Unique, c.dropReasons)
	}
	p = newPair(t, 1, impair.Config{MTU: 1000}, impair.Config{})
	if st := flowAB(t, p, UDPFlow{ID: 1, Count: 10, Size: 500, Interval: time.Millisecond}, time.Second); st.Unique != 10 {
		t.Errorf("542-byte frames over an MTU of 1000: sink got %d", st.Unique)
	}
}

func TestMaxInFlight(t *testing.T) {
	w := New(Config{Seed: 1, MaxInFlight: 10})
	t.Cleanup(func() { w.Close() })
	a := must(w.AddHost("a"))(t)
	b := must(w.AddHost("b"))(t)
	slow := impair.Config{Delay: time.Second}
	l := must(w.Link(End{Host: a, Addr: prefixA}, End{Host: b, Addr: prefixB}, slow, slow))(t)
	p := &pair{w: w, a: a, b: b, l: l}
	c := countUDP(w, l.AB)
	st := flowAB(t, p, UDPFlow{ID: 1, Count: 1000, Size: 100, Interval: 10 * time.Millisecond}, 2*time.Second)
	// A second's delay at 100 datagrams a second keeps 100 in flight:
	// about 10 of every 100 fit.
	if c.dropReasons[ReasonOverflow] == 0 || l.AB.Stats().Overflow != c.dropReasons[ReasonOverflow] {
		t.Errorf("overflow drops: observer %v, stats %+v", c.dropReasons, l.AB.Stats())
	}
	if st.Unique == 0 || st.Unique > 150 || st.Unique != c.delivered {
		t.Errorf("sink got %d of 1000, wire delivered %d", st.Unique, c.delivered)
	}
}

func TestPingRTT(t *testing.T) {
	cfg := impair.Config{Delay: 25 * time.Millisecond}
	p := newPair(t, 1, cfg, cfg)
	pg := must(p.w.StartPing(p.a, Ping{Dst: addrB, Count: 5, Interval: time.Second}))(t)
	// Let the neighbours learn each other first: their announcements
	// arrive after one delay.
	if err := p.w.RunUntil(pg.Task().Done, mono.Time(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if pg.Received != 5 || pg.Duplicates != 0 || pg.RTT.Max > 2*2*25*time.Millisecond || pg.RTT.Min != 50*time.Millisecond {
		t.Errorf("ping: %d replies, %d duplicates, RTT %v", pg.Received, pg.Duplicates, pg.RTT)
	}
}
