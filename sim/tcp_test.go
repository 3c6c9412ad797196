package sim

import (
	"errors"
	"syscall"
	"testing"
	"time"

	"github.com/tapstack/tapstack/mono"
	"github.com/tapstack/tapstack/netstack"
	"github.com/tapstack/tapstack/sim/impair"
	"github.com/tapstack/tapstack/tcp"
)

func TestTCPTransfer(t *testing.T) {
	cfg := impair.Config{Delay: 5 * time.Millisecond}
	p := newPair(t, 1, cfg, cfg)
	run := must(p.w.StartTransfer(Transfer{Transport: TCP{}, Client: p.a, Server: p.b, Port: 80, Conns: 3, Bytes: 4 << 20}))(t)
	if err := p.w.RunUntil(run.Done, mono.Time(time.Hour)); err != nil {
		t.Fatal(err)
	}
	// The client's last ACK reaches the server.
	if err := p.w.RunFor(time.Second); err != nil {
		t.Fatal(err)
	}
	for _, c := range run.Conns {
		if c.Verified != 4<<20 || c.Closed == mono.Never || c.Redials != 0 {
			t.Errorf("connection %d: %+v", c.ID, c)
		}
		// The client closed first: it waits in TIME-WAIT; the server is
		// gone.
		if st := c.client.(*netstack.TCPConn).State(); st != tcp.TimeWait {
			t.Errorf("connection %d: client in %v", c.ID, st)
		}
		if st := c.server.(*netstack.TCPConn).State(); st != tcp.Closed {
			t.Errorf("connection %d: server in %v", c.ID, st)
		}
	}
	if n := p.a.Stats().TCP.Retransmits; n != 0 {
		t.Errorf("%d retransmissions on a clean link", n)
	}
	// TIME-WAIT ends, and then nothing is left to do.
	if err := p.w.RunFor(5 * time.Minute); err != nil {
		t.Fatal(err)
	}
	for _, c := range run.Conns {
		if st := c.client.(*netstack.TCPConn).State(); st != tcp.Closed {
			t.Errorf("connection %d: client in %v after TIME-WAIT", c.ID, st)
		}
	}
	before := p.w.Steps()
	if err := p.w.RunFor(time.Hour); err != nil {
		t.Fatal(err)
	}
	if n := p.w.Steps() - before; n > 10 {
		t.Errorf("an idle hour after the transfer took %d steps", n)
	}
}

// TCP through a bottleneck: 100 Mbit/s with the default 64 KiB tail-drop
// queue, 10ms RTT. Slow start overshoots the queue, as it should, and
// drops a hundred segments at once; SACK recovery repairs them in about an
// RTT, without a timeout, retransmitting little more than was dropped.
func TestTCPBottleneck(t *testing.T) {
	cfg := impair.Config{Delay: 5 * time.Millisecond, Rate: 100_000_000}
	p := newPair(t, 1, cfg, cfg)
	run := must(p.w.StartTransfer(Transfer{Transport: TCP{}, Client: p.a, Server: p.b, Port: 80, Conns: 1, Bytes: 4 << 20}))(t)
	if err := p.w.RunUntil(run.Done, mono.Time(time.Hour)); err != nil {
		t.Fatal(err)
	}
	st := p.a.Stats().TCP
	drops := p.l.AB.Impair().Dropped[impair.DropQueue]
	end := run.Conns[0].Closed
	t.Logf("4 MiB in %v: %d retransmissions, %d timeouts, %d D-SACKs, %d undos; %d queue drops",
		end, st.Retransmits, st.Timeouts, st.DSACKsReceived, st.Undos, drops)
	// 4 MiB take 336 ms at 100 Mbit/s, plus slow start's few RTTs.
	if end > mono.Time(600*time.Millisecond) || st.Timeouts > 0 || st.Retransmits > drops+drops/10 {
		t.Errorf("4 MiB over 100 Mbit/s took %v with %d timeouts and %d retransmissions for %d drops",
			end, st.Timeouts, st.Retransmits, drops)
	}
}

// A connection whose SYN cannot leave (the neighbour does not answer ARP
// for the first seconds) fails with EHOSTUNREACH; the application dials
// again if it may, and fails cleanly, not hanging, if it may not.
func TestTCPRedial(t *testing.T) {
	cut := []impair.Interval{{Start: 0, End: mono.Time(5 * time.Second)}}
	cfg := impair.Config{Delay: 5 * time.Millisecond, Partitions: cut}
	for _, redials := range []int{0, 3} {
		p := newPair(t, 1, cfg, cfg)
		run := must(p.w.StartTransfer(Transfer{Transport: TCP{}, Client: p.a, Server: p.b, Port: 80, Conns: 2, Bytes: 1 << 20, Redials: redials}))(t)
		err := p.w.RunUntil(run.Done, mono.Time(time.Hour))
		if redials == 0 {
			if !errors.Is(err, syscall.EHOSTUNREACH) {
				t.Errorf("no redials: %v", err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range run.Conns {
			if c.Redials == 0 || c.Verified != 1<<20 {
				t.Errorf("connection %d: %+v", c.ID, c)
			}
		}
	}
}
