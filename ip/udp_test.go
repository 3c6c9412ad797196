package ip

import (
	"bytes"
	"net/netip"
	"testing"
)

func buildUDP(t *testing.T, f UDPFields, src, dst netip.Addr, payload []byte) []byte {
	t.Helper()
	seg := make([]byte, UDPHeaderLen+len(payload))
	copy(seg[UDPHeaderLen:], payload)
	if err := f.Encode(seg, src, dst); err != nil {
		t.Fatal(err)
	}
	return seg
}

func TestUDPRoundTrip(t *testing.T) {
	v6a, v6b := netip.MustParseAddr("fd00::1"), netip.MustParseAddr("fd00::2")
	for _, c := range []struct {
		src, dst netip.Addr
		n        int
		noSum    bool
	}{
		{hostIP, nsIP, 0, false}, {hostIP, nsIP, 1, false}, {nsIP, hostIP, 1472, false},
		{hostIP, nsIP, 17, true}, {v6a, v6b, 33, false},
	} {
		payload := make([]byte, c.n)
		for i := range payload {
			payload[i] = byte(i % 251)
		}
		f := UDPFields{SrcPort: 40000, DstPort: 9000, NoChecksum: c.noSum}
		seg := buildUDP(t, f, c.src, c.dst, payload)
		u, err := ParseUDP(clone(seg))
		if err != nil {
			t.Fatal(err)
		}
		if u.SrcPort() != 40000 || u.DstPort() != 9000 || int(u.Length()) != len(seg) || !bytes.Equal(u.Payload(), payload) {
			t.Errorf("ports %d->%d length %d payload %d bytes", u.SrcPort(), u.DstPort(), u.Length(), len(u.Payload()))
		}
		if !u.ChecksumValid(c.src, c.dst) || (u.Checksum() == 0) != c.noSum {
			t.Errorf("%+v: checksum %#04x not valid", c, u.Checksum())
		}
		if !c.noSum && u.ChecksumValid(c.dst, netip.MustParseAddr("10.99.0.3")) {
			t.Errorf("%+v: checksum valid for the wrong pseudo-header", c)
		}
		if u.ChecksumValid(hostIP, v6b) {
			t.Errorf("%+v: checksum valid across address families", c)
		}
	}
}

func TestUDPChecksumNeverZero(t *testing.T) {
	// A datagram whose checksum computes to 0 is sent with all ones
	// (RFC 768). Find a payload word that makes the sum 0xffff.
	seg := buildUDP(t, UDPFields{SrcPort: 1, DstPort: 2}, hostIP, nsIP, []byte{0, 0})
	c := UDP(seg).Checksum()
	seg[8], seg[9] = byte(c>>8), byte(c)
	seg[6], seg[7] = 0, 0
	if err := (UDPFields{SrcPort: 1, DstPort: 2}).Encode(seg, hostIP, nsIP); err != nil {
		t.Fatal(err)
	}
	u := UDP(seg)
	if u.Checksum() != 0xffff || !u.ChecksumValid(hostIP, nsIP) {
		t.Errorf("checksum %#04x, want 0xffff and valid", u.Checksum())
	}
	// Over IPv6 a zero checksum field is invalid.
	u[6], u[7] = 0, 0
	v6 := netip.MustParseAddr("fd00::1")
	if u.ChecksumValid(v6, v6) || !u.ChecksumValid(hostIP, nsIP) {
		t.Error("zero checksum: want valid over IPv4 only")
	}
}

func TestParseUDPErrors(t *testing.T) {
	seg := buildUDP(t, UDPFields{SrcPort: 1, DstPort: 2}, hostIP, nsIP, []byte("12345"))
	_, err := ParseUDP(seg[:7])
	wantParseError(t, err, ErrTruncated, LayerUDP, "header", 0)
	short := clone(seg)
	short[4], short[5] = 0, 7
	_, err = ParseUDP(short)
	wantParseError(t, err, ErrMalformed, LayerUDP, "length", 4)
	_, err = ParseUDP(seg[:len(seg)-1])
	wantParseError(t, err, ErrTruncated, LayerUDP, "length", 4)
	// Bytes of the IP payload beyond Length are not part of the datagram.
	u, err := ParseUDP(append(clone(seg), 0xee, 0xee))
	if err != nil || len(u) != len(seg) || !u.ChecksumValid(hostIP, nsIP) {
		t.Errorf("trailing bytes: %v, %d bytes", err, len(u))
	}
	empty := clone(seg[:8])
	empty[4], empty[5] = 0, 8
	if u, err := ParseUDP(empty); err != nil || len(u.Payload()) != 0 {
		t.Errorf("empty datagram: %v", err)
	}
}

func TestUDPEncodeErrors(t *testing.T) {
	f := UDPFields{SrcPort: 1, DstPort: 2}
	v6 := netip.MustParseAddr("fd00::1")
	wantFieldError(t, f.Encode(make([]byte, 7), hostIP, nsIP), ErrShortBuffer)
	wantFieldError(t, f.Encode(make([]byte, 65536), hostIP, nsIP), ErrInvalidField)
	wantFieldError(t, f.Encode(make([]byte, 8), hostIP, v6), ErrInvalidField)
	wantFieldError(t, f.Encode(make([]byte, 8), netip.Addr{}, netip.Addr{}), ErrInvalidField)
	wantFieldError(t, f.Encode(make([]byte, 8), netip.MustParseAddr("::ffff:10.99.0.1"), netip.MustParseAddr("::ffff:10.99.0.2")), ErrInvalidField)
	wantFieldError(t, UDPFields{NoChecksum: true}.Encode(make([]byte, 8), v6, v6), ErrInvalidField)
}
