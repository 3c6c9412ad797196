//go:build linux

package tcp

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/tapstack/tapstack/device"
	"github.com/tapstack/tapstack/internal/testnet"
	"github.com/tapstack/tapstack/tcp/seq"
)

// The kernel is the reference for what a receiver reports of out-of-order
// data: the same segments, with holes, go to Linux's TCP (from a raw socket
// on a veth, to a listener in a namespace) and to a Conn, and every ACK
// must carry the same acknowledgment and the same SACK blocks in the same
// order (RFC 2018 §4: the block holding the latest arrival first, then the
// others as last reported, each the whole run of data it belongs to).
func TestKernelReferenceSACKBlocks(t *testing.T) {
	k := newKernelRef(t)
	// At most three runs at a time: Linux remembers only the four blocks
	// it reports, and an arrival that joins a run it forgot gets a block of
	// its own, where RFC 2018 §4 asks for the whole contiguous run, as we
	// report it (from the queue itself).
	for _, off := range []uint32{100, 200, 400, 300, 700, 600, 900, 500, 1100, 1000, 800, 0} {
		k.same(off, 100, fmt.Sprintf("segment at +%d", off))
	}
}

// Duplicates draw an ACK at once with a D-SACK block (RFC 2883): of data
// already acknowledged, of data held out of order (then followed by the
// block that holds it), and of a segment that is partly new.
func TestKernelReferenceDSACK(t *testing.T) {
	k := newKernelRef(t)
	k.settle(0, 100) // in order: an ACK now or delayed, either way
	k.same(0, 100, "a duplicate of acknowledged data")
	k.same(300, 100, "out of order")
	k.same(300, 100, "a duplicate of out-of-order data")
	k.same(50, 100, "a segment half duplicate, half new")
	k = newKernelRef(t)
	k.settle(0, 100)
	k.same(200, 100, "out of order")
	k.same(100, 200, "a retransmission that fills the hole and covers what was held")
	k.same(500, 100, "out of order again")
	k.same(400, 150, "one that fills the hole and covers half of what was held")
}

// RFC 5961 and RFC 9293 §3.10.7.4 against the kernel: a RST inside the
// window but not at RCV.NXT draws a challenge ACK, as does a SYN on an
// established connection (challenge ACKs are rate-limited, so each goes to
// a fresh connection), and an ACK of data never sent draws an ACK.
func TestKernelReferenceChallenges(t *testing.T) {
	k := newKernelRef(t)
	k.sameSeg(RST, 100, 0, 0, "a RST 100 bytes into the window")
	k = newKernelRef(t)
	k.sameSeg(SYN, 0, 0, 0, "a SYN at RCV.NXT on an established connection")
	k = newKernelRef(t)
	k.sameSeg(ACK, 0, 0, 1000, "an ACK of 1000 bytes never sent")
	k.sameSeg(ACK, 0, 0, 1000, "another ACK of 1000 bytes never sent")
	k = newKernelRef(t)
	k.sameSeg(ACK|PSH, 0, 100, 1000, "data with an ACK of 1000 bytes never sent")
	k.sameSeg(ACK|PSH, 0, 100, 1000, "more data with an ACK of 1000 bytes never sent")
	k = newKernelRef(t)
	k.sameSeg(RST, 100, 0, 0, "a RST 100 bytes into the window")
	k.sameSeg(SYN, 0, 0, 0, "then a SYN")
}

// Data at the right edge of the window offered, beyond a hole: a segment
// inside the window is held, one at the edge or past it is not and draws
// a duplicate ACK. One that crosses the edge is where we part from Linux,
// on purpose: Linux holds all of it, we hold what lies inside the window
// (RFC 9293 §3.10.7.4 processes the segment trimmed to the window), and
// the sender sends the rest again within the next window.
func TestKernelReferenceWindowEdge(t *testing.T) {
	k := newKernelRef(t)
	k.same(k.wnd-1000, 100, "a segment inside the window, beyond a hole")
	k.same(k.wnd, 100, "a segment at the right edge")
	k.same(k.wnd+1000, 100, "a segment beyond the window")

	k.sendSeg(ACK|PSH, k.wnd-50, 100, 0)
	out := k.h.Took()
	ka := k.peer.recv(time.Second)
	if ka == nil || len(out) != 1 {
		t.Fatalf("a segment crossing the right edge: kernel answered %v, we %v", ka, out)
	}
	kernel, ours := kernelView(ka, k.iss+1), ourView(out[0], k.ourPeerSq)
	wantKernel := fmt.Sprintf("ack 0 sack [%d,%d) [%d,%d)", k.wnd-50, k.wnd+50, k.wnd-1000, k.wnd-900)
	wantOurs := fmt.Sprintf("ack 0 sack [%d,%d) [%d,%d)", k.wnd-50, k.wnd, k.wnd-1000, k.wnd-900)
	if kernel != wantKernel || ours != wantOurs {
		t.Errorf("a segment crossing the right edge: kernel %s (want %s), we %s (want %s)", kernel, wantKernel, ours, wantOurs)
	}
}

// A FIN that arrives beyond a hole is held and SACKed with its sequence
// number; the hole's arrival acknowledges the data and the FIN. Keepalive
// probes (RCV.NXT-1, empty or with the byte before) draw an ACK, the one
// with a byte a D-SACK for it.
func TestKernelReferenceFINAndKeepalive(t *testing.T) {
	k := newKernelRef(t)
	k.settle(0, 100)
	k.sameSeg(ACK, 99, 0, 0, "an empty keepalive probe at RCV.NXT-1")
	k = newKernelRef(t)
	k.settle(0, 100)
	k.sameSeg(ACK, 99, 1, 0, "a keepalive probe with the byte before RCV.NXT")
	k.sameSeg(ACK|FIN, 200, 100, 0, "data and a FIN beyond a hole")
	k.sameSeg(ACK, 100, 100, 0, "the hole")
}

// A listener answers an ACK that belongs to no connection with a RST at
// the ACK's sequence number, and a SYN carrying data with a SYN,ACK that
// acknowledges the SYN alone (without Fast Open the data is not taken; the
// peer sends it again once established).
func TestKernelReferenceListener(t *testing.T) {
	peer := kernelListener(t)
	listener := func() *harness {
		h := newHarness(t, func(c *Config) { c.NoTimestamps = false; c.ReceiveBufferMax = 6 << 20 })
		if err := h.c.Listen(h.now, false); err != nil {
			t.Fatal(err)
		}
		return h
	}
	const iss, ack = 5000, 777777
	// The ACK first: the kernel's listener must be up.
	var ka *layers.TCP
	testnet.WaitFor(t, 10*time.Second, "the kernel's listener to answer a stray ACK", func() bool {
		peer.send(&layers.TCP{ACK: true, Seq: iss + 1, Ack: ack, Window: 65535}, nil)
		ka = peer.recv(500 * time.Millisecond)
		return ka != nil
	})
	h := listener()
	h.Send(S{Flags: ACK, Seq: iss + 1, Ack: ack, Wnd: 65535})
	out := h.Took()
	want := fmt.Sprintf("rst %v seq ack%+d", ka.RST, int64(ka.Seq)-ack)
	got := "nothing"
	if len(out) == 1 {
		got = fmt.Sprintf("rst %v seq ack%+d", out[0].Flags.Contains(RST), int64(uint32(out[0].Seq))-ack)
	}
	if got != want {
		t.Errorf("a stray ACK: kernel answers %s, we %s", want, got)
	}

	syn := &layers.TCP{SYN: true, Seq: iss + 100, Window: 65535, Options: []layers.TCPOption{
		{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{0x05, 0xb4}},
	}}
	peer.send(syn, []byte("data in the SYN"))
	ka = peer.recv(time.Second)
	h = listener()
	h.Send(S{Flags: SYN, Seq: iss + 100, Wnd: 65535, Opts: Options{HasMSS: true, MSS: 1460}, Data: []byte("data in the SYN")})
	out = h.Took()
	if ka == nil || !ka.SYN || len(out) != 1 {
		t.Fatalf("a SYN with data: kernel answered %v, we %v", ka, out)
	}
	if kack, ours := ka.Ack-(iss+100), uint32(out[0].Ack)-(iss+100); kack != ours {
		t.Errorf("a SYN with data: the kernel's SYN,ACK acknowledges %d past the SYN's sequence number, ours %d", kack, ours)
	}
}

// A SYN offering every option draws the same SYN,ACK from both: the MSS,
// window scale (for the same 6 MiB receive bound), SACK permitted and a
// timestamp echoing the SYN's.
func TestKernelReferenceSYNACK(t *testing.T) {
	peer := kernelListener(t)
	const iss, tsval = 9000, 4242
	var ka *layers.TCP
	testnet.WaitFor(t, 10*time.Second, "the kernel's listener to answer a SYN", func() bool {
		peer.send(&layers.TCP{SYN: true, Seq: iss, Window: 65535, Options: []layers.TCPOption{
			{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{0x05, 0xb4}},
			{OptionType: layers.TCPOptionKindSACKPermitted, OptionLength: 2},
			{OptionType: layers.TCPOptionKindTimestamps, OptionLength: 10, OptionData: []byte{0, 0, 0x10, 0x92, 0, 0, 0, 0}},
			{OptionType: layers.TCPOptionKindNop},
			{OptionType: layers.TCPOptionKindWindowScale, OptionLength: 3, OptionData: []byte{7}},
		}}, nil)
		ka = peer.recv(500 * time.Millisecond)
		return ka != nil && ka.SYN && ka.ACK
	})
	want := fmt.Sprintf("SYN ack +%d", ka.Ack-iss)
	for _, o := range ka.Options {
		switch o.OptionType {
		case layers.TCPOptionKindMSS:
			want += fmt.Sprintf(" mss %d", int(o.OptionData[0])<<8|int(o.OptionData[1]))
		case layers.TCPOptionKindWindowScale:
			want += fmt.Sprintf(" wscale %d", o.OptionData[0])
		case layers.TCPOptionKindSACKPermitted:
			want += " sackOK"
		case layers.TCPOptionKindTimestamps:
			ecr := binary.BigEndian.Uint32(o.OptionData[4:])
			want += fmt.Sprintf(" ts ecr %d", ecr)
		}
	}

	h := newHarness(t, func(c *Config) { c.NoTimestamps = false; c.ReceiveBufferMax = 6 << 20 })
	if err := h.c.Listen(h.now, false); err != nil {
		t.Fatal(err)
	}
	h.Send(S{Flags: SYN, Seq: iss, Wnd: 65535, Opts: Options{HasMSS: true, MSS: 1460, SACKPermitted: true,
		HasTimestamps: true, TSVal: tsval, HasWindowScale: true, WindowScale: 7}})
	out := h.Took()
	if len(out) != 1 {
		t.Fatalf("we answered a SYN with %v", out)
	}
	sa := out[0]
	got := fmt.Sprintf("%sack +%d", flagView(false, sa.Flags.Contains(SYN)), uint32(sa.Ack)-iss)
	// In the order Linux puts them on the wire.
	if sa.Opts.HasMSS {
		got += fmt.Sprintf(" mss %d", sa.Opts.MSS)
	}
	if sa.Opts.SACKPermitted {
		got += " sackOK"
	}
	if sa.Opts.HasTimestamps {
		got += fmt.Sprintf(" ts ecr %d", sa.Opts.TSEcr)
	}
	if sa.Opts.HasWindowScale {
		got += fmt.Sprintf(" wscale %d", sa.Opts.WindowScale)
	}
	if got != want {
		t.Errorf("kernel answers %s, we %s", want, got)
	}
}

// kernelRef sends the same segments to Linux's TCP, from a raw socket on a
// veth to a listener in a namespace, and to a harness's Conn, and compares
// what each answers at once.
type kernelRef struct {
	t         *testing.T
	peer      *rawPeer
	iss, irs  uint32 // ours and the kernel's
	h         *harness
	ourPeerSq seq.Value // the harness's peer's first data byte
	wnd       uint32    // the window both offered in their SYNs
}

var kernelRefs atomic.Int32

// kernelListener sets up a namespace whose kernel listens on a TCP port,
// and a raw socket on a veth to it, and returns a peer sending from that
// socket.
func kernelListener(t *testing.T) *rawPeer {
	testnet.RequireRoot(t)
	testnet.RequireTool(t, "socat")
	testnet.RequireTool(t, "ss")
	// Names from the process ID: our end of the veth lives in the host
	// namespace, where two trees' test runs at once must not collide.
	// A test may set up several: a count tells them apart.
	id := fmt.Sprintf("%d%d", os.Getpid()%100000, kernelRefs.Add(1)%10)
	ns := testnet.NewNS(t, "tsks"+id)
	kname, oname := "tsk"+id+"k", "tsk"+id+"o"
	ns.Sysctl(t, "net.ipv6.conf.all.disable_ipv6", "1")
	ns.Sysctl(t, "net.ipv6.conf.default.disable_ipv6", "1")
	// The receive buffer's bound of tcp.Config's default (Linux's default
	// too, though kernels and distributions raise it): the window scale
	// follows from it.
	ns.Sysctl(t, "net.ipv4.tcp_rmem", "4096 131072 6291456")
	kernelAddr, ourAddr := netip.MustParseAddr("10.96.7.1"), netip.MustParseAddr("10.96.7.2")
	kernel, ours := ns.AddVeth(t, kname, netip.PrefixFrom(kernelAddr, 24), oname, nil)
	dev, err := device.OpenRaw(oname, device.Config{})
	if err != nil {
		t.Fatal(err)
	}
	kernel.WaitUp(t)
	ours.WaitUp(t)
	testnet.Exec(t, ns, "ip", "neigh", "replace", ourAddr.String(), "lladdr", dev.LinkAddr().String(), "dev", kname, "nud", "permanent")
	const port = 5599
	testnet.Start(t, ns, "socat", "-u", fmt.Sprintf("TCP-LISTEN:%d,reuseaddr", port), "/dev/null")
	// Until it listens, the kernel answers as for a closed port: a stray
	// ACK would get the same RST either way.
	testnet.WaitFor(t, 10*time.Second, "socat to listen", func() bool {
		out, err := testnet.Run(ns, testnet.DefaultTimeout, "ss", "-ltnH", fmt.Sprintf("sport = :%d", port))
		return err == nil && strings.Contains(out, fmt.Sprint(port))
	})
	return newRawPeer(t, dev, kernel.MAC(t), ourAddr, kernelAddr, port)
}

func newKernelRef(t *testing.T) *kernelRef {
	peer := kernelListener(t)
	const iss = 7000
	var synack *layers.TCP
	testnet.WaitFor(t, 10*time.Second, "the kernel's listener to answer a SYN", func() bool {
		peer.send(&layers.TCP{SYN: true, Seq: iss, Window: 65535, Options: []layers.TCPOption{
			{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{0x05, 0xb4}},
			{OptionType: layers.TCPOptionKindSACKPermitted, OptionLength: 2},
		}}, nil)
		synack = peer.recv(500 * time.Millisecond)
		return synack != nil && synack.SYN && synack.ACK
	})
	peer.send(&layers.TCP{ACK: true, Seq: iss + 1, Ack: synack.Seq + 1, Window: 65535}, nil)
	// Our side: the harness's Conn, its peer's data starting at 301.
	// Our Conn offers the window the kernel offered: the right edges match.
	h := established(t, func(c *Config) { c.ReceiveBufferMax = int(synack.Window) })
	return &kernelRef{t: t, peer: peer, iss: iss, irs: synack.Seq, h: h, ourPeerSq: 301, wnd: uint32(synack.Window)}
}

// send sends n bytes at offset off of the data to both.
func (k *kernelRef) send(off uint32, n int) { k.sendSeg(ACK|PSH, off, n, 0) }

// sendSeg sends a segment with flags, its sequence number off bytes into
// the data, n bytes of data, acknowledging ackOff bytes beyond what each
// side has sent (nothing: 0).
func (k *kernelRef) sendSeg(flags Flags, off uint32, n int, ackOff uint32) {
	data := make([]byte, n)
	k.peer.send(&layers.TCP{SYN: flags.Contains(SYN), RST: flags.Contains(RST), FIN: flags.Contains(FIN),
		ACK: flags.Contains(ACK), PSH: flags.Contains(PSH) && n > 0,
		Seq: k.iss + 1 + off, Ack: k.irs + 1 + ackOff, Window: 65535}, data)
	k.h.Send(S{Flags: flags, Seq: k.ourPeerSq.Add(seq.Size(off)), Ack: seqv(101 + ackOff), Wnd: hWnd, Data: data})
}

// same sends a segment to both and requires the same answer.
func (k *kernelRef) same(off uint32, n int, what string) {
	k.t.Helper()
	k.sameSeg(ACK|PSH, off, n, 0, what)
}

// sameSeg is same for any segment (see sendSeg). Our Conn answers at once
// or not at all (a delayed ACK would wait for a timer the test does not
// run); the kernel is given a second to answer, or a tenth of one to stay
// silent, so that a loaded machine does not fail the test. Whether the
// kernel's answer came at once or after its delayed-ACK timer is not
// compared.
func (k *kernelRef) sameSeg(flags Flags, off uint32, n int, ackOff uint32, what string) {
	k.t.Helper()
	k.sendSeg(flags, off, n, ackOff)
	got, wait := "nothing", 100*time.Millisecond
	if out := k.h.Took(); len(out) == 1 {
		got, wait = ourView(out[0], k.ourPeerSq), time.Second
	} else if len(out) > 1 {
		k.t.Fatalf("%s: we sent %d segments: %v", what, len(out), out)
	}
	want := "nothing"
	if ka := k.peer.recv(wait); ka != nil {
		want = kernelView(ka, k.iss+1)
	}
	if got != want {
		k.t.Errorf("%s: kernel answers %s, we %s", what, want, got)
	}
}

// settle sends a segment to both and lets any delayed ACK go out.
func (k *kernelRef) settle(off uint32, n int) {
	k.send(off, n)
	for k.peer.recv(300*time.Millisecond) != nil {
	}
	k.h.Advance(300 * time.Millisecond)
	k.h.Took()
}

// kernelView and ourView render an ACK relative to the start of the data:
// "ack N sack [a,b) [c,d)".
func kernelView(a *layers.TCP, base uint32) string {
	s := fmt.Sprintf("%sack %d sack", flagView(a.RST, a.SYN), a.Ack-base)
	for _, o := range a.Options {
		if o.OptionType != layers.TCPOptionKindSACK {
			continue
		}
		for i := 0; i+8 <= len(o.OptionData); i += 8 {
			l := binary.BigEndian.Uint32(o.OptionData[i:])
			r := binary.BigEndian.Uint32(o.OptionData[i+4:])
			s += fmt.Sprintf(" [%d,%d)", l-base, r-base)
		}
	}
	return s
}

func ourView(a S, base seq.Value) string {
	s := fmt.Sprintf("%sack %d sack", flagView(a.Flags.Contains(RST), a.Flags.Contains(SYN)), uint32(a.Ack)-uint32(base))
	for _, b := range a.Opts.SACKBlocks[:a.Opts.NumSACK] {
		s += fmt.Sprintf(" [%d,%d)", uint32(b.Left)-uint32(base), uint32(b.Right)-uint32(base))
	}
	return s
}

// flagView names the flags besides ACK that matter here.
func flagView(rst, syn bool) string {
	switch {
	case rst:
		return "RST "
	case syn:
		return "SYN "
	}
	return ""
}

// rawPeer sends crafted TCP segments from a raw socket and reads the
// replies to them.
type rawPeer struct {
	t            *testing.T
	dev          *device.RawSocket
	src, dst     net.HardwareAddr
	srcIP, dstIP netip.Addr
	dstPort      uint16
	in           chan *layers.TCP
	done         chan struct{}
}

const rawPeerPort = 40123

func newRawPeer(t *testing.T, dev *device.RawSocket, dst net.HardwareAddr, srcIP, dstIP netip.Addr, dstPort uint16) *rawPeer {
	p := &rawPeer{t: t, dev: dev, src: dev.LinkAddr(), dst: dst, srcIP: srcIP, dstIP: dstIP, dstPort: dstPort,
		in: make(chan *layers.TCP, 64), done: make(chan struct{})}
	go p.read()
	t.Cleanup(func() {
		dev.Close()
		<-p.done
	})
	return p
}

// read passes on the TCP segments to our port until the device closes.
func (p *rawPeer) read() {
	defer close(p.done)
	bufs := [][]byte{make([]byte, device.Headroom+2048)}
	sizes := []int{0}
	for {
		n, err := p.dev.ReadBatch(bufs, sizes, device.Headroom)
		if err != nil {
			return
		}
		if n == 0 {
			continue
		}
		pkt := gopacket.NewPacket(bufs[0][device.Headroom:device.Headroom+sizes[0]], layers.LayerTypeEthernet, gopacket.Default)
		if tcp, ok := pkt.Layer(layers.LayerTypeTCP).(*layers.TCP); ok && tcp.DstPort == rawPeerPort {
			select {
			case p.in <- tcp:
			default: // nobody is reading: dropped
			}
		}
	}
}

func (p *rawPeer) send(h *layers.TCP, payload []byte) {
	p.t.Helper()
	eth := &layers.Ethernet{SrcMAC: p.src, DstMAC: p.dst, EthernetType: layers.EthernetTypeIPv4}
	ip4 := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: p.srcIP.AsSlice(), DstIP: p.dstIP.AsSlice()}
	h.SrcPort, h.DstPort = rawPeerPort, layers.TCPPort(p.dstPort)
	if err := h.SetNetworkLayerForChecksum(ip4); err != nil {
		p.t.Fatal(err)
	}
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, eth, ip4, h, gopacket.Payload(payload)); err != nil {
		p.t.Fatal(err)
	}
	frame := append(make([]byte, device.Headroom), buf.Bytes()...)
	if _, err := p.dev.WriteBatch([][]byte{frame}, device.Headroom); err != nil {
		p.t.Fatal(err)
	}
}

// recv returns the next TCP segment to our port within d, or nil.
func (p *rawPeer) recv(d time.Duration) *layers.TCP {
	select {
	case s := <-p.in:
		return s
	case <-time.After(d):
		return nil
	}
}
