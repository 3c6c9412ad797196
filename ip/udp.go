package ip

import (
	"encoding/binary"
	"net/netip"
	"strconv"

	"github.com/tapstack/tapstack/checksum"
)

// UDPHeaderLen is the length of a UDP header (RFC 768).
const UDPHeaderLen = 8

const (
	udpOffSrcPort  = 0
	udpOffDstPort  = 2
	udpOffLength   = 4
	udpOffChecksum = 6
)

// UDP is a view of a UDP datagram, exactly Length bytes. Obtain it from
// ParseUDP.
type UDP []byte

// ParseUDP checks that b starts with a UDP datagram, UDPHeaderLen <= Length
// <= len(b), and returns a view of it trimmed to Length (as Linux does, bytes
// of the IP payload beyond Length are ignored). The checksum is not
// verified: see ChecksumValid.
func ParseUDP(b []byte) (UDP, error) {
	if len(b) < UDPHeaderLen {
		return nil, truncated(LayerUDP, "header", 0, UDPHeaderLen, len(b))
	}
	l := int(binary.BigEndian.Uint16(b[udpOffLength:]))
	if l < UDPHeaderLen {
		return nil, malformed(LayerUDP, "length", udpOffLength, "length "+strconv.Itoa(l)+" < 8")
	}
	if l > len(b) {
		return nil, truncated(LayerUDP, "length", udpOffLength, l, len(b))
	}
	return UDP(b[:l]), nil
}

// SrcPort returns the source port (0 if unused).
func (u UDP) SrcPort() uint16 { return binary.BigEndian.Uint16(u[udpOffSrcPort:]) }

// DstPort returns the destination port.
func (u UDP) DstPort() uint16 { return binary.BigEndian.Uint16(u[udpOffDstPort:]) }

// Length returns the Length field: header and data, in bytes.
func (u UDP) Length() uint16 { return binary.BigEndian.Uint16(u[udpOffLength:]) }

// Checksum returns the Checksum field; 0 means none was computed, which
// only IPv4 allows.
func (u UDP) Checksum() uint16 { return binary.BigEndian.Uint16(u[udpOffChecksum:]) }

// Payload returns the data after the header.
func (u UDP) Payload() []byte { return u[UDPHeaderLen:] }

// ChecksumValid reports whether the checksum over the pseudo-header of src
// and dst, the header and the data is correct. A zero Checksum field (no
// checksum) is valid over IPv4 and invalid over IPv6 (RFC 8200 §8.1), as
// are addresses of different or invalid families.
func (u UDP) ChecksumValid(src, dst netip.Addr) bool {
	ph, ok := pseudoHeader(src, dst, ProtocolUDP, len(u))
	if !ok {
		return false
	}
	if u.Checksum() == 0 {
		return src.Is4()
	}
	return checksum.Sum(u, ph) == 0xffff
}

// pseudoHeader returns the pseudo-header sum for an upper-layer packet of
// length n between src and dst; ok is false unless both are IPv4 or both
// IPv6.
func pseudoHeader(src, dst netip.Addr, p Protocol, n int) (sum uint16, ok bool) {
	switch {
	case src.Is4() && dst.Is4():
		return checksum.PseudoHeaderV4(src.As4(), dst.As4(), uint8(p), uint16(n)), true
	case src.Is6() && dst.Is6() && !src.Is4In6() && !dst.Is4In6():
		return checksum.PseudoHeaderV6(src.As16(), dst.As16(), uint8(p), uint32(n)), true
	}
	return 0, false
}

// UDPFields describes a UDP header to encode.
type UDPFields struct {
	SrcPort, DstPort uint16
	// NoChecksum leaves the Checksum field 0 (IPv4 only).
	NoChecksum bool
}

// Encode writes the header into seg[:UDPHeaderLen], Length = len(seg), and
// the checksum over the pseudo-header of src and dst, the header and the
// data, which must already sit in seg after the header.
func (f UDPFields) Encode(seg []byte, src, dst netip.Addr) error {
	if len(seg) < UDPHeaderLen {
		return shortBuffer(LayerUDP, UDPHeaderLen, len(seg))
	}
	if len(seg) > 0xffff {
		return invalidField(LayerUDP, "length", strconv.Itoa(len(seg))+" > 65535")
	}
	ph, ok := pseudoHeader(src, dst, ProtocolUDP, len(seg))
	if !ok {
		return invalidField(LayerUDP, "pseudo-header", "addresses "+src.String()+", "+dst.String()+
			" are not both IPv4 or both IPv6")
	}
	if f.NoChecksum && !src.Is4() {
		return invalidField(LayerUDP, "checksum", "required over IPv6")
	}
	binary.BigEndian.PutUint16(seg[udpOffSrcPort:], f.SrcPort)
	binary.BigEndian.PutUint16(seg[udpOffDstPort:], f.DstPort)
	binary.BigEndian.PutUint16(seg[udpOffLength:], uint16(len(seg)))
	binary.BigEndian.PutUint16(seg[udpOffChecksum:], 0)
	if !f.NoChecksum {
		c := ^checksum.Sum(seg, ph)
		if c == 0 {
			c = 0xffff // 0 means "no checksum"; RFC 768 sends all ones
		}
		binary.BigEndian.PutUint16(seg[udpOffChecksum:], c)
	}
	return nil
}
