package tcp

import (
	"bytes"
	"errors"
	"testing"
)

// checkParseError asserts what every parse error promises: a *ParseError of
// one class, naming a field at an offset inside the largest header.
func checkParseError(t *testing.T, err error) {
	t.Helper()
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("error %v is a %T, not a *ParseError", err, err)
	}
	classes := 0
	for _, c := range []error{ErrTruncated, ErrMalformed, ErrBadOption} {
		if errors.Is(err, c) {
			classes++
		}
	}
	if classes != 1 || pe.Field == "" || pe.Reason == "" || pe.Offset < 0 || pe.Offset > HeaderMaxLen {
		t.Fatalf("malformed error %+v", pe)
	}
}

func FuzzParseHeader(f *testing.F) {
	for _, c := range readCapture(f, tcpPcap) {
		f.Add(c.seg)
	}
	f.Add(fixed(5))
	f.Add(fixed(6, optMSS, 4, 5))
	f.Add(fixed(15, bytes.Repeat([]byte{optNOP}, 40)...))
	f.Add(fixed(8, 1, 1, optSACK, 10, 0, 0, 0, 1, 0, 0, 0, 2))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHeader(b)
		if err != nil {
			checkParseError(t, err)
			return
		}
		// Every accessor must be safe now.
		_, _, _, _ = h.SrcPort(), h.DstPort(), h.SeqNum(), h.AckNum()
		_, _, _, _ = h.Flags(), h.Window(), h.Checksum(), h.UrgentPtr()
		_ = h.ChecksumValid(0)
		_ = h.String()
		hl := h.HeaderLen()
		if hl < HeaderMinLen || hl > HeaderMaxLen || hl > len(b) || int(h.DataOffset())*4 != hl {
			t.Fatalf("header length %d of a %d-byte segment", hl, len(b))
		}
		if HeaderMinLen+len(h.Options())+len(h.Payload()) != len(b) {
			t.Fatalf("%d option and %d payload bytes in a %d-byte segment", len(h.Options()), len(h.Payload()), len(b))
		}
		o, err := ParseOptions(h.Options())
		if err != nil {
			t.Fatalf("ParseHeader accepted options ParseOptions rejects: %v", err)
		}
		if d := h.DecodeOptions(); d != o {
			t.Fatalf("DecodeOptions %+v, ParseOptions %+v", d, o)
		}
		_ = o.String()

		// Re-encoding the fields with the raw options gives back the header,
		// but for the checksum and the reserved bits Encode always clears.
		fields := HeaderFields{
			SrcPort: h.SrcPort(), DstPort: h.DstPort(), SeqNum: h.SeqNum(), AckNum: h.AckNum(),
			Flags: h.Flags(), Window: h.Window(), UrgentPtr: h.UrgentPtr(), RawOptions: h.Options(),
		}
		out := make([]byte, hl)
		if n, err := fields.EncodePartial(out, h.Checksum()); err != nil || n != hl {
			t.Fatalf("EncodePartial = %d, %v; want %d", n, err, hl)
		}
		want := bytes.Clone(b[:hl])
		want[dataOffOff] &^= 0x0f
		if !bytes.Equal(out, want) {
			t.Fatalf("re-encoded\n% x\nwant\n% x", out, want)
		}
	})
}

func FuzzParseOptions(f *testing.F) {
	for _, c := range readCapture(f, tcpPcap) {
		if h, err := ParseHeader(c.seg); err == nil {
			f.Add([]byte(h.Options()))
		}
	}
	f.Add([]byte{})
	f.Add([]byte{1, 1, optSACK, 34, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4,
		0, 0, 0, 5, 0, 0, 0, 6, 0, 0, 0, 7, 0, 0, 0, 8})
	f.Add([]byte{optTimestamps, 10, 0, 0, 0, 1, 0, 0, 0, 2, optSACK, 26,
		0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 5, 0, 0, 0, 6, optWindowScale, 3, 20})
	f.Add([]byte{optMSS, 3, 5, optMSS, 4, 1, 0, 0xfe, 2, optEnd})
	f.Add([]byte{optWindowScale, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := ParseOptions(b)
		if err != nil {
			checkParseError(t, err)
			if o != (Options{}) {
				t.Fatalf("options %+v returned with error %v", o, err)
			}
			return
		}
		if o.NumSACK < 0 || o.NumSACK > MaxSACKBlocks || o.WindowScale > MaxWindowScale {
			t.Fatalf("out-of-range options %+v", o)
		}
		n := o.EncodedLen()
		if n%4 != 0 || n > MaxOptionsLen {
			t.Fatalf("EncodedLen %d", n)
		}
		enc := make([]byte, n)
		if m, err := o.Encode(enc); err != nil || m != n {
			t.Fatalf("Encode = %d, %v; want %d", m, err, n)
		}
		got, err := ParseOptions(enc)
		if err != nil {
			t.Fatalf("our encoding % x of %+v does not parse: %v", enc, o, err)
		}
		// All must survive, except SACK blocks that do not fit beside the
		// other options, which Encode leaves out from the end.
		k := got.NumSACK
		if k > o.NumSACK || got.SACKBlocks != withSACK(o, k).SACKBlocks {
			t.Fatalf("SACK blocks %v came back as %v", o.SACK(), got.SACK())
		}
		if k < o.NumSACK {
			room := MaxOptionsLen - n
			if k == 0 {
				room -= 4 // the SACK option's NOP, NOP, kind, length
			}
			if room >= lenSACKBlock {
				t.Fatalf("%d of %d SACK blocks encoded, with room for another (% x)", k, o.NumSACK, enc)
			}
		}
		if withSACK(got, 0) != withSACK(o, 0) {
			t.Fatalf("options %+v came back as %+v", o, got)
		}
		// Encoding what we parsed from our own encoding is a fixed point.
		again := make([]byte, MaxOptionsLen)
		if m, _ := got.Encode(again); !bytes.Equal(again[:m], enc) {
			t.Fatalf("encoding is not stable:\n% x\n% x", enc, again[:m])
		}
	})
}

// withSACK returns o keeping only its first k SACK blocks.
func withSACK(o Options, k int) Options {
	for i := k; i < MaxSACKBlocks; i++ {
		o.SACKBlocks[i] = SACKBlock{}
	}
	o.NumSACK = min(o.NumSACK, k)
	return o
}
