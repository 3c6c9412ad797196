package netstack

// Tests against the Linux kernel as the peer, over a TAP device. They need
// root and skip without it (fail with TAPSTACK_REQUIRE_ROOT=1). The kernel
// side lives in a namespace the test creates (tsip*, 10.97.x.0/24) and
// removes at cleanup; the peer programs (ping, arping, socat, python3,
// tshark) run inside it. Every wait is bounded.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tapstack/tapstack/device"
	"github.com/tapstack/tapstack/internal/testnet"
	"github.com/tapstack/tapstack/ip"
)

var (
	kernelAddr = netip.MustParseAddr("10.97.1.1")
	stackAddr  = netip.MustParseAddr("10.97.1.2")
)

// The UDP ports the tests use. tshark decodes them as plain data: by
// default it would guess a protocol from a port number (7000-7009 are
// AFS's) and call our test payloads malformed.
const (
	portStackEcho  = 7007 // our echo server, the kernel's client
	portSocatEcho  = 7101 // socat's echo server, our client
	portKernelNone = 7999 // no socket on the kernel side
)

var interopPorts = []int{portStackEcho, portSocatEcho, portKernelNone}

// kernelPeer is our stack on a TAP whose kernel side is 10.97.1.1/24 in a
// namespace, with every frame captured to a pcap file.
type kernelPeer struct {
	ns   *testnet.NS
	link *testnet.Link
	tap  *device.Tun
	s    *Stack
	nic  *NIC
	mac  net.HardwareAddr // ours

	pcapPath string
	pcapFile *os.File
	pcapBuf  *bufio.Writer
	closed   bool
}

func newKernelPeer(t *testing.T, nsName, tapName string) *kernelPeer {
	t.Helper()
	testnet.RequireRoot(t)
	testnet.RequireTool(t, "ping")
	testnet.RequireTool(t, "tshark")
	ns := testnet.NewNS(t, nsName)
	// No IPv6 chatter: the frames on the link are the ones the test causes.
	ns.Sysctl(t, "net.ipv6.conf.all.disable_ipv6", "1")
	ns.Sysctl(t, "net.ipv6.conf.default.disable_ipv6", "1")
	link := ns.AddTAP(t, tapName, netip.PrefixFrom(kernelAddr, 24))
	// Let the kernel create a neighbour entry from our gratuitous ARP, so
	// that the announcement itself can be observed.
	ns.Sysctl(t, "net.ipv4.conf."+tapName+".arp_accept", "1")
	p := &kernelPeer{ns: ns, link: link}
	p.tap = testnet.In(t, ns, func() (*device.Tun, error) { return device.OpenTAP(tapName, device.Config{}) })
	p.mac = p.tap.LinkAddr()
	p.pcapPath = filepath.Join(t.TempDir(), "stack.pcap")
	f, err := os.Create(p.pcapPath)
	if err != nil {
		p.tap.Close()
		t.Fatal(err)
	}
	p.pcapFile, p.pcapBuf = f, bufio.NewWriter(f)
	pc, err := device.NewPcap(p.tap, p.pcapBuf, nil)
	if err != nil {
		p.tap.Close()
		t.Fatal(err)
	}
	p.s = New(Config{})
	t.Cleanup(func() { p.close(t) })
	p.nic, err = p.s.AttachDevice(pc, NICConfig{Name: tapName, Addrs: []netip.Prefix{netip.PrefixFrom(stackAddr, 24)}})
	if err != nil {
		p.tap.Close()
		t.Fatal(err)
	}
	link.WaitUp(t)
	return p
}

// close stops the stack (closing the TAP) and completes the capture.
func (p *kernelPeer) close(t *testing.T) {
	if p.closed {
		return
	}
	p.closed = true
	if err := p.s.Close(); err != nil {
		t.Errorf("closing the stack: %v", err)
	}
	if err := p.pcapBuf.Flush(); err != nil {
		t.Errorf("pcap: %v", err)
	}
	p.pcapFile.Close()
}

// run runs a command in the namespace, failing t if it fails.
func (p *kernelPeer) run(t *testing.T, timeout time.Duration, args ...string) string {
	t.Helper()
	out, err := testnet.Run(p.ns, timeout, args...)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return out
}

var pingSummary = regexp.MustCompile(`(\d+) packets transmitted, (\d+) received`)

// pingCounts parses ping(8)'s summary line.
func pingCounts(t *testing.T, out string) (sent, received int) {
	t.Helper()
	m := pingSummary.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no summary in ping's output:\n%s", out)
	}
	sent, _ = strconv.Atoi(m[1])
	received, _ = strconv.Atoi(m[2])
	return sent, received
}

// kernelNeighbor returns the kernel's neighbour entry for a on the TAP:
// its MAC and state, or "" when there is none.
func (p *kernelPeer) kernelNeighbor(t *testing.T, a netip.Addr) (mac, state string) {
	t.Helper()
	out := p.run(t, testnet.DefaultTimeout, "ip", "neigh", "show", a.String(), "dev", p.link.Name)
	// "10.97.1.2 lladdr 02:...:.. REACHABLE"
	f := strings.Fields(out)
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "lladdr" {
			return f[i+1], f[len(f)-1]
		}
	}
	return "", ""
}

// kernelSNMP reads the namespace's /proc/net/snmp counters as
// "Proto.Name" -> value.
func (p *kernelPeer) kernelSNMP(t *testing.T) map[string]int64 {
	t.Helper()
	out := p.run(t, testnet.DefaultTimeout, "cat", "/proc/net/snmp")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	m := make(map[string]int64)
	for i := 0; i+1 < len(lines); i += 2 {
		names, values := strings.Fields(lines[i]), strings.Fields(lines[i+1])
		if len(names) != len(values) || len(names) == 0 {
			t.Fatalf("/proc/net/snmp: unexpected lines %q, %q", lines[i], lines[i+1])
		}
		proto := strings.TrimSuffix(names[0], ":")
		for j := 1; j < len(names); j++ {
			v, _ := strconv.ParseInt(values[j], 10, 64)
			m[proto+"."+names[j]] = v
		}
	}
	return m
}

func TestKernelInterop(t *testing.T) {
	// The namespace's name is the process's own: two runs of this test at
	// once (go test in two trees) must not delete each other's. The TAP
	// lives inside it, so its name may repeat.
	p := newKernelPeer(t, fmt.Sprintf("tsip%d", os.Getpid()), "tsiptap1")
	s := p.s

	t.Run("GratuitousARP", func(t *testing.T) {
		// Sent when the address was added; with arp_accept the kernel
		// makes an entry from it before any other traffic.
		var mac string
		testnet.WaitFor(t, 5*time.Second, "the kernel to learn our MAC from the announcement", func() bool {
			mac, _ = p.kernelNeighbor(t, stackAddr)
			return mac != ""
		})
		if mac != p.mac.String() {
			t.Fatalf("kernel has %s at %s, want our %s", stackAddr, mac, p.mac)
		}
	})

	t.Run("KernelPings", func(t *testing.T) {
		// Forget us first: the kernel resolves us with an ARP request.
		p.run(t, testnet.DefaultTimeout, "ip", "neigh", "flush", "dev", p.link.Name)
		out := p.run(t, 20*time.Second, "ping", "-c", "5", "-i", "0.1", "-W", "2", stackAddr.String())
		if sent, got := pingCounts(t, out); sent != 5 || got != 5 {
			t.Fatalf("%d of %d echo requests answered:\n%s", got, sent, out)
		}
		if mac, state := p.kernelNeighbor(t, stackAddr); mac != p.mac.String() {
			t.Fatalf("kernel neighbour entry for %s: %q (%s), want %s", stackAddr, mac, state, p.mac)
		}
	})

	t.Run("KernelFragmentedPings", func(t *testing.T) {
		before := s.Stats().IPv4
		out := p.run(t, 20*time.Second, "ping", "-c", "3", "-s", "4000", "-i", "0.1", "-W", "2", stackAddr.String())
		if sent, got := pingCounts(t, out); sent != 3 || got != 3 {
			t.Fatalf("%d of %d 4000-byte echo requests answered:\n%s", got, sent, out)
		}
		if !strings.Contains(out, "4008 bytes from "+stackAddr.String()) {
			t.Errorf("replies are not 4008 bytes of ICMP:\n%s", out)
		}
		after := s.Stats().IPv4
		if d := after.Reassembled - before.Reassembled; d != 3 {
			t.Errorf("we reassembled %d datagrams, want 3", d)
		}
		if d := after.FragmentsSent - before.FragmentsSent; d != 9 {
			t.Errorf("we sent %d fragments, want 9", d)
		}
	})

	t.Run("KernelPingSizes", func(t *testing.T) {
		// Odd lengths (checksums over a trailing byte), the edges of
		// fragmentation, and the largest datagram: 45 fragments each way.
		for _, size := range []int{0, 1, 7, 1471, 1472, 1473, 2953, 2961, 65507} {
			out := p.run(t, 20*time.Second, "ping", "-c", "1", "-W", "5", "-s", strconv.Itoa(size), stackAddr.String())
			if sent, got := pingCounts(t, out); sent != 1 || got != 1 {
				t.Errorf("ping -s %d: %d of %d answered:\n%s", size, got, sent, out)
			}
		}
	})

	t.Run("FloodPing", func(t *testing.T) {
		const count = 5000
		out := p.run(t, 120*time.Second, "ping", "-q", "-f", "-c", strconv.Itoa(count), "-W", "1", stackAddr.String())
		sent, got := pingCounts(t, out)
		if sent != count {
			t.Fatalf("ping sent %d, want %d:\n%s", sent, count, out)
		}
		loss := 100 * float64(sent-got) / float64(sent)
		t.Logf("flood ping: %d sent, %d received, %.2f%% loss; %s", sent, got, loss, lastLine(out))
		if loss >= 1 {
			t.Fatalf("flood ping lost %.2f%%, want under 1%%:\n%s", loss, out)
		}
	})

	t.Run("KernelUDPEcho", func(t *testing.T) {
		testnet.RequireTool(t, "python3")
		srv, err := s.ListenUDP(netip.AddrPortFrom(netip.Addr{}, portStackEcho))
		if err != nil {
			t.Fatal(err)
		}
		stop := udpEcho(t, srv)
		defer stop()
		script := filepath.Join(t.TempDir(), "udpecho.py")
		if err := os.WriteFile(script, []byte(udpEchoClient), 0o644); err != nil {
			t.Fatal(err)
		}
		const count = 1000
		before := s.Stats().UDP
		out := p.run(t, 120*time.Second, "python3", script, stackAddr.String(), strconv.Itoa(portStackEcho), strconv.Itoa(count))
		t.Logf("kernel UDP client: %s", strings.TrimSpace(out))
		var sent, echoed, lost, corrupt, sizeMax int
		if _, err := fmt.Sscanf(lastLine(out), "sent %d echoed %d lost %d corrupt %d max %d",
			&sent, &echoed, &lost, &corrupt, &sizeMax); err != nil {
			t.Fatalf("client output: %v\n%s", err, out)
		}
		if sent != count || echoed != count || lost != 0 || corrupt != 0 || sizeMax != 1472 {
			t.Fatalf("sent %d echoed %d lost %d corrupt %d (largest %d bytes); want %d echoed intact, up to 1472 bytes",
				sent, echoed, lost, corrupt, sizeMax, count)
		}
		after := s.Stats().UDP
		if d := after.Delivered - before.Delivered; d != count {
			t.Errorf("our stack delivered %d datagrams, want %d", d, count)
		}
	})

	t.Run("StackPingsKernel", func(t *testing.T) {
		for _, size := range []int{0, 1, 56, 1473, 4000, 65507} {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			rtt, err := s.Ping(ctx, kernelAddr, size)
			cancel()
			if err != nil {
				t.Fatalf("ping %v with %d bytes: %v", kernelAddr, size, err)
			}
			t.Logf("ping %v, %d bytes: %v", kernelAddr, size, rtt)
		}
		// We learnt the kernel's MAC.
		s.mu.Lock()
		var mac ip.MAC
		if p.nic.neigh != nil {
			if e := p.nic.neigh.index[kernelAddr]; e != nil && e.state != neighIncomplete {
				mac = e.mac
			}
		}
		s.mu.Unlock()
		if want := p.tap.KernelAddr(); !bytes.Equal(mac[:], want) {
			t.Fatalf("our neighbour entry for %v: %v, want the kernel's %v", kernelAddr, net.HardwareAddr(mac[:]), want)
		}
	})

	t.Run("StackUDPWithSocat", func(t *testing.T) {
		testnet.RequireTool(t, "socat")
		testnet.RequireTool(t, "ss")
		const port = portSocatEcho
		testnet.Start(t, p.ns, "socat", "-T", "30", "-b", "65536", fmt.Sprintf("UDP4-LISTEN:%d,fork,reuseaddr", port), "EXEC:cat")
		testnet.WaitFor(t, 10*time.Second, "socat to listen", func() bool {
			out, err := testnet.Run(p.ns, testnet.DefaultTimeout, "ss", "-Hlun", fmt.Sprintf("sport = :%d", port))
			return err == nil && strings.TrimSpace(out) != ""
		})
		c, err := s.DialUDP(netip.AddrPort{}, netip.AddrPortFrom(kernelAddr, port))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		buf := make([]byte, 65536)
		// 1473 bytes and more are fragmented both ways; 65507 is the most
		// a UDP datagram carries.
		for i, size := range []int{1, 18, 100, 512, 1000, 1472, 1473, 4000, 65507, 1472, 7} {
			msg := make([]byte, size)
			for j := range msg {
				msg[j] = byte(i*31 + j*7)
			}
			if _, err := c.Write(msg); err != nil {
				t.Fatalf("datagram %d: %v", i, err)
			}
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			n, err := c.Read(buf)
			if err != nil {
				t.Fatalf("echo of datagram %d (%d bytes): %v", i, size, err)
			}
			if !bytes.Equal(buf[:n], msg) {
				t.Fatalf("echo of datagram %d: %d bytes, want the %d sent", i, n, size)
			}
		}
	})

	t.Run("KernelPortUnreachable", func(t *testing.T) {
		c, err := s.DialUDP(netip.AddrPort{}, netip.AddrPortFrom(kernelAddr, portKernelNone))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write([]byte("is anyone there?")); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Read(make([]byte, 100)); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("read after writing to a closed kernel port: %v, want ECONNREFUSED", err)
		}
	})

	t.Run("Arping", func(t *testing.T) {
		testnet.RequireTool(t, "arping")
		before := s.Stats().ARP.Sent
		out := p.run(t, 20*time.Second, "arping", "-c", "3", "-w", "5", "-i", p.link.Name, stackAddr.String())
		n := strings.Count(strings.ToLower(out), "from "+p.mac.String())
		if n != 3 {
			t.Fatalf("%d of 3 replies from our MAC %s:\n%s", n, p.mac, out)
		}
		if d := s.Stats().ARP.Sent - before; d < 3 {
			t.Errorf("we sent %d ARP packets, want at least the 3 replies", d)
		}
	})

	// Nothing we received was bad, nothing failed to go out, and the
	// kernel saw nothing malformed from us.
	st := s.Stats()
	if st.Link.TxErrors != 0 || st.Link.RxErrors != 0 || st.Link.EncodeErrors != 0 || st.Link.Malformed != 0 ||
		st.IPv4.BadChecksum != 0 || st.IPv4.Malformed != 0 || st.IPv4.Truncated != 0 ||
		st.UDP.BadChecksum != 0 || st.UDP.Malformed != 0 || st.ICMP.BadChecksum != 0 || st.ICMP.Malformed != 0 {
		t.Errorf("errors on a clean link: %+v", st)
	}
	snmp := p.kernelSNMP(t)
	for _, k := range []string{"Ip.InHdrErrors", "Ip.ReasmFails", "Icmp.InErrors", "Icmp.InCsumErrors", "Udp.InErrors", "Udp.InCsumErrors"} {
		v, ok := snmp[k]
		if !ok {
			t.Errorf("/proc/net/snmp has no %s", k)
		} else if v != 0 {
			t.Errorf("kernel counter %s = %d, want 0", k, v)
		}
	}

	// The capture, read by tshark, holds no malformed frame and no bad
	// checksum.
	p.close(t)
	checkCaptureClean(t, p.pcapPath, p.mac)
}

// checkCaptureClean has tshark verify every IPv4, UDP and ICMP checksum in
// the capture at path and look for malformed frames. It first proves the
// check works on a frame with a bad checksum.
func checkCaptureClean(t *testing.T, path string, ours net.HardwareAddr) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	fields, err := exec.CommandContext(ctx, "tshark", "-G", "fields").Output()
	if err != nil {
		t.Fatalf("tshark -G fields: %v", err)
	}
	for _, f := range []string{"ip.checksum.status", "udp.checksum.status", "icmp.checksum.status", "_ws.malformed", "_ws.expert.severity"} {
		if !bytes.Contains(fields, []byte("\t"+f+"\t")) {
			t.Fatalf("this tshark has no field %s", f)
		}
	}
	// Checksum status 0 is "Bad", 4 "Illegal" (tshark -G values).
	const bad = "ip.checksum.status == 0 || udp.checksum.status == 0 || icmp.checksum.status == 0 || " +
		"ip.checksum.status == 4 || udp.checksum.status == 4 || icmp.checksum.status == 4 || " +
		"_ws.malformed || _ws.expert.severity == error"
	tshark := func(file, filter string) []string {
		t.Helper()
		args := []string{"-n", "-r", file, "-o", "ip.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE"}
		for _, port := range interopPorts {
			args = append(args, "-d", fmt.Sprintf("udp.port==%d,data", port))
		}
		args = append(args, "-Y", filter, "-T", "fields", "-e", "frame.number", "-e", "eth.src", "-e", "_ws.col.Info")
		cmd := exec.CommandContext(ctx, "tshark", args...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("tshark -r %s -Y %q: %v\n%s", file, filter, err, stderr.Bytes())
		}
		s := strings.TrimSpace(string(out))
		if s == "" {
			return nil
		}
		return strings.Split(s, "\n")
	}

	// The check catches a UDP datagram with a wrong checksum.
	self := filepath.Join(t.TempDir(), "bad.pcap")
	var pb bytes.Buffer
	pw, err := device.NewPcapWriter(&pb, device.LinkTypeEthernet, 0)
	if err != nil {
		t.Fatal(err)
	}
	frame := udpFrame(t, ip.MAC{2, 0, 0, 0, 0, 1}, ip.MAC{2, 0, 0, 0, 0, 2}, kernelAddr, stackAddr, 1234, 5678, []byte("checked"))
	frame[len(frame)-1] ^= 0xff // payload changed after the checksum
	if err := pw.WriteFrame(time.Now(), frame); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(self, pb.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := tshark(self, bad); len(got) != 1 {
		t.Fatalf("the filter does not catch a bad UDP checksum: %q", got)
	}

	if got := tshark(path, bad); len(got) > 0 {
		t.Errorf("tshark finds %d bad frames in the capture:\n%s", len(got), strings.Join(got, "\n"))
	}
	// And it did check: our frames with verified checksums are there.
	for _, f := range []string{"ip.checksum.status == 1", "udp.checksum.status == 1", "icmp.checksum.status == 1", "arp.opcode == 2",
		"arp.isannouncement && arp.src.proto_ipv4 == " + stackAddr.String()} {
		if got := tshark(path, "eth.src == "+ours.String()+" && "+f); len(got) == 0 {
			t.Errorf("no frame of ours in the capture matches %q", f)
		}
	}
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	return s[strings.LastIndexByte(s, '\n')+1:]
}

// udpEchoClient sends datagrams of random sizes up to 1472 bytes (the
// first two 0 and 1472), each with its sequence number and random bytes,
// and waits for each one's echo, checking its content.
const udpEchoClient = `
import os, random, socket, struct, sys, time

host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rnd = random.Random(1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect((host, port))
sent = echoed = lost = corrupt = size_max = 0
for i in range(count):
    size = [0, 1472][i] if i < 2 else rnd.randint(1, 1472)
    size_max = max(size_max, size)
    msg = (struct.pack("!I", i) + os.urandom(size))[:size]
    s.send(msg)
    sent += 1
    deadline = time.monotonic() + 2
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            lost += 1
            break
        s.settimeout(left)
        try:
            got = s.recv(65536)
        except socket.timeout:
            lost += 1
            break
        if got == msg:
            echoed += 1
            break
        if len(got) >= 4 and len(msg) >= 4 and got[:4] != msg[:4]:
            continue  # a late echo of an earlier datagram
        corrupt += 1
        break
print("sent %d echoed %d lost %d corrupt %d max %d" % (sent, echoed, lost, corrupt, size_max))
`

// udpFrame builds an Ethernet frame carrying a UDP datagram.
func udpFrame(t testing.TB, src, dst ip.MAC, from, to netip.Addr, sport, dport uint16, payload []byte) []byte {
	t.Helper()
	const off = ip.EthernetHeaderLen + ip.IPv4MinHeaderLen
	b := make([]byte, off+ip.UDPHeaderLen+len(payload))
	copy(b[off+ip.UDPHeaderLen:], payload)
	u := ip.UDPFields{SrcPort: sport, DstPort: dport}
	if err := u.Encode(b[off:], from, to); err != nil {
		t.Fatal(err)
	}
	h := ip.IPv4Fields{TotalLength: uint16(len(b) - ip.EthernetHeaderLen), ID: 1, TTL: 64,
		Protocol: ip.ProtocolUDP, Src: from, Dst: to}
	if err := h.Encode(b[ip.EthernetHeaderLen:]); err != nil {
		t.Fatal(err)
	}
	e := ip.EthernetFields{Dst: dst, Src: src, EtherType: ip.EtherTypeIPv4}
	if err := e.Encode(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// Over a TUN at MTU 65535 the stack sends large segments to the kernel
// from its send buffer (the TUN writes each frame with writev) and keeps
// the kernel's large segments in the buffers it read them into; the
// kernel's socket receives the stream intact, and echoes it back intact.
func TestKernelTUNGatherAndKeep(t *testing.T) {
	testnet.RequireRoot(t)
	ns := testnet.NewNS(t, fmt.Sprintf("tsipg%d", os.Getpid()))
	kernel, ours := netip.MustParseAddr("10.97.9.1"), netip.MustParsePrefix("10.97.9.2/24")
	link := ns.AddTUN(t, "tsipgth0", netip.PrefixFrom(kernel, 24))
	testnet.Exec(t, ns, "ip", "link", "set", "tsipgth0", "mtu", "65535")
	dev := testnet.In(t, ns, func() (*device.Tun, error) { return device.OpenTUN("tsipgth0", device.Config{}) })
	s := New(Config{})
	defer s.Close()
	if _, err := s.AttachDevice(dev, NICConfig{Name: "tsipgth0", Addrs: []netip.Prefix{ours}}); err != nil {
		dev.Close()
		t.Fatal(err)
	}
	link.WaitUp(t)
	var ln net.Listener
	if err := ns.Do(func() (err error) { ln, err = net.Listen("tcp", netip.AddrPortFrom(kernel, 5001).String()); return err }); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	echoed := make(chan error, 1)
	go func() { // the kernel's side: echo what arrives
		c, err := ln.Accept()
		if err != nil {
			echoed <- err
			return
		}
		defer c.Close()
		_, err = io.Copy(c, c)
		echoed <- err
	}()
	c, err := s.DialContext(bounded(t), "tcp", netip.AddrPortFrom(kernel, 5001).String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	data := make([]byte, 16<<20)
	for i := range data {
		data[i] = byte(i*7 + i>>13)
	}
	wrote := make(chan error, 1)
	go func() {
		_, err := c.Write(data)
		if err == nil {
			err = c.(*TCPConn).CloseWrite()
		}
		wrote <- err
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	if err := <-echoed; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("%d bytes came back, not the %d sent", len(got), len(data))
	}
	st := s.Stats()
	t.Logf("%d of %d frames gathered, %d segments kept", st.Link.FramesGathered, st.Link.FramesSent, st.TCP.SegmentsAdopted)
	if st.Link.FramesGathered == 0 || st.TCP.SegmentsAdopted == 0 {
		t.Errorf("frames gathered %d, segments kept %d: want both", st.Link.FramesGathered, st.TCP.SegmentsAdopted)
	}
}
