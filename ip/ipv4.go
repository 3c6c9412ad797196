package ip

import (
	"encoding/binary"
	"iter"
	"net/netip"
	"strconv"

	"github.com/tapstack/tapstack/checksum"
)

// IPv4 header constants (RFC 791 §3.1).
const (
	IPv4Version        = 4
	IPv4MinHeaderLen   = 20
	IPv4MaxHeaderLen   = 60 // IHL is 4 bits of 32-bit words
	IPv4MaxOptionsLen  = IPv4MaxHeaderLen - IPv4MinHeaderLen
	IPv4MaxTotalLength = 65535
	// IPv4FragmentUnit is the unit of the fragment offset field: every
	// fragment but the last carries a multiple of it.
	IPv4FragmentUnit = 8

	ipv4OffVersionIHL = 0
	ipv4OffTOS        = 1
	ipv4OffTotalLen   = 2
	ipv4OffID         = 4
	ipv4OffFlagsFrag  = 6
	ipv4OffTTL        = 8
	ipv4OffProtocol   = 9
	ipv4OffChecksum   = 10
	ipv4OffSrc        = 12
	ipv4OffDst        = 16
	ipv4OffOptions    = 20
)

// Protocol is an IP protocol number (the IPv4 Protocol field, IPv6 Next
// Header).
type Protocol uint8

// Protocol numbers.
const (
	ProtocolICMP Protocol = 1
	ProtocolTCP  Protocol = 6
	ProtocolUDP  Protocol = 17
)

func (p Protocol) String() string {
	switch p {
	case ProtocolICMP:
		return "ICMP"
	case ProtocolTCP:
		return "TCP"
	case ProtocolUDP:
		return "UDP"
	}
	return "protocol(" + strconv.Itoa(int(p)) + ")"
}

// IPv4Flags holds the 3-bit Flags field of an IPv4 header.
type IPv4Flags uint8

// IPv4 flags.
const (
	IPv4FlagMF       IPv4Flags = 1 << 0 // more fragments
	IPv4FlagDF       IPv4Flags = 1 << 1 // don't fragment
	IPv4FlagReserved IPv4Flags = 1 << 2 // must be zero; ignored on receipt
)

// IPv4 is a view of an IPv4 datagram: header, options and payload, exactly
// TotalLength bytes. Obtain it from ParseIPv4 (or, for the truncated copy
// quoted in an ICMP error, from ICMPv4.OriginalDatagram).
type IPv4 []byte

// ParseIPv4 checks that b starts with an IPv4 datagram and returns a view of
// it, trimmed to its total length (link-layer padding after it is ignored).
// It requires version 4, 5 <= IHL, a header that fits in b, IHL*4 <= total
// length <= len(b), well-formed options (each within the header, every
// length at least 2), and a fragment that ends within 65535 bytes. It does
// not verify the checksum: see ChecksumValid.
func ParseIPv4(b []byte) (IPv4, error) {
	hl, err := parseIPv4Header(b)
	if err != nil {
		return nil, err
	}
	tl := int(binary.BigEndian.Uint16(b[ipv4OffTotalLen:]))
	if tl < hl {
		return nil, malformed(LayerIPv4, "total length", ipv4OffTotalLen,
			"total length "+strconv.Itoa(tl)+" < header length "+strconv.Itoa(hl))
	}
	if tl > len(b) {
		return nil, truncated(LayerIPv4, "total length", ipv4OffTotalLen, tl, len(b))
	}
	if end := int(binary.BigEndian.Uint16(b[ipv4OffFlagsFrag:])&0x1fff)*IPv4FragmentUnit + tl; end > IPv4MaxTotalLength {
		return nil, malformed(LayerIPv4, "fragment offset", ipv4OffFlagsFrag,
			"fragment ends at "+strconv.Itoa(end)+", beyond 65535")
	}
	return IPv4(b[:tl]), nil
}

// parseIPv4Header checks everything but the total length and returns the
// header length in bytes.
func parseIPv4Header(b []byte) (int, error) {
	if len(b) < IPv4MinHeaderLen {
		return 0, truncated(LayerIPv4, "header", 0, IPv4MinHeaderLen, len(b))
	}
	if v := b[ipv4OffVersionIHL] >> 4; v != IPv4Version {
		return 0, malformed(LayerIPv4, "version", ipv4OffVersionIHL, "version "+strconv.Itoa(int(v))+", want 4")
	}
	ihl := int(b[ipv4OffVersionIHL] & 0xf)
	if ihl < IPv4MinHeaderLen/4 {
		return 0, malformed(LayerIPv4, "IHL", ipv4OffVersionIHL, "IHL "+strconv.Itoa(ihl)+" < 5")
	}
	hl := ihl * 4
	if hl > len(b) {
		return 0, truncated(LayerIPv4, "IHL", ipv4OffVersionIHL, hl, len(b))
	}
	if err := checkIPv4Options(b[ipv4OffOptions:hl], ipv4OffOptions); err != nil {
		return 0, err
	}
	return hl, nil
}

// checkIPv4Options checks that opts is a well-formed option list; base is
// its offset in the header, for error reports. Each step advances at least
// one byte through at most IPv4MaxOptionsLen bytes.
func checkIPv4Options(opts []byte, base int) error {
	for i := 0; i < len(opts); {
		switch IPv4OptionType(opts[i]) {
		case IPv4OptionEOL:
			return nil // the rest is padding
		case IPv4OptionNOP:
			i++
			continue
		}
		if i+1 >= len(opts) {
			return malformed(LayerIPv4, "option length", base+i,
				"option "+strconv.Itoa(int(opts[i]))+" has no length byte")
		}
		l := int(opts[i+1])
		if l < 2 {
			return malformed(LayerIPv4, "option length", base+i+1, "length "+strconv.Itoa(l)+" < 2")
		}
		if i+l > len(opts) {
			return malformed(LayerIPv4, "option length", base+i+1,
				"length "+strconv.Itoa(l)+" overruns the header by "+strconv.Itoa(i+l-len(opts))+" bytes")
		}
		i += l
	}
	return nil
}

// Version returns the version field (always 4).
func (h IPv4) Version() uint8 { return h[ipv4OffVersionIHL] >> 4 }

// IHL returns the Internet Header Length in 32-bit words (5..15).
func (h IPv4) IHL() uint8 { return h[ipv4OffVersionIHL] & 0xf }

// HeaderLength returns the header length in bytes, options included.
func (h IPv4) HeaderLength() int { return int(h.IHL()) * 4 }

// TOS returns the Type of Service byte (DSCP and ECN).
func (h IPv4) TOS() uint8 { return h[ipv4OffTOS] }

// DSCP returns the differentiated services code point (RFC 2474).
func (h IPv4) DSCP() uint8 { return h.TOS() >> 2 }

// ECN returns the explicit congestion notification bits (RFC 3168).
func (h IPv4) ECN() uint8 { return h.TOS() & 3 }

// TotalLength returns the length of the datagram in bytes, header included.
// It equals len(h), except in the truncated copy quoted by an ICMP error.
func (h IPv4) TotalLength() uint16 { return binary.BigEndian.Uint16(h[ipv4OffTotalLen:]) }

// ID returns the Identification field.
func (h IPv4) ID() uint16 { return binary.BigEndian.Uint16(h[ipv4OffID:]) }

// Flags returns the 3-bit Flags field.
func (h IPv4) Flags() IPv4Flags { return IPv4Flags(h[ipv4OffFlagsFrag] >> 5) }

// DF reports whether the Don't Fragment flag is set.
func (h IPv4) DF() bool { return h.Flags()&IPv4FlagDF != 0 }

// MF reports whether the More Fragments flag is set.
func (h IPv4) MF() bool { return h.Flags()&IPv4FlagMF != 0 }

// FragmentOffset returns the Fragment Offset field, in units of
// IPv4FragmentUnit (8) bytes.
func (h IPv4) FragmentOffset() uint16 {
	return binary.BigEndian.Uint16(h[ipv4OffFlagsFrag:]) & 0x1fff
}

// FragmentOffsetBytes returns the offset of this fragment's payload in the
// original datagram's payload, in bytes.
func (h IPv4) FragmentOffsetBytes() int { return int(h.FragmentOffset()) * IPv4FragmentUnit }

// IsFragment reports whether the datagram is a fragment: MF set or a
// non-zero offset.
func (h IPv4) IsFragment() bool { return h.MF() || h.FragmentOffset() != 0 }

// TTL returns the Time to Live field.
func (h IPv4) TTL() uint8 { return h[ipv4OffTTL] }

// Protocol returns the protocol of the payload.
func (h IPv4) Protocol() Protocol { return Protocol(h[ipv4OffProtocol]) }

// Checksum returns the Header Checksum field.
func (h IPv4) Checksum() uint16 { return binary.BigEndian.Uint16(h[ipv4OffChecksum:]) }

// Src returns the source address.
func (h IPv4) Src() netip.Addr { return netip.AddrFrom4([4]byte(h[ipv4OffSrc:])) }

// Dst returns the destination address.
func (h IPv4) Dst() netip.Addr { return netip.AddrFrom4([4]byte(h[ipv4OffDst:])) }

// Options returns the options area (HeaderLength()-20 bytes, padding
// included), validated by ParseIPv4.
func (h IPv4) Options() IPv4Options { return IPv4Options(h[ipv4OffOptions:h.HeaderLength()]) }

// Header returns the header, options included.
func (h IPv4) Header() []byte { return h[:h.HeaderLength()] }

// Payload returns the bytes after the header: the whole payload, or for a
// quoted datagram the part of it that was quoted.
func (h IPv4) Payload() []byte { return h[h.HeaderLength():] }

// ComputeChecksum returns the value the Header Checksum field should hold.
func (h IPv4) ComputeChecksum() uint16 {
	hdr := h.Header()
	s := checksum.Sum(hdr[:ipv4OffChecksum], 0)
	s = checksum.Sum(hdr[ipv4OffChecksum+2:], s)
	return ^s
}

// ChecksumValid reports whether the header checksum is correct.
func (h IPv4) ChecksumValid() bool { return checksum.Sum(h.Header(), 0) == 0xffff }

// SetTTL sets the Time to Live and updates the checksum incrementally
// (RFC 1624).
func (h IPv4) SetTTL(ttl uint8) {
	old := binary.BigEndian.Uint16(h[ipv4OffTTL:])
	h[ipv4OffTTL] = ttl
	h.updateChecksum(old, binary.BigEndian.Uint16(h[ipv4OffTTL:]))
}

// SetID sets the Identification and updates the checksum incrementally.
func (h IPv4) SetID(id uint16) {
	old := h.ID()
	binary.BigEndian.PutUint16(h[ipv4OffID:], id)
	h.updateChecksum(old, id)
}

// SetChecksum sets the Header Checksum field.
func (h IPv4) SetChecksum(c uint16) { binary.BigEndian.PutUint16(h[ipv4OffChecksum:], c) }

func (h IPv4) updateChecksum(old, new uint16) {
	h.SetChecksum(checksum.Update(h.Checksum(), old, new))
}

// EncodeFragmentHeader writes into b[:h.HeaderLength()] the header of one
// fragment of h: the payload bytes [offset, offset+length) of h, with MF set
// if more is true (or h itself has MF), the fragment offset, total length
// and checksum recomputed. The fragment's payload is not touched; it goes
// after the header (in b, or in the next element of a gather list). As
// Linux does, options not to be copied into later fragments (RFC 791) are
// overwritten with NOPs rather than removed, so every fragment's header has
// h's length. offset must be a multiple of 8, and so must length unless
// more is false; h must not have DF set.
func (h IPv4) EncodeFragmentHeader(b []byte, offset, length int, more bool) error {
	hl := h.HeaderLength()
	if len(b) < hl {
		return shortBuffer(LayerIPv4, hl, len(b))
	}
	switch {
	case h.DF():
		return invalidField(LayerIPv4, "flags", "DF is set")
	case offset < 0 || length < 0 || offset+length > len(h.Payload()):
		return invalidField(LayerIPv4, "fragment", "bytes ["+strconv.Itoa(offset)+", "+
			strconv.Itoa(offset+length)+") outside the payload of "+strconv.Itoa(len(h.Payload())))
	case offset%IPv4FragmentUnit != 0 || (more && length%IPv4FragmentUnit != 0):
		return invalidField(LayerIPv4, "fragment", "offset "+strconv.Itoa(offset)+" or length "+
			strconv.Itoa(length)+" of a non-last fragment is not a multiple of 8")
	}
	off := h.FragmentOffsetBytes() + offset
	if off+hl+length > IPv4MaxTotalLength {
		return invalidField(LayerIPv4, "fragment offset", "fragment ends at "+
			strconv.Itoa(off+hl+length)+", beyond 65535")
	}
	copy(b, h[:hl])
	f := IPv4(b[:hl])
	if offset > 0 {
		// Later fragments carry only the options whose copied flag is set.
		for o := IPv4Options(f[ipv4OffOptions:]); len(o) > 0; {
			opt, rest, ok := o.Next()
			if !ok {
				break
			}
			if n := len(o) - len(rest); !opt.Type.Copied() {
				for i := range n {
					o[i] = byte(IPv4OptionNOP)
				}
			}
			o = rest
		}
	}
	flags := h.Flags() &^ IPv4FlagReserved
	if more {
		flags |= IPv4FlagMF
	}
	binary.BigEndian.PutUint16(f[ipv4OffTotalLen:], uint16(hl+length))
	binary.BigEndian.PutUint16(f[ipv4OffFlagsFrag:], uint16(flags)<<13|uint16(off/IPv4FragmentUnit))
	f.SetChecksum(f.ComputeChecksum())
	return nil
}

// IPv4OptionType is an option-type octet: copied flag, class and number.
type IPv4OptionType uint8

// IPv4 option types.
const (
	IPv4OptionEOL         IPv4OptionType = 0   // end of option list
	IPv4OptionNOP         IPv4OptionType = 1   // no operation
	IPv4OptionRecordRoute IPv4OptionType = 7   // RFC 791
	IPv4OptionTimestamp   IPv4OptionType = 68  // RFC 791
	IPv4OptionSecurity    IPv4OptionType = 130 // RFC 1108
	IPv4OptionLSRR        IPv4OptionType = 131 // loose source and record route
	IPv4OptionSSRR        IPv4OptionType = 137 // strict source and record route
	IPv4OptionRouterAlert IPv4OptionType = 148 // RFC 2113
)

// Copied reports whether the option is copied into every fragment.
func (t IPv4OptionType) Copied() bool { return t&0x80 != 0 }

// Class returns the option class (0 control, 2 debugging and measurement).
func (t IPv4OptionType) Class() uint8 { return uint8(t>>5) & 3 }

// Number returns the option number.
func (t IPv4OptionType) Number() uint8 { return uint8(t) & 0x1f }

// IPv4Option is one option of an IPv4 header.
type IPv4Option struct {
	Type IPv4OptionType
	Data []byte // after the type and length octets; nil for NOP
}

// IPv4Options is the options area of an IPv4 header.
type IPv4Options []byte

// Next returns the first option and the options after it; ok is false at the
// end of the list (no bytes left, or EOL), and also where the list is
// malformed, which it never is in a view from ParseIPv4.
func (o IPv4Options) Next() (opt IPv4Option, rest IPv4Options, ok bool) {
	if len(o) == 0 || IPv4OptionType(o[0]) == IPv4OptionEOL {
		return IPv4Option{}, nil, false
	}
	t := IPv4OptionType(o[0])
	if t == IPv4OptionNOP {
		return IPv4Option{Type: t}, o[1:], true
	}
	if len(o) < 2 || o[1] < 2 || int(o[1]) > len(o) {
		return IPv4Option{}, nil, false
	}
	l := int(o[1])
	return IPv4Option{Type: t, Data: o[2:l]}, o[l:], true
}

// All iterates over the options in order, NOPs included, up to EOL.
func (o IPv4Options) All() iter.Seq[IPv4Option] {
	return func(yield func(IPv4Option) bool) {
		for {
			opt, rest, ok := o.Next()
			if !ok || !yield(opt) {
				return
			}
			o = rest
		}
	}
}

// IPv4Fields describes an IPv4 header to encode.
type IPv4Fields struct {
	TOS            uint8
	TotalLength    uint16 // header and payload
	ID             uint16
	Flags          IPv4Flags
	FragmentOffset uint16 // in units of 8 bytes
	TTL            uint8
	Protocol       Protocol
	Src, Dst       netip.Addr // IPv4
	// Options is a well-formed option list, padded by Encode with zeros
	// (EOL) to a multiple of 4 bytes; at most IPv4MaxOptionsLen bytes.
	Options []byte
}

// HeaderLen returns the number of bytes Encode writes.
func (f IPv4Fields) HeaderLen() int { return IPv4MinHeaderLen + (len(f.Options)+3)&^3 }

// Encode writes the header, with its checksum, into b[:f.HeaderLen()].
func (f IPv4Fields) Encode(b []byte) error {
	hl := f.HeaderLen()
	switch {
	case len(b) < hl:
		return shortBuffer(LayerIPv4, hl, len(b))
	case !f.Src.Is4() || !f.Dst.Is4():
		return invalidField(LayerIPv4, "address", "not IPv4: "+f.Src.String()+", "+f.Dst.String())
	case len(f.Options) > IPv4MaxOptionsLen:
		return invalidField(LayerIPv4, "options", strconv.Itoa(len(f.Options))+" bytes > 40")
	case int(f.TotalLength) < hl:
		return invalidField(LayerIPv4, "total length", strconv.Itoa(int(f.TotalLength))+
			" < header length "+strconv.Itoa(hl))
	case f.Flags > 7 || f.FragmentOffset > 0x1fff:
		return invalidField(LayerIPv4, "flags/fragment offset", "out of range")
	}
	if err := checkIPv4Options(f.Options, ipv4OffOptions); err != nil {
		return invalidField(LayerIPv4, "options", err.Error())
	}
	b[ipv4OffVersionIHL] = IPv4Version<<4 | uint8(hl/4)
	b[ipv4OffTOS] = f.TOS
	binary.BigEndian.PutUint16(b[ipv4OffTotalLen:], f.TotalLength)
	binary.BigEndian.PutUint16(b[ipv4OffID:], f.ID)
	binary.BigEndian.PutUint16(b[ipv4OffFlagsFrag:], uint16(f.Flags)<<13|f.FragmentOffset)
	b[ipv4OffTTL] = f.TTL
	b[ipv4OffProtocol] = uint8(f.Protocol)
	binary.BigEndian.PutUint16(b[ipv4OffChecksum:], 0)
	src, dst := f.Src.As4(), f.Dst.As4()
	copy(b[ipv4OffSrc:], src[:])
	copy(b[ipv4OffDst:], dst[:])
	n := copy(b[ipv4OffOptions:hl], f.Options)
	clear(b[ipv4OffOptions+n : hl])
	binary.BigEndian.PutUint16(b[ipv4OffChecksum:], ^checksum.Sum(b[:hl], 0))
	return nil
}
