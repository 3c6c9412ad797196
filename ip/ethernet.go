package ip

import (
	"encoding/binary"
	"strconv"
)

// EtherType identifies the protocol carried in an Ethernet II frame.
type EtherType uint16

// EtherTypes.
const (
	EtherTypeIPv4 EtherType = 0x0800
	EtherTypeARP  EtherType = 0x0806
	EtherTypeVLAN EtherType = 0x8100 // IEEE 802.1Q tag protocol identifier
	EtherTypeIPv6 EtherType = 0x86DD
	EtherTypeQinQ EtherType = 0x88A8 // IEEE 802.1ad service tag; not supported

	// etherTypeMin is the smallest EtherType; below it the field is an
	// IEEE 802.3 length.
	etherTypeMin EtherType = 0x0600
)

func (t EtherType) String() string {
	switch t {
	case EtherTypeIPv4:
		return "IPv4"
	case EtherTypeARP:
		return "ARP"
	case EtherTypeVLAN:
		return "802.1Q"
	case EtherTypeIPv6:
		return "IPv6"
	case EtherTypeQinQ:
		return "802.1ad"
	}
	return "0x" + hex16(uint16(t))
}

// Header lengths of an Ethernet II frame (no preamble, no FCS).
const (
	EthernetHeaderLen     = 14 // destination, source, EtherType
	VLANTagLen            = 4  // TPID 0x8100 and tag control information
	EthernetVLANHeaderLen = EthernetHeaderLen + VLANTagLen
	VLANIDMax             = 4094 // 4095 is reserved
)

// MAC is an IEEE 802 MAC-48 address.
type MAC [6]byte

// BroadcastMAC is ff:ff:ff:ff:ff:ff.
var BroadcastMAC = MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// IsBroadcast reports whether m is the broadcast address.
func (m MAC) IsBroadcast() bool { return m == BroadcastMAC }

// IsMulticast reports whether m is a group address (broadcast included).
func (m MAC) IsMulticast() bool { return m[0]&1 != 0 }

func (m MAC) String() string {
	const digits = "0123456789abcdef"
	var b [17]byte
	for i, x := range m {
		if i > 0 {
			b[3*i-1] = ':'
		}
		b[3*i] = digits[x>>4]
		b[3*i+1] = digits[x&0xf]
	}
	return string(b[:])
}

// Ethernet is a view of an Ethernet II frame, optionally carrying one
// IEEE 802.1Q VLAN tag. Obtain it from ParseEthernet.
type Ethernet []byte

// ParseEthernet checks that b holds an Ethernet II header (and its 802.1Q
// tag, if any) and returns a view of b; the payload is everything after the
// header, padding included. Rejected: frames shorter than their header,
// IEEE 802.3 length frames (type field below 0x0600) and stacked tags
// (802.1ad, or 802.1Q inside 802.1Q), as ErrUnsupported.
func ParseEthernet(b []byte) (Ethernet, error) {
	if len(b) < EthernetHeaderLen {
		return nil, truncated(LayerEthernet, "header", 0, EthernetHeaderLen, len(b))
	}
	off := 12
	t := EtherType(binary.BigEndian.Uint16(b[off:]))
	if t == EtherTypeVLAN {
		if len(b) < EthernetVLANHeaderLen {
			return nil, truncated(LayerEthernet, "802.1Q tag", off, EthernetVLANHeaderLen, len(b))
		}
		off = 16
		t = EtherType(binary.BigEndian.Uint16(b[off:]))
		if t == EtherTypeVLAN || t == EtherTypeQinQ {
			return nil, unsupported(LayerEthernet, "EtherType", off, "stacked VLAN tags")
		}
	}
	if t == EtherTypeQinQ {
		return nil, unsupported(LayerEthernet, "EtherType", off, "802.1ad service tag")
	}
	if t < etherTypeMin {
		return nil, unsupported(LayerEthernet, "EtherType", off,
			"IEEE 802.3 length "+strconv.Itoa(int(t))+", not an EtherType")
	}
	return Ethernet(b), nil
}

// Dst returns the destination address.
func (e Ethernet) Dst() MAC { return MAC(e[0:6]) }

// Src returns the source address.
func (e Ethernet) Src() MAC { return MAC(e[6:12]) }

// HasVLAN reports whether the frame carries an 802.1Q tag.
func (e Ethernet) HasVLAN() bool {
	return EtherType(binary.BigEndian.Uint16(e[12:])) == EtherTypeVLAN
}

// TCI returns the 802.1Q tag control information, 0 if untagged.
func (e Ethernet) TCI() uint16 {
	if !e.HasVLAN() {
		return 0
	}
	return binary.BigEndian.Uint16(e[14:])
}

// VLANID returns the 802.1Q VLAN identifier, 0 if untagged (0 is also the ID
// of a priority-only tag: use HasVLAN to tell them apart).
func (e Ethernet) VLANID() uint16 { return e.TCI() & 0x0fff }

// PCP returns the 802.1Q priority code point, 0 if untagged.
func (e Ethernet) PCP() uint8 { return uint8(e.TCI() >> 13) }

// DEI returns the 802.1Q drop eligible indicator, false if untagged.
func (e Ethernet) DEI() bool { return e.TCI()&0x1000 != 0 }

// EtherType returns the type of the payload, after the tag if there is one.
func (e Ethernet) EtherType() EtherType {
	return EtherType(binary.BigEndian.Uint16(e[e.HeaderLen()-2:]))
}

// HeaderLen returns the header length, which is the payload's offset in the
// frame: EthernetHeaderLen, or EthernetVLANHeaderLen if tagged.
func (e Ethernet) HeaderLen() int {
	if e.HasVLAN() {
		return EthernetVLANHeaderLen
	}
	return EthernetHeaderLen
}

// Payload returns the bytes after the header, including any padding.
func (e Ethernet) Payload() []byte { return e[e.HeaderLen():] }

// EthernetFields describes an Ethernet II header to encode.
type EthernetFields struct {
	Dst, Src  MAC
	EtherType EtherType // of the payload; not EtherTypeVLAN
	// VLAN adds an 802.1Q tag with VLANID, PCP and DEI.
	VLAN   bool
	VLANID uint16 // 0..VLANIDMax
	PCP    uint8  // 0..7
	DEI    bool
}

// HeaderLen returns the number of bytes Encode writes.
func (f EthernetFields) HeaderLen() int {
	if f.VLAN {
		return EthernetVLANHeaderLen
	}
	return EthernetHeaderLen
}

// Encode writes the header into b[:f.HeaderLen()].
func (f EthernetFields) Encode(b []byte) error {
	n := f.HeaderLen()
	if len(b) < n {
		return shortBuffer(LayerEthernet, n, len(b))
	}
	if f.EtherType < etherTypeMin || f.EtherType == EtherTypeVLAN || f.EtherType == EtherTypeQinQ {
		return invalidField(LayerEthernet, "EtherType", "0x"+hex16(uint16(f.EtherType))+" is not a payload type")
	}
	if f.VLAN && (f.VLANID > VLANIDMax || f.PCP > 7) {
		return invalidField(LayerEthernet, "802.1Q tag", "VLAN ID "+strconv.Itoa(int(f.VLANID))+
			" or PCP "+strconv.Itoa(int(f.PCP))+" out of range")
	}
	copy(b[0:6], f.Dst[:])
	copy(b[6:12], f.Src[:])
	if f.VLAN {
		tci := uint16(f.PCP)<<13 | f.VLANID
		if f.DEI {
			tci |= 0x1000
		}
		binary.BigEndian.PutUint16(b[12:], uint16(EtherTypeVLAN))
		binary.BigEndian.PutUint16(b[14:], tci)
	}
	binary.BigEndian.PutUint16(b[n-2:], uint16(f.EtherType))
	return nil
}

func hex16(v uint16) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[v>>12], digits[v>>8&0xf], digits[v>>4&0xf], digits[v&0xf]})
}
