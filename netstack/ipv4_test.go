package netstack

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/tapstack/tapstack/ip"
	"github.com/tapstack/tapstack/mono"
)

func TestPingResolvesAndReplies(t *testing.T) {
	n := newTestNet(t)
	a, b, _, _ := n.pair(1500)
	n.deliver() // gratuitous ARPs from both
	p, err := a.DialPing(addrB)
	if err != nil {
		t.Fatal(err)
	}
	for seq := uint16(1); seq <= 3; seq++ {
		if err := p.SendEcho(seq, 56); err != nil {
			t.Fatal(err)
		}
		n.deliver()
		e := recvEcho(t, p)
		if e.Seq != seq || e.Len != 56 || e.From != addrB || e.TTL != defaultTTL {
			t.Fatalf("reply %+v, want seq %d len 56 from %v ttl %d", e, seq, addrB, defaultTTL)
		}
	}
	// The gratuitous ARPs do not create entries (we were not their target),
	// so exactly one request/reply pair resolved B.
	if got := a.Stats().ARP.Sent; got != 2 { // announcement + one request
		t.Errorf("A sent %d ARP packets, want 2", got)
	}
	if got := b.Stats().ICMP.EchoRequests; got != 3 {
		t.Errorf("B answered %d echo requests, want 3", got)
	}
}

func recvEcho(t *testing.T, p *PingConn) Echo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	e, err := p.RecvEcho(ctx)
	if err != nil {
		t.Fatalf("no echo reply: %v", err)
	}
	return e
}

func TestFragmentedPingBothWays(t *testing.T) {
	n := newTestNet(t)
	a, b, _, _ := n.pair(1500)
	p, err := a.DialPing(addrB)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.SendEcho(7, 4000); err != nil {
		t.Fatal(err)
	}
	n.deliver()
	if e := recvEcho(t, p); e.Len != 4000 || e.Seq != 7 {
		t.Fatalf("reply %+v, want 4000 bytes seq 7", e)
	}
	sa, sb := a.Stats().IPv4, b.Stats().IPv4
	// 4008 bytes of ICMP in 1480-byte pieces: three fragments each way.
	if sa.FragmentsSent != 3 || sb.FragmentsSent != 3 || sa.Reassembled != 1 || sb.Reassembled != 1 {
		t.Fatalf("fragments A sent %d reassembled %d, B sent %d reassembled %d; want 3/1 each",
			sa.FragmentsSent, sa.Reassembled, sb.FragmentsSent, sb.Reassembled)
	}
	for _, f := range n.sent {
		if len(f.data) > 14+1500 {
			t.Fatalf("frame of %d bytes exceeds the MTU", len(f.data))
		}
	}
}

func TestUDPExchange(t *testing.T) {
	n := newTestNet(t)
	a, b, _, _ := n.pair(1500)
	srv, err := b.ListenUDP(netip.AddrPortFrom(netip.Addr{}, 9000))
	if err != nil {
		t.Fatal(err)
	}
	cli, err := a.DialUDP(netip.AddrPort{}, netip.AddrPortFrom(addrB, 9000))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 70000)
	for _, size := range []int{0, 1, 18, 512, 1472, 1473, 3000, 65507} {
		msg := bytes.Repeat([]byte{byte(size)}, size)
		if _, err := cli.Write(msg); err != nil {
			t.Fatalf("write %d: %v", size, err)
		}
		n.deliver()
		got, from, err := srv.TryReadFrom(buf)
		if err != nil || !bytes.Equal(buf[:got], msg) {
			t.Fatalf("size %d: read %d bytes, %v", size, got, err)
		}
		if from != cli.LocalAddrPort() {
			t.Fatalf("from %v, want %v", from, cli.LocalAddrPort())
		}
		// Echo back.
		if err := srv.TryWriteTo(buf[:got], from); err != nil {
			t.Fatal(err)
		}
		n.deliver()
		got, _, err = cli.TryReadFrom(buf)
		if err != nil || !bytes.Equal(buf[:got], msg) {
			t.Fatalf("size %d echo: read %d bytes, %v", size, got, err)
		}
	}
	if _, err := cli.Write(make([]byte, 65508)); !errors.Is(err, syscall.EMSGSIZE) {
		t.Fatalf("oversize write: %v, want EMSGSIZE", err)
	}
}

func TestUDPClosedPortRefusesConnectedSocket(t *testing.T) {
	n := newTestNet(t)
	a, b, _, _ := n.pair(1500)
	cli, err := a.DialUDP(netip.AddrPort{}, netip.AddrPortFrom(addrB, 9999))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	n.deliver()
	if got := b.Stats().UDP.NoPort; got != 1 {
		t.Fatalf("B NoPort = %d, want 1", got)
	}
	if _, err := cli.Read(make([]byte, 10)); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("read after port unreachable: %v, want ECONNREFUSED", err)
	}
}

func TestARPFailureReportsHostUnreachable(t *testing.T) {
	n := newTestNet(t)
	a, b, _, _ := n.pair(1500)
	nobody := netip.MustParseAddr("10.0.0.77")
	cli, err := a.DialUDP(netip.AddrPort{}, netip.AddrPortFrom(nobody, 9))
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := cli.TryWriteTo([]byte("x"), netip.AddrPort{}); err != nil {
			t.Fatal(err)
		}
	}
	start := n.now
	n.runUntil(start.Add(10*time.Second), a, b)
	st := a.Stats().ARP
	if st.ResolutionFailed != 1 {
		t.Fatalf("ResolutionFailed = %d, want 1", st.ResolutionFailed)
	}
	requests := 0
	for _, f := range n.sent {
		if f.from().s == a && f.data[12] == 0x08 && f.data[13] == 0x06 {
			requests++
		}
	}
	if requests != 1+neighRequestsMax { // the announcement and three requests
		t.Fatalf("A sent %d ARP frames, want %d", requests, 1+neighRequestsMax)
	}
	if _, _, err := cli.TryReadFrom(make([]byte, 10)); !errors.Is(err, syscall.EHOSTUNREACH) {
		t.Fatalf("read after ARP failure: %v, want EHOSTUNREACH", err)
	}
	if a.NextDeadline() != mono.Never {
		t.Fatalf("timers left armed: next %v", a.NextDeadline())
	}
}

// fragment builds the frame of one IPv4 fragment from 10.0.0.1 to
// 10.0.0.2 carrying payload bytes [off, off+len(data)).
func fragmentFrame(t *testing.T, na, nb *NIC, id uint16, proto ip.Protocol, off int, data []byte, more bool) []byte {
	t.Helper()
	b := make([]byte, 14+20+len(data))
	eth := ip.EthernetFields{Dst: nb.mac, Src: na.mac, EtherType: ip.EtherTypeIPv4}
	if err := eth.Encode(b); err != nil {
		t.Fatal(err)
	}
	f := ip.IPv4Fields{TotalLength: uint16(20 + len(data)), ID: id, TTL: 64, Protocol: proto,
		Src: addrA, Dst: addrB, FragmentOffset: uint16(off / 8)}
	if more {
		f.Flags = ip.IPv4FlagMF
	}
	if err := f.Encode(b[14:]); err != nil {
		t.Fatal(err)
	}
	copy(b[34:], data)
	return b
}

func TestReassemblyRules(t *testing.T) {
	n := newTestNet(t)
	_, b, na, nb := n.pair(1500)
	srv, err := b.ListenUDP(netip.AddrPortFrom(netip.Addr{}, 9000))
	if err != nil {
		t.Fatal(err)
	}
	// A UDP datagram of 8+24 bytes, checksum 0 (allowed), split in 3.
	dgram := make([]byte, 32)
	copy(dgram, []byte{0x12, 0x34, 0x23, 0x28, 0, 32, 0, 0})
	for i := 8; i < 32; i++ {
		dgram[i] = byte(i)
	}
	frag := func(id uint16, off, end int, more bool) []byte {
		return fragmentFrame(t, na, nb, id, ip.ProtocolUDP, off, dgram[off:end], more)
	}
	recv := func(n int) {
		t.Helper()
		buf := make([]byte, 100)
		for range n {
			got, _, err := srv.TryReadFrom(buf)
			if err != nil || !bytes.Equal(buf[:got], dgram[8:]) {
				t.Fatalf("read %d bytes (%v), want the datagram", got, err)
			}
		}
		if _, _, err := srv.TryReadFrom(buf); err != ErrWouldBlock {
			t.Fatalf("extra datagram or error: %v", err)
		}
	}
	// Out of order with a duplicate: delivered once.
	b.Receive(n.now, nb, [][]byte{frag(1, 16, 32, false), frag(1, 0, 8, true), frag(1, 0, 8, true), frag(1, 8, 16, true)})
	recv(1)
	// An overlapping fragment discards the datagram.
	b.Receive(n.now, nb, [][]byte{frag(2, 0, 16, true), frag(2, 8, 24, true), frag(2, 16, 32, false)})
	recv(0)
	st := b.Stats().IPv4
	if st.FragmentsDuplicate != 1 || st.FragmentsOverlapping != 1 || st.Reassembled != 1 {
		t.Fatalf("duplicate %d overlapping %d reassembled %d, want 1 1 1",
			st.FragmentsDuplicate, st.FragmentsOverlapping, st.Reassembled)
	}
	// An incomplete datagram times out after 30 s and the sender hears of it
	// (the first fragment arrived).
	before := len(n.sent)
	b.Receive(n.now, nb, [][]byte{frag(3, 0, 8, true)})
	n.now = n.now.Add(reasmTimeout - time.Millisecond)
	b.Advance(n.now)
	if b.Stats().IPv4.ReassemblyTimeouts != 0 {
		t.Fatal("timed out early")
	}
	n.now = n.now.Add(time.Millisecond)
	b.Advance(n.now)
	// Two time out: this one, and the last fragment of the discarded
	// overlapping datagram, which started a new one (as on Linux).
	if got := b.Stats().IPv4.ReassemblyTimeouts; got != 2 || len(b.reasm.entries) != 0 {
		t.Fatalf("%d timeouts at 30 s, %d left; want 2 and none", got, len(b.reasm.entries))
	}
	n.deliver() // B resolves A, then sends
	var icmp []byte
	for _, f := range n.sent[before:] {
		if f.from() == nb && f.data[12] == 0x08 && f.data[13] == 0x00 && f.data[14+9] == 1 {
			icmp = f.data[34:]
		}
	}
	if icmp == nil || icmp[0] != byte(ip.ICMPv4TimeExceeded) || icmp[1] != byte(ip.ICMPv4ReassemblyExceeded) {
		t.Fatalf("no time-exceeded (reassembly) message; got %x", icmp)
	}
	// Flooding with incomplete datagrams keeps at most reasmDatagramsMax.
	for id := uint16(100); id < 100+3*reasmDatagramsMax; id++ {
		b.Receive(n.now, nb, [][]byte{frag(id, 0, 8, true)})
	}
	if got := len(b.reasm.entries); got != reasmDatagramsMax {
		t.Fatalf("%d datagrams in progress, want the bound %d", got, reasmDatagramsMax)
	}
}

func TestICMPErrorsAreRateLimited(t *testing.T) {
	n := newTestNet(t)
	a, b, _, _ := n.pair(1500)
	cli, err := a.ListenUDP(netip.AddrPort{})
	if err != nil {
		t.Fatal(err)
	}
	// Resolve B first: unresolved packets would wait in a bounded queue.
	if err := cli.TryWriteTo([]byte("x"), netip.AddrPortFrom(addrB, 9998)); err != nil {
		t.Fatal(err)
	}
	n.deliver()
	for range 200 {
		if err := cli.TryWriteTo([]byte("x"), netip.AddrPortFrom(addrB, 9999)); err != nil {
			t.Fatal(err)
		}
	}
	n.deliver()
	st := b.Stats().ICMP
	if st.ErrorsSent != icmpErrorBurst || st.RateLimited != 201-icmpErrorBurst {
		t.Fatalf("errors sent %d, limited %d; want %d and %d", st.ErrorsSent, st.RateLimited, icmpErrorBurst, 201-icmpErrorBurst)
	}
	// A second later the bucket has refilled.
	n.now = n.now.Add(time.Second)
	if err := cli.TryWriteTo([]byte("x"), netip.AddrPortFrom(addrB, 9999)); err != nil {
		t.Fatal(err)
	}
	n.deliver()
	if got := b.Stats().ICMP.ErrorsSent; got != icmpErrorBurst+1 {
		t.Fatalf("after refill errors sent %d, want %d", got, icmpErrorBurst+1)
	}
}

func TestMalformedInputIsCountedNotFatal(t *testing.T) {
	n := newTestNet(t)
	_, b, na, nb := n.pair(1500)
	good := fragmentFrame(t, na, nb, 1, ip.ProtocolUDP, 0, make([]byte, 8), false)
	badSum := append([]byte(nil), good...)
	badSum[14+10] ^= 0xff
	truncated := good[:14+12]
	badVersion := append([]byte(nil), good...)
	badVersion[14] = 0x65
	b.Receive(n.now, nb, [][]byte{{1, 2, 3}, badSum, truncated, badVersion})
	st := b.Stats()
	if st.Link.Malformed != 1 || st.IPv4.BadChecksum != 1 || st.IPv4.Truncated != 1 || st.IPv4.Malformed != 1 {
		t.Fatalf("link malformed %d, bad checksum %d, truncated %d, malformed %d; want 1 each",
			st.Link.Malformed, st.IPv4.BadChecksum, st.IPv4.Truncated, st.IPv4.Malformed)
	}
}

// A NIC holding many addresses on one network has one connected route and
// one directed broadcast address to check, not one per address.
func TestManyAddressesOneRoute(t *testing.T) {
	n := newTestNet(t)
	s := n.newStack(1)
	defer s.Close()
	var addrs []netip.Prefix
	for i := 1; i <= 50; i++ {
		addrs = append(addrs, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 9, 0, byte(i)}), 24))
	}
	addrs = append(addrs, netip.MustParsePrefix("10.8.0.1/16"))
	nic, err := s.AddNIC(NICConfig{Name: "m0", Addrs: addrs}, &testLink{n: n})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.routes) != 2 || len(nic.bcasts) != 2 {
		t.Fatalf("%d routes, %d broadcast addresses; want 2 and 2", len(s.routes), len(nic.bcasts))
	}
	for _, c := range []struct {
		a    string
		want bool
	}{{"10.9.0.255", true}, {"10.8.255.255", true}, {"255.255.255.255", true}, {"10.9.0.7", false}, {"10.9.1.255", false}} {
		if got := nic.isBroadcast(netip.MustParseAddr(c.a)); got != c.want {
			t.Errorf("isBroadcast(%s) = %v, want %v", c.a, got, c.want)
		}
	}
	if r, _, err := s.routeLocked(netip.MustParseAddr("10.9.0.200")); err != nil || r.Dst != netip.MustParsePrefix("10.9.0.0/24") {
		t.Fatalf("route to 10.9.0.200: %v, %v", r.Dst, err)
	}
}
