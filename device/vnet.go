package device

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/tapstack/tapstack/checksum"
)

// Offloads is a set of offloads a device was opened with (Config.Offloads):
// frames then travel with a virtio-net header (VnetHdr) that carries their
// checksum and segmentation metadata.
type Offloads uint8

const (
	// OffloadChecksum: checksums may be left partial both ways. Frames
	// the kernel hands over may carry VnetNeedsCsum; frames written with
	// VnetNeedsCsum get their checksum completed by the kernel.
	OffloadChecksum Offloads = 1 << iota
	// OffloadTSO4: TCP over IPv4 super-segments (up to 64 KiB) both ways:
	// the kernel hands over unsegmented (or GRO-merged) segments and
	// segments the ones written with GSOTCPv4. Needs OffloadChecksum.
	OffloadTSO4
	// OffloadTSO6 is OffloadTSO4 for TCP over IPv6 (GSOTCPv6).
	OffloadTSO6

	// OffloadAll is every offload above.
	OffloadAll = OffloadChecksum | OffloadTSO4 | OffloadTSO6
)

func (o Offloads) String() string {
	if o == 0 {
		return "none"
	}
	s := ""
	for _, x := range []struct {
		bit  Offloads
		name string
	}{{OffloadChecksum, "csum"}, {OffloadTSO4, "tso4"}, {OffloadTSO6, "tso6"}} {
		if o&x.bit != 0 {
			if s != "" {
				s += "+"
			}
			s += x.name
		}
	}
	if rest := o &^ OffloadAll; rest != 0 {
		if s != "" {
			s += "+"
		}
		s += fmt.Sprintf("%#x", uint8(rest))
	}
	return s
}

// check refuses sets the kernel would: unknown bits, TSO without checksum
// offload.
func (o Offloads) check() error {
	if o&^OffloadAll != 0 {
		return fmt.Errorf("unknown offload bits %#x", uint8(o&^OffloadAll))
	}
	if o&(OffloadTSO4|OffloadTSO6) != 0 && o&OffloadChecksum == 0 {
		return errors.New("TSO needs checksum offload")
	}
	return nil
}

// VnetHdrLen is the length of the virtio-net header (struct virtio_net_hdr)
// in front of each frame of a device with offloads; it fits in Headroom.
const VnetHdrLen = 10

// MaxOffloadFrameSize is the largest frame a device with TSO offloads
// delivers, not counting headroom: a 64 KiB IP packet (the kernel's default
// gso_max_size and gro_max_size) behind an Ethernet header with one VLAN
// tag. Receive buffers for ReadBatchOffload need Headroom+MaxOffloadFrameSize
// bytes; a longer frame is dropped and counted.
const MaxOffloadFrameSize = 65536 + EthernetHeaderLen + 4

// VnetHdr flags (VIRTIO_NET_HDR_F_*).
const (
	// VnetNeedsCsum: the checksum of the bytes from CsumStart to the end
	// of the frame is not computed; the field at CsumStart+CsumOffset
	// holds the folded pseudo-header sum (not complemented). A frame read
	// with it came from the local kernel's own sockets (or was verified
	// and merged by GRO); CompleteChecksum finishes it.
	VnetNeedsCsum uint8 = 1
	// VnetDataValid: the kernel verified the frame's checksums.
	VnetDataValid uint8 = 2
	// vnetRSCInfo (VIRTIO_NET_HDR_F_RSC_INFO) is a device-to-guest flag of
	// virtio that the tun and packet drivers never set.
	vnetKnownFlags = VnetNeedsCsum | VnetDataValid
)

// VnetHdr GSO types (VIRTIO_NET_HDR_GSO_*).
const (
	GSONone  uint8 = 0    // a frame to send or deliver as it is
	GSOTCPv4 uint8 = 1    // TCP over IPv4, segmented at GSOSize payload bytes
	GSOTCPv6 uint8 = 4    // TCP over IPv6
	GSOUDPL4 uint8 = 5    // UDP over IPv4 or IPv6 (USO), segmented at GSOSize
	GSOECN   uint8 = 0x80 // flag on GSOTCPv4/6: the segments carry CWR
)

// VnetHdr is the virtio-net header: a frame's checksum and segmentation
// metadata. Its zero value describes an ordinary frame with complete
// checksums.
//
// Offsets count from the first byte of the frame: the Ethernet header on a
// TAP or a raw socket, the IP header on a TUN.
type VnetHdr struct {
	Flags   uint8 // VnetNeedsCsum, VnetDataValid
	GSOType uint8 // GSONone, GSOTCPv4, GSOTCPv6, GSOUDPL4, with GSOECN
	// HdrLen is the length of the headers (link, IP, TCP) of a GSO frame,
	// the part repeated in front of every segment. On frames read, the
	// kernel reports the length of the frame's linear head instead, a hint
	// only: parse the headers to know them.
	HdrLen uint16
	// GSOSize is the payload bytes per segment (the MSS) of a GSO frame.
	GSOSize uint16
	// CsumStart and CsumOffset place a partial checksum (VnetNeedsCsum):
	// it covers frame[CsumStart:] and lives at CsumStart+CsumOffset (16
	// for TCP, 6 for UDP).
	CsumStart  uint16
	CsumOffset uint16
}

// Errors of ParseVnetHdr and VnetHdr.Check; they match ErrInvalid.
var (
	errVnetShort   = fmt.Errorf("%w: virtio-net header shorter than %d bytes", ErrInvalid, VnetHdrLen)
	errVnetFlags   = fmt.Errorf("%w: virtio-net header: unknown flags", ErrInvalid)
	errVnetBoth    = fmt.Errorf("%w: virtio-net header: both NEEDS_CSUM and DATA_VALID", ErrInvalid)
	errVnetGSOType = fmt.Errorf("%w: virtio-net header: unknown GSO type", ErrInvalid)
	errVnetGSOSize = fmt.Errorf("%w: virtio-net header: GSO frame with gso_size 0", ErrInvalid)
	errVnetHdrLen  = fmt.Errorf("%w: virtio-net header: hdr_len beyond the frame", ErrInvalid)
	errVnetCsum    = fmt.Errorf("%w: virtio-net header: checksum field beyond the frame", ErrInvalid)
	errVnetCsumOdd = fmt.Errorf("%w: virtio-net header: checksum field at an odd offset", ErrInvalid)
)

// DecodeVnetHdr reads the header from b (at least VnetHdrLen bytes) without
// checking it. Fields are in the host's byte order, as the tun and packet
// drivers use them on little-endian hosts (and without TUNSETVNETLE).
func DecodeVnetHdr(b []byte) (VnetHdr, error) {
	if len(b) < VnetHdrLen {
		return VnetHdr{}, errVnetShort
	}
	return VnetHdr{
		Flags:      b[0],
		GSOType:    b[1],
		HdrLen:     binary.NativeEndian.Uint16(b[2:]),
		GSOSize:    binary.NativeEndian.Uint16(b[4:]),
		CsumStart:  binary.NativeEndian.Uint16(b[6:]),
		CsumOffset: binary.NativeEndian.Uint16(b[8:]),
	}, nil
}

// Encode writes h into b[:VnetHdrLen]; b must be at least that long.
func (h *VnetHdr) Encode(b []byte) {
	_ = b[VnetHdrLen-1]
	b[0] = h.Flags
	b[1] = h.GSOType
	binary.NativeEndian.PutUint16(b[2:], h.HdrLen)
	binary.NativeEndian.PutUint16(b[4:], h.GSOSize)
	binary.NativeEndian.PutUint16(b[6:], h.CsumStart)
	binary.NativeEndian.PutUint16(b[8:], h.CsumOffset)
}

// ParseVnetHdr decodes the header in b and checks it against frame (see
// Check). Errors match ErrInvalid; it never panics, whatever b and frame.
func ParseVnetHdr(b, frame []byte) (VnetHdr, error) {
	h, err := DecodeVnetHdr(b)
	if err != nil {
		return h, err
	}
	return h, h.Check(frame)
}

// Check reports whether h is consistent with frame: known flags, not both
// NEEDS_CSUM and DATA_VALID, a known GSO type (ECN only on TCP) with a
// non-zero GSOSize, HdrLen within the frame, and a partial checksum whose
// field lies within the frame at an even distance from CsumStart. Errors
// match ErrInvalid.
//
// It checks what the device layer relies on, not the packet: the stack
// still parses and validates the headers the offsets point into.
func (h *VnetHdr) Check(frame []byte) error {
	if h.Flags&^vnetKnownFlags != 0 {
		return errVnetFlags
	}
	if h.Flags == VnetNeedsCsum|VnetDataValid {
		return errVnetBoth
	}
	switch h.GSOType {
	case GSONone:
	case GSOTCPv4, GSOTCPv6, GSOTCPv4 | GSOECN, GSOTCPv6 | GSOECN, GSOUDPL4:
		if h.GSOSize == 0 {
			return errVnetGSOSize
		}
	default:
		return errVnetGSOType
	}
	if int(h.HdrLen) > len(frame) {
		return errVnetHdrLen
	}
	if h.Flags&VnetNeedsCsum != 0 {
		if int(h.CsumStart)+int(h.CsumOffset)+2 > len(frame) {
			return errVnetCsum
		}
		if h.CsumOffset%2 != 0 {
			return errVnetCsumOdd
		}
	}
	return nil
}

// IsGSO reports whether h describes a super-segment (GSOType not GSONone).
func (h *VnetHdr) IsGSO() bool { return h.GSOType != GSONone }

// CompleteChecksum finishes the partial checksum of frame, as the kernel
// does for a device without checksum offload: the field at
// CsumStart+CsumOffset becomes the complement of the sum of
// frame[CsumStart:] (a zero result is written 0xffff). It does nothing
// unless h has VnetNeedsCsum, and returns the error of Check when h does
// not fit frame. Afterwards the frame verifies as an ordinary one; a GSO
// frame's checksum then covers the whole super-segment.
func (h *VnetHdr) CompleteChecksum(frame []byte) error {
	if h.Flags&VnetNeedsCsum == 0 {
		return nil
	}
	if err := h.Check(frame); err != nil {
		return err
	}
	field := int(h.CsumStart) + int(h.CsumOffset)
	// The field holds the pseudo-header sum: summing over it adds it in.
	c := ^checksum.Sum(frame[h.CsumStart:], 0)
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(frame[field:], c)
	return nil
}

// TCPOffload returns the header for an outgoing TCP segment whose IP header
// starts at l3 (EthernetHeaderLen on a TAP or raw socket, 0 on a TUN) and is
// ipHdrLen bytes long, followed by tcpHdrLen bytes of TCP header and
// payloadLen bytes of payload. The checksum is left to the device
// (VnetNeedsCsum): the sender puts the folded pseudo-header sum, computed
// with the segment's whole TCP length, in the TCP checksum field, not
// complemented (checksum.PseudoHeaderV4 or V6). When mss > 0 and the
// payload is longer than mss, the segment is a super-segment that the
// kernel cuts into segments of mss payload bytes (GSOTCPv4, or GSOTCPv6
// when v6); the IP header then carries the super-segment's own total
// length and a valid IPv4 header checksum, as any packet does.
func TCPOffload(l3, ipHdrLen, tcpHdrLen, payloadLen, mss int, v6 bool) VnetHdr {
	h := VnetHdr{
		Flags:      VnetNeedsCsum,
		CsumStart:  uint16(l3 + ipHdrLen),
		CsumOffset: 16,
		HdrLen:     uint16(l3 + ipHdrLen + tcpHdrLen),
	}
	if mss > 0 && payloadLen > mss {
		h.GSOType = GSOTCPv4
		if v6 {
			h.GSOType = GSOTCPv6
		}
		h.GSOSize = uint16(mss)
	}
	return h
}

// Offloader is implemented by devices that can move frames with their
// virtio-net metadata: the TAP, TUN and raw backends, Pipe ends, and the
// Counters and Pcap wrappers (which pass on their device's). A stack
// type-asserts for it and uses the offload methods when Offloads() is not
// zero (OffloadsOf does both).
//
// ReadBatchOffload and WriteBatchOffload follow ReadBatch and WriteBatch,
// with meta[i] the metadata of frame i; the header itself travels in the
// headroom (bufs[i][offset-VnetHdrLen:offset]), so nothing is copied or
// allocated. Frames may be up to MaxOffloadFrameSize bytes.
//
// Reading: meta[i] is filled for each frame delivered. VnetNeedsCsum means
// the frame's checksum was not computed (the local kernel sent it: trust or
// CompleteChecksum it); VnetDataValid means the kernel verified it; with
// neither flag, the stack must verify the checksums itself (such a frame may
// have been forged on the wire or injected by another packet socket). A GSO
// frame is one segment longer than the MTU, with GSOSize its MSS. Frames
// whose header does not Check are dropped and counted.
//
// Writing: meta[i] describes frame i (its zero value: a complete frame).
// Every meta must Check against its frame and use only the offloads the
// device has (GSO needs TSO, VnetNeedsCsum needs OffloadChecksum);
// otherwise nothing is written and the error matches ErrInvalid.
//
// On a device opened with offloads, plain ReadBatch delivers the same frames
// without their metadata, after completing partial checksums in software so
// that they verify; GSO frames stay whole, so its buffers must take
// MaxOffloadFrameSize bytes to receive them. Plain WriteBatch writes
// complete frames (a zero header).
type Offloader interface {
	Device
	// Offloads is the set in effect: zero when the device moves plain
	// frames (opened without offloads, or a wrapper over such a device).
	Offloads() Offloads
	ReadBatchOffload(bufs [][]byte, sizes []int, meta []VnetHdr, offset int) (n int, err error)
	WriteBatchOffload(bufs [][]byte, meta []VnetHdr, offset int) (n int, err error)
}

// OffloadGatherWriter is an Offloader that writes frames in parts, as a
// GatherWriter does: a stack sends a TSO super-segment's payload from its
// socket buffer, uncopied, behind the headers and meta[i].
type OffloadGatherWriter interface {
	Offloader
	// WriteBatchGatherOffload is WriteBatchOffload for frames in parts:
	// frame i is heads[i][offset:] followed by tails[i][0] and tails[i][1],
	// and its headers (what meta[i] describes) lie in heads[i].
	WriteBatchGatherOffload(heads [][]byte, tails [][2][]byte, meta []VnetHdr, offset int) (n int, err error)
}

// OffloadsOf returns d's offloads: zero unless d is an Offloader with
// offloads on.
func OffloadsOf(d Device) Offloads {
	if o, ok := d.(Offloader); ok {
		return o.Offloads()
	}
	return 0
}

// checkMeta validates the metadata of the frames a write is given against
// the device's offloads.
func checkMeta(bufs [][]byte, meta []VnetHdr, offset int, have Offloads) error {
	if len(meta) < len(bufs) {
		return errArg("%d metadata entries for %d frames", len(meta), len(bufs))
	}
	for i := range bufs {
		h := &meta[i]
		if h.Flags == 0 && h.GSOType == GSONone {
			continue // a complete frame: fields unused
		}
		if err := h.Check(bufs[i][offset:]); err != nil {
			return fmt.Errorf("device: frame %d: %w", i, err)
		}
		need := Offloads(0)
		if h.Flags&VnetNeedsCsum != 0 {
			need |= OffloadChecksum
		}
		switch h.GSOType &^ GSOECN {
		case GSOTCPv4:
			need |= OffloadTSO4
		case GSOTCPv6:
			need |= OffloadTSO6
		case GSOUDPL4:
			return errArg("frame %d: UDP segmentation offload is not supported", i)
		}
		if need&^have != 0 {
			return errArg("frame %d: needs offloads %v, the device has %v", i, need, have)
		}
	}
	return nil
}

// takeVnet parses the header at the start of b (header and frame) and
// stores it in meta[i], or, for a reader without meta, completes the
// frame's partial checksum.
func takeVnet(b []byte, meta []VnetHdr, i int) bool {
	if len(b) < VnetHdrLen {
		return false
	}
	frame := b[VnetHdrLen:]
	h, err := ParseVnetHdr(b, frame)
	if err != nil {
		return false
	}
	if meta != nil {
		meta[i] = h
		return true
	}
	return h.CompleteChecksum(frame) == nil
}

// prepareOffload checks a write's frames and their metadata against the
// device's offloads and, when the device carries virtio-net headers
// (vnet > 0), writes each in front of its frame.
func prepareOffload(bufs [][]byte, meta []VnetHdr, offset int, have Offloads, vnet int) error {
	if err := checkBatch(bufs, offset, false); err != nil {
		return err
	}
	if err := checkMeta(bufs, meta, offset, have); err != nil {
		return err
	}
	if vnet != 0 {
		encodeVnet(bufs, meta, offset)
	}
	return nil
}

// encodeVnet writes meta[i] in front of frame i.
func encodeVnet(bufs [][]byte, meta []VnetHdr, offset int) {
	for i, b := range bufs {
		meta[i].Encode(b[offset-VnetHdrLen : offset])
	}
}

// clearVnet writes a zero header (a complete frame) in front of each frame.
func clearVnet(bufs [][]byte, offset int) {
	for _, b := range bufs {
		clear(b[offset-VnetHdrLen : offset])
	}
}

// The header goes in the headroom: this fails to compile if it does not fit.
const _ uint = Headroom - VnetHdrLen
