package ip

import (
	"encoding/binary"
	"net/netip"
	"strconv"
)

// ARP packet constants for IPv4 over Ethernet (RFC 826, RFC 5494).
const (
	ARPLen               = 28 // the whole packet for Ethernet/IPv4
	ARPHardwareEthernet  = 1  // ar$hrd
	ARPHardwareLen       = 6  // ar$hln for Ethernet
	ARPProtocolLenIPv4   = 4  // ar$pln for IPv4
	arpOffHardwareType   = 0
	arpOffProtocolType   = 2
	arpOffHardwareLen    = 4
	arpOffProtocolLen    = 5
	arpOffOp             = 6
	arpOffSenderHardware = 8
	arpOffSenderProtocol = 14
	arpOffTargetHardware = 18
	arpOffTargetProtocol = 24
)

// ARPOp is an ARP opcode (ar$op).
type ARPOp uint16

// ARP opcodes this package accepts.
const (
	ARPRequest ARPOp = 1
	ARPReply   ARPOp = 2
)

func (op ARPOp) String() string {
	switch op {
	case ARPRequest:
		return "request"
	case ARPReply:
		return "reply"
	}
	return "op(" + strconv.Itoa(int(op)) + ")"
}

// ARP is a view of an ARP request or reply for IPv4 over Ethernet, exactly
// ARPLen bytes. Obtain it from ParseARP.
type ARP []byte

// ParseARP checks that b starts with an ARP request or reply mapping IPv4
// addresses to Ethernet addresses and returns a view of its first ARPLen
// bytes (Ethernet padding after them is ignored). Any other hardware type,
// protocol type, address length or opcode is ErrUnsupported.
func ParseARP(b []byte) (ARP, error) {
	if len(b) < ARPLen {
		return nil, truncated(LayerARP, "packet", 0, ARPLen, len(b))
	}
	if v := binary.BigEndian.Uint16(b[arpOffHardwareType:]); v != ARPHardwareEthernet {
		return nil, unsupported(LayerARP, "hardware type", arpOffHardwareType,
			"hardware type "+strconv.Itoa(int(v))+", want 1 (Ethernet)")
	}
	if v := EtherType(binary.BigEndian.Uint16(b[arpOffProtocolType:])); v != EtherTypeIPv4 {
		return nil, unsupported(LayerARP, "protocol type", arpOffProtocolType,
			"protocol type "+v.String()+", want IPv4")
	}
	if v := b[arpOffHardwareLen]; v != ARPHardwareLen {
		return nil, unsupported(LayerARP, "hardware address length", arpOffHardwareLen,
			"length "+strconv.Itoa(int(v))+", want 6")
	}
	if v := b[arpOffProtocolLen]; v != ARPProtocolLenIPv4 {
		return nil, unsupported(LayerARP, "protocol address length", arpOffProtocolLen,
			"length "+strconv.Itoa(int(v))+", want 4")
	}
	if op := ARPOp(binary.BigEndian.Uint16(b[arpOffOp:])); op != ARPRequest && op != ARPReply {
		return nil, unsupported(LayerARP, "opcode", arpOffOp, op.String()+" is neither request nor reply")
	}
	return ARP(b[:ARPLen]), nil
}

// HardwareType returns ar$hrd (always ARPHardwareEthernet).
func (a ARP) HardwareType() uint16 { return binary.BigEndian.Uint16(a[arpOffHardwareType:]) }

// ProtocolType returns ar$pro (always EtherTypeIPv4).
func (a ARP) ProtocolType() EtherType {
	return EtherType(binary.BigEndian.Uint16(a[arpOffProtocolType:]))
}

// HardwareLen returns ar$hln (always 6).
func (a ARP) HardwareLen() uint8 { return a[arpOffHardwareLen] }

// ProtocolLen returns ar$pln (always 4).
func (a ARP) ProtocolLen() uint8 { return a[arpOffProtocolLen] }

// Op returns ar$op: ARPRequest or ARPReply.
func (a ARP) Op() ARPOp { return ARPOp(binary.BigEndian.Uint16(a[arpOffOp:])) }

// SenderHardwareAddr returns ar$sha.
func (a ARP) SenderHardwareAddr() MAC { return MAC(a[arpOffSenderHardware:]) }

// SenderProtocolAddr returns ar$spa.
func (a ARP) SenderProtocolAddr() netip.Addr {
	return netip.AddrFrom4([4]byte(a[arpOffSenderProtocol:]))
}

// TargetHardwareAddr returns ar$tha (unused, usually zero, in a request).
func (a ARP) TargetHardwareAddr() MAC { return MAC(a[arpOffTargetHardware:]) }

// TargetProtocolAddr returns ar$tpa.
func (a ARP) TargetProtocolAddr() netip.Addr {
	return netip.AddrFrom4([4]byte(a[arpOffTargetProtocol:]))
}

// ARPFields describes an ARP request or reply for IPv4 over Ethernet.
type ARPFields struct {
	Op                 ARPOp
	SenderHardwareAddr MAC
	SenderProtocolAddr netip.Addr // IPv4
	TargetHardwareAddr MAC
	TargetProtocolAddr netip.Addr // IPv4
}

// Encode writes the packet into b[:ARPLen].
func (f ARPFields) Encode(b []byte) error {
	if len(b) < ARPLen {
		return shortBuffer(LayerARP, ARPLen, len(b))
	}
	if f.Op != ARPRequest && f.Op != ARPReply {
		return invalidField(LayerARP, "opcode", f.Op.String()+" is neither request nor reply")
	}
	if !f.SenderProtocolAddr.Is4() || !f.TargetProtocolAddr.Is4() {
		return invalidField(LayerARP, "protocol address", "not IPv4: "+
			f.SenderProtocolAddr.String()+", "+f.TargetProtocolAddr.String())
	}
	binary.BigEndian.PutUint16(b[arpOffHardwareType:], ARPHardwareEthernet)
	binary.BigEndian.PutUint16(b[arpOffProtocolType:], uint16(EtherTypeIPv4))
	b[arpOffHardwareLen] = ARPHardwareLen
	b[arpOffProtocolLen] = ARPProtocolLenIPv4
	binary.BigEndian.PutUint16(b[arpOffOp:], uint16(f.Op))
	copy(b[arpOffSenderHardware:], f.SenderHardwareAddr[:])
	spa := f.SenderProtocolAddr.As4()
	copy(b[arpOffSenderProtocol:], spa[:])
	copy(b[arpOffTargetHardware:], f.TargetHardwareAddr[:])
	tpa := f.TargetProtocolAddr.As4()
	copy(b[arpOffTargetProtocol:], tpa[:])
	return nil
}
