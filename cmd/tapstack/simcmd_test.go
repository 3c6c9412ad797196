package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
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
