package sim

import (
	"testing"
	"time"

	"github.com/tapstack/tapstack/mono"
	"github.com/tapstack/tapstack/sim/impair"
	"github.com/tapstack/tapstack/tcp"
)

// Through a bottleneck with a deep queue and nothing lost, the window the
// receiver offers (about a megabyte here) would keep three quarters of it
// queued, a round trip of 8.5 ms on a 2 ms path. The sender's in-flight
// governor finds that half and a quarter of it deliver as fast, and keeps
// the queue short at nearly the full rate, for one connection and for two
// sharing the link.
func TestTCPDeepQueueStaysShort(t *testing.T) {
	const (
		rate  = 1_000_000_000 // bits/s
		delay = time.Millisecond
		size  = 64 << 20 // per connection
	)
	bdp := rate / 8 * int(2*delay) / int(time.Second)
	for _, conns := range []int{1, 2} {
		fwd := impair.Config{Delay: delay, Rate: rate, Queue: 16 << 20}
		back := impair.Config{Delay: delay}
		p := newPair(t, 5, fwd, back)
		run := must(p.w.StartTransfer(Transfer{Transport: TCP{}, Client: p.a, Server: p.b, Port: 80, Conns: conns, Bytes: size, SampleInfo: true}))(t)
		if err := p.w.RunUntil(run.Done, mono.Time(time.Hour)); err != nil {
			t.Fatal(err)
		}
		line := time.Duration(int64(conns) * size * 8 * int64(time.Second) / rate)
		for _, c := range run.Conns {
			ci := c.ClientInfo
			last := ci.Samples[len(ci.Samples)*3/4:]
			var sum time.Duration
			var maxFlight int
			for _, s := range last {
				sum, maxFlight = sum+s.SRTT, max(maxFlight, s.InFlight)
			}
			meanSRTT := sum / time.Duration(len(last))
			t.Logf("%d connections, #%d: done at %v (%v at line rate); last quarter: mean srtt %v, flight at most %d (path's window %d)",
				conns, c.ID, c.Closed, line, meanSRTT, maxFlight, bdp)
			if time.Duration(c.Closed) > line*115/100 || ci.Info.Retransmits != 0 {
				t.Errorf("%d connections, #%d: done at %v with %d retransmissions; %v at line rate", conns, c.ID, c.Closed, ci.Info.Retransmits, line)
			}
			// Trials up run at twice the cap now and then.
			if meanSRTT > 2*delay+delay/2 || maxFlight > 3*bdp {
				t.Errorf("%d connections, #%d, last quarter: mean srtt %v, flight up to %d on a %v path with a %d-byte window",
					conns, c.ID, meanSRTT, maxFlight, 2*delay, bdp)
			}
		}
	}
}

// Slow start into a drop-tail queue overshoots it and loses half a window
// of a megabyte; the receiver holds everything past the holes meanwhile,
// so recovery resends what the wire dropped and little more, without a
// timeout. (With the out-of-order queue bounded at 256 segments, the
// receiver discarded the rest of each window: 2.4k segments resent for
// 1.0k dropped, three timeouts, half the rate.)
func TestTCPOvershootRecoversWhatWasDropped(t *testing.T) {
	fwd := impair.Config{Delay: 20 * time.Millisecond, Rate: 50_000_000, Queue: 250_000}
	back := impair.Config{Delay: 20 * time.Millisecond}
	for _, cc := range []string{"reno", "cubic"} {
		newCC := must(tcp.CongestionControlByName(cc))(t)
		w := New(Config{Seed: 1, TCP: tcp.Config{NewCongestionControl: newCC}})
		t.Cleanup(func() { w.Close() })
		a := must(w.AddHost("a"))(t)
		b := must(w.AddHost("b"))(t)
		must(w.Link(End{Host: a, Addr: prefixA}, End{Host: b, Addr: prefixB}, fwd, back))(t)
		p := &pair{w: w, a: a, b: b}
		tr := p.w.TraceTCP()
		run := must(p.w.StartTransfer(Transfer{Transport: TCP{}, Client: p.a, Server: p.b, Port: 80, Conns: 1, Bytes: 8 << 20}))(t)
		if err := p.w.RunUntil(run.Done, mono.Time(time.Hour)); err != nil {
			t.Fatal(err)
		}
		f := tr.Flows()[0]
		st := f.Stats
		secs := time.Duration(run.Conns[0].Received - run.Conns[0].Started).Seconds()
		rate := float64(8<<20) * 8 / secs
		t.Logf("%s: %d segments resent, %d dropped by the wire, %.1f Mbit/s", cc, st.Retransmits, st.Dropped, rate/1e6)
		if st.Dropped == 0 || st.Retransmits > st.Dropped*3/2 || rate < 30e6 {
			t.Errorf("%s: %d segments resent for %d the wire dropped, %.1f Mbit/s on a 50 Mbit/s path", cc, st.Retransmits, st.Dropped, rate/1e6)
		}
	}
}
