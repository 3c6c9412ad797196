package netstack

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/tapstack/tapstack/checksum"
	"github.com/tapstack/tapstack/ip"
)

// FuzzReceive feeds arbitrary frames to stack B of a testNet pair (B has a
// UDP socket on port 9000 that nobody reads, a connected UDP socket and a
// ping endpoint toward A) and moves the virtual clock. Whatever arrives,
// the stack must not panic, and everything an outsider can make it hold
// must stay within its bound: datagrams in reassembly, neighbour entries,
// packets parked waiting for ARP, socket queues. Once input stops and time
// runs on, all of it must drain.
//
// The input is a sequence of records:
//
//	0b00xxxxxx len(2 bytes, big-endian) frame   B receives frame
//	0b01xxxxxx len(2 bytes, big-endian) frame   the same, with its IPv4, UDP,
//	                                            ICMP and TCP checksums made right
//	0b1kkkkkkk                                  time passes: k²×10 ms, timers fire
//
// Fixing checksums lets mutated headers past the checksum checks, into the
// code behind them; the seeds set that bit except where a bad checksum is
// the point.
func FuzzReceive(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// A hang is a failure too: the fuzzer keeps an input whose worker
		// crashed, and this crash shows where it was stuck.
		watchdog := time.AfterFunc(time.Minute, func() {
			buf := make([]byte, 1<<20)
			panic("FuzzReceive: one input ran for a minute:\n" + string(buf[:runtime.Stack(buf, true)]))
		})
		defer watchdog.Stop()
		r := newFuzzRig(t)
		r.run(t, data)
		// Quiet for ten minutes: reassembly times out, neighbours are
		// forgotten, parked packets are dropped.
		r.n.runUntil(r.n.now.Add(10*time.Minute), r.a, r.b)
		r.checkBounds(t)
		r.checkDrained(t)
	})
}

// run feeds the records of one input to B, checking the bounds after each.
func (r *fuzzRig) run(t *testing.T, data []byte) {
	t.Helper()
	frame := make([]byte, 0, 1<<16)
	for len(data) > 0 {
		op := data[0]
		data = data[1:]
		if op&0x80 != 0 {
			k := time.Duration(op & 0x7f)
			r.n.runUntil(r.n.now.Add(k*k*10*time.Millisecond), r.a, r.b)
			r.checkBounds(t)
			continue
		}
		if len(data) < 2 {
			return
		}
		l := min(int(binary.BigEndian.Uint16(data)), len(data)-2)
		frame = append(frame[:0], data[2:2+l]...)
		data = data[2+l:]
		if op&0x40 != 0 {
			fixChecksums(frame)
		}
		r.b.Receive(r.n.now, r.nb, [][]byte{frame})
		// The stack must not keep a view of a received frame: the device
		// reuses its buffers.
		for i := range frame {
			frame[i] = 0xa5
		}
		r.n.deliver()
		r.checkBounds(t)
	}
}

// fixChecksums sets the IPv4 header checksum of an Ethernet frame and,
// when the datagram is not a fragment, its UDP, TCP or ICMP checksum, as
// far as the lengths in the headers allow.
func fixChecksums(f []byte) {
	if len(f) < 14+20 || binary.BigEndian.Uint16(f[12:]) != uint16(ip.EtherTypeIPv4) {
		return
	}
	h := f[14:]
	ihl := int(h[0]&0x0f) * 4
	if ihl < 20 || len(h) < ihl {
		return
	}
	h[10], h[11] = 0, 0
	binary.BigEndian.PutUint16(h[10:], checksum.Checksum(h[:ihl], 0))
	total := int(binary.BigEndian.Uint16(h[2:]))
	if total < ihl || total > len(h) || binary.BigEndian.Uint16(h[6:])&0x3fff != 0 {
		return
	}
	p := h[ihl:total]
	at := -1
	var initial uint16
	switch ip.Protocol(h[9]) {
	case ip.ProtocolICMP:
		at = 2
	case ip.ProtocolUDP:
		at = 6
		initial = checksum.PseudoHeaderV4([4]byte(h[12:16]), [4]byte(h[16:20]), h[9], uint16(len(p)))
	case ip.ProtocolTCP:
		at = 16
		initial = checksum.PseudoHeaderV4([4]byte(h[12:16]), [4]byte(h[16:20]), h[9], uint16(len(p)))
	}
	if at < 0 || len(p) < at+2 {
		return
	}
	p[at], p[at+1] = 0, 0
	c := checksum.Checksum(p, initial)
	if c == 0 && h[9] == byte(ip.ProtocolUDP) {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(p[at:], c)
}

// fuzzRig is the stack under fuzzing and what it is connected to.
type fuzzRig struct {
	n      *testNet
	a, b   *Stack
	na, nb *NIC
	udp    *UDPConn
	conn   *UDPConn
	ping   *PingConn
}

const (
	fuzzUDPPort  = 9000 // the capture's server port
	fuzzConnPort = 9001 // B's connected socket, to 10.0.0.1:40000
)

func newFuzzRig(t testing.TB) *fuzzRig {
	r := &fuzzRig{n: newTestNet(t)}
	r.a, r.b, r.na, r.nb = r.n.pair(1500)
	r.n.deliver()
	var err error
	if r.udp, err = r.b.ListenUDP(netip.AddrPortFrom(netip.Addr{}, fuzzUDPPort)); err != nil {
		t.Fatal(err)
	}
	if r.conn, err = r.b.DialUDP(netip.AddrPortFrom(addrB, fuzzConnPort), netip.AddrPortFrom(addrA, 40000)); err != nil {
		t.Fatal(err)
	}
	if r.ping, err = r.b.DialPing(addrA); err != nil {
		t.Fatal(err)
	}
	return r
}

// checkBounds asserts the limits on what B holds, and that its bookkeeping
// agrees with itself.
func (r *fuzzRig) checkBounds(t *testing.T) {
	t.Helper()
	s := r.b
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reasm != nil {
		if n := len(s.reasm.entries); n > reasmDatagramsMax {
			t.Fatalf("%d datagrams in reassembly, bound %d", n, reasmDatagramsMax)
		}
		for _, e := range s.reasm.entries {
			if len(e.ranges) > reasmFragmentsMax {
				t.Fatalf("datagram %+v holds %d fragments, bound %d", e.key, len(e.ranges), reasmFragmentsMax)
			}
			have := 0
			for i, rg := range e.ranges {
				if rg.start > rg.end || (i > 0 && e.ranges[i-1].end > rg.start) || rg.end > ip.IPv4MaxTotalLength {
					t.Fatalf("datagram %+v: ranges %v not sorted, disjoint and in bounds", e.key, e.ranges)
				}
				have += rg.end - rg.start
			}
			if have != e.have {
				t.Fatalf("datagram %+v: ranges hold %d bytes, counted %d", e.key, have, e.have)
			}
		}
	}
	for _, nic := range s.nics {
		c := nic.neigh
		if c == nil {
			continue
		}
		if len(c.entries) > neighEntriesMax || len(c.index) != len(c.entries) {
			t.Fatalf("%s: %d neighbour entries (%d indexed), bound %d", nic.name, len(c.entries), len(c.index), neighEntriesMax)
		}
		for _, e := range c.entries {
			if c.index[e.addr] != e {
				t.Fatalf("%s: neighbour %v not indexed", nic.name, e.addr)
			}
			if len(e.pending) > neighPendingMax {
				t.Fatalf("%s: %d packets wait for %v, bound %d", nic.name, len(e.pending), e.addr, neighPendingMax)
			}
			if e.state != neighIncomplete && len(e.pending) > 0 {
				t.Fatalf("%s: %d packets wait for %v, which is resolved", nic.name, len(e.pending), e.addr)
			}
		}
		if len(nic.txq) != 0 {
			t.Fatalf("%s: %d frames left queued after a step", nic.name, len(nic.txq))
		}
	}
	for port, c := range s.udp {
		held := 0
		for _, d := range c.rq[c.rqHead:] {
			held += cap(*d.buf)
		}
		if c.rqBytes > udpReceiveBufferMax || held != c.rqBytes {
			t.Fatalf("UDP port %d: queue holds %d bytes (counted %d), bound %d", port, held, c.rqBytes, udpReceiveBufferMax)
		}
	}
	for id, p := range s.pings {
		if len(p.replies) > pingQueueMax {
			t.Fatalf("ping %d: %d replies queued, bound %d", id, len(p.replies), pingQueueMax)
		}
	}
	for i, d := range s.timers.items {
		if d.index != i {
			t.Fatalf("timer heap: item %d has index %d", i, d.index)
		}
		if i > 0 && s.timers.less(i, (i-1)/2) {
			t.Fatalf("timer heap: item %d is earlier than its parent", i)
		}
	}
}

// checkDrained asserts that after a long quiet spell the network layer
// holds nothing and has no timer armed.
func (r *fuzzRig) checkDrained(t *testing.T) {
	t.Helper()
	s := r.b
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reasm != nil && (len(s.reasm.entries) != 0 || s.reasm.dl.index >= 0) {
		t.Fatalf("%d datagrams still in reassembly after 10 quiet minutes", len(s.reasm.entries))
	}
	for _, nic := range s.nics {
		if c := nic.neigh; c != nil && (len(c.entries) != 0 || c.dl.index >= 0) {
			t.Fatalf("%s: %d neighbour entries left after 10 quiet minutes", nic.name, len(c.entries))
		}
	}
}

// fuzzInput builds inputs in FuzzReceive's record format.
type fuzzInput []byte

// frame adds a frame whose checksums are made right before it is fed in.
func (in *fuzzInput) frame(f []byte) {
	*in = append(*in, 0x40, byte(len(f)>>8), byte(len(f)))
	*in = append(*in, f...)
}

// rawFrame adds a frame fed in as it is.
func (in *fuzzInput) rawFrame(f []byte) {
	*in = append(*in, 0, byte(len(f)>>8), byte(len(f)))
	*in = append(*in, f...)
}

// wait advances the clock by k²×10 ms (k < 128).
func (in *fuzzInput) wait(k byte) { *in = append(*in, 0x80|k) }

var (
	macA = ip.MAC{2, 0, 0, 0, 0, 1}
	macB = ip.MAC{2, 0, 0, 0, 0, 2}
)

// fuzzSeeds returns the seed inputs: the reference captures, rewritten to
// A's and B's addresses, and hand-made frames aimed at each bound.
func fuzzSeeds(t testing.TB) [][]byte {
	var seeds [][]byte
	for _, name := range []string{"arp.pcap", "icmp.pcap", "icmp-frag.pcap", "udp.pcap", "tcp.pcap"} {
		frames := capturedFrames(t, name)
		// The whole conversation toward B, with the capture's pauses.
		var conv fuzzInput
		var last time.Duration
		for _, f := range frames {
			if gap := f.at - last; gap > 10*time.Millisecond {
				conv.wait(byte(min(127, isqrt(int(gap/(10*time.Millisecond))))))
			}
			last = f.at
			conv.frame(f.data)
		}
		seeds = append(seeds, conv)
		if name == "tcp.pcap" {
			continue // the conversation is enough; its frames are much alike
		}
		for _, f := range frames {
			var one fuzzInput
			one.frame(f.data)
			seeds = append(seeds, one)
		}
	}

	udp := func(src netip.Addr, sport, dport uint16, payload []byte) []byte {
		return udpFrame(t, macA, macB, src, addrB, sport, dport, payload)
	}
	frag := func(id uint16, proto ip.Protocol, off int, data []byte, more bool) []byte {
		return fuzzFragment(t, addrA, id, proto, off, data, more)
	}
	arp := func(op ip.ARPOp, sha ip.MAC, spa netip.Addr, tpa netip.Addr) []byte {
		return arpFrame(t, op, sha, spa, tpa)
	}
	echo := func(src netip.Addr, id, seq uint16, size int) []byte {
		return echoFrame(t, src, addrB, ip.ICMPv4Echo, id, seq, make([]byte, size))
	}
	dgram := make([]byte, 8+3000) // a UDP datagram to port 9000, checksum 0
	binary.BigEndian.PutUint16(dgram[0:], 40000)
	binary.BigEndian.PutUint16(dgram[2:], fuzzUDPPort)
	binary.BigEndian.PutUint16(dgram[4:], uint16(len(dgram)))
	for i := 8; i < len(dgram); i++ {
		dgram[i] = byte(i)
	}

	var in fuzzInput
	// Fragments in order, reversed, duplicated, overlapping, and one that
	// never completes.
	in.frame(frag(1, ip.ProtocolUDP, 0, dgram[:1480], true))
	in.frame(frag(1, ip.ProtocolUDP, 1480, dgram[1480:], false))
	in.frame(frag(2, ip.ProtocolUDP, 1480, dgram[1480:], false))
	in.frame(frag(2, ip.ProtocolUDP, 0, dgram[:1480], true))
	in.frame(frag(3, ip.ProtocolUDP, 0, dgram[:1480], true))
	in.frame(frag(3, ip.ProtocolUDP, 0, dgram[:1480], true))
	in.frame(frag(3, ip.ProtocolUDP, 1000, dgram[1000:2000], true))
	in.frame(frag(4, ip.ProtocolUDP, 0, dgram[:8], true))
	in.wait(56) // 31 s: 4 times out
	seeds = append(seeds, in)

	// Tiny fragments, more than a datagram may have; a fragment at the
	// highest offset; a zero-length last fragment.
	in = nil
	for i := range reasmFragmentsMax + 2 {
		in.frame(frag(5, ip.ProtocolUDP, 8*i, dgram[8*i:8*i+8], true))
	}
	in.frame(frag(6, ip.ProtocolUDP, 0xfff8-24, make([]byte, 8), false))
	in.frame(frag(7, ip.ProtocolUDP, 0, dgram[:16], true))
	in.frame(frag(7, ip.ProtocolUDP, 16, nil, false))
	seeds = append(seeds, in)

	// More incomplete datagrams than reassembly keeps.
	in = nil
	for id := range uint16(reasmDatagramsMax + 8) {
		in.frame(frag(100+id, ip.ProtocolICMP, 0, make([]byte, 8), true))
	}
	seeds = append(seeds, in)

	// A fragmented echo request.
	in = nil
	req := echoFrame(t, addrA, addrB, ip.ICMPv4Echo, 7, 1, make([]byte, 2000))[14+20:]
	in.frame(frag(8, ip.ProtocolICMP, 0, req[:1480], true))
	in.frame(frag(8, ip.ProtocolICMP, 1480, req[1480:], false))
	seeds = append(seeds, in)

	// ARP: a request for B, a reply, a gratuitous ARP, a probe, a
	// conflict for B's address, a request from a broadcast sender.
	in = nil
	in.frame(arp(ip.ARPRequest, macA, addrA, addrB))
	in.frame(arp(ip.ARPReply, ip.MAC{2, 0, 0, 0, 0, 9}, netip.MustParseAddr("10.0.0.9"), addrB))
	in.frame(arp(ip.ARPRequest, ip.MAC{2, 0, 0, 0, 0, 7}, netip.MustParseAddr("10.0.0.7"), netip.MustParseAddr("10.0.0.7")))
	in.frame(arp(ip.ARPRequest, ip.MAC{2, 0, 0, 0, 0, 8}, netip.IPv4Unspecified(), addrB))
	in.frame(arp(ip.ARPRequest, ip.MAC{2, 0, 0, 0, 0, 6}, addrB, addrB))
	in.frame(arp(ip.ARPRequest, ip.BroadcastMAC, netip.MustParseAddr("10.0.0.5"), addrB))
	in.wait(127)
	seeds = append(seeds, in)

	// Many neighbours: requests for B from every address of the subnet
	// and beyond, more than the cache holds.
	in = nil
	for i := range neighEntriesMax + 16 {
		a := netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)})
		in.frame(arp(ip.ARPRequest, ip.MAC{2, 1, 0, 0, byte(i >> 8), byte(i)}, a, addrB))
	}
	seeds = append(seeds, in)

	// Echo requests from a host that never answers ARP: the replies wait,
	// more of them than may.
	in = nil
	nobody := netip.MustParseAddr("10.0.0.66")
	for seq := range uint16(neighPendingMax + 8) {
		in.frame(echo(nobody, 1, seq, 16))
	}
	in.wait(20) // 4 s: resolution fails
	seeds = append(seeds, in)

	// The UDP socket nobody reads fills up; a datagram to a closed port;
	// datagrams to the connected socket from its peer and from another.
	in = nil
	for i := range udpReceiveBufferMax/smallBufSize + 8 {
		in.frame(udp(addrA, 40000, fuzzUDPPort, []byte{byte(i)}))
	}
	in.frame(udp(addrA, 40000, 9999, []byte("closed")))
	in.frame(udp(addrA, 40000, fuzzConnPort, []byte("peer")))
	in.frame(udp(addrA, 40001, fuzzConnPort, []byte("stranger")))
	seeds = append(seeds, in)

	// ICMP errors quoting what B's sockets sent, and an echo reply for the
	// ping endpoint (its identifier is deterministic on the seeded rig).
	in = nil
	rig := newFuzzRig(t)
	quote := udpFrame(t, macB, macA, addrB, addrA, fuzzConnPort, 40000, []byte("x"))[14:]
	in.frame(icmpErrorFrame(t, addrA, ip.ICMPv4DestinationUnreachable, ip.ICMPv4PortUnreachable, quote))
	in.frame(icmpErrorFrame(t, addrA, ip.ICMPv4TimeExceeded, 0, quote[:20]))
	in.frame(echoFrame(t, addrA, addrB, ip.ICMPv4EchoReply, rig.ping.ID(), 1, make([]byte, 56)))
	seeds = append(seeds, in)

	// Oddities: a VLAN tag, an unknown EtherType, a runt, IP options, a
	// bad header checksum, broadcast destinations.
	in = nil
	good := udp(addrA, 40000, fuzzUDPPort, []byte("hello"))
	vlan := append(append(append([]byte(nil), good[:12]...), 0x81, 0, 0, 1), good[12:]...)
	in.frame(vlan)
	other := append([]byte(nil), good...)
	other[12], other[13] = 0x86, 0xdd
	in.frame(other)
	in.frame(good[:20])
	bad := append([]byte(nil), good...)
	bad[14+10] ^= 0xff
	in.rawFrame(bad)
	bad = append([]byte(nil), good...)
	bad[len(bad)-1] ^= 0xff
	in.rawFrame(bad)
	in.frame(withOptions(t, good))
	bcast := udpFrame(t, macA, ip.BroadcastMAC, addrA, netip.MustParseAddr("10.0.0.255"), 40000, 9999, nil)
	in.frame(bcast)
	in.frame(echoFrame(t, addrA, netip.MustParseAddr("255.255.255.255"), ip.ICMPv4Echo, 1, 1, nil))
	seeds = append(seeds, in)
	return seeds
}

func isqrt(n int) int {
	r := 0
	for (r+1)*(r+1) <= n {
		r++
	}
	return r
}

type capturedFrame struct {
	data []byte
	at   time.Duration // since the capture's first frame
}

// capturedFrames returns the frames of a reference capture sent by
// 10.99.0.1 (or broadcast), rewritten as if A had sent them to B: MACs,
// addresses, and every checksum that covers them.
func capturedFrames(t testing.TB, name string) []capturedFrame {
	f, err := os.Open(filepath.Join("..", "testdata", "pcap", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	if r.LinkType() != layers.LinkTypeEthernet {
		t.Fatalf("%s: link type %v", name, r.LinkType())
	}
	var raw [][]byte
	var times []time.Time
	for {
		data, ci, err := r.ReadPacketData()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		raw = append(raw, append([]byte(nil), data...))
		times = append(times, ci.Timestamp)
	}
	// The capture's MACs vary per run: learn them from the addresses.
	capA, capB := netip.MustParseAddr("10.99.0.1"), netip.MustParseAddr("10.99.0.2")
	macs := map[ip.MAC]ip.MAC{}
	for _, b := range raw {
		eth, err := ip.ParseEthernet(b)
		if err != nil {
			continue
		}
		var src netip.Addr
		switch eth.EtherType() {
		case ip.EtherTypeIPv4:
			if h, err := ip.ParseIPv4(eth.Payload()); err == nil {
				src = h.Src()
			}
		case ip.EtherTypeARP:
			if a, err := ip.ParseARP(eth.Payload()); err == nil {
				src = a.SenderProtocolAddr()
			}
		}
		switch src {
		case capA:
			macs[eth.Src()] = macA
		case capB:
			macs[eth.Src()] = macB
		}
	}
	addrs := map[netip.Addr]netip.Addr{capA: addrA, capB: addrB}
	var out []capturedFrame
	for i, b := range raw {
		if len(b) < 14 {
			continue
		}
		dst := ip.MAC(b[0:6])
		if m, ok := macs[dst]; ok {
			dst = m
		}
		if dst != macB && dst != ip.BroadcastMAC {
			continue // B's own frames
		}
		rewriteFrame(b, macs, addrs)
		out = append(out, capturedFrame{data: b, at: times[i].Sub(times[0])})
	}
	if len(out) == 0 {
		t.Fatalf("%s: no frames toward B", name)
	}
	return out
}

// rewriteFrame maps MACs and IPv4 addresses in place, updating the IPv4,
// UDP and TCP checksums that cover them; for an ICMP error it rewrites the
// quoted header too and recomputes the ICMP checksum.
func rewriteFrame(b []byte, macs map[ip.MAC]ip.MAC, addrs map[netip.Addr]netip.Addr) {
	for _, at := range []int{0, 6} {
		if m, ok := macs[ip.MAC(b[at:at+6])]; ok {
			copy(b[at:], m[:])
		}
	}
	switch binary.BigEndian.Uint16(b[12:]) {
	case uint16(ip.EtherTypeARP):
		if len(b) < 14+28 {
			return
		}
		a := b[14:]
		for _, at := range []int{8, 18} { // sender and target hardware addresses
			if m, ok := macs[ip.MAC(a[at:at+6])]; ok {
				copy(a[at:], m[:])
			}
		}
		for _, at := range []int{14, 24} { // sender and target protocol addresses
			if n, ok := addrs[netip.AddrFrom4([4]byte(a[at:at+4]))]; ok {
				n4 := n.As4()
				copy(a[at:], n4[:])
			}
		}
	case uint16(ip.EtherTypeIPv4):
		rewriteIPv4(b[14:], addrs)
	}
}

// rewriteIPv4 rewrites one IPv4 datagram, possibly a truncated one quoted
// in an ICMP error.
func rewriteIPv4(h []byte, addrs map[netip.Addr]netip.Addr) {
	if len(h) < 20 {
		return
	}
	ihl := int(h[0]&0x0f) * 4
	first := binary.BigEndian.Uint16(h[6:])&0x1fff == 0
	var l4sum int // offset of a checksum covering the pseudo-header, or 0
	switch ip.Protocol(h[9]) {
	case ip.ProtocolUDP:
		l4sum = ihl + 6
	case ip.ProtocolTCP:
		l4sum = ihl + 16
	}
	for _, at := range []int{12, 16} {
		old := binary.BigEndian.Uint32(h[at:])
		n, ok := addrs[netip.AddrFrom4([4]byte(h[at:at+4]))]
		if !ok {
			continue
		}
		n4 := n.As4()
		nv := binary.BigEndian.Uint32(n4[:])
		binary.BigEndian.PutUint16(h[10:], checksum.Update32(binary.BigEndian.Uint16(h[10:]), old, nv))
		if first && l4sum > 0 && len(h) >= l4sum+2 {
			if c := binary.BigEndian.Uint16(h[l4sum:]); c != 0 || h[9] != byte(ip.ProtocolUDP) {
				c = checksum.Update32(c, old, nv)
				if c == 0 && h[9] == byte(ip.ProtocolUDP) {
					c = 0xffff
				}
				binary.BigEndian.PutUint16(h[l4sum:], c)
			}
		}
		copy(h[at:], n4[:])
	}
	if first && h[9] == byte(ip.ProtocolICMP) && binary.BigEndian.Uint16(h[6:])&0x2000 == 0 && len(h) >= ihl+8+20 {
		icmp := h[ihl:]
		switch ip.ICMPv4Type(icmp[0]) {
		case ip.ICMPv4DestinationUnreachable, ip.ICMPv4TimeExceeded, ip.ICMPv4ParameterProblem:
			rewriteIPv4(icmp[8:], addrs)
			icmp[2], icmp[3] = 0, 0
			binary.BigEndian.PutUint16(icmp[2:], checksum.Checksum(icmp, 0))
		}
	}
}

// fuzzFragment builds a fragment from src to B carrying payload bytes
// [off, off+len(data)).
func fuzzFragment(t testing.TB, src netip.Addr, id uint16, proto ip.Protocol, off int, data []byte, more bool) []byte {
	t.Helper()
	b := make([]byte, 14+20+len(data))
	if err := (ip.EthernetFields{Dst: macB, Src: macA, EtherType: ip.EtherTypeIPv4}).Encode(b); err != nil {
		t.Fatal(err)
	}
	f := ip.IPv4Fields{TotalLength: uint16(20 + len(data)), ID: id, TTL: 64, Protocol: proto,
		Src: src, Dst: addrB, FragmentOffset: uint16(off / 8)}
	if more {
		f.Flags = ip.IPv4FlagMF
	}
	if err := f.Encode(b[14:]); err != nil {
		t.Fatal(err)
	}
	copy(b[34:], data)
	return b
}

func arpFrame(t testing.TB, op ip.ARPOp, sha ip.MAC, spa, tpa netip.Addr) []byte {
	t.Helper()
	b := make([]byte, 14+ip.ARPLen)
	if err := (ip.EthernetFields{Dst: ip.BroadcastMAC, Src: sha, EtherType: ip.EtherTypeARP}).Encode(b); err != nil {
		t.Fatal(err)
	}
	f := ip.ARPFields{Op: op, SenderHardwareAddr: sha, SenderProtocolAddr: spa, TargetProtocolAddr: tpa}
	if op == ip.ARPReply {
		f.TargetHardwareAddr = macB
	}
	if err := f.Encode(b[14:]); err != nil {
		t.Fatal(err)
	}
	return b
}

// echoFrame builds an ICMP echo request or reply from src to dst.
func echoFrame(t testing.TB, src, dst netip.Addr, typ ip.ICMPv4Type, id, seq uint16, payload []byte) []byte {
	t.Helper()
	return icmpFrame(t, src, dst, ip.ICMPv4Fields{Type: typ, ID: id, Seq: seq}, payload)
}

// icmpErrorFrame builds an ICMP error from src to B quoting quote.
func icmpErrorFrame(t testing.TB, src netip.Addr, typ ip.ICMPv4Type, code ip.ICMPv4Code, quote []byte) []byte {
	t.Helper()
	return icmpFrame(t, src, addrB, ip.ICMPv4Fields{Type: typ, Code: code}, quote)
}

func icmpFrame(t testing.TB, src, dst netip.Addr, f ip.ICMPv4Fields, body []byte) []byte {
	t.Helper()
	const off = 14 + 20
	b := make([]byte, off+ip.ICMPv4HeaderLen+len(body))
	copy(b[off+ip.ICMPv4HeaderLen:], body)
	if err := f.Encode(b[off:]); err != nil {
		t.Fatal(err)
	}
	h := ip.IPv4Fields{TotalLength: uint16(len(b) - 14), ID: 1, TTL: 64, Protocol: ip.ProtocolICMP, Src: src, Dst: dst}
	if err := h.Encode(b[14:]); err != nil {
		t.Fatal(err)
	}
	dmac := macB
	if dst.As4()[3] == 255 {
		dmac = ip.BroadcastMAC
	}
	if err := (ip.EthernetFields{Dst: dmac, Src: macA, EtherType: ip.EtherTypeIPv4}).Encode(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// withOptions returns frame (Ethernet, IPv4 without options) with a
// 4-byte option list (NOP, NOP, NOP, EOL) inserted in its IPv4 header.
func withOptions(t testing.TB, frame []byte) []byte {
	t.Helper()
	h, err := ip.ParseIPv4(frame[14:])
	if err != nil {
		t.Fatal(err)
	}
	f := ip.IPv4Fields{TOS: h.TOS(), TotalLength: h.TotalLength() + 4, ID: h.ID(), TTL: h.TTL(),
		Protocol: h.Protocol(), Src: h.Src(), Dst: h.Dst(), Options: []byte{1, 1, 1, 0}}
	b := bytes.Clone(frame[:14])
	b = append(b, make([]byte, 24)...)
	b = append(b, h.Payload()...)
	if err := f.Encode(b[14:]); err != nil {
		t.Fatal(err)
	}
	return b
}

// The seeds reach what they aim at: each drop counter and bound.
func TestFuzzSeedsReachTheirTargets(t *testing.T) {
	seeds := fuzzSeeds(t)
	if len(seeds) < 20 {
		t.Fatalf("only %d seeds", len(seeds))
	}
	var st Stats
	for _, s := range seeds {
		r := newFuzzRig(t)
		r.run(t, s)
		add(&st, r.b.Stats())
	}
	for what, n := range map[string]uint64{
		"ARP packets sent":         st.ARP.Sent,
		"neighbour cache full":     st.ARP.CacheFull,
		"ARP packets dropped":      st.ARP.PendingDropped,
		"ARP resolutions failed":   st.ARP.ResolutionFailed,
		"ARP conflicts":            st.ARP.AddressConflict,
		"datagrams reassembled":    st.IPv4.Reassembled,
		"reassembly timeouts":      st.IPv4.ReassemblyTimeouts,
		"reassembly evictions":     st.IPv4.ReassemblyEvicted,
		"overlapping fragments":    st.IPv4.FragmentsOverlapping,
		"duplicate fragments":      st.IPv4.FragmentsDuplicate,
		"malformed fragments":      st.IPv4.FragmentsMalformed,
		"bad IPv4 checksums":       st.IPv4.BadChecksum,
		"echo requests answered":   st.ICMP.EchoRequests,
		"ICMP errors received":     st.ICMP.ErrorsReceived,
		"broadcast echoes ignored": st.ICMP.BroadcastEchoIgnored,
		"UDP datagrams delivered":  st.UDP.Delivered,
		"UDP receive buffer full":  st.UDP.ReceiveBufferErrors,
		"UDP to no port":           st.UDP.NoPort,
		"bad UDP checksums":        st.UDP.BadChecksum,
		"VLAN-tagged frames":       st.Link.VLANTagged,
		"unknown EtherTypes":       st.Link.UnknownEtherType,
		"truncated IPv4 packets":   st.IPv4.Truncated,
	} {
		if n == 0 {
			t.Errorf("no seed reaches %s", what)
		}
	}
	// The seed with ICMP errors (the last but one): the connected socket
	// heard of the port unreachable quoting what it sent, and the ping
	// endpoint got its reply.
	r := newFuzzRig(t)
	r.run(t, seeds[len(seeds)-2])
	if _, _, err := r.conn.TryReadFrom(make([]byte, 10)); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("connected socket: %v, want ECONNREFUSED", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if e, err := r.ping.RecvEcho(ctx); err != nil || e.Seq != 1 || e.Len != 56 {
		t.Errorf("ping endpoint: %+v, %v; want the seeded reply", e, err)
	}
}

// add sums the counters of b into a, field by field.
func add(a *Stats, b Stats) {
	sum := func(x, y any) {
		xv, yv := reflect.ValueOf(x).Elem(), reflect.ValueOf(y)
		for i := range xv.NumField() {
			xv.Field(i).SetUint(xv.Field(i).Uint() + yv.Field(i).Uint())
		}
	}
	sum(&a.Link, b.Link)
	sum(&a.ARP, b.ARP)
	sum(&a.IPv4, b.IPv4)
	sum(&a.ICMP, b.ICMP)
	sum(&a.UDP, b.UDP)
}

// A datagram from a source that cannot be on the wire, a loopback address
// or one of our own, is discarded unanswered (RFC 1122 §3.2.1.3: 127/8
// must not appear outside a host, and a host must silently discard
// datagrams from invalid sources; Linux drops both as martians). Answering
// would send packets to 127.0.0.1 through the default gateway, or make
// us resolve our own address on the wire.
func TestMartianSourcesDiscarded(t *testing.T) {
	for _, src := range []netip.Addr{netip.MustParseAddr("127.0.0.1"), addrB} {
		t.Run(src.String(), func(t *testing.T) {
			n := newTestNet(t)
			_, b, _, nb := n.pair(1500)
			if err := b.SetDefaultGateway(nb, addrA); err != nil {
				t.Fatal(err)
			}
			n.deliver()
			before := len(n.sent)
			b.Receive(n.now, nb, [][]byte{
				echoFrame(t, src, addrB, ip.ICMPv4Echo, 1, 1, make([]byte, 8)),
				udpFrame(t, macA, macB, src, addrB, 40000, 9999, []byte("closed port")),
			})
			n.deliver()
			for _, f := range n.sent[before:] {
				if f.from() == nb {
					t.Errorf("B answered a datagram from %v: sent %x", src, f.data)
				}
			}
			if st := b.Stats().IPv4; st.BadSource != 2 || st.Delivered != 0 {
				t.Errorf("bad source %d, delivered %d; want 2 and 0", st.BadSource, st.Delivered)
			}
		})
	}
}
