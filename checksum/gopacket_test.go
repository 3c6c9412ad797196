package checksum

import (
	"encoding/binary"
	"math/rand/v2"
	"net"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// TestAgainstGopacket checks the checksums gopacket writes into TCP/IPv4 and
// UDP/IPv6 packets against ours: an independent implementation of the same
// RFCs, pseudo-headers included.
func TestAgainstGopacket(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 18))
	opts := gopacket.SerializeOptions{ComputeChecksums: true, FixLengths: true}
	for i := range 300 {
		payload := fill(r, r.IntN(3000), 0, byte(i%4))

		ip4 := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP,
			SrcIP: net.IP{10, byte(i), 0, 1}, DstIP: net.IP{192, 0, 2, byte(r.Uint32())}}
		tcp := &layers.TCP{SrcPort: layers.TCPPort(r.Uint32()), DstPort: 80,
			Seq: r.Uint32(), Ack: r.Uint32(), ACK: true, PSH: i%2 == 0, Window: 65535}
		if err := tcp.SetNetworkLayerForChecksum(ip4); err != nil {
			t.Fatal(err)
		}
		buf := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(buf, opts, ip4, tcp, gopacket.Payload(payload)); err != nil {
			t.Fatal(err)
		}
		pkt := buf.Bytes()
		hdr, seg := pkt[:20], pkt[20:]
		if s := Sum(hdr, 0); s != 0xffff {
			t.Fatalf("IPv4 header written by gopacket sums to %#04x", s)
		}
		var src, dst [4]byte
		copy(src[:], hdr[12:16])
		copy(dst[:], hdr[16:20])
		pseudo := PseudoHeaderV4(src, dst, 6, uint16(len(seg)))
		field := binary.BigEndian.Uint16(seg[16:])
		seg[16], seg[17] = 0, 0
		// Header and payload summed apart, the payload at any length.
		got := ^Combine(Combine(pseudo, Sum(seg[:20], 0)), Sum(seg[20:], 0))
		if got != field {
			t.Fatalf("TCP/IPv4 checksum of %d payload bytes = %#04x, gopacket wrote %#04x", len(payload), got, field)
		}

		ip6 := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolUDP,
			SrcIP: net.ParseIP("2001:db8::1"), DstIP: net.ParseIP("2001:db8:ffff::2")}
		ip6.DstIP[15] = byte(i)
		udp := &layers.UDP{SrcPort: layers.UDPPort(r.Uint32()), DstPort: 53}
		if err := udp.SetNetworkLayerForChecksum(ip6); err != nil {
			t.Fatal(err)
		}
		buf = gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(buf, opts, ip6, udp, gopacket.Payload(payload)); err != nil {
			t.Fatal(err)
		}
		dgram := buf.Bytes()[40:]
		var src6, dst6 [16]byte
		copy(src6[:], ip6.SrcIP)
		copy(dst6[:], ip6.DstIP)
		pseudo = PseudoHeaderV6(src6, dst6, 17, uint32(len(dgram)))
		if s := Sum(dgram, pseudo); s != 0xffff {
			t.Fatalf("UDP/IPv6 datagram of %d payload bytes with gopacket's checksum sums to %#04x", len(payload), s)
		}
	}
}
