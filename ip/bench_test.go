package ip

import (
	"testing"
)

// benchFrame is an Ethernet+IPv4+UDP frame with 64 bytes of data.
func benchFrame(b *testing.B) []byte {
	const data = 64
	frame := make([]byte, EthernetHeaderLen+IPv4MinHeaderLen+UDPHeaderLen+data)
	if err := encodeUDPFrame(frame); err != nil {
		b.Fatal(err)
	}
	return frame
}

// encodeUDPFrame writes the three headers back to front in front of the data
// already at the end of frame, the way the stack's output path does.
func encodeUDPFrame(frame []byte) error {
	ipOff := EthernetHeaderLen
	udpOff := ipOff + IPv4MinHeaderLen
	if err := (UDPFields{SrcPort: 40000, DstPort: 9000}).Encode(frame[udpOff:], hostIP, nsIP); err != nil {
		return err
	}
	ipf := IPv4Fields{TotalLength: uint16(len(frame) - ipOff), ID: 1, Flags: IPv4FlagDF, TTL: 64,
		Protocol: ProtocolUDP, Src: hostIP, Dst: nsIP}
	if err := ipf.Encode(frame[ipOff:udpOff]); err != nil {
		return err
	}
	return EthernetFields{Dst: macB, Src: macA, EtherType: EtherTypeIPv4}.Encode(frame[:ipOff])
}

// BenchmarkParseFrame parses an Ethernet+IPv4+UDP frame and reads the
// fields a demultiplexer needs, without verifying checksums.
func BenchmarkParseFrame(b *testing.B) {
	frame := benchFrame(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	var sink uint16
	for b.Loop() {
		e, err := ParseEthernet(frame)
		if err != nil {
			b.Fatal(err)
		}
		h, err := ParseIPv4(e.Payload())
		if err != nil {
			b.Fatal(err)
		}
		u, err := ParseUDP(h.Payload())
		if err != nil {
			b.Fatal(err)
		}
		if h.Src() != hostIP || h.Dst() != nsIP || h.IsFragment() {
			b.Fatal("wrong fields")
		}
		sink += u.DstPort() + u.SrcPort() + uint16(len(u.Payload()))
	}
	_ = sink
}

// BenchmarkParseFrameChecksums adds the IPv4 and UDP checksum checks.
func BenchmarkParseFrameChecksums(b *testing.B) {
	frame := benchFrame(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		e, _ := ParseEthernet(frame)
		h, _ := ParseIPv4(e.Payload())
		u, err := ParseUDP(h.Payload())
		if err != nil || !h.ChecksumValid() || !u.ChecksumValid(h.Src(), h.Dst()) {
			b.Fatal("bad frame")
		}
	}
}

// BenchmarkEncodeFrame writes Ethernet, IPv4 and UDP headers (with both
// checksums) in front of 64 bytes of data.
func BenchmarkEncodeFrame(b *testing.B) {
	frame := benchFrame(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		if err := encodeUDPFrame(frame); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodeIPv4 writes one IPv4 header with its checksum.
func BenchmarkEncodeIPv4(b *testing.B) {
	buf := make([]byte, IPv4MinHeaderLen)
	f := IPv4Fields{TotalLength: 1500, ID: 7, TTL: 64, Protocol: ProtocolTCP, Src: hostIP, Dst: nsIP}
	b.ReportAllocs()
	for b.Loop() {
		if err := f.Encode(buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodeFragmentHeader writes the header of one fragment of a
// parsed datagram.
func BenchmarkEncodeFragmentHeader(b *testing.B) {
	frame := benchFrame(b)
	h, err := ParseIPv4(frame[EthernetHeaderLen:])
	if err != nil {
		b.Fatal(err)
	}
	h[ipv4OffFlagsFrag] = 0 // clear DF
	hdr := make([]byte, h.HeaderLength())
	b.ReportAllocs()
	for b.Loop() {
		if err := h.EncodeFragmentHeader(hdr, 16, 32, true); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSetTTL decrements the TTL with an incremental checksum update.
func BenchmarkSetTTL(b *testing.B) {
	frame := benchFrame(b)
	h, err := ParseIPv4(frame[EthernetHeaderLen:])
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		h.SetTTL(h.TTL() - 1)
	}
}

// BenchmarkOptions walks a header's options with the iterator.
func BenchmarkOptions(b *testing.B) {
	f := IPv4Fields{TotalLength: 32, TTL: 64, Protocol: ProtocolUDP, Src: hostIP, Dst: nsIP, Options: testOptions}
	buf := make([]byte, 32)
	if err := f.Encode(buf); err != nil {
		b.Fatal(err)
	}
	h, err := ParseIPv4(buf)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		for o := range h.Options().All() {
			n += len(o.Data)
		}
	}
	_ = n
}
