package device

import (
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// fdDevice is what Tun and RawSocket share: a non-blocking fd polled by the
// Go runtime, the batch loops around the system calls that move frames, and
// their counts. Each device supplies its system calls as an fdIO.
type fdDevice struct {
	name      string
	mtu       int
	mac       net.HardwareAddr // the stack's; nil for TUN
	kernelMAC net.HardwareAddr // the kernel's; nil for TUN
	batch     int

	file   *os.File
	rc     syscall.RawConn
	sys    fdIO
	closed atomic.Bool

	rxDropped atomic.Uint64 // frames longer than their buffer, or with a bad virtio-net header
	txDropped atomic.Uint64 // frames the kernel refused or lost

	// With offloads (Config.Offloads), every frame has a virtio-net header
	// of vnet bytes in front of it; see vnet_linux.go.
	offloads Offloads
	vnet     int

	// Read state: used by the one ReadBatch caller at a time, kept here so
	// that the callback handed to the poller is a method value made once
	// (a closure per call would allocate).
	readFn func(fd uintptr) bool
	rbufs  [][]byte
	rsizes []int
	roff   int
	rn     int
	rerr   error
	rmeta  []VnetHdr // ReadBatchOffload's, or nil

	// Write state, likewise owned by the one WriteBatch caller.
	writeFn func(fd uintptr) bool
	wbufs   [][]byte
	wtails  [][2][]byte // WriteBatchGather's, or nil
	woff    int
	wn      int
	werr    error
}

// fdIO is a device's own system calls, called from the poller callbacks
// with the fd.
type fdIO interface {
	// recv makes one read call into rbufs[rn:] and hands each frame it
	// returns to take. again reports whether the batch goes on with
	// another call while it has room; false ends it.
	recv(fd uintptr) (again bool, errno unix.Errno)
	// send makes one write call of wbufs[wn:], whose first frame is not
	// empty, and returns how many frames it sent.
	send(fd uintptr) (n int, errno unix.Errno)
	// sendDrops reports whether a send error means the kernel refused or
	// lost the first frame, which is then dropped and counted.
	sendDrops(errno unix.Errno) bool
}

// attach makes fd the device's, polled by the runtime, with sys's system
// calls; on an error fd is closed.
func (d *fdDevice) attach(fd int, path string, sys fdIO) error {
	d.file = os.NewFile(uintptr(fd), path)
	rc, err := d.file.SyscallConn()
	if err != nil {
		d.file.Close()
		return err
	}
	d.rc, d.sys = rc, sys
	d.readFn = d.readFrames
	d.writeFn = d.writeFrames
	return nil
}

// Name is the interface's name.
func (d *fdDevice) Name() string { return d.name }

// MTU is the interface's MTU when it was opened.
func (d *fdDevice) MTU() int { return d.mtu }

// BatchSize is Config.BatchSize, or DefaultBatchSize.
func (d *fdDevice) BatchSize() int { return d.batch }

// LinkAddr is the stack's MAC (nil for TUN), a different address from the
// kernel's (KernelAddr).
func (d *fdDevice) LinkAddr() net.HardwareAddr { return d.mac }

// KernelAddr is the kernel's MAC on the link: the interface's own, or that
// of the kernel side of a TAP (nil for TUN).
func (d *fdDevice) KernelAddr() net.HardwareAddr { return d.kernelMAC }

// readBatch is ReadBatch: it waits for the first frame, then takes what
// more sys.recv finds ready, up to min(len(bufs), len(sizes), batch).
func (d *fdDevice) readBatch(bufs [][]byte, sizes []int, offset int) (int, error) {
	if err := checkBatch(bufs, offset, true); err != nil {
		return 0, err
	}
	max := min(len(bufs), len(sizes), d.batch)
	if max == 0 {
		return 0, nil
	}
	d.rbufs, d.rsizes, d.roff, d.rn, d.rerr = bufs[:max], sizes, offset, 0, nil
	err := d.rc.Read(d.readFn)
	n, rerr := d.rn, d.rerr
	d.rbufs, d.rsizes = nil, nil
	return n, d.ioError("read", err, rerr)
}

// readFrames is the poller callback: false means "nothing yet, wait".
func (d *fdDevice) readFrames(fd uintptr) bool {
	for d.rn < len(d.rbufs) {
		again, errno := d.sys.recv(fd)
		switch errno {
		case 0:
		case unix.EAGAIN:
			return d.rn > 0
		case unix.EINTR:
			continue
		default:
			d.rerr = errno
			return true
		}
		if !again {
			return true
		}
	}
	return true
}

// take makes the frame that recv read into rbufs[i] (size bytes with its
// virtio-net header, if any; trunc: the kernel cut it) frame rn of the
// batch. A frame cut, with a bad header, or too long for rbufs[rn] is
// dropped and counted instead.
func (d *fdDevice) take(i, size int, trunc bool) {
	if trunc || d.vnet != 0 && !takeVnet(d.rbufs[i][d.roff-d.vnet:d.roff-d.vnet+size], d.rmeta, d.rn) {
		d.rxDropped.Add(1)
		return
	}
	size -= d.vnet
	if i != d.rn {
		// An earlier frame of this call was skipped: move this one down so
		// frames stay contiguous. Rare (drops only).
		dst := d.rbufs[d.rn][d.roff:]
		if len(dst) < size {
			d.rxDropped.Add(1)
			return
		}
		copy(dst, d.rbufs[i][d.roff:d.roff+size])
	}
	d.rsizes[d.rn] = size
	d.rn++
}

// writeBatch is WriteBatch: the frames, each with a zero virtio-net header
// when the device has them.
func (d *fdDevice) writeBatch(bufs [][]byte, offset int) (int, error) {
	if err := checkBatch(bufs, offset, false); err != nil {
		return 0, err
	}
	if len(bufs) == 0 {
		return 0, nil
	}
	if d.vnet != 0 {
		clearVnet(bufs, offset)
	}
	return d.write(bufs, offset)
}

// WriteBatchGather implements GatherWriter: each frame is one writev(2)
// (a TUN or TAP) or one message of sendmmsg(2) (a raw socket) of its
// parts, otherwise as WriteBatch.
func (d *fdDevice) WriteBatchGather(heads [][]byte, tails [][2][]byte, offset int) (int, error) {
	return d.gather(heads, tails, func() (int, error) { return d.writeBatch(heads, offset) })
}

// WriteBatchGatherOffload implements OffloadGatherWriter: as
// WriteBatchGather, the virtio-net header in front of each head.
func (d *fdDevice) WriteBatchGatherOffload(heads [][]byte, tails [][2][]byte, meta []VnetHdr, offset int) (int, error) {
	return d.gather(heads, tails, func() (int, error) { return d.WriteBatchOffload(heads, meta, offset) })
}

// gather runs write with the tails for the device's send to take.
func (d *fdDevice) gather(heads [][]byte, tails [][2][]byte, write func() (int, error)) (int, error) {
	if err := checkTails(heads, tails); err != nil {
		return 0, err
	}
	d.wtails = tails
	n, err := write()
	d.wtails = nil
	return n, err
}

// write writes frames whose virtio-net headers, if any, are in place.
func (d *fdDevice) write(bufs [][]byte, offset int) (int, error) {
	if len(bufs) == 0 {
		return 0, nil
	}
	d.wbufs, d.woff, d.wn, d.werr = bufs, offset, 0, nil
	err := d.rc.Write(d.writeFn)
	n, werr := d.wn, d.werr
	d.wbufs = nil
	return n, d.ioError("write", err, werr)
}

// writeFrames is the poller callback: false means "no room yet, wait".
func (d *fdDevice) writeFrames(fd uintptr) bool {
	for d.wn < len(d.wbufs) {
		if len(d.wbufs[d.wn]) == d.woff { // an empty frame
			d.txDropped.Add(1)
			d.wn++
			continue
		}
		n, errno := d.sys.send(fd)
		switch {
		case errno == 0:
			d.wn += n
		case errno == unix.EAGAIN:
			return false
		case errno == unix.EINTR:
		case d.sys.sendDrops(errno):
			d.txDropped.Add(1)
			d.wn++
		default:
			d.werr = errno
			return true
		}
	}
	return true
}

// ioError wraps the poller's error pollErr, else the system call's err,
// or is nil when both are; after Close it wraps net.ErrClosed whatever the
// poller said.
func (d *fdDevice) ioError(op string, pollErr, err error) error {
	if pollErr != nil {
		err = pollErr
	}
	if err == nil {
		return nil
	}
	if d.closed.Load() {
		return fmt.Errorf("device %s: %s: %w", d.name, op, net.ErrClosed)
	}
	return fmt.Errorf("device %s: %s: %w", d.name, op, err)
}
