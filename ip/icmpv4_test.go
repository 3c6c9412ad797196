package ip

import (
	"bytes"
	"net/netip"
	"testing"
)

func buildICMPv4(t *testing.T, f ICMPv4Fields, body []byte) []byte {
	t.Helper()
	msg := make([]byte, ICMPv4HeaderLen+len(body))
	copy(msg[ICMPv4HeaderLen:], body)
	if err := f.Encode(msg); err != nil {
		t.Fatal(err)
	}
	return msg
}

func TestICMPv4Echo(t *testing.T) {
	data := []byte("abcdefghijklmnopqrstuvwxyz") // even and odd lengths below
	for _, typ := range []ICMPv4Type{ICMPv4Echo, ICMPv4EchoReply} {
		for _, n := range []int{0, 1, 25, 26} {
			m, err := ParseICMPv4(clone(buildICMPv4(t, ICMPv4Fields{Type: typ, ID: 0x229c, Seq: 3}, data[:n])))
			if err != nil {
				t.Fatal(err)
			}
			if m.Type() != typ || m.Code() != 0 || m.ID() != 0x229c || m.Seq() != 3 ||
				!bytes.Equal(m.Payload(), data[:n]) || m.RestOfHeader() != 0x229c0003 {
				t.Errorf("%v: type %v code %d id %#x seq %d payload %q", typ, m.Type(), m.Code(), m.ID(), m.Seq(), m.Payload())
			}
			if !m.ChecksumValid() {
				t.Errorf("%v with %d bytes: checksum %#04x invalid", typ, n, m.Checksum())
			}
			m[len(m)-1] ^= 0x40
			if m.ChecksumValid() && n > 0 {
				t.Errorf("%v: corrupted message passes the checksum", typ)
			}
			if _, err := m.OriginalDatagram(); err == nil {
				t.Errorf("%v: OriginalDatagram succeeded", typ)
			} else {
				wantParseError(t, err, ErrUnsupported, LayerICMPv4, "type", 0)
			}
		}
	}
}

func TestICMPv4Errors(t *testing.T) {
	// A UDP datagram with options, as it would be quoted: header and the
	// first 8 bytes of its payload.
	orig := buildIPv4(t, IPv4Fields{TTL: 1, ID: 99, Protocol: ProtocolUDP, Src: hostIP, Dst: nsIP,
		Options: []byte{148, 4, 0, 0}}, []byte("\x9c\x40\x23\x28\x00\x10\xab\xcdpayload"))
	quoted := orig[:24+8]
	for _, f := range []ICMPv4Fields{
		{Type: ICMPv4DestinationUnreachable, Code: ICMPv4PortUnreachable},
		{Type: ICMPv4DestinationUnreachable, Code: ICMPv4FragmentationNeeded, NextHopMTU: 1280},
		{Type: ICMPv4TimeExceeded, Code: ICMPv4TTLExceeded},
		{Type: ICMPv4ParameterProblem, Code: ICMPv4PointerIndicatesError, Pointer: 20},
		{Type: ICMPv4Redirect, Code: ICMPv4RedirectHost, Gateway: netip.MustParseAddr("10.99.0.254")},
		{Type: ICMPv4SourceQuench},
	} {
		m, err := ParseICMPv4(clone(buildICMPv4(t, f, quoted)))
		if err != nil {
			t.Fatal(err)
		}
		got := ICMPv4Fields{Type: m.Type(), Code: m.Code()}
		switch f.Type {
		case ICMPv4DestinationUnreachable:
			if f.Code == ICMPv4FragmentationNeeded {
				got.NextHopMTU = m.NextHopMTU()
			}
		case ICMPv4ParameterProblem:
			got.Pointer = m.Pointer()
		case ICMPv4Redirect:
			got.Gateway = m.Gateway()
		}
		if got != f || !m.ChecksumValid() || !m.Type().IsError() {
			t.Errorf("got %+v, want %+v (checksum valid %v)", got, f, m.ChecksumValid())
		}
		o, err := m.OriginalDatagram()
		if err != nil {
			t.Fatalf("%v: %v", f.Type, err)
		}
		if !bytes.Equal(o, quoted) || o.Src() != hostIP || o.Dst() != nsIP || o.ID() != 99 ||
			o.Protocol() != ProtocolUDP || int(o.TotalLength()) != len(orig) || len(o.Payload()) != 8 {
			t.Errorf("%v: original %x", f.Type, []byte(o))
		}
	}
	// A quote of the whole datagram plus padding is cut to its total length.
	m, err := ParseICMPv4(buildICMPv4(t, ICMPv4Fields{Type: ICMPv4TimeExceeded}, append(orig, 0, 0, 0)))
	if err != nil {
		t.Fatal(err)
	}
	if o, err := m.OriginalDatagram(); err != nil || !bytes.Equal(o, orig) {
		t.Errorf("whole quote: %x, %v", []byte(o), err)
	}
}

func TestICMPv4OriginalDatagramErrors(t *testing.T) {
	orig := buildIPv4(t, IPv4Fields{TTL: 1, Protocol: ProtocolUDP, Src: hostIP, Dst: nsIP}, make([]byte, 8))
	with := func(off int, v ...byte) []byte {
		c := clone(orig)
		copy(c[off:], v)
		return c
	}
	for _, tc := range []struct {
		name  string
		quote []byte
		class error
		field string
		off   int
	}{
		{"short header", orig[:19], ErrTruncated, "original datagram header", 8},
		{"version", with(0, 0x65), ErrMalformed, "original datagram version", 8},
		{"IHL", with(0, 0x44), ErrMalformed, "original datagram IHL", 8},
		{"IHL beyond quote", with(0, 0x4f), ErrTruncated, "original datagram IHL", 8},
		{"option", append(append(with(0, 0x46)[:20], 148, 5, 0, 0), orig[20:]...), ErrMalformed, "original datagram option length", 29},
		{"total length < header", with(2, 0, 19), ErrMalformed, "original datagram total length", 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ParseICMPv4(buildICMPv4(t, ICMPv4Fields{Type: ICMPv4DestinationUnreachable}, tc.quote))
			if err != nil {
				t.Fatal(err)
			}
			_, err = m.OriginalDatagram()
			wantParseError(t, err, tc.class, LayerICMPv4, tc.field, tc.off)
		})
	}
}

func TestParseICMPv4Errors(t *testing.T) {
	_, err := ParseICMPv4(make([]byte, 7))
	wantParseError(t, err, ErrTruncated, LayerICMPv4, "header", 0)
	if _, err := ParseICMPv4(make([]byte, 8)); err != nil {
		t.Errorf("8-byte message rejected: %v", err)
	}
}

func TestICMPv4EncodeErrors(t *testing.T) {
	wantFieldError(t, ICMPv4Fields{Type: ICMPv4Echo}.Encode(make([]byte, 7)), ErrShortBuffer)
	wantFieldError(t, ICMPv4Fields{Type: ICMPv4Redirect}.Encode(make([]byte, 8)), ErrInvalidField)
}
