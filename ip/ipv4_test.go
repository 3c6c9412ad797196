package ip

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"reflect"
	"slices"
	"testing"
)

// Options for tests: router alert (copied), a NOP, record route (not
// copied) with room for one address, then EOL padding.
var testOptions = []byte{148, 4, 0, 0, 1, 7, 7, 4, 0, 0, 0, 0}

// buildIPv4 encodes f in front of payload and returns the datagram.
func buildIPv4(t *testing.T, f IPv4Fields, payload []byte) []byte {
	t.Helper()
	f.TotalLength = uint16(f.HeaderLen() + len(payload))
	buf := make([]byte, f.HeaderLen()+len(payload))
	copy(buf[f.HeaderLen():], payload)
	if err := f.Encode(buf); err != nil {
		t.Fatal(err)
	}
	return buf
}

func TestIPv4RoundTrip(t *testing.T) {
	payload := []byte("0123456789abcdef0123456789abcdef")
	for _, f := range []IPv4Fields{
		{TTL: 64, Protocol: ProtocolUDP, Src: hostIP, Dst: nsIP, ID: 0x1234, Flags: IPv4FlagDF},
		{TOS: 0xb9, TTL: 1, Protocol: ProtocolICMP, Src: nsIP, Dst: hostIP, ID: 0xffff,
			Flags: IPv4FlagMF, FragmentOffset: 0x1fff - 10},
		{TTL: 255, Protocol: ProtocolTCP, Src: hostIP, Dst: nsIP, Options: testOptions},
		{TTL: 64, Protocol: 253, Src: hostIP, Dst: nsIP, Options: []byte{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}},
		{TTL: 64, Protocol: ProtocolUDP, Src: hostIP, Dst: nsIP, Options: []byte{148, 4, 0, 0, 1}}, // padded to 8
	} {
		b := buildIPv4(t, f, payload)
		f.TotalLength = uint16(len(b))
		h, err := ParseIPv4(clone(b))
		if err != nil {
			t.Fatalf("%+v: %v", f, err)
		}
		got := IPv4Fields{TOS: h.TOS(), TotalLength: h.TotalLength(), ID: h.ID(), Flags: h.Flags(),
			FragmentOffset: h.FragmentOffset(), TTL: h.TTL(), Protocol: h.Protocol(), Src: h.Src(), Dst: h.Dst()}
		want := f
		want.Options = nil
		if !reflect.DeepEqual(got, want) {
			t.Errorf("got %+v, want %+v", got, want)
		}
		padded := append(slices.Clone(f.Options), make([]byte, f.HeaderLen()-IPv4MinHeaderLen-len(f.Options))...)
		if !bytes.Equal(h.Options(), padded) {
			t.Errorf("options %x, want %x", []byte(h.Options()), padded)
		}
		if h.Version() != 4 || h.HeaderLength() != f.HeaderLen() || int(h.IHL())*4 != f.HeaderLen() ||
			!bytes.Equal(h.Payload(), payload) || len(h.Header()) != f.HeaderLen() {
			t.Errorf("version %d IHL %d header length %d payload %q", h.Version(), h.IHL(), h.HeaderLength(), h.Payload())
		}
		if !h.ChecksumValid() || h.ComputeChecksum() != h.Checksum() {
			t.Errorf("checksum %#04x invalid, want %#04x", h.Checksum(), h.ComputeChecksum())
		}
		if h.DF() != (f.Flags&IPv4FlagDF != 0) || h.MF() != (f.Flags&IPv4FlagMF != 0) ||
			h.IsFragment() != (h.MF() || f.FragmentOffset != 0) ||
			h.FragmentOffsetBytes() != int(f.FragmentOffset)*8 {
			t.Errorf("DF %v MF %v fragment %v offset %d", h.DF(), h.MF(), h.IsFragment(), h.FragmentOffsetBytes())
		}
		if h.DSCP() != f.TOS>>2 || h.ECN() != f.TOS&3 {
			t.Errorf("DSCP %d ECN %d from TOS %#x", h.DSCP(), h.ECN(), f.TOS)
		}
	}
}

func TestIPv4Options(t *testing.T) {
	b := buildIPv4(t, IPv4Fields{TTL: 64, Protocol: ProtocolUDP, Src: hostIP, Dst: nsIP, Options: testOptions}, nil)
	h, err := ParseIPv4(b)
	if err != nil {
		t.Fatal(err)
	}
	var got []IPv4Option
	for o := range h.Options().All() {
		got = append(got, o)
	}
	want := []IPv4Option{
		{Type: IPv4OptionRouterAlert, Data: []byte{0, 0}},
		{Type: IPv4OptionNOP},
		{Type: IPv4OptionRecordRoute, Data: []byte{4, 0, 0, 0, 0}},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d options %+v, want %+v", len(got), got, want)
	}
	for i := range want {
		if got[i].Type != want[i].Type || !bytes.Equal(got[i].Data, want[i].Data) {
			t.Errorf("option %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
	if !IPv4OptionRouterAlert.Copied() || IPv4OptionRecordRoute.Copied() ||
		IPv4OptionTimestamp.Class() != 2 || IPv4OptionTimestamp.Number() != 4 || IPv4OptionLSRR.Number() != 3 {
		t.Error("option type bits misread")
	}
	// Breaking out of the loop stops the iteration.
	n := 0
	for range h.Options().All() {
		n++
		break
	}
	if n != 1 {
		t.Errorf("iterated %d times after break", n)
	}
	// Next on a malformed list (not from ParseIPv4) stops rather than panics.
	for _, o := range []IPv4Options{{7}, {7, 1}, {7, 9, 0}, {0, 7}} {
		if _, _, ok := o.Next(); ok {
			t.Errorf("Next(%x) succeeded", []byte(o))
		}
	}
}

func TestParseIPv4TrimsPadding(t *testing.T) {
	b := buildIPv4(t, IPv4Fields{TTL: 64, Protocol: ProtocolUDP, Src: hostIP, Dst: nsIP}, []byte{1, 2, 3})
	padded := append(slices.Clone(b), make([]byte, 23)...)
	h, err := ParseIPv4(padded)
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != len(b) || !bytes.Equal(h.Payload(), []byte{1, 2, 3}) {
		t.Errorf("view %d bytes, payload %x; want %d and 010203", len(h), h.Payload(), len(b))
	}
}

func TestParseIPv4Errors(t *testing.T) {
	valid := buildIPv4(t, IPv4Fields{TTL: 64, Protocol: ProtocolUDP, Src: hostIP, Dst: nsIP,
		Options: []byte{1, 148, 4, 0, 0, 1, 1, 1}}, []byte("payload!"))
	if _, err := ParseIPv4(valid); err != nil {
		t.Fatal(err)
	}
	with := func(off int, v ...byte) []byte {
		c := clone(valid)
		copy(c[off:], v)
		return c
	}
	for _, tc := range []struct {
		name  string
		b     []byte
		class error
		field string
		off   int
	}{
		{"short header", valid[:19], ErrTruncated, "header", 0},
		{"version 6", with(0, 0x67), ErrMalformed, "version", 0},
		{"version 0", with(0, 0x07), ErrMalformed, "version", 0},
		{"IHL 4", with(0, 0x44), ErrMalformed, "IHL", 0},
		{"IHL 0", with(0, 0x40), ErrMalformed, "IHL", 0},
		{"IHL beyond buffer", valid[:27], ErrTruncated, "IHL", 0},
		{"total length < header", with(2, 0, 27), ErrMalformed, "total length", 2},
		{"total length beyond buffer", with(2, 0, byte(len(valid)+1)), ErrTruncated, "total length", 2},
		{"option without length", with(20, 1, 1, 1, 1, 1, 1, 1, 148), ErrMalformed, "option length", 27},
		{"option length 1", with(21, 148, 1), ErrMalformed, "option length", 22},
		{"option length 0", with(21, 148, 0), ErrMalformed, "option length", 22},
		{"option overruns header", with(21, 148, 8), ErrMalformed, "option length", 22},
		{"fragment ends beyond 65535", with(6, 0x1f, 0xff), ErrMalformed, "fragment offset", 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := ParseIPv4(tc.b)
			if h != nil {
				t.Error("got a view with the error")
			}
			wantParseError(t, err, tc.class, LayerIPv4, tc.field, tc.off)
		})
	}
	// The limits themselves are accepted: option filling the header,
	// fragment ending exactly at 65535, total length equal to header.
	for _, b := range [][]byte{
		with(20, 148, 8),
		with(20, 0, 148, 1), // after EOL only padding, not parsed
		buildIPv4(t, IPv4Fields{Src: hostIP, Dst: nsIP, FragmentOffset: 8188}, make([]byte, 11)), // ends at 65535
		buildIPv4(t, IPv4Fields{Src: hostIP, Dst: nsIP, Options: testOptions}, nil),
	} {
		if _, err := ParseIPv4(b); err != nil {
			t.Errorf("limit case %x rejected: %v", b, err)
		}
	}
}

func TestIPv4Setters(t *testing.T) {
	h, err := ParseIPv4(buildIPv4(t, IPv4Fields{TTL: 64, ID: 7, Protocol: ProtocolUDP, Src: hostIP, Dst: nsIP,
		Options: testOptions}, []byte("x")))
	if err != nil {
		t.Fatal(err)
	}
	for _, ttl := range []uint8{63, 0, 255, 1} {
		h.SetTTL(ttl)
		if h.TTL() != ttl || !h.ChecksumValid() || h.Checksum() != h.ComputeChecksum() {
			t.Errorf("SetTTL(%d): TTL %d checksum %#04x, want %#04x", ttl, h.TTL(), h.Checksum(), h.ComputeChecksum())
		}
	}
	for _, id := range []uint16{0, 0xffff, 0x8000, 1} {
		h.SetID(id)
		if h.ID() != id || !h.ChecksumValid() {
			t.Errorf("SetID(%#x): ID %#x checksum %#04x, want %#04x", id, h.ID(), h.Checksum(), h.ComputeChecksum())
		}
	}
	h.SetChecksum(0)
	if h.ChecksumValid() {
		t.Error("zero checksum valid")
	}
}

func TestIPv4EncodeFragmentHeader(t *testing.T) {
	payload := make([]byte, 100)
	for i := range payload {
		payload[i] = byte(i)
	}
	orig := buildIPv4(t, IPv4Fields{TTL: 64, ID: 0xabcd, Protocol: ProtocolUDP, Src: hostIP, Dst: nsIP,
		Options: testOptions}, payload)
	h, err := ParseIPv4(orig)
	if err != nil {
		t.Fatal(err)
	}
	hl := h.HeaderLength()
	var reassembled []byte
	for off := 0; off < len(payload); off += 40 {
		n := min(40, len(payload)-off)
		more := off+n < len(payload)
		frag := make([]byte, hl+n)
		copy(frag[hl:], payload[off:off+n])
		if err := h.EncodeFragmentHeader(frag, off, n, more); err != nil {
			t.Fatal(err)
		}
		f, err := ParseIPv4(frag)
		if err != nil {
			t.Fatalf("fragment at %d: %v", off, err)
		}
		if !f.ChecksumValid() || f.MF() != more || f.FragmentOffsetBytes() != off || int(f.TotalLength()) != hl+n ||
			f.ID() != h.ID() || f.Src() != h.Src() || f.Dst() != h.Dst() || f.Protocol() != h.Protocol() || f.TTL() != h.TTL() {
			t.Errorf("fragment at %d: checksum ok %v MF %v offset %d length %d id %#x", off,
				f.ChecksumValid(), f.MF(), f.FragmentOffsetBytes(), f.TotalLength(), f.ID())
		}
		var types []IPv4OptionType
		for o := range f.Options().All() {
			types = append(types, o.Type)
		}
		want := []IPv4OptionType{IPv4OptionRouterAlert, IPv4OptionNOP, IPv4OptionRecordRoute}
		if off > 0 {
			// The record route option (not copied) turns into NOPs.
			want = []IPv4OptionType{IPv4OptionRouterAlert, 1, 1, 1, 1, 1, 1, 1, 1}
		}
		if !slices.Equal(types, want) {
			t.Errorf("fragment at %d: options %v, want %v", off, types, want)
		}
		reassembled = append(reassembled, f.Payload()...)
	}
	if !bytes.Equal(reassembled, payload) {
		t.Errorf("reassembled %x", reassembled)
	}
	// A fragment of a fragment keeps MF and adds the offsets.
	buf := make([]byte, hl)
	if err := h.EncodeFragmentHeader(buf, 0, 48, true); err != nil {
		t.Fatal(err)
	}
	binary.BigEndian.PutUint16(buf[2:], uint16(hl+100)) // pretend it is whole
	buf = append(buf, payload...)
	f1, err := ParseIPv4(buf)
	if err != nil {
		t.Fatal(err)
	}
	sub := make([]byte, hl)
	if err := f1.EncodeFragmentHeader(sub, 16, 8, false); err != nil {
		t.Fatal(err)
	}
	f2 := IPv4(sub)
	if !f2.MF() || f2.FragmentOffsetBytes() != 16 || !f2.ChecksumValid() {
		t.Errorf("sub-fragment MF %v offset %d", f2.MF(), f2.FragmentOffsetBytes())
	}

	// Misuse.
	wantFieldError(t, h.EncodeFragmentHeader(make([]byte, hl-1), 0, 8, true), ErrShortBuffer)
	for _, c := range []struct{ off, n int }{{-8, 8}, {0, -1}, {96, 8}, {4, 8}, {0, 12}} {
		wantFieldError(t, h.EncodeFragmentHeader(make([]byte, hl), c.off, c.n, true), ErrInvalidField)
	}
	df, err := ParseIPv4(buildIPv4(t, IPv4Fields{Flags: IPv4FlagDF, Src: hostIP, Dst: nsIP}, payload))
	if err != nil {
		t.Fatal(err)
	}
	wantFieldError(t, df.EncodeFragmentHeader(make([]byte, 20), 0, 8, true), ErrInvalidField)
	// A view converted without ParseIPv4 (as a quoted datagram may be) can
	// claim an offset whose fragments would end beyond 65535.
	far := IPv4(buildIPv4(t, IPv4Fields{Flags: IPv4FlagMF, FragmentOffset: 8180, Src: hostIP, Dst: nsIP}, payload))
	wantFieldError(t, far.EncodeFragmentHeader(make([]byte, 20), 80, 16, true), ErrInvalidField)
}

func TestIPv4EncodeErrors(t *testing.T) {
	ok := IPv4Fields{TotalLength: 20, Src: hostIP, Dst: nsIP}
	if err := ok.Encode(make([]byte, 20)); err != nil {
		t.Fatal(err)
	}
	wantFieldError(t, ok.Encode(make([]byte, 19)), ErrShortBuffer)
	for name, mod := range map[string]func(*IPv4Fields){
		"IPv6 source":        func(f *IPv4Fields) { f.Src = netip.MustParseAddr("::1") },
		"zero destination":   func(f *IPv4Fields) { f.Dst = netip.Addr{} },
		"options too long":   func(f *IPv4Fields) { f.Options = make([]byte, 41); f.TotalLength = 64 },
		"options malformed":  func(f *IPv4Fields) { f.Options = []byte{148, 1, 0, 0}; f.TotalLength = 24 },
		"total < header":     func(f *IPv4Fields) { f.TotalLength = 19 },
		"flags out of range": func(f *IPv4Fields) { f.Flags = 8 },
		"offset too large":   func(f *IPv4Fields) { f.FragmentOffset = 0x2000 },
	} {
		f := ok
		mod(&f)
		buf := make([]byte, 64)
		if err := f.Encode(buf); err == nil {
			t.Errorf("%s: no error", name)
		} else {
			wantFieldError(t, err, ErrInvalidField)
		}
		if !bytes.Equal(buf, make([]byte, 64)) {
			t.Errorf("%s: failed Encode wrote %x", name, buf)
		}
	}
}

func TestStrings(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{ProtocolTCP.String(), "TCP"}, {Protocol(99).String(), "protocol(99)"},
		{ICMPv4Echo.String(), "echo"}, {ICMPv4Type(99).String(), "type(99)"},
		{ARPReply.String(), "reply"}, {LayerUDP.String(), "udp"}, {Layer(0).String(), "layer(0)"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}
