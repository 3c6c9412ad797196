package ip

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/ip4defrag"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// Differential tests: every frame of the kernel captures in testdata/pcap
// (see its README) is decoded by this package and by gopacket, and every
// field both expose must agree.

var pcaps = []string{"arp.pcap", "icmp.pcap", "icmp-frag.pcap", "udp.pcap", "tcp.pcap"}

type frame struct {
	data []byte
	ci   gopacket.CaptureInfo
}

func readPcap(t testing.TB, name string) []frame {
	t.Helper()
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
	var frames []frame
	for {
		data, ci, err := r.ReadPacketData()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if ci.CaptureLength != ci.Length {
			t.Fatalf("%s: frame %d truncated by the capture", name, len(frames)+1)
		}
		frames = append(frames, frame{clone(data), ci})
	}
	if len(frames) == 0 {
		t.Fatalf("%s: no frames", name)
	}
	return frames
}

func addrOf(t *testing.T, ip net.IP) netip.Addr {
	t.Helper()
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		t.Fatalf("bad address %v", ip)
	}
	return a.Unmap()
}

// counts tallies what the differential test has compared, so that a test
// that silently compared nothing fails.
type counts map[string]int

func TestGopacketDifferential(t *testing.T) {
	seen := counts{}
	for _, name := range pcaps {
		t.Run(name, func(t *testing.T) {
			defrag := ip4defrag.NewIPv4Defragmenter()
			var frags [][]byte // IPv4 fragments in capture order
			for i, fr := range readPcap(t, name) {
				t.Run(fmt.Sprint("frame", i+1), func(t *testing.T) {
					pkt := gopacket.NewPacket(fr.data, layers.LayerTypeEthernet, gopacket.Default)
					if el := pkt.ErrorLayer(); el != nil {
						t.Fatalf("gopacket: %v", el.Error())
					}
					ip := compareFrame(t, fr.data, pkt, seen)
					if ip == nil || !ip.IsFragment() {
						return
					}
					frags = append(frags, ip)
					g := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
					whole, err := defrag.DefragIPv4WithTimestamp(g, fr.ci.Timestamp)
					if err != nil {
						t.Fatal(err)
					}
					if whole != nil {
						compareReassembled(t, frags, whole, seen)
						frags = nil
					}
				})
			}
			if len(frags) != 0 {
				t.Errorf("%d fragments left over", len(frags))
			}
		})
	}
	// What the captures are known to hold (testdata/pcap/README.md).
	for what, least := range map[string]int{
		"ethernet": 200, "arp": 4, "ipv4": 200, "fragment": 16, "icmp echo": 8, "icmp error": 1,
		"udp": 11, "reassembled icmp": 4, "reassembled udp": 2, "vlan": 200,
	} {
		if seen[what] < least {
			t.Errorf("compared %d %s, want at least %d", seen[what], what, least)
		}
	}
}

// compareFrame compares one frame, and the same frame with an 802.1Q tag
// inserted, and returns its IPv4 view, if it carries IPv4.
func compareFrame(t *testing.T, data []byte, pkt gopacket.Packet, seen counts) IPv4 {
	e, err := ParseEthernet(data)
	if err != nil {
		t.Fatal(err)
	}
	g := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	if e.Dst() != MAC(g.DstMAC) || e.Src() != MAC(g.SrcMAC) || uint16(e.EtherType()) != uint16(g.EthernetType) ||
		e.HasVLAN() || !bytes.Equal(e.Payload(), g.Payload) {
		t.Errorf("ethernet: ours %v > %v %v, gopacket %v > %v %v", e.Src(), e.Dst(), e.EtherType(),
			g.SrcMAC, g.DstMAC, g.EthernetType)
	}
	seen["ethernet"]++
	compareVLAN(t, data, seen)

	switch e.EtherType() {
	case EtherTypeARP:
		compareARP(t, e.Payload(), pkt.Layer(layers.LayerTypeARP).(*layers.ARP))
		seen["arp"]++
	case EtherTypeIPv4:
		h, err := ParseIPv4(e.Payload())
		if err != nil {
			t.Fatal(err)
		}
		gip := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		compareIPv4(t, h, gip)
		seen["ipv4"]++
		if h.IsFragment() {
			seen["fragment"]++
			if pkt.Layer(gopacket.LayerTypeFragment) == nil {
				t.Error("gopacket does not see a fragment")
			}
			return h
		}
		switch h.Protocol() {
		case ProtocolICMP:
			compareICMPv4(t, h.Payload(), pkt.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4), seen)
		case ProtocolUDP:
			compareUDP(t, h, pkt.Layer(layers.LayerTypeUDP).(*layers.UDP), gip)
			seen["udp"]++
		case ProtocolTCP:
			if pkt.Layer(layers.LayerTypeTCP) == nil {
				t.Error("gopacket sees no TCP")
			}
		default:
			t.Errorf("unexpected protocol %v", h.Protocol())
		}
		return h
	default:
		t.Errorf("unexpected EtherType %v", e.EtherType())
	}
	return nil
}

// compareVLAN tags the frame with VLAN 1234, PCP 3, and compares the tag and
// the inner EtherType and payload.
func compareVLAN(t *testing.T, data []byte, seen counts) {
	e, _ := ParseEthernet(data)
	f := EthernetFields{Dst: e.Dst(), Src: e.Src(), EtherType: e.EtherType(), VLAN: true, VLANID: 1234, PCP: 3}
	tagged := make([]byte, EthernetVLANHeaderLen+len(e.Payload()))
	copy(tagged[EthernetVLANHeaderLen:], e.Payload())
	if err := f.Encode(tagged); err != nil {
		t.Fatal(err)
	}
	v, err := ParseEthernet(tagged)
	if err != nil {
		t.Fatal(err)
	}
	pkt := gopacket.NewPacket(tagged, layers.LayerTypeEthernet, gopacket.Default)
	q, ok := pkt.Layer(layers.LayerTypeDot1Q).(*layers.Dot1Q)
	if !ok {
		t.Fatalf("gopacket sees no 802.1Q tag: %v", pkt)
	}
	if !v.HasVLAN() || v.VLANID() != q.VLANIdentifier || v.PCP() != q.Priority || v.DEI() != q.DropEligible ||
		uint16(v.EtherType()) != uint16(q.Type) || v.HeaderLen() != EthernetVLANHeaderLen ||
		!bytes.Equal(v.Payload(), q.Payload) || v.Src() != e.Src() || v.Dst() != e.Dst() {
		t.Errorf("802.1Q: ours id %d pcp %d type %v, gopacket %d %d %v",
			v.VLANID(), v.PCP(), v.EtherType(), q.VLANIdentifier, q.Priority, q.Type)
	}
	seen["vlan"]++
}

func compareARP(t *testing.T, b []byte, g *layers.ARP) {
	a, err := ParseARP(b)
	if err != nil {
		t.Fatal(err)
	}
	if a.HardwareType() != uint16(g.AddrType) || uint16(a.ProtocolType()) != uint16(g.Protocol) ||
		a.HardwareLen() != g.HwAddressSize || a.ProtocolLen() != g.ProtAddressSize || uint16(a.Op()) != g.Operation ||
		a.SenderHardwareAddr() != MAC(g.SourceHwAddress) || a.SenderProtocolAddr() != addrOf(t, g.SourceProtAddress) ||
		a.TargetHardwareAddr() != MAC(g.DstHwAddress) || a.TargetProtocolAddr() != addrOf(t, g.DstProtAddress) {
		t.Errorf("arp: ours %v %v/%v -> %v/%v, gopacket %+v", a.Op(), a.SenderHardwareAddr(), a.SenderProtocolAddr(),
			a.TargetHardwareAddr(), a.TargetProtocolAddr(), g)
	}
}

func compareIPv4(t *testing.T, h IPv4, g *layers.IPv4) {
	if h.Version() != g.Version || h.IHL() != g.IHL || h.TOS() != g.TOS || h.TotalLength() != g.Length ||
		h.ID() != g.Id || uint8(h.Flags()) != uint8(g.Flags) || h.FragmentOffset() != g.FragOffset ||
		h.TTL() != g.TTL || uint8(h.Protocol()) != uint8(g.Protocol) || h.Checksum() != g.Checksum ||
		h.Src() != addrOf(t, g.SrcIP) || h.Dst() != addrOf(t, g.DstIP) || !bytes.Equal(h.Payload(), g.Payload) ||
		h.DF() != (g.Flags&layers.IPv4DontFragment != 0) || h.MF() != (g.Flags&layers.IPv4MoreFragments != 0) {
		t.Errorf("ipv4: ours %x, gopacket %+v", h.Header(), g)
	}
	var ours []IPv4Option
	for o := range h.Options().All() {
		ours = append(ours, o)
	}
	theirs := slices.DeleteFunc(slices.Clone(g.Options), func(o layers.IPv4Option) bool { return o.OptionType == 0 })
	if len(ours) != len(theirs) {
		t.Fatalf("ipv4 options: ours %+v, gopacket %+v", ours, g.Options)
	}
	for i := range ours {
		if uint8(ours[i].Type) != theirs[i].OptionType || !bytes.Equal(ours[i].Data, theirs[i].OptionData) {
			t.Errorf("ipv4 option %d: ours %+v, gopacket %+v", i, ours[i], theirs[i])
		}
	}
	_, v := g.VerifyChecksum()
	if !h.ChecksumValid() || !v.Valid || h.ComputeChecksum() != h.Checksum() {
		t.Errorf("ipv4 checksum %#04x: ours valid %v, gopacket valid %v", h.Checksum(), h.ChecksumValid(), v.Valid)
	}
}

func compareICMPv4(t *testing.T, b []byte, g *layers.ICMPv4, seen counts) {
	m, err := ParseICMPv4(b)
	if err != nil {
		t.Fatal(err)
	}
	if uint8(m.Type()) != g.TypeCode.Type() || uint8(m.Code()) != g.TypeCode.Code() || m.Checksum() != g.Checksum ||
		m.ID() != g.Id || m.Seq() != g.Seq || !bytes.Equal(m.Payload(), g.Payload) {
		t.Errorf("icmp: ours %v/%d id %#x seq %d, gopacket %v id %#x seq %d",
			m.Type(), m.Code(), m.ID(), m.Seq(), g.TypeCode, g.Id, g.Seq)
	}
	_, v := g.VerifyChecksum()
	if !m.ChecksumValid() || !v.Valid {
		t.Errorf("icmp checksum %#04x: ours valid %v, gopacket valid %v", m.Checksum(), m.ChecksumValid(), v.Valid)
	}
	if !m.Type().IsError() {
		seen["icmp echo"]++
		return
	}
	// The quoted datagram, decoded by both.
	o, err := m.OriginalDatagram()
	if err != nil {
		t.Fatal(err)
	}
	q := gopacket.NewPacket(m.Payload(), layers.LayerTypeIPv4, gopacket.Default)
	gq, ok := q.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	if !ok {
		t.Fatalf("gopacket cannot decode the quoted datagram: %v", q)
	}
	if o.Src() != addrOf(t, gq.SrcIP) || o.Dst() != addrOf(t, gq.DstIP) || o.ID() != gq.Id ||
		uint8(o.Protocol()) != uint8(gq.Protocol) || o.TotalLength() != gq.Length || o.IHL() != gq.IHL ||
		!o.ChecksumValid() {
		t.Errorf("quoted ipv4: ours %x, gopacket %+v", o.Header(), gq)
	}
	if gu, ok := q.Layer(layers.LayerTypeUDP).(*layers.UDP); ok {
		u := UDP(o.Payload()) // a quoted header; its length covers bytes not quoted
		if u.SrcPort() != uint16(gu.SrcPort) || u.DstPort() != uint16(gu.DstPort) || u.Length() != gu.Length {
			t.Errorf("quoted udp: ours %d > %d, gopacket %v > %v", u.SrcPort(), u.DstPort(), gu.SrcPort, gu.DstPort)
		}
	} else {
		t.Error("gopacket sees no quoted UDP header")
	}
	seen["icmp error"]++
}

func compareUDP(t *testing.T, h IPv4, g *layers.UDP, gip *layers.IPv4) {
	u, err := ParseUDP(h.Payload())
	if err != nil {
		t.Fatal(err)
	}
	if u.SrcPort() != uint16(g.SrcPort) || u.DstPort() != uint16(g.DstPort) || u.Length() != g.Length ||
		u.Checksum() != g.Checksum || !bytes.Equal(u.Payload(), g.Payload) {
		t.Errorf("udp: ours %d > %d len %d, gopacket %+v", u.SrcPort(), u.DstPort(), u.Length(), g)
	}
	if err := g.SetNetworkLayerForChecksum(gip); err != nil {
		t.Fatal(err)
	}
	_, v := g.VerifyChecksum()
	if !u.ChecksumValid(h.Src(), h.Dst()) || !v.Valid || u.Checksum() == 0 {
		t.Errorf("udp checksum %#04x: ours valid %v, gopacket valid %v", u.Checksum(), u.ChecksumValid(h.Src(), h.Dst()), v.Valid)
	}
}

// compareReassembled joins the fragments of one datagram, compares the
// result with gopacket's reassembly, and checks that EncodeFragmentHeader
// cuts it into headers identical to the kernel's.
func compareReassembled(t *testing.T, frags [][]byte, g *layers.IPv4, seen counts) {
	first := IPv4(frags[0])
	hl := first.HeaderLength()
	whole := slices.Clone(first.Header())
	for _, f := range frags {
		f := IPv4(f)
		if f.FragmentOffsetBytes() != len(whole)-hl {
			t.Fatalf("fragments out of order: offset %d at %d", f.FragmentOffsetBytes(), len(whole)-hl)
		}
		whole = append(whole, f.Payload()...)
	}
	fields := IPv4Fields{TOS: first.TOS(), TotalLength: uint16(len(whole)), ID: first.ID(),
		Flags: first.Flags() &^ IPv4FlagMF, TTL: first.TTL(), Protocol: first.Protocol(),
		Src: first.Src(), Dst: first.Dst(), Options: first.Options()}
	if err := fields.Encode(whole); err != nil {
		t.Fatal(err)
	}
	h, err := ParseIPv4(whole)
	if err != nil {
		t.Fatal(err)
	}
	if h.TotalLength() != g.Length || !bytes.Equal(h.Payload(), g.Payload) || h.IsFragment() {
		t.Errorf("reassembled: ours %d bytes, gopacket %d", h.TotalLength(), g.Length)
	}
	// The reassembled transport layer, decoded by both.
	switch h.Protocol() {
	case ProtocolICMP:
		var gi layers.ICMPv4
		if err := gi.DecodeFromBytes(g.Payload, gopacket.NilDecodeFeedback); err != nil {
			t.Fatal(err)
		}
		compareICMPv4(t, h.Payload(), &gi, counts{})
		seen["reassembled icmp"]++
	case ProtocolUDP:
		pkt := gopacket.NewPacket(whole, layers.LayerTypeIPv4, gopacket.Default)
		compareUDP(t, h, pkt.Layer(layers.LayerTypeUDP).(*layers.UDP), pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4))
		seen["reassembled udp"]++
	}
	// Fragment it again at the kernel's boundaries: same headers, byte for
	// byte.
	for _, f := range frags {
		f := IPv4(f)
		hdr := make([]byte, hl)
		if err := h.EncodeFragmentHeader(hdr, f.FragmentOffsetBytes(), len(f.Payload()), f.MF()); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(hdr, f.Header()) {
			t.Errorf("fragment at %d: ours %x, kernel %x", f.FragmentOffsetBytes(), hdr, f.Header())
		}
	}
}
