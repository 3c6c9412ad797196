package ip

import (
	"encoding/binary"
	"net/netip"
	"strconv"

	"github.com/tapstack/tapstack/checksum"
)

// ICMPv4HeaderLen is the length of the fixed part of every ICMPv4 message:
// type, code, checksum and four type-specific bytes (RFC 792).
const ICMPv4HeaderLen = 8

const (
	icmpOffType     = 0
	icmpOffCode     = 1
	icmpOffChecksum = 2
	icmpOffRest     = 4 // identifier, pointer, gateway address or MTU
	icmpOffSeq      = 6
)

// ICMPv4Type is an ICMPv4 message type.
type ICMPv4Type uint8

// ICMPv4 message types (RFC 792, RFC 950, RFC 1256).
const (
	ICMPv4EchoReply              ICMPv4Type = 0
	ICMPv4DestinationUnreachable ICMPv4Type = 3
	ICMPv4SourceQuench           ICMPv4Type = 4 // deprecated by RFC 6633
	ICMPv4Redirect               ICMPv4Type = 5
	ICMPv4Echo                   ICMPv4Type = 8
	ICMPv4RouterAdvertisement    ICMPv4Type = 9
	ICMPv4RouterSolicitation     ICMPv4Type = 10
	ICMPv4TimeExceeded           ICMPv4Type = 11
	ICMPv4ParameterProblem       ICMPv4Type = 12
	ICMPv4Timestamp              ICMPv4Type = 13
	ICMPv4TimestampReply         ICMPv4Type = 14
	ICMPv4InfoRequest            ICMPv4Type = 15 // obsolete
	ICMPv4InfoReply              ICMPv4Type = 16 // obsolete
)

func (t ICMPv4Type) String() string {
	switch t {
	case ICMPv4EchoReply:
		return "echo reply"
	case ICMPv4DestinationUnreachable:
		return "destination unreachable"
	case ICMPv4SourceQuench:
		return "source quench"
	case ICMPv4Redirect:
		return "redirect"
	case ICMPv4Echo:
		return "echo"
	case ICMPv4RouterAdvertisement:
		return "router advertisement"
	case ICMPv4RouterSolicitation:
		return "router solicitation"
	case ICMPv4TimeExceeded:
		return "time exceeded"
	case ICMPv4ParameterProblem:
		return "parameter problem"
	case ICMPv4Timestamp:
		return "timestamp"
	case ICMPv4TimestampReply:
		return "timestamp reply"
	case ICMPv4InfoRequest:
		return "information request"
	case ICMPv4InfoReply:
		return "information reply"
	}
	return "type(" + strconv.Itoa(int(t)) + ")"
}

// IsError reports whether messages of type t are errors that quote the
// datagram that caused them (RFC 792, RFC 1812 §4.3.2.3).
func (t ICMPv4Type) IsError() bool {
	switch t {
	case ICMPv4DestinationUnreachable, ICMPv4SourceQuench, ICMPv4Redirect,
		ICMPv4TimeExceeded, ICMPv4ParameterProblem:
		return true
	}
	return false
}

// hasIDSeq reports whether messages of type t carry an identifier and a
// sequence number in their header.
func (t ICMPv4Type) hasIDSeq() bool {
	switch t {
	case ICMPv4EchoReply, ICMPv4Echo, ICMPv4Timestamp, ICMPv4TimestampReply,
		ICMPv4InfoRequest, ICMPv4InfoReply:
		return true
	}
	return false
}

// ICMPv4Code is an ICMPv4 message code; its meaning depends on the type.
type ICMPv4Code uint8

// Codes of ICMPv4DestinationUnreachable (RFC 792, RFC 1122, RFC 1812).
const (
	ICMPv4NetUnreachable          ICMPv4Code = 0
	ICMPv4HostUnreachable         ICMPv4Code = 1
	ICMPv4ProtocolUnreachable     ICMPv4Code = 2
	ICMPv4PortUnreachable         ICMPv4Code = 3
	ICMPv4FragmentationNeeded     ICMPv4Code = 4 // and DF set; carries the next-hop MTU (RFC 1191)
	ICMPv4SourceRouteFailed       ICMPv4Code = 5
	ICMPv4NetUnknown              ICMPv4Code = 6
	ICMPv4HostUnknown             ICMPv4Code = 7
	ICMPv4SourceHostIsolated      ICMPv4Code = 8
	ICMPv4NetProhibited           ICMPv4Code = 9
	ICMPv4HostProhibited          ICMPv4Code = 10
	ICMPv4NetUnreachableForTOS    ICMPv4Code = 11
	ICMPv4HostUnreachableForTOS   ICMPv4Code = 12
	ICMPv4CommunicationProhibited ICMPv4Code = 13
	ICMPv4HostPrecedenceViolation ICMPv4Code = 14
	ICMPv4PrecedenceCutoff        ICMPv4Code = 15
)

// Codes of ICMPv4TimeExceeded.
const (
	ICMPv4TTLExceeded        ICMPv4Code = 0 // time to live exceeded in transit
	ICMPv4ReassemblyExceeded ICMPv4Code = 1 // fragment reassembly time exceeded
)

// Codes of ICMPv4Redirect.
const (
	ICMPv4RedirectNet     ICMPv4Code = 0
	ICMPv4RedirectHost    ICMPv4Code = 1
	ICMPv4RedirectTOSNet  ICMPv4Code = 2
	ICMPv4RedirectTOSHost ICMPv4Code = 3
)

// Codes of ICMPv4ParameterProblem.
const (
	ICMPv4PointerIndicatesError ICMPv4Code = 0
	ICMPv4MissingOption         ICMPv4Code = 1 // RFC 1108
	ICMPv4BadLength             ICMPv4Code = 2 // RFC 1812
)

// ICMPv4 is a view of an ICMPv4 message: the 8-byte header and the body
// after it. Obtain it from ParseICMPv4.
type ICMPv4 []byte

// ParseICMPv4 checks that b holds at least an ICMPv4 header and returns a
// view of all of b (the IP layer has already cut b to the datagram's
// length). The checksum is not verified: see ChecksumValid. The datagram
// quoted by an error message is checked when OriginalDatagram is called.
func ParseICMPv4(b []byte) (ICMPv4, error) {
	if len(b) < ICMPv4HeaderLen {
		return nil, truncated(LayerICMPv4, "header", 0, ICMPv4HeaderLen, len(b))
	}
	return ICMPv4(b), nil
}

// Type returns the message type.
func (m ICMPv4) Type() ICMPv4Type { return ICMPv4Type(m[icmpOffType]) }

// Code returns the message code.
func (m ICMPv4) Code() ICMPv4Code { return ICMPv4Code(m[icmpOffCode]) }

// Checksum returns the Checksum field.
func (m ICMPv4) Checksum() uint16 { return binary.BigEndian.Uint16(m[icmpOffChecksum:]) }

// RestOfHeader returns the four type-specific header bytes as one word.
func (m ICMPv4) RestOfHeader() uint32 { return binary.BigEndian.Uint32(m[icmpOffRest:]) }

// ID returns the Identifier of an echo, timestamp or information message
// (and the first half of RestOfHeader for other types).
func (m ICMPv4) ID() uint16 { return binary.BigEndian.Uint16(m[icmpOffRest:]) }

// Seq returns the Sequence Number of an echo, timestamp or information
// message (and the second half of RestOfHeader for other types).
func (m ICMPv4) Seq() uint16 { return binary.BigEndian.Uint16(m[icmpOffSeq:]) }

// Pointer returns the octet of the original header a parameter problem
// points at.
func (m ICMPv4) Pointer() uint8 { return m[icmpOffRest] }

// Gateway returns the gateway address of a redirect.
func (m ICMPv4) Gateway() netip.Addr { return netip.AddrFrom4([4]byte(m[icmpOffRest:])) }

// NextHopMTU returns the next-hop MTU of a "fragmentation needed"
// destination unreachable (RFC 1191); 0 from routers predating it.
func (m ICMPv4) NextHopMTU() uint16 { return binary.BigEndian.Uint16(m[icmpOffSeq:]) }

// Payload returns the body after the 8-byte header: an echo's data, or the
// quoted datagram of an error.
func (m ICMPv4) Payload() []byte { return m[ICMPv4HeaderLen:] }

// ChecksumValid reports whether the checksum over the whole message is
// correct.
func (m ICMPv4) ChecksumValid() bool { return checksum.Sum(m, 0) == 0xffff }

// OriginalDatagram returns the datagram quoted by an error message: its
// IPv4 header (checked as ParseIPv4 does) and whatever part of its payload
// was quoted (RFC 792 promises 8 bytes, RFC 1812 allows more, some senders
// send fewer). The view's TotalLength is the original datagram's and may
// exceed its length. For a message of a non-error type the error wraps
// ErrUnsupported.
func (m ICMPv4) OriginalDatagram() (IPv4, error) {
	if !m.Type().IsError() {
		return nil, unsupported(LayerICMPv4, "type", icmpOffType, m.Type().String()+" quotes no datagram")
	}
	b := m.Payload()
	hl, err := parseIPv4Header(b)
	if err != nil {
		if pe, ok := err.(*ParseError); ok {
			pe.Layer = LayerICMPv4
			pe.Field = "original datagram " + pe.Field
			pe.Offset += ICMPv4HeaderLen
		}
		return nil, err
	}
	if tl := int(binary.BigEndian.Uint16(b[ipv4OffTotalLen:])); tl < hl {
		return nil, malformed(LayerICMPv4, "original datagram total length", ICMPv4HeaderLen+ipv4OffTotalLen,
			"total length "+strconv.Itoa(tl)+" < header length "+strconv.Itoa(hl))
	} else if tl < len(b) {
		b = b[:tl] // the whole datagram and some padding was quoted
	}
	return IPv4(b), nil
}

// ICMPv4Fields describes an ICMPv4 header to encode. Which of ID/Seq,
// Pointer, Gateway and NextHopMTU is written depends on Type; the four
// type-specific bytes are zero for types that use none of them.
type ICMPv4Fields struct {
	Type       ICMPv4Type
	Code       ICMPv4Code
	ID, Seq    uint16     // echo, timestamp, information
	Pointer    uint8      // parameter problem
	Gateway    netip.Addr // redirect; IPv4
	NextHopMTU uint16     // destination unreachable, fragmentation needed
}

// Encode writes the header into msg[:ICMPv4HeaderLen] and the checksum over
// all of msg, which must already hold the body after the header.
func (f ICMPv4Fields) Encode(msg []byte) error {
	if len(msg) < ICMPv4HeaderLen {
		return shortBuffer(LayerICMPv4, ICMPv4HeaderLen, len(msg))
	}
	var rest [4]byte
	switch {
	case f.Type.hasIDSeq():
		binary.BigEndian.PutUint16(rest[0:], f.ID)
		binary.BigEndian.PutUint16(rest[2:], f.Seq)
	case f.Type == ICMPv4ParameterProblem:
		rest[0] = f.Pointer
	case f.Type == ICMPv4Redirect:
		if !f.Gateway.Is4() {
			return invalidField(LayerICMPv4, "gateway", "not IPv4: "+f.Gateway.String())
		}
		rest = f.Gateway.As4()
	case f.Type == ICMPv4DestinationUnreachable && f.Code == ICMPv4FragmentationNeeded:
		binary.BigEndian.PutUint16(rest[2:], f.NextHopMTU)
	}
	msg[icmpOffType] = uint8(f.Type)
	msg[icmpOffCode] = uint8(f.Code)
	binary.BigEndian.PutUint16(msg[icmpOffChecksum:], 0)
	copy(msg[icmpOffRest:], rest[:])
	binary.BigEndian.PutUint16(msg[icmpOffChecksum:], ^checksum.Sum(msg, 0))
	return nil
}
