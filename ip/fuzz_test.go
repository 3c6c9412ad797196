package ip

import (
	"errors"
	"testing"
)

// The fuzz targets check the package's promise: a Parse function either
// returns a *ParseError of one class, or a view on which every accessor
// works. Inputs are cut to their length (no spare capacity), so a read past
// the end panics rather than going unnoticed.

func fuzzInput(b []byte) []byte { return b[:len(b):len(b)] }

// checkParseErr fails unless err is a *ParseError from layer l, of exactly
// one class, at an offset inside the input (or the header it is about).
func checkParseErr(t *testing.T, err error, l Layer, inputLen int) {
	t.Helper()
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T) is not a *ParseError", err, err)
	}
	n := 0
	for _, c := range errClasses {
		if errors.Is(err, c) {
			n++
		}
	}
	if n != 1 || pe.Layer != l || pe.Field == "" || pe.Offset < 0 || pe.Offset > max(inputLen, IPv4MaxHeaderLen) {
		t.Fatalf("bad error %#v", pe)
	}
	_ = pe.Error()
}

// sameMemory reports whether view starts where b does.
func sameMemory(view, b []byte) bool {
	return len(view) > 0 && len(b) > 0 && &view[0] == &b[0]
}

func exerciseEthernet(t *testing.T, e Ethernet, b []byte) {
	_, _ = e.Dst(), e.Src()
	_, _, _ = e.PCP(), e.DEI(), e.TCI()
	hl := e.HeaderLen()
	if !sameMemory(e, b) || len(e) != len(b) || len(e.Payload()) != len(e)-hl ||
		(e.HasVLAN() != (hl == EthernetVLANHeaderLen)) || e.VLANID() > 0xfff {
		t.Fatalf("inconsistent Ethernet view of %x", b)
	}
	if et := e.EtherType(); et < etherTypeMin || et == EtherTypeVLAN || et == EtherTypeQinQ {
		t.Fatalf("EtherType %v accepted", et)
	}
	// Re-encoding the parsed fields gives back the header.
	f := EthernetFields{Dst: e.Dst(), Src: e.Src(), EtherType: e.EtherType(), VLAN: e.HasVLAN(),
		VLANID: e.VLANID(), PCP: e.PCP(), DEI: e.DEI()}
	out := make([]byte, f.HeaderLen())
	if f.VLANID <= VLANIDMax {
		if err := f.Encode(out); err != nil || string(out) != string(e[:hl]) {
			t.Fatalf("re-encoded %x as %x (%v)", e[:hl], out, err)
		}
	}
}

func exerciseARP(t *testing.T, a ARP, b []byte) {
	f := ARPFields{a.Op(), a.SenderHardwareAddr(), a.SenderProtocolAddr(), a.TargetHardwareAddr(), a.TargetProtocolAddr()}
	if !sameMemory(a, b) || len(a) != ARPLen || a.HardwareType() != 1 || a.ProtocolType() != EtherTypeIPv4 ||
		a.HardwareLen() != 6 || a.ProtocolLen() != 4 {
		t.Fatalf("inconsistent ARP view of %x", b)
	}
	out := make([]byte, ARPLen)
	if err := f.Encode(out); err != nil || string(out) != string(a) {
		t.Fatalf("re-encoded %x as %x (%v)", []byte(a), out, err)
	}
}

func exerciseIPv4(t *testing.T, h IPv4, b []byte, quoted bool) {
	_, _, _, _ = h.TOS(), h.DSCP(), h.ECN(), h.ID()
	_, _, _, _ = h.Flags(), h.DF(), h.MF(), h.IsFragment()
	_, _, _, _ = h.TTL(), h.Protocol(), h.Checksum(), h.FragmentOffsetBytes()
	_, _ = h.Src(), h.Dst()
	hl := h.HeaderLength()
	if !sameMemory(h, b) || h.Version() != 4 || hl < IPv4MinHeaderLen || hl > IPv4MaxHeaderLen ||
		len(h.Header()) != hl || len(h.Options()) != hl-IPv4MinHeaderLen || len(h.Payload()) != len(h)-hl {
		t.Fatalf("inconsistent IPv4 view of %x", b)
	}
	if !quoted && int(h.TotalLength()) != len(h) {
		t.Fatalf("view of %d bytes, total length %d", len(h), h.TotalLength())
	}
	if quoted && int(h.TotalLength()) < len(h) {
		t.Fatalf("quoted view of %d bytes, total length %d", len(h), h.TotalLength())
	}
	n, size := 0, 0
	for o := range h.Options().All() {
		n++
		size += 1
		if o.Type != IPv4OptionNOP {
			size += 1 + len(o.Data)
		}
		_, _, _ = o.Type.Copied(), o.Type.Class(), o.Type.Number()
	}
	if n > IPv4MaxOptionsLen || size > len(h.Options()) {
		t.Fatalf("%d options in %d bytes", n, size)
	}
	valid := h.ChecksumValid()
	if valid != (h.ComputeChecksum() == h.Checksum()) && h.Checksum() != 0 && h.Checksum() != 0xffff {
		t.Fatalf("ChecksumValid %v but computed %#04x, field %#04x", valid, h.ComputeChecksum(), h.Checksum())
	}
	// Setters keep a valid checksum valid, on a copy.
	c := IPv4(clone(h))
	c.SetTTL(h.TTL() - 1)
	c.SetID(^h.ID())
	if valid && !c.ChecksumValid() {
		t.Fatalf("setters broke the checksum of %x", b)
	}
	// Fragmenting the payload in two gives parseable fragments.
	half := len(h.Payload()) / 2 &^ 7
	frag := make([]byte, hl+len(h.Payload()))
	if err := h.EncodeFragmentHeader(frag, 0, half, true); err == nil {
		copy(frag[hl:], h.Payload()[:half])
		if f, err := ParseIPv4(frag[:hl+half]); err != nil || !f.ChecksumValid() || !f.MF() {
			t.Fatalf("first fragment of %x: %v", b, err)
		}
	}
	if err := h.EncodeFragmentHeader(frag, half, len(h.Payload())-half, false); err == nil {
		copy(frag[hl:], h.Payload()[half:])
		if f, err := ParseIPv4(frag[:hl+len(h.Payload())-half]); err != nil || !f.ChecksumValid() ||
			f.FragmentOffsetBytes() != h.FragmentOffsetBytes()+half {
			t.Fatalf("second fragment of %x: %v", b, err)
		}
	}
}

func exerciseICMPv4(t *testing.T, m ICMPv4, b []byte) {
	_, _, _, _ = m.Type(), m.Code(), m.Checksum(), m.RestOfHeader()
	_, _, _, _, _ = m.ID(), m.Seq(), m.Pointer(), m.Gateway(), m.NextHopMTU()
	_ = m.ChecksumValid()
	if !sameMemory(m, b) || len(m.Payload()) != len(m)-ICMPv4HeaderLen {
		t.Fatalf("inconsistent ICMPv4 view of %x", b)
	}
	o, err := m.OriginalDatagram()
	if err != nil {
		checkParseErr(t, err, LayerICMPv4, len(b))
		return
	}
	exerciseIPv4(t, o, m.Payload(), true)
	if len(o.Payload()) >= UDPHeaderLen && o.Protocol() == ProtocolUDP {
		_, _ = UDP(o.Payload()).SrcPort(), UDP(o.Payload()).DstPort()
	}
}

func exerciseUDP(t *testing.T, u UDP, b []byte) {
	_, _, _ = u.SrcPort(), u.DstPort(), u.Checksum()
	_ = u.ChecksumValid(hostIP, nsIP)
	if !sameMemory(u, b) || int(u.Length()) != len(u) || len(u.Payload()) != len(u)-UDPHeaderLen {
		t.Fatalf("inconsistent UDP view of %x", b)
	}
}

func FuzzEthernet(f *testing.F) {
	f.Add([]byte("\xff\xff\xff\xff\xff\xff\x02\x00\x00\x00\x00\x0a\x08\x06"))
	f.Add([]byte("\x02\x00\x00\x00\x00\x0b\x02\x00\x00\x00\x00\x0a\x81\x00\xa0\x2a\x08\x00payload"))
	f.Fuzz(func(t *testing.T, b []byte) {
		b = fuzzInput(b)
		e, err := ParseEthernet(b)
		if err != nil {
			checkParseErr(t, err, LayerEthernet, len(b))
			return
		}
		exerciseEthernet(t, e, b)
	})
}

func FuzzARP(f *testing.F) {
	f.Add([]byte("\x00\x01\x08\x00\x06\x04\x00\x01\x02\x00\x00\x00\x00\x0a\x0a\x63\x00\x01" +
		"\x00\x00\x00\x00\x00\x00\x0a\x63\x00\x02"))
	f.Fuzz(func(t *testing.T, b []byte) {
		b = fuzzInput(b)
		a, err := ParseARP(b)
		if err != nil {
			checkParseErr(t, err, LayerARP, len(b))
			return
		}
		exerciseARP(t, a, b)
	})
}

func FuzzIPv4(f *testing.F) {
	f.Add([]byte("\x45\x00\x00\x1c\x00\x01\x40\x00\x40\x11\x00\x00\x0a\x63\x00\x01\x0a\x63\x00\x02" +
		"\x9c\x40\x23\x28\x00\x08\x00\x00"))
	f.Add([]byte("\x47\x00\x00\x1c\x00\x01\x20\x00\x40\x11\x00\x00\x0a\x63\x00\x01\x0a\x63\x00\x02" +
		"\x94\x04\x00\x00\x01\x07\x03\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		b = fuzzInput(b)
		h, err := ParseIPv4(b)
		if err != nil {
			checkParseErr(t, err, LayerIPv4, len(b))
			return
		}
		exerciseIPv4(t, h, b, false)
	})
}

func FuzzICMPv4(f *testing.F) {
	f.Add([]byte("\x08\x00\xf7\xfc\x00\x01\x00\x02"))
	f.Add([]byte("\x03\x03\x00\x00\x00\x00\x00\x00\x45\x00\x00\x1c\x00\x01\x40\x00\x40\x11\x00\x00" +
		"\x0a\x63\x00\x01\x0a\x63\x00\x02\x9c\x40\x23\x28\x00\x08\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		b = fuzzInput(b)
		m, err := ParseICMPv4(b)
		if err != nil {
			checkParseErr(t, err, LayerICMPv4, len(b))
			return
		}
		exerciseICMPv4(t, m, b)
	})
}

func FuzzUDP(f *testing.F) {
	f.Add([]byte("\x9c\x40\x23\x28\x00\x0a\x00\x00hi"))
	f.Fuzz(func(t *testing.T, b []byte) {
		b = fuzzInput(b)
		u, err := ParseUDP(b)
		if err != nil {
			checkParseErr(t, err, LayerUDP, len(b))
			return
		}
		exerciseUDP(t, u, b)
	})
}

// FuzzFrame parses a frame the way the stack's input path will: Ethernet,
// then ARP or IPv4, then, for a whole datagram, ICMPv4 or UDP.
func FuzzFrame(f *testing.F) {
	f.Add([]byte("\x02\x00\x00\x00\x00\x0b\x02\x00\x00\x00\x00\x0a\x08\x00" +
		"\x45\x00\x00\x1c\x00\x01\x40\x00\x40\x11\x00\x00\x0a\x63\x00\x01\x0a\x63\x00\x02" +
		"\x9c\x40\x23\x28\x00\x08\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		b = fuzzInput(b)
		e, err := ParseEthernet(b)
		if err != nil {
			checkParseErr(t, err, LayerEthernet, len(b))
			return
		}
		exerciseEthernet(t, e, b)
		switch e.EtherType() {
		case EtherTypeARP:
			a, err := ParseARP(e.Payload())
			if err != nil {
				checkParseErr(t, err, LayerARP, len(e.Payload()))
				return
			}
			exerciseARP(t, a, e.Payload())
		case EtherTypeIPv4:
			h, err := ParseIPv4(e.Payload())
			if err != nil {
				checkParseErr(t, err, LayerIPv4, len(e.Payload()))
				return
			}
			exerciseIPv4(t, h, e.Payload(), false)
			if h.IsFragment() {
				return
			}
			p := h.Payload()
			switch h.Protocol() {
			case ProtocolICMP:
				m, err := ParseICMPv4(p)
				if err != nil {
					checkParseErr(t, err, LayerICMPv4, len(p))
					return
				}
				exerciseICMPv4(t, m, p)
			case ProtocolUDP:
				u, err := ParseUDP(p)
				if err != nil {
					checkParseErr(t, err, LayerUDP, len(p))
					return
				}
				exerciseUDP(t, u, p)
				_ = u.ChecksumValid(h.Src(), h.Dst())
			}
		}
	})
}
