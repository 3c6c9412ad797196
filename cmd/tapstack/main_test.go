package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tapstack/tapstack/internal/testnet"
)

func TestUsageErrorsAreOneLineWithStatus2(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{nil, "usage"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"up", "--addr", "10.0.0.2/24"}, "--dev is required"},
		{[]string{"up", "--dev", "tap0"}, "--addr is required"},
		{[]string{"up", "--dev", "tap0", "--addr", "10.0.0.2"}, "not an IPv4 address with a prefix length"},
		{[]string{"up", "--dev", "tap0", "--addr", "10.0.0.2/24", "--gw", "10.1.0.1"}, "not on the network"},
		{[]string{"up", "--dev", "tap0", "--addr", "10.0.0.2/24", "--mac", "01:00:00:00:00:01"}, "not a unicast Ethernet address"},
		{[]string{"up", "--dev", "tap0", "--addr", "10.0.0.2/24", "--backend", "xdp"}, "use tap or raw"},
		{[]string{"up", "--dev", "tap0", "--addr", "10.0.0.2/24", "--loss", "150%"}, "invalid value"},
		{[]string{"up", "--dev", "tap0", "--addr", "10.0.0.2/24", "--serve", "echo"}, "NAME=PORT"},
		{[]string{"up", "--dev", "tap0", "--addr", "10.0.0.2/24", "--serve", "gopher=70"}, "unknown service"},
		{[]string{"up", "--bogus"}, "flag provided but not defined"},
		{[]string{"up", "--dev", "tap0", "--addr", "10.0.0.2/24", "--cc", "vegas"}, `congestion control "vegas"`},
		{[]string{"ping", "--dev", "tap0", "--addr", "10.0.0.2/24"}, "needs one HOST"},
		{[]string{"get", "--dev", "tap0", "--addr", "10.0.0.2/24", "-o", "x"}, "needs one URL"},
		{[]string{"get", "https://10.0.0.1/", "-o", "x", "--dev", "tap0", "--addr", "10.0.0.2/24"}, "not an http:// URL"},
		{[]string{"get", "http://example.com/", "-o", "x", "--dev", "tap0", "--addr", "10.0.0.2/24"}, "not an IPv4 address"},
		{[]string{"get", "http://10.0.0.1/", "--dev", "tap0", "--addr", "10.0.0.2/24"}, "-o FILE is required"},
		{[]string{"up", "--dev", "tap0", "--addr", "10.0.0.2/24", "--http-root", "/nonexistent"}, "not a directory"},
		{[]string{"ping", "example.com", "--dev", "tap0", "--addr", "10.0.0.2/24"}, "not an IPv4 address"},
		{[]string{"up", "--dev", "tsnosuch0", "--addr", "10.0.0.2/24", "--backend", "raw"}, "ip link"},
	}
	for _, c := range cases {
		var out, errb bytes.Buffer
		code := run(c.args, &out, &errb)
		msg := errb.String()
		if code != 2 || !strings.Contains(msg, c.want) {
			t.Errorf("tapstack %q: status %d, stderr %q; want status 2 and %q", c.args, code, msg, c.want)
			continue
		}
		if c.args != nil && strings.Count(strings.TrimSpace(msg), "\n") != 0 {
			t.Errorf("tapstack %q: error is not one line: %q", c.args, msg)
		}
	}
}

// syncBuffer collects a child's output while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// buildTapstack compiles the command once per test binary.
var buildOnce = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "tapstack-cli")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "tapstack")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", &exec.ExitError{Stderr: out}
	}
	return bin, nil
})

func tapstackBinary(t *testing.T) string {
	t.Helper()
	bin, err := buildOnce()
	if err != nil {
		t.Fatalf("go build: %v", err)
	}
	return bin
}

func TestUpServesKernelPeer(t *testing.T) {
	testnet.RequireRoot(t)
	testnet.RequireTool(t, "socat")
	testnet.RequireTool(t, "tshark")
	bin := tapstackBinary(t)
	ns := testnet.NewNS(t, "tscli1")
	ns.AddTAP(t, "tscli0", netip.MustParsePrefix("10.95.0.1/24"))
	ns.AddTAP(t, "tscli1", netip.MustParsePrefix("10.95.1.1/24"))
	pcap := filepath.Join(t.TempDir(), "up.pcap")
	root := t.TempDir()
	body := make([]byte, 4<<20)
	rand.NewChaCha8([32]byte{1}).Read(body)
	if err := os.WriteFile(filepath.Join(root, "blob"), body, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	wantSum := hex.EncodeToString(sum[:])

	var out syncBuffer
	up := exec.Command("ip", "netns", "exec", ns.Name, bin, "up", "--dev", "tscli0", "--addr", "10.95.0.2/24",
		"--serve", "echo=7,discard=9,chargen=19,http=80", "--http-root", root, "--pcap", pcap)
	up.Stdout, up.Stderr = &out, &out
	up.WaitDelay = 2 * time.Second // do not hang on pipes if the process is gone
	if err := up.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = up.Wait(); close(exited) }()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			up.Process.Kill()
			<-exited
		}
	})
	testnet.WaitFor(t, 10*time.Second, "tapstack up to start", func() bool {
		return strings.Contains(out.String(), "serving chargen")
	})

	if o, err := testnet.Run(ns, 20*time.Second, "ping", "-c", "3", "-i", "0.2", "-W", "2", "10.95.0.2"); err != nil {
		t.Fatalf("kernel ping of the stack: %v\n%s\n%s", err, o, out.String())
	}
	if o, err := testnet.Run(ns, 20*time.Second, "ping", "-c", "2", "-i", "0.2", "-W", "2", "-s", "4000", "10.95.0.2"); err != nil {
		t.Fatalf("kernel ping -s 4000: %v\n%s", err, o)
	}
	echo, err := testnet.Run(ns, 10*time.Second, "sh", "-c", "echo tapstack-echo | socat -T 3 - UDP4:10.95.0.2:7")
	if err != nil || strings.TrimSpace(echo) != "tapstack-echo" {
		t.Fatalf("UDP echo: %q, %v", echo, err)
	}
	gen, err := testnet.Run(ns, 10*time.Second, "sh", "-c", "echo x | socat -T 3 - UDP4:10.95.0.2:19")
	if err != nil || len(gen) < 74 || !strings.Contains(gen, "\r\n") {
		t.Fatalf("UDP chargen: %q, %v", gen, err)
	}

	// TCP services and HTTP, with the kernel's tools as clients.
	tcpEcho, err := testnet.Run(ns, 10*time.Second, "sh", "-c", "echo tcp-echo | socat -T 3 - TCP4:10.95.0.2:7")
	if err != nil || strings.TrimSpace(tcpEcho) != "tcp-echo" {
		t.Fatalf("TCP echo: %q, %v", tcpEcho, err)
	}
	if o, err := testnet.Run(ns, 20*time.Second, "sh", "-c", "head -c 1000000 /dev/zero | socat -u - TCP4:10.95.0.2:9"); err != nil {
		t.Fatalf("TCP discard: %v\n%s", err, o)
	}
	gen, err = testnet.Run(ns, 10*time.Second, "sh", "-c", "socat -u TCP4:10.95.0.2:19 - 2>/dev/null | head -c 100000 | wc -c")
	if err != nil || strings.TrimSpace(gen) != "100000" {
		t.Fatalf("TCP chargen: %q, %v", gen, err)
	}
	got, err := testnet.Run(ns, 60*time.Second, "sh", "-c", "curl -sf http://10.95.0.2/blob | sha256sum")
	if err != nil || !strings.HasPrefix(got, wantSum) {
		t.Fatalf("curl of 4 MiB: %q, %v; want sha256 %s", got, err, wantSum)
	}
	rng, err := testnet.Run(ns, 20*time.Second, "sh", "-c", "curl -sf -r 100-199 http://10.95.0.2/blob | od -An -tx1 | tr -d ' \n'")
	if err != nil || rng != hex.EncodeToString(body[100:200]) {
		t.Fatalf("Range request: %q, %v", rng, err)
	}

	// tapstack get from a python3 http.server on the kernel side.
	testnet.Start(t, ns, "python3", "-m", "http.server", "--bind", "10.95.1.1", "--directory", root, "8000")
	testnet.WaitFor(t, 10*time.Second, "python3 http.server", func() bool {
		_, err := testnet.Run(ns, 2*time.Second, "curl", "-sf", "-o", "/dev/null", "http://10.95.1.1:8000/")
		return err == nil
	})
	fetched := filepath.Join(t.TempDir(), "fetched")
	if o, err := testnet.Run(ns, 60*time.Second, "ip", "netns", "exec", ns.Name, bin, "get", "http://10.95.1.1:8000/blob",
		"-o", fetched, "--dev", "tscli1", "--addr", "10.95.1.2/24"); err != nil {
		t.Fatalf("tapstack get: %v\n%s", err, o)
	}
	if data, err := os.ReadFile(fetched); err != nil || sha256.Sum256(data) != sum {
		t.Fatalf("tapstack get wrote %d bytes (%v) that differ from the served file", len(data), err)
	}

	// tapstack ping from a second stack in the namespace.
	ping, err := testnet.Run(ns, 30*time.Second, "ip", "netns", "exec", ns.Name, bin, "ping", "10.95.1.1",
		"--dev", "tscli1", "--addr", "10.95.1.2/24", "-c", "3", "-i", "200ms")
	if err != nil || !strings.Contains(ping, "3 packets transmitted, 3 received, 0% packet loss") {
		t.Fatalf("tapstack ping: %v\n%s", err, ping)
	}

	up.Process.Signal(syscall.SIGUSR1)
	testnet.WaitFor(t, 5*time.Second, "counters on SIGUSR1", func() bool {
		return strings.Contains(out.String(), "icmp.EchoRequests 5")
	})
	up.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
		if waitErr != nil {
			t.Fatalf("tapstack up exited with %v on SIGTERM\n%s", waitErr, out.String())
		}
	case <-time.After(3 * time.Second):
		t.Fatalf("tapstack up still running 3 s after SIGTERM\n%s", out.String())
	}

	// The capture is well-formed and our frames carry good checksums
	// (only ours: tshark flags the 0xffff that the kernel's frames now and
	// then carry, though it verifies). HTTP is not dissected: a random
	// binary body trips its heuristics.
	bad, err := tshark("-r", pcap, "--disable-protocol", "http", "-o", "ip.check_checksum:TRUE",
		"-o", "udp.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE", "-Y",
		"_ws.malformed || ip.src == 10.95.0.2 && (ip.checksum.status == \"Bad\" || udp.checksum.status == \"Bad\" || tcp.checksum.status == \"Bad\" || icmp.checksum.status == \"Bad\")")
	if err != nil || strings.TrimSpace(bad) != "" {
		t.Fatalf("tshark on the capture: %v\n%s", err, bad)
	}
	n, err := tshark("-r", pcap, "-Y", "icmp.type == 0")
	if err != nil || strings.Count(n, "\n") < 5 {
		t.Fatalf("capture holds %d echo replies, want >= 5: %v\n%s", strings.Count(n, "\n"), err, n)
	}
}

// tshark runs tshark and returns its standard output (it warns on stderr
// when run as root).
func tshark(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "tshark", args...).Output()
	return string(out), err
}
