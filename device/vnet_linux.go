package device

import (
	"golang.org/x/sys/unix"
)

// The TUNSETOFFLOAD flags (linux/if_tun.h); x/sys/unix does not name them.
const (
	tunFCsum = 0x01
	tunFTSO4 = 0x02
	tunFTSO6 = 0x04
)

func tunOffloadFlags(o Offloads) int {
	f := 0
	if o&OffloadChecksum != 0 {
		f |= tunFCsum
	}
	if o&OffloadTSO4 != 0 {
		f |= tunFTSO4
	}
	if o&OffloadTSO6 != 0 {
		f |= tunFTSO6
	}
	return f
}

// setOffloads configures the attached TAP or TUN fd for offloads o (the
// file was attached with IFF_VNET_HDR when o is not zero). With o zero it
// clears the interface's offloads instead, best effort: a persistent
// interface keeps the offloads of its previous user, and the kernel would
// then hand a plain reader super-segments with partial checksums.
func (d *Tun) setOffloads(fd int, o Offloads) error {
	if o == 0 {
		_ = unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, 0)
		return nil
	}
	if err := unix.IoctlSetPointerInt(fd, unix.TUNSETVNETHDRSZ, VnetHdrLen); err != nil {
		return &SetupError{Kind: ErrInvalid, Name: d.name, Problem: "the kernel refused the virtio-net header size",
			Op: "TUNSETVNETHDRSZ", Err: err}
	}
	if err := unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, tunOffloadFlags(o)); err != nil {
		return &SetupError{Kind: ErrInvalid, Name: d.name, Problem: "the kernel refused offloads " + o.String(),
			Op: "TUNSETOFFLOAD", Err: err}
	}
	d.offloads, d.vnet = o, VnetHdrLen
	return nil
}

// resetOffloads clears a persistent interface's offloads when the file
// closes, so that its next user starts plain.
func (d *Tun) resetOffloads() {
	if d.vnet == 0 || d.created {
		return
	}
	_ = d.rc.Control(func(fd uintptr) { _ = unix.IoctlSetInt(int(fd), unix.TUNSETOFFLOAD, 0) })
}

// Offloads is Config.Offloads, or zero.
func (d *Tun) Offloads() Offloads { return d.offloads }

// Offloads is OffloadAll when the socket was opened with offloads, zero
// otherwise: what a packet socket receives is up to the interface and its
// peer, and it accepts every kind of metadata to send.
func (d *RawSocket) Offloads() Offloads { return d.offloads }

// setOffloads turns on PACKET_VNET_HDR for o not zero.
func (d *RawSocket) setOffloads(fd int, o Offloads) error {
	if o == 0 {
		return nil
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1); err != nil {
		return &SetupError{Kind: ErrInvalid, Name: d.name, Problem: "the kernel refused virtio-net headers",
			Op: "PACKET_VNET_HDR", Err: err}
	}
	d.offloads, d.vnet = OffloadAll, VnetHdrLen
	return nil
}

// ReadBatchOffload is ReadBatch that also fills meta[i] with frame i's
// metadata (see Offloader); at most len(meta) frames are read.
func (d *fdDevice) ReadBatchOffload(bufs [][]byte, sizes []int, meta []VnetHdr, offset int) (int, error) {
	bufs = bufs[:min(len(bufs), len(meta))]
	if d.vnet == 0 {
		n, err := d.readBatch(bufs, sizes, offset)
		clear(meta[:n])
		return n, err
	}
	d.rmeta = meta
	n, err := d.readBatch(bufs, sizes, offset)
	d.rmeta = nil
	return n, err
}

// WriteBatchOffload is WriteBatch with meta[i] written in front of frame i
// (see Offloader).
func (d *fdDevice) WriteBatchOffload(bufs [][]byte, meta []VnetHdr, offset int) (int, error) {
	if err := prepareOffload(bufs, meta, offset, d.offloads, d.vnet); err != nil {
		return 0, err
	}
	return d.write(bufs, offset)
}

var (
	_ Offloader           = (*Tun)(nil)
	_ Offloader           = (*RawSocket)(nil)
	_ OffloadGatherWriter = (*Tun)(nil)
	_ OffloadGatherWriter = (*RawSocket)(nil)
	_ GatherWriter        = (*RawSocket)(nil)
)
