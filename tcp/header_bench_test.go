package tcp

import (
	"testing"

	"github.com/tapstack/tapstack/checksum"
)

// sackOptions is what a data segment from a receiver with holes carries:
// timestamps and three SACK blocks, the full 40 bytes.
var sackOptions = Options{
	HasTimestamps: true, TSVal: 0x01020304, TSEcr: 0x05060708,
	NumSACK: 3, SACKBlocks: [MaxSACKBlocks]SACKBlock{{1000, 2000}, {3000, 4000}, {5000, 6000}},
}

func BenchmarkParseHeader(b *testing.B) {
	f := HeaderFields{SrcPort: 9001, DstPort: 47714, SeqNum: 1, AckNum: 2, Flags: ACK, Window: 512, Options: sackOptions}
	seg := make([]byte, f.HeaderLen())
	if _, err := f.Encode(seg, 0, 0); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(seg)))
	for b.Loop() {
		h, err := ParseHeader(seg)
		if err != nil {
			b.Fatal(err)
		}
		if o := h.DecodeOptions(); o.NumSACK != 3 {
			b.Fatal(o)
		}
	}
}

func BenchmarkParseHeaderReject(b *testing.B) {
	seg := fixed(15, append([]byte{optSACK, 42}, make([]byte, 38)...)...)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseHeader(seg); err == nil {
			b.Fatal("accepted")
		}
	}
}

func BenchmarkChecksumValid1460(b *testing.B) {
	f := HeaderFields{SrcPort: 9001, DstPort: 47714, Flags: ACK, Options: Options{HasTimestamps: true}}
	seg := make([]byte, f.HeaderLen()+1460)
	copy(seg[f.HeaderLen():], payloadOf(1460))
	pseudo := checksum.PseudoHeaderV4(host, peer, 6, uint16(len(seg)))
	if _, err := f.Encode(seg, pseudo, checksum.Sum(seg[f.HeaderLen():], 0)); err != nil {
		b.Fatal(err)
	}
	h, _ := ParseHeader(seg)
	b.ReportAllocs()
	b.SetBytes(int64(len(seg)))
	for b.Loop() {
		if !h.ChecksumValid(pseudo) {
			b.Fatal("invalid")
		}
	}
}

// BenchmarkEncodeHeader1460 writes a header with timestamps and SACK in front
// of a 1460-byte payload, summing the payload as a sender that has not yet
// done so must.
func BenchmarkEncodeHeader1460(b *testing.B) {
	benchmarkEncode(b, false)
}

// BenchmarkEncodeHeaderPayloadSum is the same with the payload's sum already
// known (from the copy into the send buffer): only the header is read.
func BenchmarkEncodeHeaderPayloadSum(b *testing.B) {
	benchmarkEncode(b, true)
}

func benchmarkEncode(b *testing.B, known bool) {
	f := HeaderFields{SrcPort: 9001, DstPort: 47714, SeqNum: 1, AckNum: 2, Flags: ACK | PSH, Window: 512, Options: sackOptions}
	hl := f.HeaderLen()
	buf := make([]byte, 128+1460)
	payload := buf[128:]
	copy(payload, payloadOf(1460))
	seg := buf[128-hl:]
	pseudo := checksum.PseudoHeaderV4(host, peer, 6, uint16(len(seg)))
	sum := checksum.Sum(payload, 0)
	b.ReportAllocs()
	b.SetBytes(int64(len(seg)))
	for b.Loop() {
		s := sum
		if !known {
			s = checksum.Sum(payload, 0)
		}
		if _, err := f.Encode(seg, pseudo, s); err != nil {
			b.Fatal(err)
		}
	}
	if !Header(seg).ChecksumValid(pseudo) {
		b.Fatal("invalid checksum")
	}
}
