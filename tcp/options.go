package tcp

import (
	"encoding/binary"
	"strconv"

	"github.com/tapstack/tapstack/tcp/seq"
)

// Option kinds (IANA "TCP Option Kind Numbers") and their lengths.
const (
	optEnd         = 0  // RFC 9293 §3.2
	optNOP         = 1  // RFC 9293 §3.2
	optMSS         = 2  // RFC 9293 §3.2
	optWindowScale = 3  // RFC 7323 §2
	optSACKPerm    = 4  // RFC 2018 §2
	optSACK        = 5  // RFC 2018 §3
	optTimestamps  = 8  // RFC 7323 §3
	lenMSS         = 4  //
	lenWindowScale = 3  //
	lenSACKPerm    = 2  //
	lenTimestamps  = 10 //
	lenSACKBase    = 2  // kind, length
	lenSACKBlock   = 8  // left and right edge
)

const (
	// MaxWindowScale is the largest window shift RFC 7323 §2.3 allows.
	MaxWindowScale = 14
	// MaxSACKBlocks is the most SACK blocks the 40-byte option area can
	// hold: (40 - 2) / 8.
	MaxSACKBlocks = 4
)

// SACKBlock is one block of a SACK option (RFC 2018 §3): the receiver holds
// [Left, Right).
type SACKBlock struct {
	Left, Right seq.Value
}

// Options holds the TCP options this stack understands. The zero value is
// "no options". It is a plain value: parsing or encoding it never allocates.
//
// MSS, window scale and SACK-permitted mean something only on a SYN (RFC 9293
// §3.7.1, RFC 7323 §2.2, RFC 2018 §2): the parser reports them wherever they
// appear, and the connection must ignore them elsewhere, as Linux does.
type Options struct {
	MSS    uint16 // Maximum Segment Size; 0 is reported as received (Linux ignores it)
	HasMSS bool

	WindowScale    uint8 // shift count, at most MaxWindowScale
	HasWindowScale bool

	SACKPermitted bool

	HasTimestamps bool
	TSVal         uint32
	TSEcr         uint32

	NumSACK    int // valid entries in SACKBlocks
	SACKBlocks [MaxSACKBlocks]SACKBlock
}

// SACK returns the SACK blocks present.
func (o *Options) SACK() []SACKBlock { return o.SACKBlocks[:o.numSACK()] }

func (o *Options) numSACK() int { return min(max(o.NumSACK, 0), MaxSACKBlocks) }

// ParseOptions parses an option area: the bytes between the fixed header and
// the data offset, at most 40 of them (more is ErrMalformed).
//
// A list it cannot walk is rejected with a *ParseError wrapping ErrBadOption:
// a length byte below 2, an option running past the area, or a kind byte with
// no room for its length. (Linux instead stops reading at such an option and
// keeps the segment; a sender that builds its list correctly never produces
// one, so we drop what is corrupt or crafted.) Within a walkable list:
//   - End of Option List ends the walk; what follows is padding and is ignored.
//   - Unknown options are skipped by their length.
//   - A known option with the wrong length is skipped, as Linux does, not
//     rejected: the segment still carries data and ACK the peer needs.
//   - A window scale above 14 is taken as 14 (RFC 7323 §2.3, and Linux).
//   - An option that appears twice: the last one counts, as in Linux.
//
// The walk consumes at least one byte per step, so it is bounded by the
// 40-byte area.
func ParseOptions(b []byte) (Options, error) {
	var o Options
	if len(b) > MaxOptionsLen {
		return o, parseErr(optionAreaLong, MaxOptionsLen)
	}
	if err := parseOptions(b, 0, &o); err != nil {
		return Options{}, err
	}
	return o, nil
}

// parseOptions parses b (at most 40 bytes) into o; base is b's offset in what
// the caller parses, for error offsets.
func parseOptions(b []byte, base int, o *Options) *ParseError {
	for i := 0; i < len(b); {
		kind := b[i]
		switch kind {
		case optEnd:
			return nil
		case optNOP:
			i++
			continue
		}
		if i+1 >= len(b) {
			return parseErr(optionNoLength, base+i+1)
		}
		n := int(b[i+1])
		if n < 2 {
			return parseErr(optionLengthSmall, base+i+1)
		}
		if i+n > len(b) {
			return parseErr(optionPastEnd, base+i+1)
		}
		body := b[i+2 : i+n]
		switch kind {
		case optMSS:
			if n == lenMSS {
				o.MSS = binary.BigEndian.Uint16(body)
				o.HasMSS = true
			}
		case optWindowScale:
			if n == lenWindowScale {
				o.WindowScale = min(body[0], MaxWindowScale)
				o.HasWindowScale = true
			}
		case optSACKPerm:
			if n == lenSACKPerm {
				o.SACKPermitted = true
			}
		case optTimestamps:
			if n == lenTimestamps {
				o.TSVal = binary.BigEndian.Uint32(body)
				o.TSEcr = binary.BigEndian.Uint32(body[4:])
				o.HasTimestamps = true
			}
		case optSACK:
			// Length 10, 18, 26 or 34; a 42-byte option cannot fit the area.
			if n >= lenSACKBase+lenSACKBlock && (n-lenSACKBase)%lenSACKBlock == 0 {
				o.NumSACK = (n - lenSACKBase) / lenSACKBlock
				o.SACKBlocks = [MaxSACKBlocks]SACKBlock{} // no stale blocks from an earlier SACK option
				for k := range o.NumSACK {
					blk := body[k*lenSACKBlock:]
					o.SACKBlocks[k] = SACKBlock{
						Left:  seq.Value(binary.BigEndian.Uint32(blk)),
						Right: seq.Value(binary.BigEndian.Uint32(blk[4:])),
					}
				}
			}
		}
		i += n
	}
	return nil
}

// EncodedLen returns the number of bytes Encode writes: a multiple of 4, at
// most 40.
func (o *Options) EncodedLen() int {
	n := o.fixedLen()
	if k := o.sackFit(n); k > 0 {
		n += 4 + k*lenSACKBlock
	}
	return n
}

// fixedLen is the length of everything but the SACK option.
func (o *Options) fixedLen() int {
	n := 0
	if o.HasMSS {
		n += 4
	}
	if o.HasTimestamps {
		n += 12 // SACK-permitted, if set, rides in the timestamps' padding
	} else if o.SACKPermitted {
		n += 4
	}
	if o.HasWindowScale {
		n += 4
	}
	return n
}

// sackFit returns how many SACK blocks fit after used bytes of options.
func (o *Options) sackFit(used int) int {
	return min(o.numSACK(), max((MaxOptionsLen-used-4)/lenSACKBlock, 0))
}

// Encode writes the options into b in Linux's layout (tcp_options_write in
// net/ipv4/tcp_output.c) and returns the length written, EncodedLen(), a
// multiple of 4 needing no further padding. Every option is aligned the way
// Linux aligns it:
//
//	MSS                 02 04 mss
//	SACK-permitted+TS   04 02 08 0a tsval tsecr   (TS alone: 01 01 08 0a ...)
//	SACK-permitted      01 01 04 02               (only without timestamps)
//	window scale        01 03 03 shift
//	SACK                01 01 05 len blocks...
//
// so a SYN reads MSS, SACKOK, TS, NOP, WS and a data segment NOP, NOP, TS
// then NOP, NOP, SACK. SACK blocks that do not fit in the 40 bytes are left
// out from the last one back, as Linux does; put the most recent block first
// (RFC 2018 §4). A window scale above 14 is written as 14.
// If b is shorter than EncodedLen, Encode writes nothing and returns
// ErrShortBuffer.
func (o *Options) Encode(b []byte) (int, error) {
	if len(b) < o.EncodedLen() {
		return 0, ErrShortBuffer
	}
	return o.encode(b), nil
}

// encode is Encode once b is known to be long enough.
func (o *Options) encode(b []byte) int {
	i := 0
	if o.HasMSS {
		b[i], b[i+1] = optMSS, lenMSS
		binary.BigEndian.PutUint16(b[i+2:], o.MSS)
		i += 4
	}
	if o.HasTimestamps {
		if o.SACKPermitted {
			b[i], b[i+1] = optSACKPerm, lenSACKPerm
		} else {
			b[i], b[i+1] = optNOP, optNOP
		}
		b[i+2], b[i+3] = optTimestamps, lenTimestamps
		binary.BigEndian.PutUint32(b[i+4:], o.TSVal)
		binary.BigEndian.PutUint32(b[i+8:], o.TSEcr)
		i += 12
	} else if o.SACKPermitted {
		b[i], b[i+1], b[i+2], b[i+3] = optNOP, optNOP, optSACKPerm, lenSACKPerm
		i += 4
	}
	if o.HasWindowScale {
		b[i], b[i+1], b[i+2], b[i+3] = optNOP, optWindowScale, lenWindowScale, min(o.WindowScale, MaxWindowScale)
		i += 4
	}
	if k := o.sackFit(i); k > 0 {
		b[i], b[i+1], b[i+2], b[i+3] = optNOP, optNOP, optSACK, uint8(lenSACKBase+k*lenSACKBlock)
		i += 4
		for _, blk := range o.SACKBlocks[:k] {
			binary.BigEndian.PutUint32(b[i:], uint32(blk.Left))
			binary.BigEndian.PutUint32(b[i+4:], uint32(blk.Right))
			i += lenSACKBlock
		}
	}
	return i
}

// String lists the options present in the manner of tcpdump, e.g.
// "mss 1460,sackOK,TS val 1 ecr 0,wscale 7".
func (o Options) String() string {
	b := make([]byte, 0, 64)
	sep := func() {
		if len(b) > 0 {
			b = append(b, ',')
		}
	}
	if o.HasMSS {
		b = append(b, "mss "...)
		b = strconv.AppendUint(b, uint64(o.MSS), 10)
	}
	if o.SACKPermitted {
		sep()
		b = append(b, "sackOK"...)
	}
	if o.HasTimestamps {
		sep()
		b = append(b, "TS val "...)
		b = strconv.AppendUint(b, uint64(o.TSVal), 10)
		b = append(b, " ecr "...)
		b = strconv.AppendUint(b, uint64(o.TSEcr), 10)
	}
	if o.HasWindowScale {
		sep()
		b = append(b, "wscale "...)
		b = strconv.AppendUint(b, uint64(o.WindowScale), 10)
	}
	if k := o.numSACK(); k > 0 {
		sep()
		b = append(b, "sack"...)
		for _, blk := range o.SACKBlocks[:k] {
			b = append(b, ' ')
			b = strconv.AppendUint(b, uint64(blk.Left), 10)
			b = append(b, ':')
			b = strconv.AppendUint(b, uint64(blk.Right), 10)
		}
	}
	if len(b) == 0 {
		return "none"
	}
	return string(b)
}
