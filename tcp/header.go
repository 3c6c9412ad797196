package tcp

import (
	"encoding/binary"
	"strconv"
	"strings"

	"github.com/tapstack/tapstack/checksum"
	"github.com/tapstack/tapstack/tcp/seq"
)

// Sizes and offsets of the fixed header (RFC 9293 §3.1).
const (
	HeaderMinLen   = 20 // the fixed header, data offset 5
	HeaderMaxLen   = 60 // data offset 15
	MaxOptionsLen  = HeaderMaxLen - HeaderMinLen
	ChecksumOffset = 16 // where the checksum field sits, for offloads (virtio-net csum_offset)
)

const (
	srcPortOff    = 0
	dstPortOff    = 2
	seqNumOff     = 4
	ackNumOff     = 8
	dataOffOff    = 12
	flagsOff      = 13
	windowOff     = 14
	urgentPtrOff  = 18
	dataOffsetMin = HeaderMinLen / 4
)

// Flags is the set of control bits in byte 13 of the header. The AE bit of
// RFC 9768 (formerly NS, RFC 3540), in byte 12, is not among them.
type Flags uint8

// Control bits, RFC 9293 §3.1 and RFC 3168 §6.1 (ECE, CWR).
const (
	FIN Flags = 1 << iota
	SYN
	RST
	PSH
	ACK
	URG
	ECE
	CWR
)

var flagNames = [8]string{"FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"}

// Contains reports whether every bit of g is set in f.
func (f Flags) Contains(g Flags) bool { return f&g == g }

// Intersects reports whether any bit of g is set in f.
func (f Flags) Intersects(g Flags) bool { return f&g != 0 }

// String names the set bits, lowest first, e.g. "SYN|ACK"; no bits is "none".
func (f Flags) String() string {
	if f == 0 {
		return "none"
	}
	var sb strings.Builder
	for i, name := range flagNames {
		if f&(1<<i) != 0 {
			if sb.Len() > 0 {
				sb.WriteByte('|')
			}
			sb.WriteString(name)
		}
	}
	return sb.String()
}

// Header is a view over a TCP segment: the fixed header, the options, then
// the payload. Get one from ParseHeader; accessors of a Header made any
// other way may panic.
type Header []byte

// ParseHeader checks that b holds a well-formed TCP segment and returns a view
// over it. It checks that b holds the fixed header, that the data offset is at
// least 5 words and within b, and that the option list can be walked (see
// ParseOptions). It does not verify the checksum (see ChecksumValid) and does
// not judge the flags. After it succeeds no accessor can panic.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderMinLen {
		return nil, parseErr(shortHeader, len(b))
	}
	h := Header(b)
	switch doff := h.DataOffset(); {
	case doff < dataOffsetMin:
		return nil, parseErr(dataOffsetSmall, dataOffOff)
	case int(doff)*4 > len(b):
		return nil, parseErr(dataOffsetPastEnd, dataOffOff)
	}
	var o Options
	if err := parseOptions(h.Options(), HeaderMinLen, &o); err != nil {
		return nil, err
	}
	return h, nil
}

// SrcPort returns the Source Port.
func (h Header) SrcPort() uint16 { return binary.BigEndian.Uint16(h[srcPortOff:]) }

// DstPort returns the Destination Port.
func (h Header) DstPort() uint16 { return binary.BigEndian.Uint16(h[dstPortOff:]) }

// SeqNum returns the Sequence Number, SEG.SEQ.
func (h Header) SeqNum() seq.Value { return seq.Value(binary.BigEndian.Uint32(h[seqNumOff:])) }

// AckNum returns the Acknowledgment Number, SEG.ACK; it means something only
// when the ACK flag is set.
func (h Header) AckNum() seq.Value { return seq.Value(binary.BigEndian.Uint32(h[ackNumOff:])) }

// DataOffset returns the Data Offset: the header length in 32-bit words.
func (h Header) DataOffset() uint8 { return h[dataOffOff] >> 4 }

// HeaderLen returns the header length in bytes, options included.
func (h Header) HeaderLen() int { return int(h.DataOffset()) * 4 }

// Flags returns the control bits.
func (h Header) Flags() Flags { return Flags(h[flagsOff]) }

// Window returns the Window field as sent: unscaled.
func (h Header) Window() uint16 { return binary.BigEndian.Uint16(h[windowOff:]) }

// Checksum returns the Checksum field.
func (h Header) Checksum() uint16 { return binary.BigEndian.Uint16(h[ChecksumOffset:]) }

// UrgentPtr returns the Urgent Pointer; it means something only when the URG
// flag is set.
func (h Header) UrgentPtr() uint16 { return binary.BigEndian.Uint16(h[urgentPtrOff:]) }

// Options returns the raw option bytes, padding included.
func (h Header) Options() []byte { return h[HeaderMinLen:h.HeaderLen()] }

// DecodeOptions returns the parsed options. ParseHeader has already
// validated the list, so there is no error to report.
func (h Header) DecodeOptions() Options {
	var o Options
	parseOptions(h.Options(), HeaderMinLen, &o)
	return o
}

// Payload returns the segment's data: everything after the header.
func (h Header) Payload() []byte { return h[h.HeaderLen():] }

// ChecksumValid reports whether the Checksum field is right for the segment.
// pseudo is the pseudo-header sum for this segment, from
// checksum.PseudoHeaderV4 or PseudoHeaderV6 with protocol 6 and length len(h).
func (h Header) ChecksumValid(pseudo uint16) bool {
	return checksum.Sum(h, pseudo) == 0xffff
}

// String summarises the segment for logs and test failures, in the manner of
// tcpdump: "47714 > 9001 SYN|ACK seq=1 ack=2 win=65160 len=0".
func (h Header) String() string {
	b := make([]byte, 0, 96)
	b = strconv.AppendUint(b, uint64(h.SrcPort()), 10)
	b = append(b, " > "...)
	b = strconv.AppendUint(b, uint64(h.DstPort()), 10)
	b = append(b, ' ')
	b = append(b, h.Flags().String()...)
	b = append(b, " seq="...)
	b = strconv.AppendUint(b, uint64(h.SeqNum()), 10)
	b = append(b, " ack="...)
	b = strconv.AppendUint(b, uint64(h.AckNum()), 10)
	b = append(b, " win="...)
	b = strconv.AppendUint(b, uint64(h.Window()), 10)
	b = append(b, " len="...)
	b = strconv.AppendInt(b, int64(len(h.Payload())), 10)
	return string(b)
}

// HeaderFields holds the values of a header to encode.
type HeaderFields struct {
	SrcPort   uint16
	DstPort   uint16
	SeqNum    seq.Value
	AckNum    seq.Value
	Flags     Flags
	Window    uint16 // as sent: already scaled down
	UrgentPtr uint16

	// Options are encoded in Linux's layout (see Options.Encode); the zero
	// value encodes to nothing.
	Options Options
	// RawOptions, if set, are copied as they are instead: whole 32-bit words,
	// at most 40 bytes, padding included. Options must then be zero.
	RawOptions []byte
}

// HeaderLen returns the length of the header Encode writes, options included.
func (f *HeaderFields) HeaderLen() int {
	if len(f.RawOptions) > 0 {
		return HeaderMinLen + len(f.RawOptions)
	}
	return HeaderMinLen + f.Options.EncodedLen()
}

// Encode writes the header into b[:f.HeaderLen()], complete with its
// checksum, and returns its length. The payload follows the header, usually
// already in place in b; Encode does not read it but takes its sum,
// payloadSum = checksum.Sum(payload, 0), which the caller may have from
// copying it. pseudo is the pseudo-header sum whose length is that of the
// whole segment, header included. Writing into headroom:
//
//	hl := f.HeaderLen()
//	seg := buf[payloadOff-hl : payloadOff+payloadLen]
//	pseudo := checksum.PseudoHeaderV4(src, dst, 6, uint16(len(seg)))
//	n, err := f.Encode(seg, pseudo, checksum.Sum(seg[hl:], 0))
func (f *HeaderFields) Encode(b []byte, pseudo, payloadSum uint16) (int, error) {
	n, err := f.encode(b)
	if err != nil {
		return 0, err
	}
	sum := checksum.Combine(checksum.Combine(pseudo, checksum.Sum(b[:n], 0)), payloadSum)
	binary.BigEndian.PutUint16(b[ChecksumOffset:], ^sum)
	return n, nil
}

// EncodePartial is Encode for a device that completes the checksum itself
// (virtio-net's NEEDS_CSUM, csum_start at the header, csum_offset
// ChecksumOffset): the checksum field holds the folded pseudo-header sum,
// not complemented, and the payload is not summed at all.
func (f *HeaderFields) EncodePartial(b []byte, pseudo uint16) (int, error) {
	n, err := f.encode(b)
	if err != nil {
		return 0, err
	}
	binary.BigEndian.PutUint16(b[ChecksumOffset:], pseudo)
	return n, nil
}

// encode writes the header with a zero checksum field.
func (f *HeaderFields) encode(b []byte) (int, error) {
	if len(f.RawOptions) > 0 && (len(f.RawOptions)%4 != 0 || len(f.RawOptions) > MaxOptionsLen || f.Options != (Options{})) {
		return 0, ErrRawOptions
	}
	n := f.HeaderLen()
	if len(b) < n {
		return 0, ErrShortBuffer
	}
	h := b[:n]
	binary.BigEndian.PutUint16(h[srcPortOff:], f.SrcPort)
	binary.BigEndian.PutUint16(h[dstPortOff:], f.DstPort)
	binary.BigEndian.PutUint32(h[seqNumOff:], uint32(f.SeqNum))
	binary.BigEndian.PutUint32(h[ackNumOff:], uint32(f.AckNum))
	h[dataOffOff] = uint8(n/4) << 4
	h[flagsOff] = uint8(f.Flags)
	binary.BigEndian.PutUint16(h[windowOff:], f.Window)
	binary.BigEndian.PutUint16(h[ChecksumOffset:], 0)
	binary.BigEndian.PutUint16(h[urgentPtrOff:], f.UrgentPtr)
	if len(f.RawOptions) > 0 {
		copy(h[HeaderMinLen:], f.RawOptions)
	} else {
		f.Options.encode(h[HeaderMinLen:])
	}
	return n, nil
}
