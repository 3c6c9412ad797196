package tcp

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/tapstack/tapstack/checksum"
	"github.com/tapstack/tapstack/tcp/seq"
)

// unhex decodes a hex dump, ignoring spaces.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A SYN Linux sent, from testdata/pcap/tcp.pcap; the expected values are
// tcpdump's reading of it:
// 10.99.0.1.47714 > 10.99.0.2.9001: Flags [S], seq 2374725698, win 64240,
// options [mss 1460,sackOK,TS val 154858459 ecr 0,nop,wscale 10], length 0
const linuxSYN = "ba62 2329 8d8b 7042 0000 0000 a002 faf0 5fd4 0000" +
	"0204 05b4 0402 080a 093a f3db 0000 0000 0103 030a"

var (
	host = [4]byte{10, 99, 0, 1}
	peer = [4]byte{10, 99, 0, 2}
)

func TestParseHeaderLinuxSYN(t *testing.T) {
	h, err := ParseHeader(unhex(t, linuxSYN))
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"SrcPort", h.SrcPort(), uint16(47714)},
		{"DstPort", h.DstPort(), uint16(9001)},
		{"SeqNum", h.SeqNum(), seq.Value(2374725698)},
		{"AckNum", h.AckNum(), seq.Value(0)},
		{"DataOffset", h.DataOffset(), uint8(10)},
		{"HeaderLen", h.HeaderLen(), 40},
		{"Flags", h.Flags(), SYN},
		{"Window", h.Window(), uint16(64240)},
		{"Checksum", h.Checksum(), uint16(0x5fd4)},
		{"UrgentPtr", h.UrgentPtr(), uint16(0)},
		{"len(Options)", len(h.Options()), 20},
		{"len(Payload)", len(h.Payload()), 0},
		{"DecodeOptions", h.DecodeOptions(), Options{
			MSS: 1460, HasMSS: true, SACKPermitted: true,
			HasTimestamps: true, TSVal: 154858459, TSEcr: 0,
			WindowScale: 10, HasWindowScale: true,
		}},
		{"String", h.String(), "47714 > 9001 SYN seq=2374725698 ack=0 win=64240 len=0"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if !h.ChecksumValid(checksum.PseudoHeaderV4(host, peer, 6, uint16(len(h)))) {
		t.Error("checksum of Linux's SYN is not valid")
	}
	// The same segment between other addresses, or with one bit flipped, is not.
	if h.ChecksumValid(checksum.PseudoHeaderV4(host, [4]byte{10, 99, 0, 3}, 6, uint16(len(h)))) {
		t.Error("checksum valid under the wrong pseudo-header")
	}
	bad := bytes.Clone(h)
	bad[len(bad)-1] ^= 1
	if Header(bad).ChecksumValid(checksum.PseudoHeaderV4(host, peer, 6, uint16(len(h)))) {
		t.Error("checksum valid after a bit flip")
	}
}

// fixed returns a 20-byte header with the given data offset, followed by rest.
func fixed(doff uint8, rest ...byte) []byte {
	b := make([]byte, HeaderMinLen, HeaderMinLen+len(rest))
	b[dataOffOff] = doff << 4
	return append(b, rest...)
}

func TestParseHeaderRejects(t *testing.T) {
	tests := []struct {
		name   string
		b      []byte
		class  error
		field  string
		offset int
	}{
		{"empty", nil, ErrTruncated, "header", 0},
		{"19 bytes", make([]byte, 19), ErrTruncated, "header", 19},
		{"data offset 0", fixed(0), ErrMalformed, "Data Offset", 12},
		{"data offset 4", fixed(4, make([]byte, 40)...), ErrMalformed, "Data Offset", 12},
		{"data offset 6, 20 bytes", fixed(6), ErrTruncated, "Data Offset", 12},
		{"data offset 15, 59 bytes", fixed(15, make([]byte, 39)...), ErrTruncated, "Data Offset", 12},
		{"kind with no length", fixed(6, 1, 1, 1, optMSS), ErrBadOption, "option-length", 24},
		{"length 0", fixed(6, optWindowScale, 0, 0, 0), ErrBadOption, "option-length", 21},
		{"length 1", fixed(6, 1, optTimestamps, 1, 0), ErrBadOption, "option-length", 22},
		{"unknown length 1", fixed(6, 0xfe, 1, 0, 0), ErrBadOption, "option-length", 21},
		{"past the area", fixed(6, 1, optTimestamps, 10, 0), ErrBadOption, "option-length", 22},
		{"past the area after MSS", fixed(7, optMSS, 4, 5, 0xb4, optTimestamps, 10, 0, 0), ErrBadOption, "option-length", 25},
		{"unknown past the area", fixed(6, 0xfe, 5, 0, 0), ErrBadOption, "option-length", 21},
		{
			"past the area, payload follows", // the payload is not part of the option area
			fixed(6, optTimestamps, 10, 0, 0, 0, 0, 0, 0, 0, 0), ErrBadOption, "option-length", 21,
		},
		{"SACK of 42 bytes", fixed(15, append([]byte{optSACK, 42}, make([]byte, 38)...)...), ErrBadOption, "option-length", 21},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := ParseHeader(tt.b)
			if err == nil {
				t.Fatalf("ParseHeader accepted it: %v", h)
			}
			if h != nil {
				t.Errorf("ParseHeader returned a header with its error")
			}
			if !errors.Is(err, tt.class) {
				t.Errorf("error %q is not %q", err, tt.class)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %q is a %T, not a *ParseError", err, err)
			}
			if pe.Field != tt.field || pe.Offset != tt.offset {
				t.Errorf("error names %s at %d, want %s at %d (%v)", pe.Field, pe.Offset, tt.field, tt.offset, err)
			}
			if !strings.Contains(err.Error(), tt.field) {
				t.Errorf("message %q does not name the field", err)
			}
		})
	}
}

func TestParseHeaderAccepts(t *testing.T) {
	tests := []struct {
		name      string
		b         []byte
		headerLen int
		payload   int
	}{
		{"bare header", fixed(5), 20, 0},
		{"bare header with payload", fixed(5, 1, 2, 3), 20, 3},
		{"data offset 15", fixed(15, make([]byte, 40)...), 60, 0},
		{"option area of NOPs", fixed(6, 1, 1, 1, 1, 0xaa), 24, 1},
		{"EOL then garbage", fixed(6, optEnd, 0xff, 0xff, 0xff), 24, 0},
		{"wrong-length MSS", fixed(6, optMSS, 3, 5, 1), 24, 0},
		{"reserved bits and AE set", func() []byte { b := fixed(5); b[dataOffOff] |= 0x0f; return b }(), 20, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := ParseHeader(tt.b)
			if err != nil {
				t.Fatal(err)
			}
			if h.HeaderLen() != tt.headerLen || len(h.Payload()) != tt.payload {
				t.Errorf("header %d bytes, payload %d; want %d and %d", h.HeaderLen(), len(h.Payload()), tt.headerLen, tt.payload)
			}
			if len(h.Options()) != tt.headerLen-HeaderMinLen {
				t.Errorf("%d option bytes, want %d", len(h.Options()), tt.headerLen-HeaderMinLen)
			}
		})
	}
}

func TestFlags(t *testing.T) {
	tests := []struct {
		f    Flags
		want string
	}{
		{0, "none"},
		{SYN, "SYN"},
		{SYN | ACK, "SYN|ACK"},
		{FIN | PSH | ACK, "FIN|PSH|ACK"},
		{RST | ACK, "RST|ACK"},
		{URG | ECE | CWR, "URG|ECE|CWR"},
		{0xff, "FIN|SYN|RST|PSH|ACK|URG|ECE|CWR"},
	}
	for _, tt := range tests {
		if got := tt.f.String(); got != tt.want {
			t.Errorf("Flags(%#x).String() = %q, want %q", uint8(tt.f), got, tt.want)
		}
	}
	// Bit values are the wire's (RFC 9293 §3.1, RFC 3168 §6.1).
	for i, f := range []Flags{FIN, SYN, RST, PSH, ACK, URG, ECE, CWR} {
		if uint8(f) != 1<<i {
			t.Errorf("%v = %#x, want %#x", f, uint8(f), 1<<i)
		}
	}
	f := SYN | ACK
	if !f.Contains(SYN) || !f.Contains(SYN|ACK) || f.Contains(SYN|FIN) {
		t.Error("Contains")
	}
	if !f.Intersects(SYN|FIN) || f.Intersects(FIN|RST) {
		t.Error("Intersects")
	}
}

// payloadOf returns n bytes of a recognisable pattern.
func payloadOf(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i % 251)
	}
	return p
}

func TestEncodeRoundTrip(t *testing.T) {
	fields := []HeaderFields{
		{SrcPort: 1, DstPort: 2},
		{
			SrcPort: 47714, DstPort: 9001, SeqNum: 0xfffffffe, AckNum: 7,
			Flags: SYN | ACK | ECE, Window: 65535, UrgentPtr: 3,
			Options: Options{
				HasMSS: true, MSS: 1460, SACKPermitted: true,
				HasTimestamps: true, TSVal: 1, TSEcr: 0xffffffff,
				HasWindowScale: true, WindowScale: 7,
			},
		},
		{
			SrcPort: 80, DstPort: 65535, SeqNum: 1, AckNum: 2, Flags: ACK | PSH | FIN | URG | CWR, Window: 1,
			Options: Options{
				HasTimestamps: true, TSVal: 5, TSEcr: 6, NumSACK: 3,
				SACKBlocks: [MaxSACKBlocks]SACKBlock{{10, 20}, {30, 40}, {0xfffffff0, 8}},
			},
		},
		{SrcPort: 9, DstPort: 10, Flags: RST, RawOptions: []byte{0xfe, 6, 1, 2, 3, 4, optNOP, optEnd}},
	}
	for _, f := range fields {
		for _, plen := range []int{0, 1, 2, 1459, 1460} {
			payload := payloadOf(plen)
			hl := f.HeaderLen()
			buf := make([]byte, 64+hl+plen)
			off := len(buf) - plen
			copy(buf[off:], payload)
			seg := buf[off-hl:]
			pseudo := checksum.PseudoHeaderV4(host, peer, 6, uint16(len(seg)))
			n, err := f.Encode(seg, pseudo, checksum.Sum(payload, 0))
			if err != nil || n != hl {
				t.Fatalf("Encode(%+v) = %d, %v; want %d", f, n, err, hl)
			}
			h, err := ParseHeader(seg)
			if err != nil {
				t.Fatalf("ParseHeader(Encode(%+v)): %v", f, err)
			}
			type fixedFields struct {
				src, dst uint16
				seq, ack seq.Value
				flags    Flags
				win, urg uint16
			}
			got := fixedFields{h.SrcPort(), h.DstPort(), h.SeqNum(), h.AckNum(), h.Flags(), h.Window(), h.UrgentPtr()}
			want := fixedFields{f.SrcPort, f.DstPort, f.SeqNum, f.AckNum, f.Flags, f.Window, f.UrgentPtr}
			if got != want {
				t.Errorf("fields %+v came back as %+v", want, got)
			}
			if f.RawOptions != nil {
				if !bytes.Equal(h.Options(), f.RawOptions) {
					t.Errorf("raw options % x came back as % x", f.RawOptions, h.Options())
				}
			} else if o := h.DecodeOptions(); o != f.Options {
				t.Errorf("options %v came back as %v", f.Options, o)
			}
			if !bytes.Equal(h.Payload(), payload) {
				t.Errorf("payload changed")
			}
			if !h.ChecksumValid(pseudo) {
				t.Errorf("checksum of %v with %d-byte payload is not valid", h, plen)
			}
			// The checksum is the one computed over the whole segment at once.
			if c := ^checksum.Sum(h[ChecksumOffset+2:], checksum.Sum(h[:ChecksumOffset], pseudo)); h.Checksum() != c {
				t.Errorf("checksum %#04x, want %#04x", h.Checksum(), c)
			}
			// Partial checksum for offload: the device completes it.
			n, err = f.EncodePartial(seg, pseudo)
			if err != nil || n != hl {
				t.Fatalf("EncodePartial = %d, %v", n, err)
			}
			if h.Checksum() != pseudo {
				t.Errorf("partial checksum %#04x, want the pseudo-header sum %#04x", h.Checksum(), pseudo)
			}
			binaryPut16(h[ChecksumOffset:], ^checksum.Sum(h, 0))
			if !h.ChecksumValid(pseudo) {
				t.Errorf("offload completion of the partial checksum is not valid")
			}
		}
	}
}

func binaryPut16(b []byte, v uint16) { b[0], b[1] = byte(v>>8), byte(v) }

// Encode leaves every byte outside the header alone: headroom before it and
// the payload after it.
func TestEncodeTouchesOnlyTheHeader(t *testing.T) {
	f := HeaderFields{SrcPort: 1, DstPort: 2, Flags: ACK, Options: Options{HasTimestamps: true, TSVal: 9}}
	buf := bytes.Repeat([]byte{0xa5}, 100)
	n, err := f.Encode(buf[10:], 0x1234, 0x5678)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range buf {
		if (i < 10 || i >= 10+n) && c != 0xa5 {
			t.Fatalf("byte %d outside the %d-byte header at 10 changed to %#x", i, n, c)
		}
	}
}

func TestEncodeErrors(t *testing.T) {
	full := Options{HasMSS: true, MSS: 1, HasTimestamps: true}
	tests := []struct {
		name string
		f    HeaderFields
		blen int
		want error
	}{
		{"no room for the fixed header", HeaderFields{}, 19, ErrShortBuffer},
		{"no room for options", HeaderFields{Options: full}, 35, ErrShortBuffer},
		{"no room for raw options", HeaderFields{RawOptions: make([]byte, 8)}, 27, ErrShortBuffer},
		{"raw options not whole words", HeaderFields{RawOptions: []byte{1, 1, 1}}, 60, ErrRawOptions},
		{"raw options over 40 bytes", HeaderFields{RawOptions: make([]byte, 44)}, 100, ErrRawOptions},
		{"raw options and Options", HeaderFields{RawOptions: []byte{1, 1, 1, 1}, Options: full}, 60, ErrRawOptions},
	}
	for _, tt := range tests {
		b := bytes.Repeat([]byte{0xa5}, tt.blen)
		if n, err := tt.f.Encode(b, 0, 0); !errors.Is(err, tt.want) || n != 0 {
			t.Errorf("%s: Encode = %d, %v; want 0, %v", tt.name, n, err, tt.want)
		}
		if n, err := tt.f.EncodePartial(b, 0); !errors.Is(err, tt.want) || n != 0 {
			t.Errorf("%s: EncodePartial = %d, %v; want 0, %v", tt.name, n, err, tt.want)
		}
		if !bytes.Equal(b, bytes.Repeat([]byte{0xa5}, tt.blen)) {
			t.Errorf("%s: a failed Encode wrote to the buffer", tt.name)
		}
	}
}

func TestZeroAllocs(t *testing.T) {
	seg := unhex(t, linuxSYN)
	bad := fixed(6, 1, optTimestamps, 10, 0)
	f := HeaderFields{SrcPort: 1, DstPort: 2, Flags: ACK, Options: Options{HasTimestamps: true, NumSACK: 1}}
	out := make([]byte, 60)
	for name, fn := range map[string]func(){
		"ParseHeader":   func() { ParseHeader(seg) },
		"DecodeOptions": func() { Header(seg).DecodeOptions() },
		"ParseOptions":  func() { ParseOptions(Header(seg).Options()) },
		"rejection":     func() { ParseHeader(bad) },
		"Encode":        func() { f.Encode(out, 1, 2) },
		"Options.Encode": func() {
			o := f.Options
			o.Encode(out)
		},
	} {
		if n := testing.AllocsPerRun(100, fn); n != 0 {
			t.Errorf("%s: %v allocs, want 0", name, n)
		}
	}
}

func ExampleHeaderFields_Encode() {
	// A payload already placed in a buffer, with headroom in front of it.
	buf := make([]byte, 128)
	payloadOff, payload := 100, []byte("hello")
	copy(buf[payloadOff:], payload)

	f := HeaderFields{SrcPort: 40000, DstPort: 80, SeqNum: 1, AckNum: 1, Flags: PSH | ACK, Window: 502,
		Options: Options{HasTimestamps: true, TSVal: 100, TSEcr: 200}}
	hl := f.HeaderLen()
	seg := buf[payloadOff-hl : payloadOff+len(payload)]
	pseudo := checksum.PseudoHeaderV4([4]byte{10, 0, 0, 1}, [4]byte{10, 0, 0, 2}, 6, uint16(len(seg)))
	if _, err := f.Encode(seg, pseudo, checksum.Sum(payload, 0)); err != nil {
		panic(err)
	}

	h, err := ParseHeader(seg)
	if err != nil {
		panic(err)
	}
	fmt.Println(h)
	fmt.Println(h.DecodeOptions())
	fmt.Println(h.ChecksumValid(pseudo))
	// Output:
	// 40000 > 80 PSH|ACK seq=1 ack=1 win=502 len=5
	// TS val 100 ecr 200
	// true
}
