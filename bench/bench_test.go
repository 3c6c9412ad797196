package main

import (
	"bytes"
	"context"
	"math"
	"net"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tapstack/tapstack/sim/impair"
)

func TestWirePerfectKeepsOrderAndCopies(t *testing.T) {
	ab, _, err := newWire(wireConfig{MTU: 1500})
	if err != nil {
		t.Fatal(err)
	}
	const n = 3000 // more than the ring's first size, so it grows
	src := make([]byte, 100)
	for i := range n {
		src[0], src[1] = byte(i), byte(i>>8)
		ab.write(src[:50], src[50:]) // two parts make one packet
	}
	src[0] = 0xff // the lane holds its own copy
	got := 0
	bufs := make([][]byte, 64)
	for got < n {
		k, err := ab.read(bufs)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range bufs[:k] {
			if len(b) != 100 || int(b[0])|int(b[1])<<8 != got&0xffff {
				t.Fatalf("packet %d: got len %d, index %d", got, len(b), int(b[0])|int(b[1])<<8)
			}
			got++
		}
		ab.release(bufs[:k])
	}
	if st := ab.stats(); st.Sent != n || st.QueueDrops != 0 || st.ImpairDrops != 0 {
		t.Fatalf("stats %+v", st)
	}
	// Oversized and empty packets are not sent.
	ab.write(make([]byte, 1501))
	ab.write()
	if st := ab.stats(); st.Sent != n {
		t.Fatalf("oversized or empty packet counted as sent: %+v", st)
	}
}

func TestWireFullDropsAndCounts(t *testing.T) {
	ab, _, err := newWire(wireConfig{MTU: 1500})
	if err != nil {
		t.Fatal(err)
	}
	for range laneFramesMax + 10 {
		ab.write([]byte{1})
	}
	if st := ab.stats(); st.QueueDrops != 10 {
		t.Fatalf("queue drops %d, want 10", st.QueueDrops)
	}
}

func TestWireImpairmentDropsAndReorders(t *testing.T) {
	cfg := impair.Config{Loss: 10 * impair.Percent, Reorder: 10 * impair.Percent, ReorderDelay: time.Millisecond}
	ab, _, err := newWire(wireConfig{MTU: 1500, Impair: &cfg, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	const n = 2000
	for i := range n {
		ab.write([]byte{byte(i), byte(i >> 8)})
	}
	st := ab.stats()
	if st.ImpairDrops < n/20 || st.ImpairDrops > n/5 {
		t.Fatalf("%d of %d dropped with 10%% loss", st.ImpairDrops, n)
	}
	want := n - int(st.ImpairDrops)
	var order []int
	bufs := make([][]byte, 64)
	deadline := time.Now().Add(5 * time.Second)
	for len(order) < want && time.Now().Before(deadline) {
		k, err := ab.read(bufs)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range bufs[:k] {
			order = append(order, int(b[0])|int(b[1])<<8)
		}
		ab.release(bufs[:k])
	}
	if len(order) != want {
		t.Fatalf("delivered %d, want %d", len(order), want)
	}
	late := 0
	for i := 1; i < len(order); i++ {
		if order[i] < order[i-1] {
			late++
		}
	}
	if late == 0 {
		t.Fatal("10% reordering delivered everything in order")
	}
}

func TestWireCloseWakesReader(t *testing.T) {
	ab, _, err := newWire(wireConfig{MTU: 1500})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := ab.read(make([][]byte, 1))
		done <- err
	}()
	ab.close()
	if err := <-done; err != errWireClosed {
		t.Fatalf("read after close: %v", err)
	}
}

// flipConn corrupts one byte of what it forwards.
type flipConn struct {
	net.Conn
	at, seen int
}

func (c *flipConn) Write(p []byte) (int, error) {
	q := bytes.Clone(p)
	if c.at >= c.seen && c.at < c.seen+len(q) {
		q[c.at-c.seen] ^= 1
	}
	c.seen += len(q)
	return c.Conn.Write(q)
}

func TestPatternVerifies(t *testing.T) {
	for _, tc := range []struct {
		name    string
		flip    int // -1: none
		wantErr string
	}{
		{"intact", -1, ""},
		{"corrupt", 8 + patPeriod + 12345, "data mismatch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := net.Pipe()
			var w net.Conn = a
			if tc.flip >= 0 {
				w = &flipConn{Conn: a, at: tc.flip}
			}
			const n = 3*patPeriod + 777 // crosses the period, an odd tail
			go func() { _ = sendPattern(w, 5, n, 50_000) }()
			idx, got, err := recvPattern(b, make([]byte, patRead), new(atomic.Int64))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || idx != 5 || got != n {
				t.Fatalf("idx %d, %d bytes, %v", idx, got, err)
			}
		})
	}
}

// TestWorkloadsOnBothStacks runs each TCP workload small on each stack.
func TestWorkloadsOnBothStacks(t *testing.T) {
	sps := []spec{
		{Name: "bulk", Kind: "bulk", MTU: 1500, Conns: 2, Bytes: 1 << 20, WriteSize: appWrite},
		{Name: "bulk jumbo", Kind: "bulk", MTU: 65535, Conns: 1, Bytes: 4 << 20, WriteSize: appWrite},
		{Name: "lossy", Kind: "lossy", MTU: 1500, Conns: 1, Bytes: 1 << 20, WriteSize: appWrite,
			Loss: 1 * impair.Percent, Reorder: 1 * impair.Percent, Seed: 1},
		{Name: "rr", Kind: "rr", MTU: 1500, Iters: 200},
		{Name: "crr", Kind: "crr", MTU: 1500, Iters: 50},
		{Name: "idle", Kind: "idle", MTU: 1500, Pairs: 100},
		{Name: "checksum", Kind: "checksum", Size: 1500, Duration: time.Millisecond},
	}
	for _, st := range stacks {
		for _, sp := range sps {
			t.Run(st+"/"+sp.Name, func(t *testing.T) {
				m, err := runWorkload(sp, st)
				if err != nil {
					t.Fatal(err)
				}
				if len(m.metrics) == 0 {
					t.Fatal("no metrics")
				}
				for _, x := range m.metrics {
					// Memory deltas are meaningful in a fresh child
					// process, not after other tests' stacks.
					negOK := sp.Kind == "idle"
					if math.IsNaN(x.Value) || (x.Value < 0 && !negOK) || (x.Better != higher && x.Better != lower) {
						t.Errorf("metric %+v", x)
					}
				}
			})
		}
	}
}

func TestChecksumAgreesWithReference(t *testing.T) {
	for _, n := range []int{0, 1, 63, 64, 1500, 65535} {
		b := bytes.Repeat([]byte{0xde, 0xad, 0xbe}, n/3+1)[:n]
		if got := referenceSum(b); n == 0 && got != 0 {
			t.Fatalf("empty sum %#x", got)
		}
		if _, err := runChecksum(spec{Size: max(n, 1), Duration: time.Millisecond}, "gvisor"); err != nil {
			t.Fatal(err)
		}
	}
}

func TestReportRows(t *testing.T) {
	sp := spec{Name: "c"}
	r := newReport([]spec{sp, {Name: "d"}}, stacks)
	met := func(v float64) []metric { return []metric{{Name: "m", Unit: "u", Better: higher, Value: v}} }
	for i, v := range []float64{3, 1, 2} {
		r.add(result{Case: "c", Stack: "tapstack", Run: i + 1, Metrics: met(v)})
		r.add(result{Case: "c", Stack: "gvisor", Run: i + 1, Metrics: met(v * 2)})
	}
	r.add(result{Case: "d", Stack: "tapstack", Run: 1, Unavailable: "no TCP"})
	r.add(result{Case: "d", Stack: "gvisor", Run: 1, Error: "boom"})
	rows := r.rows()
	if len(rows) != 2 {
		t.Fatalf("%d rows", len(rows))
	}
	c := rows[0]
	if got := c.Cells["tapstack"].String(); got != "1.00 / 2.00 / 3.00" {
		t.Errorf("tapstack cell %q", got)
	}
	if c.ratioString() != "0.50" {
		t.Errorf("ratio %q", c.ratioString())
	}
	d := rows[1]
	if d.Cells["tapstack"].String() != "not available" || d.Cells["gvisor"].String() != "FAILED" || d.ratioString() != "-" {
		t.Errorf("row d: %q %q %q", d.Cells["tapstack"], d.Cells["gvisor"], d.ratioString())
	}
	if r.failures() != 1 {
		t.Errorf("failures %d", r.failures())
	}
	var md strings.Builder
	r.writeMarkdown(&md)
	if !strings.Contains(md.String(), "| c | m | u | higher | 1.00 / 2.00 / 3.00 | 2.00 / 4.00 / 6.00 | 0.50 |") ||
		!strings.Contains(md.String(), "not available: no TCP") {
		t.Errorf("markdown:\n%s", md.String())
	}
	if median([]float64{1, 2, 3, 4}) != 2.5 {
		t.Error("even median")
	}
}

func TestPlan(t *testing.T) {
	for _, sz := range []sizes{defaultSizes, quickSizes} {
		sps := plan(kinds, sz)
		seen := map[string]bool{}
		for _, sp := range sps {
			if seen[sp.Name] {
				t.Errorf("duplicate case %q", sp.Name)
			}
			seen[sp.Name] = true
		}
		if len(sps) != 4+1+1+1+len(sz.idlePairs)+3+6 {
			t.Errorf("%d cases", len(sps))
		}
	}
	if _, err := parseKinds("bulk,nope"); err == nil {
		t.Error("unknown case accepted")
	}
	if got := fmtBytes(128 << 20); got != "128MiB" {
		t.Error(got)
	}
	if got := reproduce([]string{"-all", "-json", "x.json", "-md=y.md", "-runs", "5"}); got != "go -C bench run . -all -runs 5" {
		t.Error(got)
	}
	if got := slug("lossy 1x64MiB mtu1500 1%loss"); got != "lossy-1x64MiB-mtu1500-1pctloss" {
		t.Error(got)
	}
}

// TestChildProtocol runs the program as the parent does, so the -child
// path and the result line stay in step.
func TestChildProtocol(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs children")
	}
	exe := t.TempDir() + "/bench"
	if out, err := exec.Command("go", "build", "-o", exe, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	res := runChild(context.Background(), exe, spec{Name: "checksum 64B", Kind: "checksum", Size: 64, Duration: time.Millisecond}, "tapstack", 1, "", time.Minute)
	if res.Error != "" || len(res.Metrics) != 1 || res.Run != 1 || res.Stack != "tapstack" {
		t.Fatalf("%+v", res)
	}
	res = runChild(context.Background(), exe, spec{Name: "x", Kind: "nonsense"}, "gvisor", 2, "", time.Minute)
	if !strings.Contains(res.Error, "unknown case kind") {
		t.Fatalf("%+v", res)
	}
}

func TestParseTCPSettings(t *testing.T) {
	cfg, err := parseTCPSettings("NoTLP=true, SendBufferMax=1048576,RTOMin=50ms,CC=cubic")
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.NoTLP || cfg.SendBufferMax != 1<<20 || cfg.RTOMin != 50*time.Millisecond || cfg.NewCongestionControl == nil {
		t.Errorf("parsed %+v", cfg)
	}
	for _, bad := range []string{"NoTLP", "Bogus=1", "NoTLP=maybe", "RTOMin=5", "CC=vegas", "Stats=1", "ISNKey=1", "SendBufferMax=x"} {
		if _, err := parseTCPSettings(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// A/B mode runs both sides in the child and reports each metric as a
// ratio; a variant the same as the default gives ratios near 1.
func TestRunAB(t *testing.T) {
	sp := spec{Name: "ab", Kind: "bulk", MTU: 1500, Conns: 1, Bytes: 1 << 20, WriteSize: 64 << 10,
		AB: "NoTLP=false", ABPairs: 3}
	m, err := runAB(sp, "tapstack")
	if err != nil {
		t.Fatal(err)
	}
	if len(m.metrics) != 2 || m.info["pairs"] != 3 {
		t.Fatalf("metrics %+v, info %v", m.metrics, m.info)
	}
	for _, mt := range m.metrics {
		if mt.Unit != "variant/default" || !(mt.Value > 0.05 && mt.Value < 20) {
			t.Errorf("%+v", mt)
		}
		if r, _ := m.info[mt.Name+" ratios"].([]float64); len(r) != 3 {
			t.Errorf("%s: ratios %v", mt.Name, m.info[mt.Name+" ratios"])
		}
	}
	if _, err := runAB(spec{Kind: "idle", AB: "NoTLP=true"}, "tapstack"); err == nil {
		t.Error("A/B ran idle")
	}
	if _, err := runAB(sp, "gvisor"); err == nil {
		t.Error("A/B ran gVisor")
	}
}
