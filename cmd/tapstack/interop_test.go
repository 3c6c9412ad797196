package main

// The interop suite: `tapstack up` in a network namespace against the Linux
// kernel and the Debian tools people would point at it (ping, curl, wrk,
// python3, tshark). Each check moves real data, verifies it (sha256, the
// chargen pattern, exact datagrams) and logs its throughput, with how much
// each side's TCP retransmitted meanwhile and how many frames the kernel
// dropped before they reached the stack; the summary at the end of each
// test repeats every line, prefixed "THROUGHPUT". A segment of ours that
// the kernel discards as an old duplicate (PAWS) fails the test.
//
// By default the sizes suit CI (about 15 s on two cores);
// TAPSTACK_INTEROP_FULL=1 selects the full sizes (1 GiB curl and discard,
// 64 MiB echo each way, 256 MiB chargen, 1000 concurrent downloads, wrk for
// 10 s), which scripts/interop.sh runs.
//
// Names: namespaces tsio1 (TAP) and tsio2 (raw), devices tsiotap0,
// tsiotap1, tsiov0 and tsiov1, subnets 10.94.0.0/24 (tsiotap0),
// 10.94.1.0/24 (tsiotap1) and 10.94.2.0/24 (the veth pair). Rates are in
// MB/s of 10^6 bytes.

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tapstack/tapstack/internal/testnet"
)

// envInteropFull, set to 1, selects the full sizes.
const envInteropFull = "TAPSTACK_INTEROP_FULL"

// interopSizes are the amounts each check moves.
type interopSizes struct {
	name         string
	curl         int64 // random file fetched with curl
	echo         int64 // each direction, at once
	discard      int64
	chargen      int64
	udpEcho      int // datagrams
	floodPings   int // ping -f, 56 and 4000 bytes each
	downloads    int // concurrent connections
	downloadSize int64
	wrk          time.Duration
	get          int64 // tapstack get from python3's http.server
	rawCurl      int64 // curl over the raw backend
}

var (
	ciSizes = interopSizes{
		name: "CI", curl: 64 << 20, echo: 8 << 20, discard: 64 << 20, chargen: 32 << 20,
		udpEcho: 1000, floodPings: 1000, downloads: 100, downloadSize: 256 << 10,
		wrk: 3 * time.Second, get: 16 << 20, rawCurl: 32 << 20,
	}
	fullSizes = interopSizes{
		name: "full", curl: 1 << 30, echo: 64 << 20, discard: 1 << 30, chargen: 256 << 20,
		udpEcho: 1000, floodPings: 10000, downloads: 1000, downloadSize: 1 << 20,
		wrk: 10 * time.Second, get: 256 << 20, rawCurl: 256 << 20,
	}
)

func interopSizesFor(t *testing.T) interopSizes {
	if os.Getenv(envInteropFull) == "1" {
		t.Logf("full sizes (%s=1)", envInteropFull)
		return fullSizes
	}
	t.Logf("CI sizes; %s=1 (scripts/interop.sh) selects the full sizes", envInteropFull)
	return ciSizes
}

// transferTimeout bounds a command that moves n bytes: a minute plus n at
// 5 MB/s, far below what a working stack does.
func transferTimeout(n int64) time.Duration {
	return time.Minute + time.Duration(n/5e6)*time.Second
}

// binSize names a size in binary units, as the sizes are chosen.
func binSize(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// throughputs collects a test's measurements for its closing summary.
// Each line also names how much the counters of sample grew during the
// check: frames the kernel dropped on their way to the stack because the
// queue was full, and each side's TCP retransmissions and timeouts.
type throughputs struct {
	sample func() map[string]int64 // nil: no counters

	mu    sync.Mutex
	lines []string
	first map[string]int64
	last  map[string]int64
}

// counterNames are sample's keys, in the order lines show them.
var counterNames = []string{"dropped", "stack rexmit", "stack RTO", "kernel rexmit", "kernel RTO", kernelPAWS}

// kernelPAWS counts our segments the kernel discarded as old duplicates
// (RFC 7323 PAWS): their timestamp was older than one we sent before.
const kernelPAWS = "kernel PAWS drops"

// start takes the baseline sample.
func (r *throughputs) start(sample func() map[string]int64) {
	r.sample = sample
	r.first = sample()
	r.last = r.first
}

// bytes logs and records n bytes moved in secs.
func (r *throughputs) bytes(t *testing.T, what string, n int64, secs float64) {
	t.Helper()
	r.add(t, fmt.Sprintf("%-40s %9.1f MB/s  (%d bytes in %.3fs)", what, float64(n)/secs/1e6, n, secs))
}

// add logs and records a measurement line, with the counters' growth
// since the previous line.
func (r *throughputs) add(t *testing.T, line string) {
	t.Helper()
	if r.sample != nil {
		now := r.sample()
		line += growth(r.last, now)
		r.last = now
	}
	t.Log(line)
	r.mu.Lock()
	r.lines = append(r.lines, line)
	r.mu.Unlock()
}

// totals records the counters' growth over the whole test, and fails t
// if the kernel discarded any of our segments for a timestamp that went
// back.
func (r *throughputs) totals(t *testing.T, label string) {
	t.Helper()
	if r.sample == nil {
		return
	}
	now := r.sample()
	r.add(t, fmt.Sprintf("%-40s", label+"in all:")+growth(r.first, now))
	if n := now[kernelPAWS] - r.first[kernelPAWS]; n != 0 {
		t.Errorf("the kernel discarded %d of our TCP segments as old duplicates (PAWS): a TSval went back", n)
	}
}

// growth formats the counters that grew from a to b, "" if none.
func growth(a, b map[string]int64) string {
	var parts []string
	for _, k := range counterNames {
		if d := b[k] - a[k]; d != 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, d))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return " [" + strings.Join(parts, ", ") + "]"
}

var (
	stackTCPRE  = regexp.MustCompile(`(?m)^tcp\.(Retransmits|Timeouts) (\d+)$`)
	kernelTCPRE = regexp.MustCompile(`(?m)^(TcpRetransSegs|TcpExtTCPTimeouts|TcpExtPAWSEstab)\s+(\d+)`)
)

// tcpCounters samples the stack's TCP retransmissions and timeouts (from
// tapstack up's counters) and the kernel's in ns (from nstat), then adds
// drops, the frames the kernel dropped before they reached the stack.
func tcpCounters(ns *testnet.NS, up *upProcess, drops func() (int64, bool)) func() map[string]int64 {
	names := map[string]string{
		"Retransmits": "stack rexmit", "Timeouts": "stack RTO",
		"TcpRetransSegs": "kernel rexmit", "TcpExtTCPTimeouts": "kernel RTO",
		"TcpExtPAWSEstab": kernelPAWS,
	}
	return func() map[string]int64 {
		m := map[string]int64{}
		put := func(kvs [][]string) {
			for _, kv := range kvs {
				m[names[kv[1]]], _ = strconv.ParseInt(kv[2], 10, 64)
			}
		}
		put(stackTCPRE.FindAllStringSubmatch(up.counters(), -1))
		if out, err := testnet.Run(ns, 10*time.Second, "nstat", "-asz"); err == nil {
			put(kernelTCPRE.FindAllStringSubmatch(out, -1))
		}
		if n, ok := drops(); ok {
			m["dropped"] = n
		}
		return m
	}
}

// tapDrops counts the frames the kernel dropped because a TAP's queue
// (1000 frames) was full: the transmit drops of the kernel's side of devs.
func tapDrops(ns *testnet.NS, devs ...string) func() (int64, bool) {
	return func() (int64, bool) {
		var n int64
		for _, dev := range devs {
			out, err := testnet.Run(ns, 10*time.Second, "ip", "-j", "-s", "link", "show", "dev", dev)
			var info []struct {
				Stats64 struct{ TX struct{ Dropped int64 } } `json:"stats64"`
			}
			if err != nil || json.Unmarshal([]byte(out), &info) != nil || len(info) != 1 {
				return 0, false
			}
			n += info[0].Stats64.TX.Dropped
		}
		return n, true
	}
}

// packetSocketDrops counts the frames the kernel dropped because the
// packet socket of process pid was full (ss's skmem d field).
func packetSocketDrops(pid int) func() (int64, bool) {
	re := regexp.MustCompile(fmt.Sprintf(`pid=%d,[^\n]*\n?[^\n]*skmem:\([^)]*,d(\d+)\)`, pid))
	return func() (int64, bool) {
		out, err := testnet.Run(nil, 10*time.Second, "ss", "-0", "-m", "-p")
		m := re.FindStringSubmatch(out)
		if err != nil || m == nil {
			return 0, false
		}
		n, err := strconv.ParseInt(m[1], 10, 64)
		return n, err == nil
	}
}

func (r *throughputs) summary(t *testing.T) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, l := range r.lines {
		t.Logf("THROUGHPUT %s", l)
	}
}

// upProcess is a running `tapstack up`.
type upProcess struct {
	cmd     *exec.Cmd
	out     *syncBuffer
	exited  chan struct{}
	waitErr error
}

// startUp runs `tapstack up args...` inside ns (nil: the host namespace),
// waits until it says it is up and kills it at cleanup if it still runs.
func startUp(t *testing.T, ns *testnet.NS, args ...string) *upProcess {
	t.Helper()
	argv := append([]string{tapstackBinary(t), "up"}, args...)
	if ns != nil {
		argv = append([]string{"ip", "netns", "exec", ns.Name}, argv...)
	}
	p := &upProcess{out: new(syncBuffer), exited: make(chan struct{})}
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.WaitDelay = 2 * time.Second
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.waitErr = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			p.cmd.Process.Kill()
			<-p.exited
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(p.out.String(), "tapstack: up on") {
		select {
		case <-p.exited:
			t.Fatalf("tapstack up exited: %v\n%s", p.waitErr, p.out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("tapstack up did not come up in 10 s\n%s", p.out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return p
}

// counters asks the process for its counters (SIGUSR1) and returns them,
// or a note saying why not: for failure messages.
func (p *upProcess) counters() string {
	before := len(p.out.String())
	if p.cmd.Process.Signal(syscall.SIGUSR1) != nil {
		return "(tapstack up is gone)"
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if s := p.out.String()[before:]; strings.Contains(s, "device.TxBytes") {
			return nonZeroLines(s)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return "(no counters in 5 s)"
}

// nonZeroLines keeps the counter lines whose value is not 0.
func nonZeroLines(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if l != "" && !strings.HasSuffix(l, " 0") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// stop sends SIGTERM and fails t unless the process exits cleanly within
// 5 s.
func (p *upProcess) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		if p.waitErr != nil {
			t.Errorf("tapstack up exited with %v on SIGTERM\n%s", p.waitErr, p.out.String())
		}
	case <-time.After(5 * time.Second):
		t.Errorf("tapstack up still running 5 s after SIGTERM\n%s", p.out.String())
	}
}

// byteRange is a part of a file whose sha256 writeRandomFile reports.
type byteRange struct{ off, n int64 }

// writeRandomFile writes size bytes of a ChaCha8 stream seeded with seed
// to path and returns the sha256 of the file and of each of ranges.
func writeRandomFile(t *testing.T, path string, size int64, seed byte, ranges ...byteRange) (string, []string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rng := rand.NewChaCha8([32]byte{seed, 'i', 'o'})
	all := sha256.New()
	parts := make([]hash.Hash, len(ranges))
	for i := range parts {
		parts[i] = sha256.New()
	}
	buf := make([]byte, 1<<20)
	for off := int64(0); off < size; {
		chunk := buf[:min(int64(len(buf)), size-off)]
		rng.Read(chunk)
		all.Write(chunk)
		end := off + int64(len(chunk))
		for i, r := range ranges {
			lo, hi := max(off, r.off), min(end, r.off+r.n)
			if lo < hi {
				parts[i].Write(chunk[lo-off : hi-off])
			}
		}
		if _, err := f.Write(chunk); err != nil {
			t.Fatal(err)
		}
		off = end
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	sums := make([]string, len(parts))
	for i, h := range parts {
		sums[i] = hex.EncodeToString(h.Sum(nil))
	}
	return hex.EncodeToString(all.Sum(nil)), sums
}

// interopPy is the kernel-side client for what no stock tool checks: it
// prints one JSON object.
//
//	echo HOST PORT N SEED       send N bytes while reading the echo, both at once
//	discard HOST PORT N         send N bytes, half-close, wait for the server's close
//	chargen HOST PORT N         read N bytes and check RFC 864's pattern
//	udpecho HOST PORT COUNT     COUNT datagrams (16 in flight), each echoed exactly
//	downloads HOST PORT PATH COUNT SHA256
//	                            COUNT connections opened first, then COUNT HTTP
//	                            GETs at once, each body's sha256 checked
const interopPy = `
import asyncio, hashlib, json, random, resource, socket, sys, threading, time

def out(**kw):
    print(json.dumps(kw), flush=True)

def stream(seed, total, chunk=65536):
    # Chunks at varying offsets of an 8 MiB random block: no two nearby
    # chunks are equal, and generating them costs nothing.
    span = 8 << 20
    base = memoryview(random.Random(seed).randbytes(span + chunk))
    k = sent = 0
    while sent < total:
        n = min(chunk, total - sent)
        off = (k * 40961) % span
        yield base[off:off + n]
        sent += n
        k += 1

def echo(host, port, total, seed):
    s = socket.create_connection((host, port), timeout=60)
    got, got_h, err = [0], hashlib.sha256(), []
    def reader():
        buf = bytearray(1 << 18)
        mv = memoryview(buf)
        try:
            while True:
                n = s.recv_into(buf)
                if n == 0:
                    return
                got_h.update(mv[:n])
                got[0] += n
        except Exception as e:
            err.append("read: " + repr(e))
    t0 = time.monotonic()
    th = threading.Thread(target=reader)
    th.start()
    sent_h = hashlib.sha256()
    try:
        for c in stream(seed, total):
            s.sendall(c)
            sent_h.update(c)
        s.shutdown(socket.SHUT_WR)
    except Exception as e:
        err.append("write: " + repr(e))
    th.join()
    dt = time.monotonic() - t0
    s.close()
    out(sent=total, received=got[0], sent_sha=sent_h.hexdigest(), received_sha=got_h.hexdigest(),
        seconds=dt, error="; ".join(err))

def discard(host, port, total):
    s = socket.create_connection((host, port), timeout=60)
    data = memoryview(random.Random(9).randbytes(1 << 20))
    t0 = time.monotonic()
    left, err = total, ""
    try:
        while left > 0:
            n = min(left, len(data))
            s.sendall(data[:n])
            left -= n
        s.shutdown(socket.SHUT_WR)
        if s.recv(1) != b"":
            err = "discard server sent data"
    except Exception as e:
        err = repr(e)
    dt = time.monotonic() - t0
    s.close()
    out(sent=total - left, seconds=dt, error=err)

def chargen(host, port, total):
    period = b"".join(bytes(33 + (k + j) % 94 for j in range(72)) + b"\r\n" for k in range(94))
    big = period * ((1 << 16) // len(period) + 2)
    s = socket.create_connection((host, port), timeout=60)
    buf = bytearray(1 << 16)
    mv = memoryview(buf)
    pos, bad, err = 0, -1, ""
    t0 = time.monotonic()
    try:
        while pos < total:
            n = s.recv_into(buf, min(len(buf), total - pos))
            if n == 0:
                err = "EOF"
                break
            off = pos % len(period)
            if bad < 0 and mv[:n] != big[off:off + n]:
                bad = pos + next(i for i in range(n) if buf[i] != big[off + i])
            pos += n
    except Exception as e:
        err = repr(e)
    dt = time.monotonic() - t0
    s.close()
    out(received=pos, seconds=dt, bad_offset=bad, error=err)

def udpecho(host, port, count):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect((host, port))
    s.settimeout(3)
    def payload(i):
        size = 4000 if i % 50 == 49 else 4 + (i * 37) % 1469
        return i.to_bytes(4, "big") + random.Random(i).randbytes(size - 4)
    pending, nxt, ok, bad, nbytes, err = {}, 0, 0, 0, 0, ""
    t0 = time.monotonic()
    while ok + bad < count:
        while nxt < count and len(pending) < 16:
            pending[nxt] = payload(nxt)
            s.send(pending[nxt])
            nxt += 1
        try:
            d = s.recv(65536)
        except Exception as e:
            err = repr(e)
            break
        seq = int.from_bytes(d[:4], "big")
        if pending.get(seq) == d:
            del pending[seq]
            ok += 1
            nbytes += len(d)
        else:
            bad += 1
    dt = time.monotonic() - t0
    out(ok=ok, bad=bad, lost=count - ok - bad, received=nbytes, seconds=dt,
        missing=sorted(pending)[:10], error=err)

def downloads(host, port, path, count, want):
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (count + 256, count + 256))
    except Exception:
        pass
    req = ("GET %s HTTP/1.0\r\nHost: %s\r\n\r\n" % (path, host)).encode()
    async def fetch(r, w):
        w.write(req)
        await w.drain()
        head = await r.readuntil(b"\r\n\r\n")
        status = head.split(b"\r\n", 1)[0].decode()
        h, n = hashlib.sha256(), 0
        while True:
            b = await r.read(1 << 16)
            if not b:
                break
            h.update(b)
            n += len(b)
        w.close()
        if " 200 " not in status:
            raise Exception("status " + status)
        if h.hexdigest() != want:
            raise Exception("%d bytes with sha256 %s" % (n, h.hexdigest()))
        return n
    async def main():
        t0 = time.monotonic()
        conns = await asyncio.gather(*(asyncio.open_connection(host, port) for _ in range(count)),
                                     return_exceptions=True)
        t1 = time.monotonic()
        errs = [repr(c) for c in conns if isinstance(c, BaseException)]
        if errs:
            return dict(connected=count - len(errs), connect_seconds=t1 - t0, ok=0,
                        error="; ".join(errs[:5]))
        res = await asyncio.gather(*(fetch(r, w) for r, w in conns), return_exceptions=True)
        dt = time.monotonic() - t1
        errs = [repr(x) for x in res if isinstance(x, BaseException)]
        got = sum(x for x in res if not isinstance(x, BaseException))
        return dict(connected=count, connect_seconds=t1 - t0, ok=count - len(errs),
                    received=got, seconds=dt, error="; ".join(errs[:5]))
    out(**asyncio.run(main()))

mode, args = sys.argv[1], sys.argv[2:]
if mode == "echo":
    echo(args[0], int(args[1]), int(args[2]), int(args[3]))
elif mode == "discard":
    discard(args[0], int(args[1]), int(args[2]))
elif mode == "chargen":
    chargen(args[0], int(args[1]), int(args[2]))
elif mode == "udpecho":
    udpecho(args[0], int(args[1]), int(args[2]))
elif mode == "downloads":
    downloads(args[0], int(args[1]), args[2], int(args[3]), args[4])
else:
    sys.exit("unknown mode " + mode)
`

// pyResult is what interopPy prints; each mode fills its own fields.
type pyResult struct {
	Sent           int64   `json:"sent"`
	Received       int64   `json:"received"`
	SentSHA        string  `json:"sent_sha"`
	ReceivedSHA    string  `json:"received_sha"`
	Seconds        float64 `json:"seconds"`
	Error          string  `json:"error"`
	BadOffset      int64   `json:"bad_offset"`
	OK             int     `json:"ok"`
	Bad            int     `json:"bad"`
	Lost           int     `json:"lost"`
	Missing        []int   `json:"missing"`
	Connected      int     `json:"connected"`
	ConnectSeconds float64 `json:"connect_seconds"`
}

// kernelClient runs interopPy in ns.
type kernelClient struct {
	ns     *testnet.NS
	script string
}

func newKernelClient(t *testing.T, ns *testnet.NS) *kernelClient {
	t.Helper()
	testnet.RequireTool(t, "python3")
	path := filepath.Join(t.TempDir(), "interop.py")
	if err := os.WriteFile(path, []byte(interopPy), 0o644); err != nil {
		t.Fatal(err)
	}
	return &kernelClient{ns: ns, script: path}
}

// run runs one mode and returns its result; it fails t if the script
// fails or prints no result.
func (k *kernelClient) run(t *testing.T, timeout time.Duration, args ...string) pyResult {
	t.Helper()
	out, err := testnet.Run(k.ns, timeout, append([]string{"python3", k.script}, args...)...)
	var r pyResult
	lines := strings.Split(strings.TrimSpace(out), "\n")
	last := lines[len(lines)-1]
	if err != nil || json.Unmarshal([]byte(last), &r) != nil {
		t.Fatalf("python3 interop.py %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return r
}

var (
	pingSummaryRE = regexp.MustCompile(`(\d+) packets transmitted, (\d+) received.*time (\d+)ms`)
	wrkRequestsRE = regexp.MustCompile(`(\d+) requests in ([\d.]+)(m?s), ([\d.]+)([KMG]?B) read`)
	wrkRateRE     = regexp.MustCompile(`Requests/sec:\s+([\d.]+)`)
)

// kernelPing runs ping in ns and fails t unless every request got its
// reply; it returns the count and ping's elapsed time.
func kernelPing(t *testing.T, ns *testnet.NS, up *upProcess, args ...string) (int, time.Duration) {
	t.Helper()
	out, err := testnet.Run(ns, 2*time.Minute, append([]string{"ping"}, args...)...)
	m := pingSummaryRE.FindStringSubmatch(out)
	if err != nil || m == nil || m[1] != m[2] {
		t.Fatalf("ping %s: %v\n%s\ncounters:\n%s", strings.Join(args, " "), err, lastLines(out, 5), up.counters())
	}
	n, _ := strconv.Atoi(m[1])
	ms, _ := strconv.Atoi(m[3])
	return n, time.Duration(ms) * time.Millisecond
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// pingChecks are the ping checks both backends run.
func pingChecks(t *testing.T, r *throughputs, ns *testnet.NS, up *upProcess, addr string, flood int, label string) {
	t.Helper()
	kernelPing(t, ns, up, "-c", "5", "-i", "0.2", "-W", "2", addr)
	kernelPing(t, ns, up, "-c", "5", "-i", "0.2", "-W", "2", "-s", "4000", addr)
	for _, size := range []int{56, 4000} {
		n, d := kernelPing(t, ns, up, "-f", "-c", strconv.Itoa(flood), "-w", "60", "-s", strconv.Itoa(size), addr)
		r.add(t, fmt.Sprintf("%-40s %9.0f echoes/s (%d in %v)",
			fmt.Sprintf("%sping -f -s %d", label, size), float64(n)/max(d.Seconds(), 1e-3), n, d))
	}
}

// curlCheck fetches url with curl in ns and fails t unless the body has
// sha256 want; it returns the time taken.
func curlCheck(t *testing.T, ns *testnet.NS, up *upProcess, url string, size int64, want string, extra ...string) float64 {
	t.Helper()
	start := time.Now()
	cmd := "curl -sSf " + strings.Join(extra, " ") + " " + url + " | sha256sum"
	out, err := testnet.Run(ns, transferTimeout(size), "sh", "-c", cmd)
	secs := time.Since(start).Seconds()
	if err != nil || !strings.HasPrefix(out, want) {
		t.Fatalf("%s: %v\n%s\nwant sha256 %s\ncounters:\n%s", cmd, err, out, want, up.counters())
	}
	return secs
}

func udpEchoCheck(t *testing.T, r *throughputs, k *kernelClient, up *upProcess, addr string, count int, label string) {
	t.Helper()
	res := k.run(t, 2*time.Minute, "udpecho", addr, "7", strconv.Itoa(count))
	if res.OK != count || res.Error != "" {
		t.Fatalf("UDP echo: %d of %d datagrams echoed, %d wrong, %d lost (first missing %v): %s\ncounters:\n%s",
			res.OK, count, res.Bad, res.Lost, res.Missing, res.Error, up.counters())
	}
	r.bytes(t, fmt.Sprintf("%sUDP echo, %d datagrams", label, count), res.Received, res.Seconds)
	r.add(t, fmt.Sprintf("%-40s %9.0f datagrams/s round trip", label+"UDP echo", float64(count)/res.Seconds))
}

// tcpEchoCheck sends n bytes to the echo service while reading them back,
// both directions at once, and checks what came back.
func tcpEchoCheck(t *testing.T, r *throughputs, k *kernelClient, up *upProcess, addr string, n int64, label string) {
	t.Helper()
	res := k.run(t, transferTimeout(2*n), "echo", addr, "7", strconv.FormatInt(n, 10), "7")
	if res.Error != "" || res.Received != n || res.ReceivedSHA != res.SentSHA {
		t.Fatalf("TCP echo of %d bytes: got %d back, sha256 %s, sent %s: %s\ncounters:\n%s",
			n, res.Received, res.ReceivedSHA, res.SentSHA, res.Error, up.counters())
	}
	r.bytes(t, fmt.Sprintf("%sTCP echo %s, each way at once", label, binSize(n)), n, res.Seconds)
}

// discardCheck sends n bytes to the discard service and waits for it to
// close: it has read them all.
func discardCheck(t *testing.T, r *throughputs, k *kernelClient, up *upProcess, addr string, n int64, label string) {
	t.Helper()
	res := k.run(t, transferTimeout(n), "discard", addr, "9", strconv.FormatInt(n, 10))
	if res.Error != "" || res.Sent != n {
		t.Fatalf("TCP discard: sent %d of %d: %s\ncounters:\n%s", res.Sent, n, res.Error, up.counters())
	}
	r.bytes(t, fmt.Sprintf("%sTCP discard %s", label, binSize(n)), n, res.Seconds)
}

// TestInteropTAP runs the suite over a TAP device: tapstack up in
// namespace tsio1 on tsiotap0 (10.94.0.2, the kernel 10.94.0.1), and
// tapstack get on tsiotap1 (10.94.1.2) from python3's http.server on
// 10.94.1.1.
func TestInteropTAP(t *testing.T) {
	testnet.RequireRoot(t)
	for _, tool := range []string{"ping", "curl", "python3", "tshark", "sha256sum"} {
		testnet.RequireTool(t, tool)
	}
	sz := interopSizesFor(t)
	tapstackBinary(t)
	ns := testnet.NewNS(t, "tsio1")
	ns.Sysctl(t, "net.ipv6.conf.all.disable_ipv6", "1")
	ns.Sysctl(t, "net.ipv6.conf.default.disable_ipv6", "1")
	ns.AddTAP(t, "tsiotap0", netip.MustParsePrefix("10.94.0.1/24"))
	ns.AddTAP(t, "tsiotap1", netip.MustParsePrefix("10.94.1.1/24"))
	k := newKernelClient(t, ns)
	r := new(throughputs)
	defer r.summary(t)

	root := t.TempDir()
	dlSum, _ := writeRandomFile(t, filepath.Join(root, "dl"), sz.downloadSize, 2)
	writeRandomFile(t, filepath.Join(root, "wrk"), 1024, 3)
	const stack = "10.94.0.2"
	up := startUp(t, ns, "--dev", "tsiotap0", "--addr", stack+"/24",
		"--serve", "echo=7,discard=9,chargen=19,http=80", "--http-root", root)
	r.start(tcpCounters(ns, up, tapDrops(ns, "tsiotap0", "tsiotap1")))

	t.Run("ping", func(t *testing.T) {
		pingChecks(t, r, ns, up, stack, sz.floodPings, "")
	})

	t.Run("curl", func(t *testing.T) {
		path := filepath.Join(root, "big")
		mid := byteRange{sz.curl/3 - 12345, 1<<20 + 777}
		tail := byteRange{sz.curl - 100000, 100000}
		genStart := time.Now()
		sum, parts := writeRandomFile(t, path, sz.curl, 1, mid, tail)
		t.Logf("generated %d random bytes in %v", sz.curl, time.Since(genStart).Round(time.Millisecond))
		defer os.Remove(path) // 1 GiB is not kept longer than needed
		secs := curlCheck(t, ns, up, "http://"+stack+"/big", sz.curl, sum)
		r.bytes(t, fmt.Sprintf("curl %s, sha256 checked", binSize(sz.curl)), sz.curl, secs)
		curlCheck(t, ns, up, "http://"+stack+"/big", mid.n, parts[0],
			"-r", fmt.Sprintf("%d-%d", mid.off, mid.off+mid.n-1))
		curlCheck(t, ns, up, "http://"+stack+"/big", tail.n, parts[1], "-r", fmt.Sprintf("-%d", tail.n))
		hdr, err := testnet.Run(ns, 20*time.Second, "curl", "-sSf", "-o", "/dev/null", "-D", "-",
			"-r", fmt.Sprintf("%d-%d", mid.off, mid.off+mid.n-1), "http://"+stack+"/big")
		wantRange := fmt.Sprintf("Content-Range: bytes %d-%d/%d", mid.off, mid.off+mid.n-1, sz.curl)
		if err != nil || !strings.Contains(hdr, " 206 ") || !strings.Contains(hdr, wantRange) {
			t.Fatalf("Range request: %v; want 206 and %q in\n%s", err, wantRange, hdr)
		}
	})

	t.Run("echo", func(t *testing.T) {
		tcpEchoCheck(t, r, k, up, stack, sz.echo, "")
	})

	t.Run("discard", func(t *testing.T) {
		discardCheck(t, r, k, up, stack, sz.discard, "")
	})

	t.Run("chargen", func(t *testing.T) {
		res := k.run(t, transferTimeout(sz.chargen), "chargen", stack, "19", strconv.FormatInt(sz.chargen, 10))
		if res.Error != "" || res.Received != sz.chargen || res.BadOffset >= 0 {
			t.Fatalf("TCP chargen: %d of %d bytes, first wrong byte at %d: %s\ncounters:\n%s",
				res.Received, sz.chargen, res.BadOffset, res.Error, up.counters())
		}
		r.bytes(t, fmt.Sprintf("TCP chargen %s", binSize(sz.chargen)), sz.chargen, res.Seconds)
	})

	t.Run("udp-echo", func(t *testing.T) {
		udpEchoCheck(t, r, k, up, stack, sz.udpEcho, "")
	})

	t.Run("downloads", func(t *testing.T) {
		total := int64(sz.downloads) * sz.downloadSize
		res := k.run(t, transferTimeout(total), "downloads", stack, "80", "/dl", strconv.Itoa(sz.downloads), dlSum)
		if res.Connected != sz.downloads || res.OK != sz.downloads || res.Received != total {
			t.Fatalf("%d concurrent downloads of %s: %d connected, %d complete with the right sha256, %d bytes: %s\ncounters:\n%s",
				sz.downloads, binSize(sz.downloadSize), res.Connected, res.OK, res.Received, res.Error, up.counters())
		}
		r.add(t, fmt.Sprintf("%-40s %9.0f conns/s", fmt.Sprintf("%d concurrent connects", sz.downloads),
			float64(sz.downloads)/res.ConnectSeconds))
		r.bytes(t, fmt.Sprintf("%d concurrent downloads of %s", sz.downloads, binSize(sz.downloadSize)), total, res.Seconds)
	})

	t.Run("wrk", func(t *testing.T) {
		testnet.RequireTool(t, "wrk")
		dur := fmt.Sprintf("%ds", int(sz.wrk.Seconds()))
		out, err := testnet.Run(ns, sz.wrk+time.Minute, "wrk", "-t2", "-c64", "-d"+dur, "http://"+stack+"/wrk")
		reqs, rate := wrkRequestsRE.FindStringSubmatch(out), wrkRateRE.FindStringSubmatch(out)
		if err != nil || reqs == nil || rate == nil || strings.Contains(out, "Socket errors") || strings.Contains(out, "Non-2xx") {
			t.Fatalf("wrk -c64 -d%s: %v\n%s\ncounters:\n%s", dur, err, out, up.counters())
		}
		r.add(t, fmt.Sprintf("%-40s %9s req/s  (%s requests of 1 KiB in %s%s, no socket errors)",
			"wrk -t2 -c64 -d"+dur, rate[1], reqs[1], reqs[2], reqs[3]))
	})

	t.Run("get", func(t *testing.T) {
		srvRoot := t.TempDir()
		sum, _ := writeRandomFile(t, filepath.Join(srvRoot, "blob"), sz.get, 4)
		testnet.Start(t, ns, "python3", "-m", "http.server", "--bind", "10.94.1.1", "--directory", srvRoot, "8000")
		testnet.WaitFor(t, 10*time.Second, "python3 http.server", func() bool {
			_, err := testnet.Run(ns, 2*time.Second, "curl", "-sf", "-o", "/dev/null", "http://10.94.1.1:8000/")
			return err == nil
		})
		fetched := filepath.Join(t.TempDir(), "fetched")
		start := time.Now()
		out, err := testnet.Run(ns, transferTimeout(sz.get), tapstackBinary(t), "get", "http://10.94.1.1:8000/blob",
			"-o", fetched, "--dev", "tsiotap1", "--addr", "10.94.1.2/24", "--timeout", "10m")
		secs := time.Since(start).Seconds()
		if err != nil {
			t.Fatalf("tapstack get: %v\n%s", err, out)
		}
		f, err := os.Open(fetched)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		h := sha256.New()
		n, err := io.Copy(h, bufio.NewReaderSize(f, 1<<20))
		if err != nil || n != sz.get || hex.EncodeToString(h.Sum(nil)) != sum {
			t.Fatalf("tapstack get wrote %d bytes (%v) with sha256 %x, want %d bytes with %s", n, err, h.Sum(nil), sz.get, sum)
		}
		r.bytes(t, fmt.Sprintf("tapstack get %s from python3", binSize(sz.get)), sz.get, secs)
	})

	r.totals(t, "")
	t.Logf("stack counters at the end:\n%s", up.counters())
	up.stop(t)

	// The capture check runs on a stack of its own, with a little of every
	// kind of traffic: capturing the bulk checks would slow them and leave
	// gigabytes for tshark. This stack runs CUBIC (--cc).
	t.Run("capture", func(t *testing.T) {
		pcap := filepath.Join(t.TempDir(), "interop.pcap")
		capRoot := t.TempDir()
		sum, parts := writeRandomFile(t, filepath.Join(capRoot, "f"), 4<<20, 5, byteRange{1000, 200000})
		cup := startUp(t, ns, "--dev", "tsiotap0", "--addr", stack+"/24",
			"--serve", "echo=7,discard=9,chargen=19,http=80", "--http-root", capRoot, "--pcap", pcap, "--cc", "cubic")
		kernelPing(t, ns, cup, "-c", "3", "-i", "0.2", "-W", "2", stack)
		kernelPing(t, ns, cup, "-c", "3", "-i", "0.2", "-W", "2", "-s", "4000", stack)
		if res := k.run(t, time.Minute, "udpecho", stack, "7", "100"); res.OK != 100 {
			t.Fatalf("UDP echo: %+v", res)
		}
		if res := k.run(t, time.Minute, "echo", stack, "7", "1000000", "11"); res.Received != 1000000 || res.ReceivedSHA != res.SentSHA {
			t.Fatalf("TCP echo: %+v", res)
		}
		if res := k.run(t, time.Minute, "discard", stack, "9", "1000000"); res.Error != "" {
			t.Fatalf("TCP discard: %+v", res)
		}
		if res := k.run(t, time.Minute, "chargen", stack, "19", "1000000"); res.BadOffset >= 0 || res.Error != "" {
			t.Fatalf("TCP chargen: %+v", res)
		}
		curlCheck(t, ns, cup, "http://"+stack+"/f", 4<<20, sum)
		curlCheck(t, ns, cup, "http://"+stack+"/f", 200000, parts[0], "-r", "1000-200999")
		cup.stop(t)

		bad, err := tshark("-r", pcap, "--disable-protocol", "http", "-o", "ip.check_checksum:TRUE",
			"-o", "udp.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE", "-Y",
			`_ws.malformed || ip.checksum.status == "Bad" || udp.checksum.status == "Bad" || tcp.checksum.status == "Bad" || icmp.checksum.status == "Bad"`)
		if err != nil || strings.TrimSpace(bad) != "" {
			t.Fatalf("tshark finds malformed frames or bad checksums in the capture: %v\n%s", err, lastLines(bad, 20))
		}
		// The capture holds what was sent: our TCP data, our fragments and
		// echo replies, every one checked above.
		for _, c := range []struct {
			filter string
			min    int
		}{
			{"ip.src == 10.94.0.2 && tcp.len > 0", 3000},
			{"ip.src == 10.94.0.2 && ip.flags.mf == 1", 6},
			{"ip.src == 10.94.0.2 && icmp.type == 0", 6},
			{"ip.src == 10.94.0.2 && udp.srcport == 7", 100},
		} {
			out, err := tshark("-r", pcap, "-Y", c.filter)
			if n := strings.Count(out, "\n"); err != nil || n < c.min {
				t.Errorf("capture: %d frames match %q, want >= %d (%v)", n, c.filter, c.min, err)
			}
		}
		st, err := os.Stat(pcap)
		if err == nil {
			t.Logf("capture of %d bytes is clean", st.Size())
		}
	})
}

// TestInteropRaw runs the basics (ping, curl, TCP echo and discard, UDP
// echo) over the raw backend: a veth pair whose kernel end tsiov0 is
// 10.94.2.1 in namespace tsio2, and tapstack up --backend raw on the other
// end, tsiov1, in this namespace as 10.94.2.2 (tsiov1 has no address of its
// own, or the kernel would answer too).
func TestInteropRaw(t *testing.T) {
	testnet.RequireRoot(t)
	for _, tool := range []string{"ping", "curl", "python3", "sha256sum", "ethtool"} {
		testnet.RequireTool(t, tool)
	}
	sz := interopSizesFor(t)
	tapstackBinary(t)
	ns := testnet.NewNS(t, "tsio2")
	ns.Sysctl(t, "net.ipv6.conf.all.disable_ipv6", "1")
	ns.Sysctl(t, "net.ipv6.conf.default.disable_ipv6", "1")
	ns.AddVeth(t, "tsiov0", netip.MustParsePrefix("10.94.2.1/24"), "tsiov1", nil)
	k := newKernelClient(t, ns)
	r := new(throughputs)
	defer r.summary(t)

	root := t.TempDir()
	const stack = "10.94.2.2"
	up := startUp(t, nil, "--backend", "raw", "--dev", "tsiov1", "--addr", stack+"/24",
		"--serve", "echo=7,discard=9,http=80", "--http-root", root)
	r.start(tcpCounters(ns, up, packetSocketDrops(up.cmd.Process.Pid)))

	t.Run("ping", func(t *testing.T) {
		pingChecks(t, r, ns, up, stack, sz.floodPings, "raw: ")
	})
	t.Run("curl", func(t *testing.T) {
		path := filepath.Join(root, "big")
		sum, _ := writeRandomFile(t, path, sz.rawCurl, 6)
		defer os.Remove(path)
		secs := curlCheck(t, ns, up, "http://"+stack+"/big", sz.rawCurl, sum)
		r.bytes(t, fmt.Sprintf("raw: curl %s, sha256 checked", binSize(sz.rawCurl)), sz.rawCurl, secs)
	})
	t.Run("echo", func(t *testing.T) {
		tcpEchoCheck(t, r, k, up, stack, sz.echo, "raw: ")
	})
	t.Run("discard", func(t *testing.T) {
		discardCheck(t, r, k, up, stack, sz.discard, "raw: ")
	})
	t.Run("udp-echo", func(t *testing.T) {
		udpEchoCheck(t, r, k, up, stack, sz.udpEcho, "raw: ")
	})
	r.totals(t, "raw: ")
	t.Logf("stack counters at the end:\n%s", up.counters())
	up.stop(t)
}

// TestInteropOffload runs the data checks with --offload: over a TAP in
// namespace tsio3 (10.94.3.0/24) and over the raw backend on a veth in
// tsio4 (10.94.4.0/24). The kernel then does the checksums and cuts our
// super-segments (TSO), and hands us coalesced frames (GRO).
func TestInteropOffload(t *testing.T) {
	testnet.RequireRoot(t)
	for _, tool := range []string{"ping", "curl", "python3", "sha256sum"} {
		testnet.RequireTool(t, tool)
	}
	sz := interopSizesFor(t)
	tapstackBinary(t)
	for _, backend := range []string{"tap", "raw"} {
		t.Run(backend, func(t *testing.T) {
			var ns *testnet.NS
			var up *upProcess
			var stack string
			var drops func() (int64, bool)
			root := t.TempDir()
			switch backend {
			case "tap":
				ns = testnet.NewNS(t, "tsio3")
				ns.AddTAP(t, "tsiotap3", netip.MustParsePrefix("10.94.3.1/24"))
				stack = "10.94.3.2"
				up = startUp(t, ns, "--dev", "tsiotap3", "--addr", stack+"/24", "--offload",
					"--serve", "echo=7,discard=9,http=80", "--http-root", root)
				drops = tapDrops(ns, "tsiotap3")
			case "raw":
				ns = testnet.NewNS(t, "tsio4")
				ns.AddVeth(t, "tsiov4", netip.MustParsePrefix("10.94.4.1/24"), "tsiov5", nil)
				stack = "10.94.4.2"
				up = startUp(t, nil, "--backend", "raw", "--dev", "tsiov5", "--addr", stack+"/24", "--offload",
					"--serve", "echo=7,discard=9,http=80", "--http-root", root)
				drops = packetSocketDrops(up.cmd.Process.Pid)
			}
			label := backend + " offload: "
			k := newKernelClient(t, ns)
			r := new(throughputs)
			defer r.summary(t)
			r.start(tcpCounters(ns, up, drops))
			t.Run("ping", func(t *testing.T) {
				pingChecks(t, r, ns, up, stack, sz.floodPings, label)
			})
			t.Run("curl", func(t *testing.T) {
				path := filepath.Join(root, "big")
				sum, _ := writeRandomFile(t, path, sz.curl, 7)
				defer os.Remove(path)
				secs := curlCheck(t, ns, up, "http://"+stack+"/big", sz.curl, sum)
				r.bytes(t, fmt.Sprintf("%scurl %s, sha256 checked", label, binSize(sz.curl)), sz.curl, secs)
				// The super-segments went out from the send buffer.
				if c := up.counters(); !regexp.MustCompile(`(?m)^link\.FramesGathered [1-9]`).MatchString(c) {
					t.Errorf("no frame gathered:\n%s", c)
				}
			})
			t.Run("echo", func(t *testing.T) {
				tcpEchoCheck(t, r, k, up, stack, sz.echo, label)
			})
			t.Run("discard", func(t *testing.T) {
				discardCheck(t, r, k, up, stack, sz.discard, label)
			})
			t.Run("udp-echo", func(t *testing.T) {
				udpEchoCheck(t, r, k, up, stack, sz.udpEcho, label)
			})
			r.totals(t, label)
			up.stop(t)
		})
	}
}
