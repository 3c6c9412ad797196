package ip

import (
	"net/netip"
	"testing"
)

func TestARPRoundTrip(t *testing.T) {
	for _, f := range []ARPFields{
		{Op: ARPRequest, SenderHardwareAddr: macA, SenderProtocolAddr: hostIP, TargetProtocolAddr: nsIP},
		{Op: ARPReply, SenderHardwareAddr: macB, SenderProtocolAddr: nsIP,
			TargetHardwareAddr: macA, TargetProtocolAddr: hostIP},
	} {
		buf := make([]byte, ARPLen+18) // Ethernet padding to 60 bytes
		if err := f.Encode(buf); err != nil {
			t.Fatal(err)
		}
		a, err := ParseARP(clone(buf))
		if err != nil {
			t.Fatal(err)
		}
		if len(a) != ARPLen {
			t.Errorf("view is %d bytes, want %d", len(a), ARPLen)
		}
		got := ARPFields{a.Op(), a.SenderHardwareAddr(), a.SenderProtocolAddr(),
			a.TargetHardwareAddr(), a.TargetProtocolAddr()}
		if got != f {
			t.Errorf("got %+v, want %+v", got, f)
		}
		if a.HardwareType() != ARPHardwareEthernet || a.ProtocolType() != EtherTypeIPv4 ||
			a.HardwareLen() != 6 || a.ProtocolLen() != 4 {
			t.Errorf("hrd %d pro %v hln %d pln %d", a.HardwareType(), a.ProtocolType(), a.HardwareLen(), a.ProtocolLen())
		}
	}
}

func TestParseARPErrors(t *testing.T) {
	valid := make([]byte, ARPLen)
	f := ARPFields{Op: ARPRequest, SenderHardwareAddr: macA, SenderProtocolAddr: hostIP, TargetProtocolAddr: nsIP}
	if err := f.Encode(valid); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseARP(valid); err != nil {
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
		{"short", valid[:ARPLen-1], ErrTruncated, "packet", 0},
		{"hardware type", with(0, 0, 6), ErrUnsupported, "hardware type", 0},
		{"protocol type", with(2, 0x86, 0xdd), ErrUnsupported, "protocol type", 2},
		{"hardware length", with(4, 8), ErrUnsupported, "hardware address length", 4},
		{"protocol length", with(5, 16), ErrUnsupported, "protocol address length", 5},
		{"opcode RARP", with(6, 0, 3), ErrUnsupported, "opcode", 6},
		{"opcode 0", with(6, 0, 0), ErrUnsupported, "opcode", 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseARP(tc.b)
			wantParseError(t, err, tc.class, LayerARP, tc.field, tc.off)
		})
	}
}

func TestARPEncodeErrors(t *testing.T) {
	f := ARPFields{Op: ARPRequest, SenderProtocolAddr: hostIP, TargetProtocolAddr: nsIP}
	wantFieldError(t, f.Encode(make([]byte, ARPLen-1)), ErrShortBuffer)
	bad := f
	bad.Op = 3
	wantFieldError(t, bad.Encode(make([]byte, ARPLen)), ErrInvalidField)
	bad = f
	bad.TargetProtocolAddr = netip.MustParseAddr("fe80::1")
	wantFieldError(t, bad.Encode(make([]byte, ARPLen)), ErrInvalidField)
	bad = f
	bad.SenderProtocolAddr = netip.Addr{}
	wantFieldError(t, bad.Encode(make([]byte, ARPLen)), ErrInvalidField)
}
