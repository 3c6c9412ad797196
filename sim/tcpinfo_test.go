package sim

import (
	"testing"
	"time"

	"github.com/tapstack/tapstack/mono"
	"github.com/tapstack/tapstack/sim/impair"
	"github.com/tapstack/tapstack/tcp"
)

type sampledRun struct {
	digest string
	steps  uint64
	run    *TransferRun
	p      *pair
}

func runSampled(t *testing.T, sample bool, infoSamples int) sampledRun {
	t.Helper()
	cfg := impair.Config{Loss: 2 * impair.Percent, Delay: 10 * time.Millisecond}
	w := New(Config{Seed: 3, InfoSamples: infoSamples})
	t.Cleanup(func() { w.Close() })
	a := must(w.AddHost("a"))(t)
	b := must(w.AddHost("b"))(t)
	l := must(w.Link(End{Host: a, Addr: prefixA}, End{Host: b, Addr: prefixB}, cfg, cfg))(t)
	run := must(w.StartTransfer(Transfer{Transport: TCP{}, Client: a, Server: b, Port: 80, Conns: 2, Bytes: 1 << 20, SampleInfo: sample}))(t)
	if err := w.RunUntil(run.Done, mono.Time(time.Hour)); err != nil {
		t.Fatal(err)
	}
	return sampledRun{digest: w.Digest(), steps: w.Steps(), run: run, p: &pair{w: w, a: a, b: b, l: l}}
}

// Sampling reads each connection's own state as the stack holds it, after
// every step that may have changed it, without changing the run.
func TestTCPInfoSampling(t *testing.T) {
	plain := runSampled(t, false, 0)
	r := runSampled(t, true, 0)
	if plain.digest != r.digest || plain.steps != r.steps {
		t.Fatalf("sampling changed the run: digest %s, %d steps; unsampled %s, %d steps", r.digest, r.steps, plain.digest, plain.steps)
	}
	for _, c := range plain.run.Conns {
		if c.ClientInfo != nil || c.ServerInfo != nil {
			t.Errorf("connection %d sampled without SampleInfo", c.ID)
		}
	}
	// The client's last ACK reaches the server.
	if err := r.p.w.RunFor(time.Second); err != nil {
		t.Fatal(err)
	}
	var perConn uint64
	for _, c := range r.run.Conns {
		ci, si := c.ClientInfo, c.ServerInfo
		if ci == nil || si == nil {
			t.Fatalf("connection %d: client series %v, server %v", c.ID, ci, si)
		}
		if ci.Name != "client/"+itoa(c.ID) || si.Name != "server/"+itoa(c.ID) || ci.Local != si.Remote || ci.Remote != si.Local {
			t.Errorf("connection %d: series %q %v>%v and %q %v>%v", c.ID, ci.Name, ci.Local, ci.Remote, si.Name, si.Local, si.Remote)
		}
		perConn += uint64(ci.Info.Retransmits + si.Info.Retransmits)
		// The client's view: a 20ms path, a window that grew and was cut.
		if ci.SRTT.N < 10 || ci.SRTT.Min < 20*time.Millisecond || ci.SRTT.Max > 200*time.Millisecond ||
			ci.SRTT.Mean() < ci.SRTT.Min || ci.SRTT.Mean() > ci.SRTT.Max {
			t.Errorf("connection %d: srtt %v", c.ID, ci.SRTT)
		}
		if ci.Info.Retransmits == 0 || ci.Info.BytesAcked != 1<<20+streamHeaderLen {
			t.Errorf("connection %d at 2%% loss: %+v", c.ID, ci.Info)
		}
		var grew, cut bool
		for i, s := range ci.Samples {
			if i > 0 && s.At <= ci.Samples[i-1].At {
				t.Fatalf("connection %d: sample %d at %v after one at %v", c.ID, i, s.At, ci.Samples[i-1].At)
			}
			grew = grew || s.Cwnd > 10*ci.Info.SndMSS
			cut = cut || s.Ssthresh < 1<<20
		}
		if !grew || !cut || ci.MaxCwnd <= 10*ci.Info.SndMSS {
			t.Errorf("connection %d: cwnd never grew past the initial 10 segments (%v) or ssthresh was never set (%v); max cwnd %d", c.ID, grew, cut, ci.MaxCwnd)
		}
		// The last sample is the connection's state at the end.
		last := ci.Samples[len(ci.Samples)-1]
		if last.State != ci.Info.State || last.Cwnd != ci.Info.Cwnd || last.Retransmits != ci.Info.Retransmits || ci.Info.State != tcp.TimeWait {
			t.Errorf("connection %d: last sample %+v, final state %+v", c.ID, last, ci.Info)
		}
		if !si.Done() || si.Info.State != tcp.Closed || ci.Done() {
			t.Errorf("connection %d: server sampling done %v in %v, client done %v in %v", c.ID, si.Done(), si.Info.State, ci.Done(), ci.Info.State)
		}
	}
	// Each connection's own counts add up to the stacks' totals.
	var total uint64
	for _, h := range r.p.w.Hosts() {
		total += h.Stats().TCP.Retransmits
	}
	if perConn != total {
		t.Errorf("connections counted %d retransmissions, the stacks %d", perConn, total)
	}
	// TIME-WAIT ends; the client's sampling stops with it.
	if err := r.p.w.RunFor(2 * time.Minute); err != nil {
		t.Fatal(err)
	}
	for _, c := range r.run.Conns {
		if !c.ClientInfo.Done() || c.ClientInfo.Info.State != tcp.Closed || len(r.p.w.probes) != 0 {
			t.Errorf("connection %d after TIME-WAIT: client in %v, %d still sampled", c.ID, c.ClientInfo.Info.State, len(r.p.w.probes))
		}
	}
}

// A series keeps at most InfoSamples samples, evenly coarser as the run
// goes on, and still ends with the final state.
func TestTCPInfoBounded(t *testing.T) {
	full := runSampled(t, true, 0)
	r := runSampled(t, true, 16)
	for i, c := range r.run.Conns {
		s, f := c.ClientInfo, full.run.Conns[i].ClientInfo
		if len(s.Samples) > 16 || len(s.Samples) < 8 || s.Resolution == 0 {
			t.Errorf("connection %d: %d samples at resolution %v, want 8..16 and coarser", c.ID, len(s.Samples), s.Resolution)
		}
		if len(f.Samples) <= 16 || f.Resolution != 0 {
			t.Errorf("connection %d: unbounded run kept %d samples at resolution %v", c.ID, len(f.Samples), f.Resolution)
		}
		// What every change updates does not depend on the bound.
		if s.Info != f.Info || s.SRTT != f.SRTT || s.MaxCwnd != f.MaxCwnd {
			t.Errorf("connection %d: bounded %+v %v %d; unbounded %+v %v %d", c.ID, s.Info, s.SRTT, s.MaxCwnd, f.Info, f.SRTT, f.MaxCwnd)
		}
		if s.Samples[0].At != f.Samples[0].At || s.Samples[len(s.Samples)-1].Cwnd != s.Info.Cwnd {
			t.Errorf("connection %d: first sample at %v (want %v), last %+v", c.ID, s.Samples[0].At, f.Samples[0].At, s.Samples[len(s.Samples)-1])
		}
	}
}

func itoa(i int) string { return string(rune('0' + i)) }
