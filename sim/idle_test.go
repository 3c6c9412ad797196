package sim

import (
	"net/netip"
	"testing"
	"time"

	"github.com/tapstack/tapstack/mono"
	"github.com/tapstack/tapstack/netstack"
	"github.com/tapstack/tapstack/sim/impair"
	"github.com/tapstack/tapstack/tcp"
)

// idleConns opens n TCP connections from p.a to p.b, with keepalive
// probes every period on the clients' side, and returns both ends once
// every one is established.
func idleConns(t testing.TB, p *pair, n int, period time.Duration) (clients, servers []*netstack.TCPConn) {
	t.Helper()
	ln := must(p.b.Stack().ListenTCP(netip.AddrPortFrom(netip.IPv4Unspecified(), 22)))(t)
	for range n {
		c := must(p.a.Stack().StartDialTCP(netip.AddrPort{}, netip.AddrPortFrom(addrB, 22)))(t)
		if err := c.SetKeepAlive(true); err != nil {
			t.Fatal(err)
		}
		if err := c.SetKeepAlivePeriod(period); err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
	}
	accepted := func() bool {
		for {
			c, err := ln.TryAccept()
			if err != nil {
				return len(servers) == n
			}
			servers = append(servers, c)
		}
	}
	if err := p.w.RunUntil(accepted, p.w.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return clients, servers
}

// An hour of idle connections costs the keepalive probes and their
// answers, nothing more; closing them costs TIME-WAIT's one timer each,
// and then nothing is left.
func TestIdleHourKeepalive(t *testing.T) {
	const conns, period = 10, time.Minute
	p := newPair(t, 1, impair.Config{Delay: time.Millisecond}, impair.Config{Delay: time.Millisecond})
	clients, servers := idleConns(t, p, conns, period)
	frames := func() (n uint64) {
		for _, d := range p.w.Dirs() {
			n += d.Stats().Frames
		}
		return n
	}
	steps, sent := p.w.Steps(), frames()
	var tcpFrames, arpFrames uint64
	p.w.Observe(func(e *WireEvent) {
		if e.Kind != Sent {
			return
		}
		if _, _, _, ok := parseTCP(e.Frame); ok {
			tcpFrames++
		} else if e.Frame[12] == 0x08 && e.Frame[13] == 0x06 {
			arpFrames++
		}
	})
	if err := p.w.RunFor(time.Hour); err != nil {
		t.Fatal(err)
	}
	// Each probe: the client's timer, the probe, the answer; and each
	// side's neighbour entry is refreshed now and then.
	probes := p.a.Stats().TCP.KeepaliveProbes
	if probes < conns*59 || probes > conns*61 {
		t.Errorf("%d keepalive probes in an hour from %d connections every %v", probes, conns, period)
	}
	if n := p.w.Steps() - steps; n > 3*probes+100 {
		t.Errorf("an hour of %d keepalive probes took %d steps", probes, n)
	}
	// Each probe is answered; ARP re-checks each neighbour now and then.
	if n := frames() - sent; tcpFrames != 2*probes || n != tcpFrames+arpFrames || arpFrames > 200 {
		t.Errorf("an hour of %d keepalive probes put %d frames on the wire: %d TCP, %d ARP", probes, n, tcpFrames, arpFrames)
	}
	for i, c := range clients {
		if st := c.State(); st != tcp.Established || servers[i].State() != tcp.Established {
			t.Errorf("connection %d after an idle hour: %v and %v", i, st, servers[i].State())
		}
	}

	// The clients close first: TIME-WAIT, 60s, then nothing at all.
	for i := range clients {
		if err := clients[i].Close(); err != nil {
			t.Fatal(err)
		}
		if err := servers[i].Close(); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.w.RunFor(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	for i, c := range clients {
		if c.State() != tcp.TimeWait {
			t.Errorf("connection %d: client in %v, want TIME-WAIT", i, c.State())
		}
	}
	steps = p.w.Steps()
	if err := p.w.RunFor(time.Hour); err != nil {
		t.Fatal(err)
	}
	if n := p.w.Steps() - steps; n > conns+10 {
		t.Errorf("TIME-WAIT's end and an idle hour took %d steps", n)
	}
	for i, c := range clients {
		if c.State() != tcp.Closed {
			t.Errorf("connection %d: client in %v after TIME-WAIT", i, c.State())
		}
	}
	for _, h := range p.w.Hosts() {
		if d := h.Stack().NextDeadline(); d != mono.Never {
			t.Errorf("%s: a timer is still armed for %v", h.Name(), d)
		}
	}
}

// BenchmarkIdleHourKeepalive is an hour of 100 idle TCP connections
// probing every minute (6000 probes, 12000 frames), then their close and
// TIME-WAIT: what an hour of idle timers costs. x-realtime is the hour
// over the wall time it took.
func BenchmarkIdleHourKeepalive(b *testing.B) {
	b.ReportAllocs()
	var steps uint64
	for b.Loop() {
		p := newPair(b, 1, impair.Config{Delay: time.Millisecond}, impair.Config{Delay: time.Millisecond})
		clients, servers := idleConns(b, p, 100, time.Minute)
		if err := p.w.RunFor(time.Hour); err != nil {
			b.Fatal(err)
		}
		for i := range clients {
			clients[i].Close()
			servers[i].Close()
		}
		if err := p.w.RunFor(2 * time.Minute); err != nil {
			b.Fatal(err)
		}
		steps += p.w.Steps()
		p.w.Close()
	}
	b.ReportMetric(float64(steps)/float64(b.N), "steps/op")
	b.ReportMetric(float64(time.Hour)*float64(b.N)/float64(b.Elapsed()), "x-realtime")
}
