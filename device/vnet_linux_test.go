package device

// Offloads against the Linux kernel: TAP and raw sockets with virtio-net
// headers. Names tsoff*, subnets 10.92.x.0/24. A tiny TCP peer (tcpPeer)
// plays the stack: it answers ARP, accepts or opens one connection, checks
// every byte against a pattern and records each frame's metadata.

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/tapstack/tapstack/checksum"
	"github.com/tapstack/tapstack/internal/testnet"
)

// testPattern is the byte stream every test connection carries.
var testPattern = func() []byte {
	b := make([]byte, 8<<20)
	r := rand.NewChaCha8([32]byte{'v', 'n', 'e', 't'})
	_, _ = r.Read(b)
	return b
}()

const transferWait = 30 * time.Second

// frameSeen is what the peer noted about one TCP frame it received.
type frameSeen struct {
	size    int // frame bytes
	payload int
	meta    VnetHdr
	csumOK  bool // the TCP checksum verifies (after completion, if partial)
	partial bool // the checksum field held the pseudo-header sum
}

// tcpPeer is one end of one TCP connection over dev, enough to move bytes
// to and from the kernel: no retransmission, no options beyond MSS and
// window scale; every in-order segment is acknowledged at once.
type tcpPeer struct {
	t         *testing.T
	dev       Device
	meta      bool // read with ReadBatchOffload
	mac       net.HardwareAddr
	kernelMAC net.HardwareAddr
	ip        netip.Addr
	port      uint16

	wmu    sync.Mutex // one writer at a time, as the device wants
	gather bool       // write frames with offloads as headers plus a payload in two parts

	mu       sync.Mutex
	remote   netip.AddrPort // the kernel's end, once known
	iss      uint32         // our initial sequence number
	sndNxt   uint32
	sndUna   uint32
	rcvNxt   uint32
	synced   bool
	finRcvd  bool
	got      []byte // bytes received in order
	bad      string // the first problem seen
	frames   []frameSeen
	changed  chan struct{} // a token per state change
	readDone chan struct{}
}

func newTCPPeer(t *testing.T, dev Device, meta bool, kernelMAC net.HardwareAddr, ip netip.Addr, port uint16) *tcpPeer {
	p := &tcpPeer{t: t, dev: dev, meta: meta, mac: dev.LinkAddr(), kernelMAC: kernelMAC, ip: ip, port: port,
		iss: 1_000_000, changed: make(chan struct{}, 1), readDone: make(chan struct{})}
	p.sndNxt, p.sndUna = p.iss, p.iss
	go p.readLoop()
	t.Cleanup(func() {
		dev.Close()
		<-p.readDone
	})
	return p
}

func (p *tcpPeer) readLoop() {
	defer close(p.readDone)
	bufs, sizes := newBufs(8, MaxOffloadFrameSize)
	meta := make([]VnetHdr, len(bufs))
	for {
		var n int
		var err error
		if p.meta {
			n, err = p.dev.(Offloader).ReadBatchOffload(bufs, sizes, meta, Headroom)
		} else {
			n, err = p.dev.ReadBatch(bufs, sizes, Headroom)
		}
		for i := range n {
			p.handle(bufs[i][Headroom:Headroom+sizes[i]], meta[i])
		}
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				p.fail("ReadBatch: %v", err)
			}
			return
		}
	}
}

func (p *tcpPeer) fail(format string, args ...any) {
	p.mu.Lock()
	if p.bad == "" {
		p.bad = fmt.Sprintf(format, args...)
	}
	p.mu.Unlock()
	p.notify()
}

func (p *tcpPeer) notify() {
	select {
	case p.changed <- struct{}{}:
	default:
	}
}

func (p *tcpPeer) handle(frame []byte, meta VnetHdr) {
	if !p.meta {
		meta = VnetHdr{}
	}
	pkt := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.DecodeOptions{NoCopy: true, Lazy: true})
	if arp, _ := pkt.Layer(layers.LayerTypeARP).(*layers.ARP); arp != nil {
		if target, _ := netip.AddrFromSlice(arp.DstProtAddress); arp.Operation == layers.ARPRequest && target == p.ip {
			p.send(VnetHdr{}, serialize(p.t,
				&layers.Ethernet{SrcMAC: p.mac, DstMAC: arp.SourceHwAddress, EthernetType: layers.EthernetTypeARP},
				&layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4,
					HwAddressSize: 6, ProtAddressSize: 4, Operation: layers.ARPReply,
					SourceHwAddress: p.mac, SourceProtAddress: p.ip.AsSlice(),
					DstHwAddress: arp.SourceHwAddress, DstProtAddress: arp.SourceProtAddress}))
		}
		return
	}
	ip4, _ := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	tcp, _ := pkt.Layer(layers.LayerTypeTCP).(*layers.TCP)
	if ip4 == nil || tcp == nil || uint16(tcp.DstPort) != p.port {
		return
	}
	if dst, _ := netip.AddrFromSlice(ip4.DstIP); dst != p.ip {
		return
	}
	src, _ := netip.AddrFromSlice(ip4.SrcIP)
	seen := p.checkFrame(frame, meta, ip4, len(tcp.Payload))

	p.mu.Lock()
	defer p.mu.Unlock()
	defer p.notify()
	p.frames = append(p.frames, seen)
	if !seen.csumOK && p.bad == "" {
		p.bad = fmt.Sprintf("frame of %d bytes with meta %+v: TCP checksum does not verify", len(frame), meta)
	}
	switch {
	case tcp.SYN && !tcp.ACK: // the kernel connects to us
		p.remote = netip.AddrPortFrom(src, uint16(tcp.SrcPort))
		p.rcvNxt = tcp.Seq + 1
		p.sndNxt = p.iss + 1
		p.sendLocked(&layers.TCP{SYN: true, ACK: true, Seq: p.iss,
			Options: []layers.TCPOption{
				{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{0x05, 0xb4}},
				{OptionType: layers.TCPOptionKindWindowScale, OptionLength: 3, OptionData: []byte{7}},
			}}, nil, 0)
		return
	case tcp.SYN && tcp.ACK: // the kernel accepts our connection
		if tcp.Ack != p.iss+1 {
			p.bad = fmt.Sprintf("SYN-ACK acknowledges %d, want %d", tcp.Ack, p.iss+1)
			return
		}
		p.rcvNxt = tcp.Seq + 1
		p.sndUna = tcp.Ack
		p.synced = true
		p.sendLocked(&layers.TCP{ACK: true, Seq: p.sndNxt}, nil, 0)
		return
	}
	if tcp.ACK && seqAfter(tcp.Ack, p.sndUna) {
		p.sndUna = tcp.Ack
		p.synced = true
	}
	if len(tcp.Payload) > 0 || tcp.FIN {
		if tcp.Seq == p.rcvNxt {
			off := len(p.got)
			if off+len(tcp.Payload) > len(testPattern) || !bytes.Equal(tcp.Payload, testPattern[off:off+len(tcp.Payload)]) {
				if p.bad == "" {
					p.bad = fmt.Sprintf("bytes %d..%d differ from the pattern", off, off+len(tcp.Payload))
				}
			}
			p.got = append(p.got, tcp.Payload...)
			p.rcvNxt += uint32(len(tcp.Payload))
			if tcp.FIN {
				p.rcvNxt++
				p.finRcvd = true
			}
		}
		flags := &layers.TCP{ACK: true, Seq: p.sndNxt}
		if p.finRcvd && p.remote.IsValid() { // the kernel closed: close too
			flags.FIN = true
			p.sndNxt++
		}
		p.sendLocked(flags, nil, 0)
	}
}

func seqAfter(a, b uint32) bool { return int32(a-b) > 0 }

// checkFrame verifies the TCP checksum of frame, completing it first when
// meta says it is partial, and notes what it saw.
func (p *tcpPeer) checkFrame(frame []byte, meta VnetHdr, ip4 *layers.IPv4, payload int) frameSeen {
	s := frameSeen{size: len(frame), payload: payload, meta: meta}
	l4 := EthernetHeaderLen + int(ip4.IHL)*4
	end := EthernetHeaderLen + int(ip4.Length)
	if end > len(frame) || l4+20 > end {
		return s
	}
	seg := frame[l4:end]
	pseudo := checksum.PseudoHeaderV4([4]byte(ip4.SrcIP.To4()), [4]byte(ip4.DstIP.To4()), 6, uint16(len(seg)))
	if meta.Flags&VnetNeedsCsum != 0 {
		s.partial = binary.BigEndian.Uint16(seg[16:]) == pseudo
		c := append([]byte(nil), frame...)
		if err := meta.CompleteChecksum(c); err != nil {
			return s
		}
		seg = c[l4:end]
	}
	s.csumOK = checksum.Sum(seg, pseudo) == 0xffff
	return s
}

// sendLocked sends one segment to the kernel's end with payload and meta
// (mss > 0: a super-segment of mss-byte segments, with a partial checksum).
func (p *tcpPeer) sendLocked(tcp *layers.TCP, payload []byte, mss int) {
	tcp.SrcPort = layers.TCPPort(p.port)
	tcp.DstPort = layers.TCPPort(p.remote.Port())
	tcp.ACK = tcp.ACK || !tcp.SYN
	if tcp.ACK {
		tcp.Ack = p.rcvNxt
	}
	tcp.Window = 65535
	ip4 := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, Flags: layers.IPv4DontFragment,
		SrcIP: p.ip.AsSlice(), DstIP: p.remote.Addr().AsSlice()}
	if err := tcp.SetNetworkLayerForChecksum(ip4); err != nil {
		p.t.Error(err)
	}
	frame := serialize(p.t, &layers.Ethernet{SrcMAC: p.mac, DstMAC: p.kernelMAC, EthernetType: layers.EthernetTypeIPv4},
		ip4, tcp, gopacket.Payload(payload))
	var meta VnetHdr
	if mss > 0 {
		tcpLen := len(frame) - EthernetHeaderLen - 20
		meta = TCPOffload(EthernetHeaderLen, 20, int(tcp.DataOffset)*4, len(payload), mss, false)
		binary.BigEndian.PutUint16(frame[EthernetHeaderLen+20+16:],
			checksum.PseudoHeaderV4(p.ip.As4(), p.remote.Addr().As4(), 6, uint16(tcpLen)))
	}
	p.send(meta, frame)
}

func (p *tcpPeer) send(meta VnetHdr, frame []byte) {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	bufs := [][]byte{frameBuf(frame)}
	var n int
	var err error
	if g, ok := p.dev.(OffloadGatherWriter); ok && p.gather && meta.HdrLen > 0 && int(meta.HdrLen) < len(frame) {
		head, payload := frame[:meta.HdrLen], frame[meta.HdrLen:]
		half := len(payload) / 2
		n, err = g.WriteBatchGatherOffload([][]byte{frameBuf(head)}, [][2][]byte{{payload[:half], payload[half:]}},
			[]VnetHdr{meta}, Headroom)
	} else if o, ok := p.dev.(Offloader); ok {
		n, err = o.WriteBatchOffload(bufs, []VnetHdr{meta}, Headroom)
	} else {
		n, err = p.dev.WriteBatch(bufs, Headroom)
	}
	if (n != 1 || err != nil) && !errors.Is(err, net.ErrClosed) {
		p.t.Errorf("write of a %d-byte frame with %+v: %d, %v", len(frame), meta, n, err)
	}
}

// wait waits until cond holds (under the peer's lock) or a problem was
// seen, failing t after transferWait.
func (p *tcpPeer) wait(what string, cond func() bool) {
	p.t.Helper()
	if !p.waitFor(what, cond, transferWait) {
		p.t.Fatalf("no %s after %v", what, transferWait)
	}
}

// waitFor is wait for at most d; it reports whether cond came to hold.
func (p *tcpPeer) waitFor(what string, cond func() bool, d time.Duration) bool {
	p.t.Helper()
	deadline := time.After(d)
	for {
		p.mu.Lock()
		ok, bad := cond(), p.bad
		p.mu.Unlock()
		if bad != "" {
			p.t.Fatalf("waiting for %s: %s", what, bad)
		}
		if ok {
			return true
		}
		select {
		case <-p.changed:
		case <-deadline:
			return false
		}
	}
}

// connect opens our connection to the kernel's listener at to.
func (p *tcpPeer) connect(to netip.AddrPort) {
	p.mu.Lock()
	p.remote = to
	p.sndNxt = p.iss + 1
	p.sendLocked(&layers.TCP{SYN: true, Seq: p.iss, Options: []layers.TCPOption{
		{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{0x05, 0xb4}},
	}}, nil, 0)
	p.mu.Unlock()
	p.wait("SYN-ACK", func() bool { return p.synced })
}

// sendData sends data as super-segments of at most chunk bytes cut at
// mss (mss 0: one ordinary segment with a complete checksum per chunk),
// each after the previous one was acknowledged.
// A segment not acknowledged within resendAfter goes again, as a sender's
// retransmission would: on a loaded host the kernel may drop a frame
// (the test then hung for transferWait, in 1 of ~15 runs beside other
// packages' tests).
func (p *tcpPeer) sendData(data []byte, chunk, mss int) {
	const resendAfter = time.Second
	for len(data) > 0 {
		n := min(chunk, len(data))
		p.mu.Lock()
		seq := p.sndNxt
		p.sndNxt += uint32(n)
		p.mu.Unlock()
		end := seq + uint32(n)
		what := "ACK of " + strconv.Itoa(n) + " bytes"
		acked := func() bool { return !seqAfter(end, p.sndUna) }
		for try := 0; ; try++ {
			p.mu.Lock()
			p.sendLocked(&layers.TCP{ACK: true, PSH: true, Seq: seq}, data[:n], mss)
			p.mu.Unlock()
			if p.waitFor(what, acked, resendAfter) {
				break
			}
			if time.Duration(try+1)*resendAfter >= transferWait {
				p.t.Fatalf("no %s after %v", what, transferWait)
			}
		}
		data = data[n:]
	}
}

// kernelSend dials to from inside ns, writes n pattern bytes and closes.
func kernelSend(t *testing.T, ns *testnet.NS, to string, n int) {
	t.Helper()
	var c net.Conn
	if err := ns.Do(func() (err error) {
		c, err = net.DialTimeout("tcp4", to, frameWait)
		return err
	}); err != nil {
		t.Fatalf("kernel dial %s: %v", to, err)
	}
	c.SetDeadline(time.Now().Add(transferWait))
	if _, err := c.Write(testPattern[:n]); err != nil {
		t.Fatalf("kernel write: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}

// kernelListen listens at addr inside ns and returns a channel that
// delivers everything the first connection sends, up to EOF.
func kernelListen(t *testing.T, ns *testnet.NS, addr string) <-chan []byte {
	t.Helper()
	var ln net.Listener
	if err := ns.Do(func() (err error) {
		ln, err = net.Listen("tcp4", addr)
		return err
	}); err != nil {
		t.Fatalf("kernel listen %s: %v", addr, err)
	}
	got := make(chan []byte, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(got)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(2 * transferWait))
		b, _ := io.ReadAll(c)
		got <- b
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	return got
}

func receiveFrom(t *testing.T, got <-chan []byte, want []byte) {
	t.Helper()
	select {
	case b := <-got:
		if !bytes.Equal(b, want) {
			i := 0
			for i < min(len(b), len(want)) && b[i] == want[i] {
				i++
			}
			t.Fatalf("kernel socket received %d bytes, want %d; first difference at %d", len(b), len(want), i)
		}
	case <-time.After(2 * transferWait):
		t.Fatal("kernel socket received nothing")
	}
}

// checkGSOReceived asserts that the kernel's stream of n bytes arrived
// whole with metadata (meta: read with ReadBatchOffload): super-segments
// of gso_size mss with partial checksums; without meta, every frame
// verifies as it is.
func checkGSOReceived(t *testing.T, p *tcpPeer, n, mss int, meta bool) {
	t.Helper()
	p.wait("the kernel's FIN", func() bool { return p.finRcvd })
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.got) != n {
		t.Fatalf("received %d bytes, want %d", len(p.got), n)
	}
	big, partial, biggest := 0, 0, 0
	for _, f := range p.frames {
		biggest = max(biggest, f.size)
		if f.meta.Flags&VnetNeedsCsum != 0 {
			partial++
			if !f.partial {
				t.Errorf("frame of %d bytes with NEEDS_CSUM: the checksum field is not the pseudo-header sum", f.size)
			}
			if f.meta.CsumStart != EthernetHeaderLen+20 || f.meta.CsumOffset != 16 {
				t.Errorf("partial checksum at %d+%d, want 34+16", f.meta.CsumStart, f.meta.CsumOffset)
			}
		}
		if f.size <= EthernetHeaderLen+1500 {
			continue
		}
		big++
		if meta && (f.meta.GSOType != GSOTCPv4 || int(f.meta.GSOSize) != mss || f.meta.Flags&VnetNeedsCsum == 0) {
			t.Errorf("frame of %d bytes (%d payload): meta %+v, want GSOTCPv4 of %d with NEEDS_CSUM", f.size, f.payload, f.meta, mss)
		}
	}
	t.Logf("%d frames, %d longer than the MTU (largest %d bytes), %d with partial checksums", len(p.frames), big, biggest, partial)
	if big == 0 {
		t.Errorf("no frame longer than the MTU among %d", len(p.frames))
	}
	if meta && partial == 0 {
		t.Errorf("no frame with NEEDS_CSUM")
	}
}

// ifPackets returns interface name's transmitted packet count in ns.
func ifTxPackets(t *testing.T, ns *testnet.NS, name string) uint64 {
	t.Helper()
	var info []struct {
		Stats64 struct {
			TX struct {
				Packets uint64 `json:"packets"`
			} `json:"tx"`
		} `json:"stats64"`
	}
	out := testnet.Exec(t, ns, "ip", "-j", "-s", "link", "show", "dev", name)
	if err := json.Unmarshal([]byte(out), &info); err != nil || len(info) != 1 {
		t.Fatalf("ip -j -s link show %s: %v: %s", name, err, out)
	}
	return info[0].Stats64.TX.Packets
}

// The kernel hands a TAP with offloads TSO super-segments with partial
// checksums; a plain reader of the same TAP gets them too, complete.
func TestTAPOffloadReceivesGSO(t *testing.T) {
	testnet.RequireRoot(t)
	const n = 4 << 20
	for _, tc := range []struct {
		name string
		meta bool
	}{{"ReadBatchOffload", true}, {"ReadBatch", false}} {
		t.Run(tc.name, func(t *testing.T) {
			ns := quietNS(t, "tsoff1")
			link := ns.AddTAP(t, "tsofftap1", netip.MustParsePrefix("10.92.1.1/24"))
			dev := testnet.In(t, ns, func() (*Tun, error) { return OpenTAP("tsofftap1", Config{Offloads: OffloadAll}) })
			if dev.Offloads() != OffloadAll || OffloadsOf(NewCounters(dev)) != OffloadAll {
				t.Fatalf("Offloads %v", dev.Offloads())
			}
			p := newTCPPeer(t, dev, tc.meta, dev.KernelAddr(), netip.MustParseAddr("10.92.1.2"), 9)
			link.WaitUp(t)
			kernelSend(t, ns, "10.92.1.2:9", n)
			checkGSOReceived(t, p, n, 1460, tc.meta)
		})
	}
}

// A persistent TAP keeps its offloads after its file closes, and the kernel
// would then hand a plain reader super-segments with partial checksums:
// Close clears them, and so does a plain open after a user that did not
// close (a crash).
func TestTAPPlainAfterOffload(t *testing.T) {
	testnet.RequireRoot(t)
	testnet.RequireTool(t, "ethtool")
	ns := quietNS(t, "tsoff2")
	link := ns.AddTAP(t, "tsofftap2", netip.MustParsePrefix("10.92.2.1/24"))
	tso := func() string {
		out := testnet.Exec(t, ns, "ethtool", "-k", "tsofftap2")
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, "tcp-segmentation-offload:") {
				return strings.TrimSpace(strings.TrimPrefix(l, "tcp-segmentation-offload:"))
			}
		}
		return "?"
	}
	off := testnet.In(t, ns, func() (*Tun, error) { return OpenTAP("tsofftap2", Config{Offloads: OffloadAll}) })
	if got := tso(); got != "on" {
		t.Fatalf("TSO %q while open with offloads", got)
	}
	off.Close()
	if got := tso(); got != "off" {
		t.Errorf("TSO %q after Close", got)
	}
	crashed := testnet.In(t, ns, func() (*Tun, error) { return OpenTAP("tsofftap2", Config{Offloads: OffloadAll}) })
	crashed.file.Close() // no reset
	if got := tso(); got != "on" {
		t.Fatalf("TSO %q after a crash", got)
	}

	dev := testnet.In(t, ns, func() (*Tun, error) { return OpenTAP("tsofftap2", Config{}) })
	if dev.Offloads() != 0 || tso() != "off" {
		t.Fatalf("plain open: Offloads %v, TSO %s", dev.Offloads(), tso())
	}
	p := newTCPPeer(t, dev, false, dev.KernelAddr(), netip.MustParseAddr("10.92.2.2"), 9)
	link.WaitUp(t)
	const n = 1 << 20
	kernelSend(t, ns, "10.92.2.2:9", n)
	p.wait("the kernel's FIN", func() bool { return p.finRcvd })
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, f := range p.frames {
		if f.size > EthernetHeaderLen+1500 {
			t.Fatalf("plain reader got a %d-byte frame", f.size)
		}
	}
	if len(p.got) != n {
		t.Fatalf("received %d bytes, want %d", len(p.got), n)
	}
}

// Super-segments written to a TAP with GSO metadata reach a kernel socket
// whole and in order. The socket is one hop away behind a veth without TSO,
// so the kernel must cut them into MSS-sized segments to forward them (the
// veth's packet count shows it did); half of them are written in parts
// (WriteBatchGatherOffload); a segment with only a partial checksum and one
// with a complete checksum and no metadata follow.
func TestTAPOffloadSendsGSO(t *testing.T) {
	testnet.RequireRoot(t)
	testnet.RequireTool(t, "ethtool")
	nsA, nsB := quietNS(t, "tsoff3a"), quietNS(t, "tsoff3b")
	link := nsA.AddTAP(t, "tsofftap3", netip.MustParsePrefix("10.92.3.1/24"))
	nsB.AddVeth(t, "tsoff3b", netip.MustParsePrefix("10.92.4.2/24"), "tsoff3a", nsA)
	testnet.Exec(t, nsA, "ip", "addr", "add", "10.92.4.1/24", "dev", "tsoff3a")
	testnet.Exec(t, nsA, "ethtool", "-K", "tsoff3a", "tso", "off")
	nsA.Sysctl(t, "net.ipv4.ip_forward", "1")
	testnet.Exec(t, nsB, "ip", "route", "add", "10.92.3.0/24", "via", "10.92.4.1")
	got := kernelListen(t, nsB, "10.92.4.2:5001")

	dev := testnet.In(t, nsA, func() (*Tun, error) { return OpenTAP("tsofftap3", Config{Offloads: OffloadAll}) })
	p := newTCPPeer(t, dev, true, dev.KernelAddr(), netip.MustParseAddr("10.92.3.2"), 40000)
	link.WaitUp(t)
	p.connect(netip.MustParseAddrPort("10.92.4.2:5001"))

	const mss, chunk, n = 1400, 20 * 1400, 10*20*1400 + 1000 + 700
	tx0 := ifTxPackets(t, nsA, "tsoff3a")
	p.sendData(testPattern[:5*chunk], chunk, mss)
	p.gather = true // from here in parts: headers, then the payload from two buffers
	p.sendData(testPattern[5*chunk:n-1700], chunk, mss)
	if sent := ifTxPackets(t, nsA, "tsoff3a") - tx0; sent < 200 {
		t.Errorf("the veth sent %d packets for 10 super-segments of 20 segments each", sent)
	}
	p.sendData(testPattern[n-1700:n-700], 1000, 1000) // partial checksum, no GSO
	p.sendData(testPattern[n-700:n], 700, 0)          // complete frame, zero meta
	p.mu.Lock()
	p.sendLocked(&layers.TCP{FIN: true, ACK: true, Seq: p.sndNxt}, nil, 0)
	p.sndNxt++
	p.mu.Unlock()
	receiveFrom(t, got, testPattern[:n])
}

// A raw socket with PACKET_VNET_HDR: the kernel's TSO super-segments come
// in with metadata, and ours go out and reach the kernel's socket.
func TestRawOffload(t *testing.T) {
	testnet.RequireRoot(t)
	testnet.RequireTool(t, "ethtool")
	kns, ons := quietNS(t, "tsoff5k"), quietNS(t, "tsoff5o")
	kernel, _ := kns.AddVeth(t, "tsoff5k", netip.MustParsePrefix("10.92.5.1/24"), "tsoff5o", ons)
	// AddVeth turned checksum offload off on the kernel's end (for plain
	// raw sockets); here the kernel may use it, and TSO with it.
	testnet.Exec(t, kns, "ethtool", "-K", "tsoff5k", "tx", "on", "tso", "on")
	dev := testnet.In(t, ons, func() (*RawSocket, error) { return OpenRaw("tsoff5o", Config{Offloads: OffloadChecksum}) })
	if dev.Offloads() != OffloadAll {
		t.Fatalf("Offloads %v", dev.Offloads())
	}
	p := newTCPPeer(t, dev, true, kernel.MAC(t), netip.MustParseAddr("10.92.5.2"), 9)
	kernel.WaitUp(t)

	const n = 4 << 20
	kernelSend(t, kns, "10.92.5.2:9", n)
	checkGSOReceived(t, p, n, 1460, true)

	// A second socket on the same interface, for a second address, sends.
	got := kernelListen(t, kns, "10.92.5.1:5001")
	dev2 := testnet.In(t, ons, func() (*RawSocket, error) {
		return OpenRaw("tsoff5o", Config{Offloads: OffloadAll, MAC: net.HardwareAddr{2, 0x92, 0, 0, 5, 3}})
	})
	q := newTCPPeer(t, dev2, true, kernel.MAC(t), netip.MustParseAddr("10.92.5.3"), 40001)
	q.connect(netip.MustParseAddrPort("10.92.5.1:5001"))
	const m = 20*30000 + 1000
	q.sendData(testPattern[:m-1000], 30000, 1448)
	q.sendData(testPattern[m-1000:m], 1000, 0)
	q.mu.Lock()
	q.sendLocked(&layers.TCP{FIN: true, ACK: true, Seq: q.sndNxt}, nil, 0)
	q.sndNxt++
	q.mu.Unlock()
	receiveFrom(t, got, testPattern[:m])
}

// The offload I/O paths allocate nothing, as the plain ones, writing a
// frame whole or in parts (a raw socket's sendmmsg takes the parts as one
// message: the frame arrives whole).
func TestOffloadNoAllocs(t *testing.T) {
	testnet.RequireRoot(t)
	const mss = 1448
	payload := 40 * mss
	gso := TCPOffload(EthernetHeaderLen, 20, 20, payload, mss, false)
	frame := partialOf(tcpFrame(t, true, false, payload), gso, false)
	hdr := EthernetHeaderLen + 40
	head, tails := [][]byte{frameBuf(frame[:hdr])}, [][2][]byte{{frame[hdr : hdr+1000], frame[hdr+1000:]}}
	t.Run("RawSocket", func(t *testing.T) {
		testnet.RequireTool(t, "ethtool")
		ns := quietNS(t, "tsoff6")
		la, lb := ns.AddVeth(t, "tsoff6a", netip.Prefix{}, "tsoff6b", ns)
		testnet.Exec(t, ns, "ethtool", "-K", "tsoff6a", "tx", "on", "tso", "on")
		a := testnet.In(t, ns, func() (*RawSocket, error) { return OpenRaw("tsoff6a", Config{Offloads: OffloadAll}) })
		defer a.Close()
		b := testnet.In(t, ns, func() (*RawSocket, error) { return OpenRaw("tsoff6b", Config{Offloads: OffloadAll}) })
		defer b.Close()
		la.WaitUp(t)
		lb.WaitUp(t)
		copy(frame[0:6], b.LinkAddr())
		copy(frame[6:12], a.LinkAddr())
		out, meta := [][]byte{frameBuf(frame)}, []VnetHdr{gso}
		bufs, sizes := newBufs(4, MaxOffloadFrameSize)
		got := make([]VnetHdr, len(bufs))
		copy(head[0][Headroom:], frame[:12])
		allocs := testing.AllocsPerRun(50, func() {
			if n, err := a.WriteBatchOffload(out, meta, Headroom); n != 1 || err != nil {
				t.Fatalf("WriteBatchOffload = %d, %v", n, err)
			}
			if n, err := b.ReadBatchOffload(bufs, sizes, got, Headroom); n != 1 || err != nil || sizes[0] != len(frame) || got[0] != gso {
				t.Fatalf("ReadBatchOffload = %d, %v: %d bytes, meta %+v", n, err, sizes[0], got[0])
			}
			if n, err := a.WriteBatchGatherOffload(head, tails, meta, Headroom); n != 1 || err != nil {
				t.Fatalf("WriteBatchGatherOffload = %d, %v", n, err)
			}
			if n, err := b.ReadBatchOffload(bufs, sizes, got, Headroom); n != 1 || err != nil || !bytes.Equal(bufs[0][Headroom:Headroom+sizes[0]], frame) {
				t.Fatalf("ReadBatchOffload after a gathered write = %d, %v: %d bytes, the frame's %d", n, err, sizes[0], len(frame))
			}
		})
		if allocs != 0 {
			t.Errorf("%v allocations per write+read", allocs)
		}
	})
	t.Run("Tun", func(t *testing.T) {
		testnet.RequireTool(t, "bash")
		ns := quietNS(t, "tsoff7")
		link := ns.AddTAP(t, "tsofftap7", netip.MustParsePrefix("10.92.7.1/24"))
		dev := testnet.In(t, ns, func() (*Tun, error) { return OpenTAP("tsofftap7", Config{Offloads: OffloadAll}) })
		defer dev.Close()
		link.WaitUp(t)
		testnet.Exec(t, ns, "ip", "neigh", "add", "10.92.7.9", "lladdr", "02:92:00:00:00:09", "dev", "tsofftap7", "nud", "permanent")
		testnet.Exec(t, ns, "bash", "-c", `for i in $(seq 60); do echo $i > /dev/udp/10.92.7.9/9; done`)
		out, meta := [][]byte{frameBuf(frame)}, []VnetHdr{gso}
		bufs, sizes := newBufs(1, MaxOffloadFrameSize)
		got := make([]VnetHdr, 1)
		allocs := testing.AllocsPerRun(25, func() {
			if n, err := dev.WriteBatchOffload(out, meta, Headroom); n != 1 || err != nil {
				t.Fatalf("WriteBatchOffload = %d, %v", n, err)
			}
			if n, err := dev.WriteBatchGatherOffload(head, tails, meta, Headroom); n != 1 || err != nil {
				t.Fatalf("WriteBatchGatherOffload = %d, %v", n, err)
			}
			if n, err := dev.ReadBatchOffload(bufs, sizes, got, Headroom); n != 1 || err != nil {
				t.Fatalf("ReadBatchOffload = %d, %v", n, err)
			}
		})
		if allocs != 0 {
			t.Errorf("%v allocations per write+read", allocs)
		}
	})
}

// A super-segment sent out of an interface without TSO is cut by the
// kernel into MSS-sized segments with complete checksums, which is what a
// raw socket on the other end of the veth reads.
func TestRawOffloadSegmentedByKernel(t *testing.T) {
	testnet.RequireRoot(t)
	const mss, segs = 1448, 40
	a, b := rawPair(t, "tsoff8", "tsoff8a", "tsoff8b", Config{Offloads: OffloadAll}) // a: tx and TSO off
	gso := TCPOffload(EthernetHeaderLen, 20, 20, segs*mss, mss, false)
	whole := tcpFrame(t, true, false, segs*mss)
	copy(whole[0:6], b.LinkAddr())
	copy(whole[6:12], a.LinkAddr())
	if n, err := a.WriteBatchOffload([][]byte{frameBuf(partialOf(whole, gso, false))}, []VnetHdr{gso}, Headroom); n != 1 || err != nil {
		t.Fatalf("WriteBatchOffload = %d, %v", n, err)
	}
	stop := time.AfterFunc(frameWait, func() { b.Close() })
	defer stop.Stop()
	bufs, sizes := newBufs(segs, MaxOffloadFrameSize)
	meta := make([]VnetHdr, segs)
	var payload []byte
	for got := 0; got < segs; {
		n, err := b.ReadBatchOffload(bufs[got:], sizes[got:], meta[got:], Headroom)
		if err != nil {
			t.Fatalf("after %d segments: %v", got, err)
		}
		for i := got; i < got+n; i++ {
			f := bufs[i][Headroom : Headroom+sizes[i]]
			p := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
			ip4, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
			tcp, _ := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
			if ip4 == nil || tcp == nil || len(tcp.Payload) != mss || meta[i].IsGSO() {
				t.Fatalf("segment %d: %d bytes, meta %+v: %v", i, len(f), meta[i], p)
			}
			if tcp.Seq != 7+uint32(i*mss) {
				t.Errorf("segment %d: seq %d", i, tcp.Seq)
			}
			seg := f[EthernetHeaderLen+20:]
			if meta[i].Flags&VnetNeedsCsum == 0 &&
				checksum.Sum(seg, checksum.PseudoHeaderV4([4]byte(ip4.SrcIP), [4]byte(ip4.DstIP), 6, uint16(len(seg)))) != 0xffff {
				t.Errorf("segment %d: TCP checksum does not verify", i)
			}
			payload = append(payload, tcp.Payload...)
		}
		got += n
	}
	if !bytes.Equal(payload, whole[EthernetHeaderLen+40:]) {
		t.Errorf("the segments' payload differs from the super-segment's")
	}
}
