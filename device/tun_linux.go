package device

import (
	"errors"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Tun is an open /dev/net/tun file attached to a TAP (Ethernet frames) or
// TUN (bare IP packets, no packet-information header) interface.
//
// The interface has two sides: the netdev that the kernel routes through
// (the "kernel side", addressed with ip addr) and this file, through which
// the stack sends and receives. Tun only moves frames; it never changes the
// interface's addresses or link state.
//
// Reads go through the Go runtime poller, so a blocked ReadBatch costs no
// thread and Close unblocks it.
//
// With Config.Offloads the file carries a virtio-net header with every frame
// (IFF_VNET_HDR) and the interface may hand over TSO super-segments with
// partial checksums (TUNSETOFFLOAD); see Offloader. Closing clears the
// interface's offloads, and so does opening without them.
type Tun struct {
	fdDevice
	l3      bool
	created bool

	// readv's vectors: the frame's buffer and one byte past it.
	iov      [2]unix.Iovec
	overflow [1]byte
	// writev's, for a frame in parts (WriteBatchGather).
	wiov [3]unix.Iovec
}

// OpenTAP attaches to TAP interface name, creating a transient one when it
// does not exist and the process has CAP_NET_ADMIN (unless cfg.NoCreate).
//
// Without privilege, open a persistent TAP that root made for this user:
//
//	ip tuntap add NAME mode tap user $USER
//
// (/dev/net/tun must be readable and writable by the user, as it is on most
// distributions.) LinkAddr returns the stack's MAC, cfg.MAC or DefaultMAC(name),
// never the kernel side's (see KernelAddr). MTU is the interface's MTU when
// opened; a later change is not seen.
//
// Errors are *SetupError values that match ErrNotFound, ErrPermission,
// ErrBusy, ErrWrongMode or ErrInvalid.
func OpenTAP(name string, cfg Config) (*Tun, error) { return openTun(name, false, cfg) }

// OpenTUN is OpenTAP for an L3 TUN interface: frames are bare IPv4 or IPv6
// packets and LinkAddr is nil. Create a persistent one with
// ip tuntap add NAME mode tun user $USER.
func OpenTUN(name string, cfg Config) (*Tun, error) { return openTun(name, true, cfg) }

func openTun(name string, l3 bool, cfg Config) (*Tun, error) {
	if err := validName(name); err != nil {
		return nil, err
	}
	existed := ifExists(name)
	if !existed && cfg.NoCreate {
		return nil, tunNotFound(name, l3, nil)
	}
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, tunOpenError(name, l3, err)
	}
	ok := false
	defer func() {
		if !ok {
			unix.Close(fd)
		}
	}()

	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return nil, &SetupError{Kind: ErrInvalid, Name: name, Problem: "not a valid interface name", Err: err}
	}
	flags := uint16(unix.IFF_TAP | unix.IFF_NO_PI)
	if l3 {
		flags = unix.IFF_TUN | unix.IFF_NO_PI
	}
	if err := cfg.Offloads.check(); err != nil {
		return nil, &SetupError{Kind: ErrInvalid, Name: name, Problem: "bad Config.Offloads", Err: err}
	}
	if cfg.Offloads != 0 {
		flags |= unix.IFF_VNET_HDR
	}
	ifr.SetUint16(flags)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		return nil, tunSetIFFError(name, l3, err, probeTun(name, err))
	}

	d := &Tun{fdDevice: fdDevice{name: name, batch: cfg.batchSize()}, l3: l3, created: !existed}
	if err := d.setOffloads(fd, cfg.Offloads); err != nil {
		return nil, err
	}
	s, err := ctlSocket()
	if err != nil {
		return nil, &SetupError{Name: name, Problem: "cannot open a socket to read the MTU", Op: "socket", Err: err}
	}
	d.mtu, err = ifMTU(s, name)
	unix.Close(s)
	if err != nil {
		return nil, &SetupError{Name: name, Problem: "cannot read the MTU", Op: "SIOCGIFMTU", Err: err}
	}
	if !l3 {
		// The tun driver answers SIOCGIFHWADDR on its own fd, which also
		// works when name lives in another network namespace than ours.
		_, d.kernelMAC, err = ifHWAddr(fd, name)
		if err != nil {
			return nil, &SetupError{Name: name, Problem: "cannot read the MAC", Op: "SIOCGIFHWADDR", Err: err}
		}
		if d.mac, err = cfg.stackMAC(name, d.kernelMAC); err != nil {
			return nil, err
		}
	}

	ok = true // attach owns fd now
	if err := d.attach(fd, "/dev/net/tun:"+name, d); err != nil {
		return nil, &SetupError{Name: name, Problem: "cannot poll the TUN/TAP file", Err: err}
	}
	return d, nil
}

// Created reports whether opening created the interface: a transient one,
// which the kernel deletes when it is closed.
func (d *Tun) Created() bool { return d.created }

// Drops reports the frames dropped by the device: received frames longer
// than the buffer given for them, and frames the kernel refused to send.
func (d *Tun) Drops() (rx, tx uint64) { return d.rxDropped.Load(), d.txDropped.Load() }

// Close closes the file; a pending ReadBatch returns an error wrapping
// net.ErrClosed. A persistent interface stays, a transient one goes.
// Closing twice is harmless.
func (d *Tun) Close() error {
	if d.closed.Swap(true) {
		return nil
	}
	d.resetOffloads()
	return d.file.Close()
}

// ReadBatch reads one frame per read(2): it waits for the first, then takes
// whatever more is ready without waiting, up to min(len(bufs), BatchSize).
func (d *Tun) ReadBatch(bufs [][]byte, sizes []int, offset int) (int, error) {
	return d.readBatch(bufs, sizes, offset)
}

// WriteBatch writes each frame with one write(2). A frame the kernel refuses
// (too short: EINVAL, EMSGSIZE; interface down: EIO) is dropped and counted
// and the batch goes on; n counts frames taken, sent or dropped. On another error,
// bufs[n:] were not taken.
func (d *Tun) WriteBatch(bufs [][]byte, offset int) (int, error) {
	return d.writeBatch(bufs, offset)
}

// recv reads one frame.
func (d *Tun) recv(fd uintptr) (bool, unix.Errno) {
	b := d.rbufs[d.rn][d.roff-d.vnet:]
	// A second one-byte vector catches a frame too long for b: the kernel
	// would otherwise cut it silently.
	d.iov[0].Base = &b[0]
	d.iov[0].SetLen(len(b))
	d.iov[1].Base = &d.overflow[0]
	d.iov[1].SetLen(1)
	r, _, errno := unix.Syscall(unix.SYS_READV, fd, uintptr(unsafe.Pointer(&d.iov[0])), 2)
	if errno == 0 {
		d.take(d.rn, int(r), int(r) > len(b))
	}
	return true, errno
}

// send writes one frame.
func (d *Tun) send(fd uintptr) (int, unix.Errno) {
	b := d.wbufs[d.wn][d.woff-d.vnet:]
	if d.wtails == nil {
		_, _, errno := unix.Syscall(unix.SYS_WRITE, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
		return 1, errno
	}
	d.wiov[0].Base = &b[0]
	d.wiov[0].SetLen(len(b))
	n := 1
	for _, p := range d.wtails[d.wn] {
		if len(p) > 0 {
			d.wiov[n].Base = &p[0]
			d.wiov[n].SetLen(len(p))
			n++
		}
	}
	_, _, errno := unix.Syscall(unix.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&d.wiov[0])), uintptr(n))
	d.wiov = [3]unix.Iovec{} // the parts go back to their owners
	return 1, errno
}

// sendDrops: EIO means the kernel side is down, the frame is lost as on an
// unplugged cable.
func (d *Tun) sendDrops(errno unix.Errno) bool {
	return errno == unix.EINVAL || errno == unix.EMSGSIZE || errno == unix.EIO
}

// tunFacts is what is learnt about an interface after TUNSETIFF failed, to
// say why.
type tunFacts struct {
	exists      bool
	driver, bus string   // ethtool driver info: "tun" and "tap" or "tun" for TUN/TAP
	holders     []string // processes holding it, for EBUSY
}

func probeTun(name string, err error) tunFacts {
	f := tunFacts{exists: ifExists(name)}
	if f.exists {
		f.driver, f.bus = ifDriver(name)
	}
	if errors.Is(err, unix.EBUSY) {
		f.holders = tunHolders(name)
	}
	return f
}

func modeWords(l3 bool) (upper, lower string) {
	if l3 {
		return "TUN", "tun"
	}
	return "TAP", "tap"
}

func tunNotFound(name string, l3 bool, err error) error {
	up, low := modeWords(l3)
	return &SetupError{Kind: ErrNotFound, Name: name, Op: "TUNSETIFF", Err: err,
		Problem: "no " + up + " interface " + name + " (creating one needs CAP_NET_ADMIN)",
		Fix:     "create it as root: ip tuntap add " + name + " mode " + low + " user $USER"}
}

// tunOpenError explains a failed open of /dev/net/tun.
func tunOpenError(name string, l3 bool, err error) error {
	_, low := modeWords(l3)
	e := &SetupError{Name: name, Op: "open /dev/net/tun", Err: err}
	switch {
	case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENODEV), errors.Is(err, unix.ENXIO):
		e.Kind = ErrNotFound
		e.Problem = "no /dev/net/tun"
		e.Fix = "load the driver as root: modprobe tun (in a container: mknod /dev/net/tun c 10 200)"
	case errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM):
		e.Kind = ErrPermission
		e.Problem = "no permission to open /dev/net/tun"
		e.Fix = "run as root, or have root run: chmod 0666 /dev/net/tun && ip tuntap add " + name + " mode " + low + " user $USER"
	default:
		e.Problem = "cannot open /dev/net/tun"
	}
	return e
}

// tunSetIFFError explains a failed TUNSETIFF, given what is known about the
// interface.
func tunSetIFFError(name string, l3 bool, err error, f tunFacts) error {
	up, low := modeWords(l3)
	recreate := "ip tuntap del " + name + " mode " + low + "; ip tuntap add " + name + " mode " + low + " user $USER"
	e := &SetupError{Name: name, Op: "TUNSETIFF", Err: err}
	switch {
	case errors.Is(err, unix.EPERM) && !f.exists:
		return tunNotFound(name, l3, err)
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		e.Kind = ErrPermission
		e.Problem = up + " " + name + " belongs to another user or group"
		e.Fix = "run as root, or recreate it for this user as root: " + recreate
	case errors.Is(err, unix.EBUSY):
		e.Kind = ErrBusy
		e.Problem = up + " " + name + " is in use by another process"
		if len(f.holders) > 0 {
			e.Problem += " (" + strings.Join(f.holders, ", ") + ")"
		}
		e.Fix = "stop that process or use another " + up + " (one process per " + up + ")"
	case errors.Is(err, unix.EINVAL) && f.exists && f.driver != "tun":
		e.Kind = ErrWrongMode
		e.Problem = name + " is not a TUN/TAP interface"
		if f.driver != "" {
			e.Problem += " (driver " + f.driver + ")"
		}
		e.Fix = "open it with a raw socket, or choose another name"
	case errors.Is(err, unix.EINVAL) && f.exists && f.bus != low:
		other, otherLow := modeWords(!l3)
		e.Kind = ErrWrongMode
		e.Problem = name + " is a " + other + " interface, not a " + up
		e.Fix = "open it as " + other + ", or recreate it as root: ip tuntap del " + name + " mode " + otherLow +
			"; ip tuntap add " + name + " mode " + low + " user $USER"
	case errors.Is(err, unix.EINVAL) && f.exists:
		e.Kind = ErrWrongMode
		e.Problem = up + " " + name + " refused our flags (was it made with multi_queue?)"
		e.Fix = "recreate it as root: " + recreate
	case errors.Is(err, unix.EINVAL):
		e.Kind = ErrInvalid
		e.Problem = "the kernel refused the name or flags"
	default:
		e.Problem = "cannot attach to " + up + " " + name
	}
	return e
}
