package device

import (
	"errors"
	"strconv"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// RawSocket is an AF_PACKET socket bound to one Ethernet interface: it
// receives every frame that arrives on the interface, whatever its
// destination MAC, and sends frames out of it as they are. Frames leaving
// through the interface (ours, or the local kernel's) are not read back
// (PACKET_IGNORE_OUTGOING).
//
// The interface is put in promiscuous mode (a PACKET_MR_PROMISC membership,
// undone by the kernel when the socket closes) because the stack uses its own
// MAC, LinkAddr, not the interface's (KernelAddr): the kernel keeps answering
// for its own addresses on the same wire and the stack answers for its own.
//
// Reads and writes are batched with recvmmsg(2) and sendmmsg(2) through the
// Go runtime poller, so a blocked ReadBatch costs no thread and Close
// unblocks it.
//
// Offloads: frames that the local kernel sends through a veth or bridge may
// carry a partial checksum (checksum offload), which a packet socket passes
// on as is, and TSO super-segments of up to 64 KiB. Against a local kernel
// peer, turn them off on the peer's end (ethtool -K DEV tx off), as
// internal/testnet does, or open the socket with Config.Offloads
// (PACKET_VNET_HDR) and read each frame's metadata (Offloader).
type RawSocket struct {
	fdDevice
	ifindex int

	// statsMu guards the kernel's drop count, which reading resets: Drops
	// adds each reading to kernelDrops.
	statsMu     sync.Mutex
	statsFn     func(fd uintptr)
	stats       unix.TpacketStats
	kernelDrops uint64

	// recvmmsg's and sendmmsg's, BatchSize each; sendmmsg's frame k has
	// the vectors wiovs[3k:3k+3], its head and its tail's two parts.
	rmsgs  []unix.Mmsghdr
	riovs  []unix.Iovec
	rnames []unix.RawSockaddrLinklayer
	wmsgs  []unix.Mmsghdr
	wiovs  []unix.Iovec
}

// OpenRaw opens a raw packet socket on Ethernet interface name. It needs
// CAP_NET_RAW. LinkAddr returns the stack's MAC, cfg.MAC or DefaultMAC(name);
// KernelAddr returns the interface's own. MTU is the interface's MTU when
// opened. cfg.NoCreate does not apply.
//
// Errors are *SetupError values that match ErrNotFound, ErrPermission,
// ErrWrongMode or ErrInvalid.
func OpenRaw(name string, cfg Config) (*RawSocket, error) {
	if err := validName(name); err != nil {
		return nil, err
	}
	// Protocol 0: the socket receives nothing until bind names the
	// interface, so no frame from another interface slips in.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, rawError(name, "socket(AF_PACKET)", err, 0)
	}
	ok := false
	defer func() {
		if !ok {
			unix.Close(fd)
		}
	}()
	d := &RawSocket{fdDevice: fdDevice{name: name, batch: cfg.batchSize()}}
	if err := cfg.Offloads.check(); err != nil {
		return nil, &SetupError{Kind: ErrInvalid, Name: name, Problem: "bad Config.Offloads", Err: err}
	}
	if err := d.setOffloads(fd, cfg.Offloads); err != nil {
		return nil, err
	}
	if d.ifindex, err = ifIndex(fd, name); err != nil {
		return nil, rawError(name, "SIOCGIFINDEX", err, 0)
	}
	hatype, kmac, err := ifHWAddr(fd, name)
	if err != nil {
		return nil, rawError(name, "SIOCGIFHWADDR", err, 0)
	}
	if hatype != unix.ARPHRD_ETHER {
		return nil, rawError(name, "SIOCGIFHWADDR", nil, hatype)
	}
	d.kernelMAC = kmac
	if d.mac, err = cfg.stackMAC(name, kmac); err != nil {
		return nil, err
	}
	if d.mtu, err = ifMTU(fd, name); err != nil {
		return nil, rawError(name, "SIOCGIFMTU", err, 0)
	}
	sa := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: d.ifindex}
	if err := unix.Bind(fd, sa); err != nil {
		return nil, rawError(name, "bind", err, 0)
	}
	mreq := &unix.PacketMreq{Ifindex: int32(d.ifindex), Type: unix.PACKET_MR_PROMISC}
	if err := unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, mreq); err != nil {
		return nil, rawError(name, "PACKET_ADD_MEMBERSHIP", err, 0)
	}
	// Linux 4.20+; older kernels loop our frames back, which recv
	// also recognises by their packet type.
	_ = unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1)
	// The default receive queue (net.core.rmem_default, about 90 full
	// frames) overflows whenever a TCP sender's burst outruns one read
	// batch; a TAP queues 1000 frames. Ask for rawRcvBuf, past rmem_max
	// when privileged; otherwise take what rmem_max allows.
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rawRcvBuf) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rawRcvBuf)
	}

	ok = true // attach owns fd now
	if err := d.attach(fd, "packet:"+name, d); err != nil {
		return nil, &SetupError{Name: name, Problem: "cannot poll the packet socket", Err: err}
	}
	d.rmsgs = make([]unix.Mmsghdr, d.batch)
	d.riovs = make([]unix.Iovec, d.batch)
	d.rnames = make([]unix.RawSockaddrLinklayer, d.batch)
	d.wmsgs = make([]unix.Mmsghdr, d.batch)
	d.wiovs = make([]unix.Iovec, 3*d.batch)
	for j := range d.batch {
		h := &d.rmsgs[j].Hdr
		h.Name = (*byte)(unsafe.Pointer(&d.rnames[j]))
		h.Iov = &d.riovs[j]
		h.SetIovlen(1)
		w := &d.wmsgs[j].Hdr
		w.Iov = &d.wiovs[3*j]
		w.SetIovlen(1)
	}
	d.statsFn = d.readStats
	return d, nil
}

// rawRcvBuf is the receive queue a raw socket asks for, in bytes of
// buffer space (the kernel doubles it for its bookkeeping).
const rawRcvBuf = 4 << 20

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// Drops reports the frames dropped: received frames longer than their buffer
// plus those the kernel dropped because the socket's queue was full; frames
// the kernel refused or lost on sending (too long, link down, queue full).
// It allocates nothing, so a statistics loop may call it often.
func (d *RawSocket) Drops() (rx, tx uint64) {
	d.statsMu.Lock()
	if !d.closed.Load() {
		_ = d.rc.Control(d.statsFn)
	}
	kernel := d.kernelDrops
	d.statsMu.Unlock()
	return d.rxDropped.Load() + kernel, d.txDropped.Load()
}

// readStats adds the kernel's drop count since the last reading; called
// with statsMu held.
func (d *RawSocket) readStats(fd uintptr) {
	size := uint32(unsafe.Sizeof(d.stats))
	_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, fd, unix.SOL_PACKET, unix.PACKET_STATISTICS,
		uintptr(unsafe.Pointer(&d.stats)), uintptr(unsafe.Pointer(&size)), 0)
	if errno == 0 {
		d.kernelDrops += uint64(d.stats.Drops)
	}
}

// Close closes the socket, which ends the promiscuous membership; a pending
// ReadBatch returns an error wrapping net.ErrClosed. Closing twice is
// harmless.
func (d *RawSocket) Close() error {
	if d.closed.Swap(true) {
		return nil
	}
	return d.file.Close()
}

// ReadBatch waits for a frame, then returns the frames ready, up to
// min(len(bufs), BatchSize), read with recvmmsg(2).
func (d *RawSocket) ReadBatch(bufs [][]byte, sizes []int, offset int) (int, error) {
	return d.readBatch(bufs, sizes, offset)
}

// WriteBatch sends the frames with sendmmsg(2), BatchSize per call. A frame
// the kernel refuses or cannot queue (EMSGSIZE, EINVAL, ENETDOWN, ENOBUFS) is
// dropped and counted and the batch goes on; n counts frames taken, sent or
// dropped. On another error, bufs[n:] were not taken.
func (d *RawSocket) WriteBatch(bufs [][]byte, offset int) (int, error) {
	return d.writeBatch(bufs, offset)
}

// recv reads the frames ready with one recvmmsg; the batch ends with the
// first call that returns one.
func (d *RawSocket) recv(fd uintptr) (bool, unix.Errno) {
	base := d.rn
	want := len(d.rbufs) - base
	for j := range want {
		b := d.rbufs[base+j][d.roff-d.vnet:]
		d.riovs[j].Base = &b[0]
		d.riovs[j].SetLen(len(b))
		d.rmsgs[j].Hdr.Namelen = unix.SizeofSockaddrLinklayer
		d.rmsgs[j].Hdr.Flags = 0
	}
	r, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&d.rmsgs[0])), uintptr(want), 0, 0, 0)
	if errno != 0 {
		return false, errno
	}
	for j := range int(r) {
		if d.rnames[j].Pkttype == unix.PACKET_OUTGOING {
			continue // our own, on a kernel without PACKET_IGNORE_OUTGOING
		}
		m := &d.rmsgs[j]
		d.take(base+j, int(m.Len), m.Hdr.Flags&unix.MSG_TRUNC != 0)
	}
	return d.rn == 0, 0
}

// send sends the frames up to the first empty one, at most BatchSize.
func (d *RawSocket) send(fd uintptr) (int, unix.Errno) {
	k := 0
	for k < d.batch && d.wn+k < len(d.wbufs) {
		b := d.wbufs[d.wn+k][d.woff-d.vnet:]
		if len(b) == d.vnet {
			break // for writeFrames to drop
		}
		iov := d.wiovs[3*k : 3*k+3]
		iov[0].Base = &b[0]
		iov[0].SetLen(len(b))
		n := 1
		if d.wtails != nil {
			for _, p := range d.wtails[d.wn+k] {
				if len(p) > 0 {
					iov[n].Base = &p[0]
					iov[n].SetLen(len(p))
					n++
				}
			}
		}
		d.wmsgs[k].Hdr.SetIovlen(n)
		k++
	}
	r, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&d.wmsgs[0])), uintptr(k), 0, 0, 0)
	if d.wtails != nil {
		clear(d.wiovs[:3*k]) // the parts go back to their owners
	}
	return int(r), errno
}

// sendDrops: sendmmsg reports an error only for the first frame.
func (d *RawSocket) sendDrops(errno unix.Errno) bool {
	return errno == unix.EMSGSIZE || errno == unix.EINVAL || errno == unix.ENETDOWN || errno == unix.ENOBUFS
}

// rawError explains a failed step of OpenRaw; hatype is the interface's ARP
// hardware type when the failure is that it is not Ethernet (err nil).
func rawError(name, op string, err error, hatype uint16) error {
	e := &SetupError{Name: name, Op: op, Err: err}
	switch {
	case err == nil && hatype == unix.ARPHRD_NONE:
		e.Kind = ErrWrongMode
		e.Problem = name + " is an L3 interface (a TUN?), not Ethernet"
		e.Fix = "open it with OpenTUN, or choose an Ethernet interface (ip link)"
	case err == nil:
		e.Kind = ErrWrongMode
		e.Problem = name + " is not an Ethernet interface (ARP hardware type " + strconv.Itoa(int(hatype)) + ")"
		e.Fix = "choose an Ethernet interface (ip link)"
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		e.Kind = ErrPermission
		e.Problem = "raw sockets need CAP_NET_RAW"
		e.Fix = "run as root, or grant it to the program: setcap cap_net_raw+ep PROGRAM"
	case errors.Is(err, unix.ENODEV), errors.Is(err, unix.ENXIO):
		e.Kind = ErrNotFound
		e.Problem = "no interface " + name
		e.Fix = "list the interfaces with: ip link"
	case errors.Is(err, unix.EAFNOSUPPORT):
		e.Kind = ErrNotFound
		e.Problem = "this kernel has no AF_PACKET sockets"
		e.Fix = "load the driver as root: modprobe af_packet"
	default:
		e.Problem = "cannot open a raw socket"
	}
	return e
}
