package main

import (
	"net"
	"net/http"
	"strings"
	"testing"
)

// The kernel cases' servers and clients, over loopback: no root needed.
func TestKernelWorkloadsLoopback(t *testing.T) {
	const n = 3*patPeriod + 12345
	for _, w := range []string{"upload", "echo"} {
		t.Run(w, func(t *testing.T) {
			ln, err := net.Listen("tcp4", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			srv, stop := serveWorkload(ln, w, n)
			defer stop()
			c, err := net.Dial("tcp4", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			run := upload
			if w == "echo" {
				run = echo
			}
			d, err := run(c, n, srv)
			if err != nil || d <= 0 {
				t.Fatalf("%s: %v, %v", w, d, err)
			}
		})
	}
	t.Run("download", func(t *testing.T) {
		ln, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		_, stop := serveWorkload(ln, "download", n)
		defer stop()
		resp, err := http.Get("http://" + ln.Addr().String() + "/")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		got, err := readPat(resp.Body, -1)
		if err != nil || got != n || resp.ContentLength != n {
			t.Fatalf("read %d of %d (Content-Length %d): %v", got, n, resp.ContentLength, err)
		}
	})
	t.Run("upload short", func(t *testing.T) {
		ln, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv, stop := serveWorkload(ln, "upload", n)
		defer stop()
		c, err := net.Dial("tcp4", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		// The server counts what arrived: a client claiming more fails.
		go func() {
			_ = writePat(c, 1000)
			c.(*net.TCPConn).CloseWrite()
		}()
		r := <-srv
		if r.err != nil || r.n != 1000 {
			t.Fatalf("server: %d bytes, %v", r.n, r.err)
		}
	})
}

func TestReadPatDetectsCorruption(t *testing.T) {
	a, b := net.Pipe()
	go func() {
		w := &flipConn{Conn: a, at: patPeriod + 77}
		_ = writePat(w, 2*patPeriod)
		a.Close()
	}()
	if _, err := readPat(b, -1); err == nil || !strings.Contains(err.Error(), "data mismatch") {
		t.Fatalf("readPat of a corrupted stream: %v", err)
	}
}

func TestParseCurl(t *testing.T) {
	if s, err := parseCurl("200 1048576 0.512", 1<<20); err != nil || s != 0.512 {
		t.Errorf("ok: %v, %v", s, err)
	}
	for _, out := range []string{"404 0 0.1", "200 1000 0.5", "200 1048576 0", "curl: (7) failed", ""} {
		if _, err := parseCurl(out, 1<<20); err == nil {
			t.Errorf("%q accepted", out)
		}
	}
}

func TestReportKernelTable(t *testing.T) {
	pair := spec{Name: "bulk", Kind: "bulk"}
	kern := spec{Name: "tap download 1GiB", Kind: "kernel"}
	r := newReport([]spec{pair, kern}, allStacks)
	met := func(v float64) []metric {
		return []metric{{Name: "throughput", Unit: "MB/s", Better: higher, Value: v}}
	}
	for st, v := range map[string]float64{"tapstack": 300, "tapstack-gso": 900, "gvisor": 100, "gvisor-gso": 600, "kernel": 1200} {
		r.add(result{Case: kern.Name, Stack: st, Run: 1, Metrics: met(v)})
	}
	r.add(result{Case: pair.Name, Stack: "tapstack", Run: 1, Metrics: met(2)})
	r.add(result{Case: pair.Name, Stack: "gvisor", Run: 1, Metrics: met(1)})
	if got := stacksFor(pair, []string{"kernel", "gvisor", "tapstack"}); strings.Join(got, ",") != "gvisor,tapstack" {
		t.Errorf("stacksFor(pair) = %v", got)
	}
	if got := stacksFor(kern, reversed(allStacks)); strings.Join(got, ",") != "kernel,gvisor-gso,gvisor,tapstack-gso,tapstack" {
		t.Errorf("stacksFor(kernel) = %v", got)
	}
	rows := r.rows()
	if len(rows) != 2 || rows[0].Ratio != 2 || rows[1].Ratio != 3 ||
		rows[1].Ratios["tapstack-gso/gvisor-gso"] != 1.5 || rows[1].Ratios["tapstack-gso/kernel"] != 0.75 {
		t.Fatalf("rows %+v", rows)
	}
	var md strings.Builder
	r.writeMarkdown(&md)
	for _, want := range []string{
		"| case | metric | unit | better | tapstack min / median / max | gVisor min / median / max | tapstack/gVisor |",
		"| bulk | throughput | MB/s | higher | 2.00 | 1.00 | 2.00 |",
		"| case | metric | unit | better | tapstack min / median / max | tapstack GSO min / median / max | gVisor min / median / max | gVisor GSO min / median / max | kernel min / median / max | tapstack/gVisor | tapstack GSO/gVisor GSO | tapstack GSO/kernel |",
		"| tap download 1GiB | throughput | MB/s | higher | 300 | 900 | 100 | 600 | 1200 | 3.00 | 1.50 | 0.75 |",
	} {
		if !strings.Contains(md.String(), want+"\n") {
			t.Errorf("markdown lacks %q:\n%s", want, md.String())
		}
	}
	// A selection without the kernel drops its column and ratio.
	r.stacks = []string{"tapstack", "tapstack-gso", "gvisor", "gvisor-gso"}
	md.Reset()
	r.writeMarkdown(&md)
	if strings.Contains(md.String(), "kernel") {
		t.Errorf("kernel column without the kernel selected:\n%s", md.String())
	}
}
