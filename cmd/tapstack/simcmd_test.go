package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tapstack/tapstack/mono"
	"github.com/tapstack/tapstack/sim"
	"github.com/tapstack/tapstack/sim/impair"
)

var traceLine = regexp.MustCompile(`(?m)^trace: ([0-9a-f]{64})$`)

func simTrace(t *testing.T, args ...string) (string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	if code := run(append([]string{"sim"}, args...), &out, &errb); code != 0 {
		t.Fatalf("tapstack sim %q: status %d\n%s%s", args, code, out.String(), errb.String())
	}
	m := traceLine.FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no trace line in:\n%s", out.String())
	}
	return m[1], out.String()
}

func TestSimReplaysAndVerifies(t *testing.T) {
	dir := t.TempDir()
	pcap, svg := filepath.Join(dir, "s.pcap"), filepath.Join(dir, "s.svg")
	args := []string{"--loss", "2%", "--reorder", "1%", "--dup", "0.5%", "--corrupt", "0.5%", "--delay", "5ms",
		"--bytes", "300000", "--conns", "2"}
	a, out := simTrace(t, append([]string{"--seed", "5", "--pcap", pcap, "--plot", svg}, args...)...)
	if !strings.Contains(out, "600000 delivered and verified (100.0%)") {
		t.Fatalf("transfer not verified:\n%s", out)
	}
	// Each connection as its stack saw it: retransmissions and RTT.
	conn := regexp.MustCompile(`(?m)^  conn (\d) 10\.0\.0\.1:\d+>10\.0\.0\.2:5001: 300000 bytes verified.*\n` +
		`    stack: (\d+) retransmissions \(.*srtt min/mean/max (\S+)/(\S+)/(\S+), max cwnd \d+ bytes\n`)
	if m := conn.FindAllStringSubmatch(out, -1); len(m) != 2 || m[0][1] != "0" || m[1][1] != "1" {
		t.Errorf("no per-connection lines:\n%s", out)
	}
	b, _ := simTrace(t, append([]string{"--seed", "5"}, args...)...)
	c, _ := simTrace(t, append([]string{"--seed", "6"}, args...)...)
	if a != b {
		t.Fatalf("same seed, different traces: %s and %s", a, b)
	}
	if a == c {
		t.Fatalf("seeds 5 and 6 gave the same trace %s", a)
	}
	if p, err := os.ReadFile(pcap); err != nil || len(p) < 24+16 || p[0] != 0x4d {
		t.Fatalf("pcap: %d bytes, %v", len(p), err)
	}
	if s, err := os.ReadFile(svg); err != nil || !bytes.Contains(s, []byte("<svg")) || !bytes.Contains(s, []byte("10.0.0.1:")) ||
		!bytes.Contains(s, []byte("cwnd (client/1)")) {
		t.Fatalf("plot: %v\n%.200s", err, s)
	}
}

// --cc reaches both stacks: under loss CUBIC's window differs from
// NewReno's, and so does the run, byte for byte.
func TestSimCongestionControl(t *testing.T) {
	args := []string{"--seed", "3", "--loss", "1%", "--delay", "5ms", "--bytes", "2000000"}
	reno, _ := simTrace(t, args...)
	named, _ := simTrace(t, append([]string{"--cc", "reno"}, args...)...)
	cubic, _ := simTrace(t, append([]string{"--cc", "cubic"}, args...)...)
	if reno != named || reno == cubic {
		t.Fatalf("traces: default %s, --cc reno %s, --cc cubic %s", reno, named, cubic)
	}
}

// Every option Result.Command writes, sim's flags read back.
func TestSimCommandRoundTrip(t *testing.T) {
	for _, o := range []sim.TransferOptions{
		{Seed: 1, Bytes: 1, Conns: 1},
		{Seed: 1<<64 - 1, Loss: 12345, Reorder: impair.Percent, Dup: 1, Corrupt: impair.Always,
			Burst: impair.GilbertElliott{P: impair.Percent, R: 30 * impair.Percent, LossBad: impair.Always},
			Delay: 20 * time.Millisecond, Jitter: 1500 * time.Microsecond, Rate: 12_345_678, Queue: 100_000,
			Partitions: []impair.Interval{{Start: mono.Time(2 * time.Second), End: mono.Time(5 * time.Second)}, {Start: mono.Time(time.Minute), End: mono.Never}},
			CC:         "cubic", Bytes: 4 << 20, Conns: 4, Limit: 10 * time.Minute},
		{Seed: 3, Burst: impair.GilbertElliott{P: 1, R: 2, LossBad: 3, LossGood: 4}, UDP: true, UDPInterval: 250 * time.Microsecond, Bytes: 1000, Conns: 2},
	} {
		r := sim.Result{Options: o}
		args := strings.Fields(r.Command())
		if args[0] != "tapstack" || args[1] != "sim" {
			t.Fatalf("Command() = %q", r.Command())
		}
		got, _, err := parseSimArgs(args[2:], io.Discard)
		if err != nil {
			t.Fatalf("%s: %v", r.Command(), err)
		}
		if !reflect.DeepEqual(got, o) {
			t.Errorf("%s\nreads back as %+v\nwant %+v", r.Command(), got, o)
		}
	}
}

// A run that fails prints the command that replays it, and that command
// fails the same way with the same trace.
func TestSimFailureReplays(t *testing.T) {
	var out, errb bytes.Buffer
	args := []string{"sim", "--seed", "4", "--loss", "1%", "--delay", "2ms", "--partition", "100ms+30s", "--bytes", "2000000", "--limit", "20s"}
	if code := run(args, &out, &errb); code != 1 {
		t.Fatalf("status %d, want 1:\n%s%s", code, out.String(), errb.String())
	}
	m := regexp.MustCompile(`\(replay: (tapstack sim .*)\)\n$`).FindStringSubmatch(errb.String())
	if m == nil || !strings.Contains(errb.String(), "virtual deadline") || !strings.Contains(m[1], "--partition 100ms+30s") {
		t.Fatalf("no replay command, or not the limit:\n%s", errb.String())
	}
	var out2, errb2 bytes.Buffer
	if code := run(strings.Fields(m[1])[1:], &out2, &errb2); code != 1 || out2.String() == "" {
		t.Fatalf("replay %q: status %d\n%s", m[1], code, errb2.String())
	}
	a, b := traceLine.FindString(out.String()), traceLine.FindString(out2.String())
	if a == "" || a != b {
		t.Errorf("replay traced %q, the run %q", b, a)
	}
}

func TestSimFlagErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--jitter", "5ms", "--delay", "1ms"},
		{"--partition", "2s"},
		{"--partition", "2s+0s"},
		{"--rate", "fast"},
		{"--queue", "1000"},
		{"--burst", "1%"},
		{"--interval", "1ms"},
		{"--cc", "vegas"},
	} {
		var out, errb bytes.Buffer
		if code := run(append([]string{"sim"}, args...), &out, &errb); code != 2 || strings.Count(errb.String(), "\n") != 1 {
			t.Errorf("sim %q: status %d, want 2 with one line:\n%s", args, code, errb.String())
		}
	}
}
