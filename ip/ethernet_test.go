package ip

import (
	"bytes"
	"testing"
)

func TestEthernetRoundTrip(t *testing.T) {
	for _, f := range []EthernetFields{
		{Dst: BroadcastMAC, Src: macA, EtherType: EtherTypeARP},
		{Dst: macB, Src: macA, EtherType: EtherTypeIPv4, VLAN: true, VLANID: 42, PCP: 5, DEI: true},
		{Dst: macB, Src: macA, EtherType: EtherTypeIPv6, VLAN: true, VLANID: 0},
		{Dst: macA, Src: macB, EtherType: 0x88cc, VLAN: true, VLANID: VLANIDMax, PCP: 7},
	} {
		payload := []byte("payload stays where it is")
		buf := make([]byte, f.HeaderLen()+len(payload))
		copy(buf[f.HeaderLen():], payload)
		if err := f.Encode(buf); err != nil {
			t.Fatalf("%+v: %v", f, err)
		}
		e, err := ParseEthernet(clone(buf))
		if err != nil {
			t.Fatalf("%+v: %v", f, err)
		}
		if e.Dst() != f.Dst || e.Src() != f.Src || e.EtherType() != f.EtherType ||
			e.HasVLAN() != f.VLAN || e.VLANID() != f.VLANID || e.PCP() != f.PCP || e.DEI() != f.DEI {
			t.Errorf("%+v: parsed dst %v src %v type %v vlan %v id %d pcp %d dei %v", f,
				e.Dst(), e.Src(), e.EtherType(), e.HasVLAN(), e.VLANID(), e.PCP(), e.DEI())
		}
		if e.HeaderLen() != f.HeaderLen() || !bytes.Equal(e.Payload(), payload) {
			t.Errorf("%+v: header length %d, payload %q", f, e.HeaderLen(), e.Payload())
		}
	}
}

func TestParseEthernetErrors(t *testing.T) {
	valid := make([]byte, 60)
	if err := (EthernetFields{Dst: macB, Src: macA, EtherType: EtherTypeIPv4}).Encode(valid); err != nil {
		t.Fatal(err)
	}
	tagged := make([]byte, 60)
	if err := (EthernetFields{Dst: macB, Src: macA, EtherType: EtherTypeIPv4, VLAN: true, VLANID: 7}).Encode(tagged); err != nil {
		t.Fatal(err)
	}
	for _, b := range [][]byte{valid, tagged, valid[:14], tagged[:18]} {
		if _, err := ParseEthernet(b); err != nil {
			t.Fatalf("valid frame rejected: %v", err)
		}
	}
	with := func(b []byte, off int, v ...byte) []byte {
		c := clone(b)
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
		{"short header", valid[:13], ErrTruncated, "header", 0},
		{"short tag", tagged[:17], ErrTruncated, "802.1Q tag", 12},
		{"802.3 length", with(valid, 12, 0x05, 0xdc), ErrUnsupported, "EtherType", 12},
		{"802.3 length after tag", with(tagged, 16, 0x00, 0x2e), ErrUnsupported, "EtherType", 16},
		{"QinQ", with(valid, 12, 0x88, 0xa8), ErrUnsupported, "EtherType", 12},
		{"stacked 802.1Q", with(tagged, 16, 0x81, 0x00), ErrUnsupported, "EtherType", 16},
		{"802.1Q in front of 802.1ad", with(tagged, 16, 0x88, 0xa8), ErrUnsupported, "EtherType", 16},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := ParseEthernet(tc.b)
			if e != nil {
				t.Errorf("got a view with the error")
			}
			wantParseError(t, err, tc.class, LayerEthernet, tc.field, tc.off)
		})
	}
}

func TestEthernetEncodeErrors(t *testing.T) {
	ok := EthernetFields{Dst: macB, Src: macA, EtherType: EtherTypeIPv4}
	wantFieldError(t, ok.Encode(make([]byte, 13)), ErrShortBuffer)
	tagged := ok
	tagged.VLAN = true
	wantFieldError(t, tagged.Encode(make([]byte, 17)), ErrShortBuffer)
	for _, f := range []EthernetFields{
		{EtherType: 0x05dc},
		{EtherType: EtherTypeVLAN},
		{EtherType: EtherTypeQinQ},
		{EtherType: EtherTypeIPv4, VLAN: true, VLANID: 4095},
		{EtherType: EtherTypeIPv4, VLAN: true, PCP: 8},
	} {
		buf := make([]byte, 18)
		wantFieldError(t, f.Encode(buf), ErrInvalidField)
		if !bytes.Equal(buf, make([]byte, 18)) {
			t.Errorf("%+v: failed Encode wrote %x", f, buf)
		}
	}
}

func TestMAC(t *testing.T) {
	if s := (MAC{0x02, 0xfc, 0, 0x1a, 0xb0, 0xff}).String(); s != "02:fc:00:1a:b0:ff" {
		t.Errorf("String = %q", s)
	}
	if !BroadcastMAC.IsBroadcast() || !BroadcastMAC.IsMulticast() || macA.IsMulticast() || macA.IsBroadcast() {
		t.Error("broadcast/multicast misclassified")
	}
	if !(MAC{0x01, 0x00, 0x5e, 0, 0, 1}).IsMulticast() {
		t.Error("IPv4 multicast MAC not multicast")
	}
	if EtherTypeIPv4.String() != "IPv4" || EtherType(0x88cc).String() != "0x88cc" {
		t.Errorf("EtherType strings: %v %v", EtherTypeIPv4, EtherType(0x88cc))
	}
}
