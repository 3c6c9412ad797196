// Package device owns the link: the Device interface that moves whole frames
// between a stack and a medium, its backends (TAP and TUN, AF_PACKET raw
// sockets, an in-memory Pipe) and wrappers that compose over any Device (pcap
// capture, counters).
//
// Buffers are lent, never kept. A frame lives at bufs[i][offset:]; the offset
// bytes in front of it are headroom that a device may fill with its own header
// (the virtio-net header) so that no frame is moved to make room. Callers pass
// offset >= Headroom; a smaller one is refused with an error matching
// ErrInvalid.
//
// Addresses: on a TAP or a raw socket the kernel owns one MAC (the interface's,
// KernelAddr) and the stack uses another (LinkAddr): Config.MAC, or
// DefaultMAC(name), a fixed function of the interface name. A TUN device has
// no MAC.
//
// Failures to open a device are *SetupError values: one line naming the fix,
// matching one of ErrNotFound, ErrPermission, ErrBusy, ErrWrongMode and
// ErrInvalid with errors.Is. After Close, ReadBatch and WriteBatch return
// errors wrapping net.ErrClosed. Frames a device cannot deliver or send
// (too long, no room) are dropped and counted (DropCounter), never truncated.
//
// Offloads (opt-in, Config.Offloads): the TAP, TUN and raw backends can move
// frames with a virtio-net header (IFF_VNET_HDR with TUNSETOFFLOAD, or
// PACKET_VNET_HDR), so that the kernel hands over TCP super-segments of up
// to 64 KiB with partial checksums and segments and checksums the ones the
// stack writes. Such devices implement Offloader: ReadBatchOffload and
// WriteBatchOffload take a []VnetHdr beside the frames, one per frame,
// while the 10-byte header itself lives in the headroom in front of each
// frame; TCPOffload and VnetHdr.CompleteChecksum help build and finish
// them. Without Config.Offloads nothing changes.
//
// The TAP, TUN and raw backends are Linux only.
package device

import "net"

// Headroom is the number of bytes a device may write in front of a frame.
const Headroom = 16

// Device moves link-layer frames: Ethernet frames, or bare IP packets for an
// L3 device (TUN), whose LinkAddr is nil.
//
// ReadBatch and WriteBatch may be called concurrently with each other, but
// each by one goroutine at a time. Close unblocks a pending ReadBatch, which
// then returns an error wrapping net.ErrClosed.
type Device interface {
	// ReadBatch blocks until at least one frame is available, then reads up
	// to min(len(bufs), len(sizes), BatchSize()) frames: frame i lands at
	// bufs[i][offset:] and is sizes[i] bytes long. A frame longer than its
	// buffer is dropped and counted, not truncated.
	ReadBatch(bufs [][]byte, sizes []int, offset int) (n int, err error)
	// WriteBatch writes the frames bufs[i][offset:]; the bytes in front of
	// offset may be overwritten. It returns how many frames it took: sent,
	// or dropped and counted (too long, link down, no room). On an error,
	// bufs[n:] were not taken. It does not keep bufs after returning.
	WriteBatch(bufs [][]byte, offset int) (n int, err error)
	// BatchSize is the most frames one ReadBatch returns, and the most one
	// system call moves; WriteBatch takes any number, BatchSize at a time.
	BatchSize() int
	// MTU is the largest payload of one frame (the IP packet), in bytes.
	MTU() int
	// LinkAddr is the stack's MAC address on this link, or nil for an L3
	// device.
	LinkAddr() net.HardwareAddr
	// Close releases the device; a pending ReadBatch returns. Closing twice
	// is harmless.
	Close() error
}

// GatherWriter is a Device that writes a frame from several buffers, as
// writev does, so that a stack can send a segment's payload from its socket
// buffer without first copying it behind the headers.
type GatherWriter interface {
	// WriteBatchGather is WriteBatch for frames in parts: frame i is
	// heads[i][offset:] followed by tails[i][0] and tails[i][1]; len(tails)
	// is len(heads). It does not keep heads or tails after returning.
	WriteBatchGather(heads [][]byte, tails [][2][]byte, offset int) (n int, err error)
}

// checkTails checks that a write in parts has a tail for every head.
func checkTails(heads [][]byte, tails [][2][]byte) error {
	if len(tails) != len(heads) {
		return errArg("%d frames with %d tails", len(heads), len(tails))
	}
	return nil
}
