package netstack

import (
	"crypto/rand"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"syscall"
	"time"

	"github.com/tapstack/tapstack/device"
	"github.com/tapstack/tapstack/ip"
	"github.com/tapstack/tapstack/mono"
	"github.com/tapstack/tapstack/tcp"
)

// Rand is the stack's source of randomness: ISNs, ephemeral ports, IP
// identifications, ARP jitter. *math/rand/v2.ChaCha8 and *rand.PCG satisfy it.
type Rand interface{ Uint64() uint64 }

// Config configures a Stack. The zero value is a real-time stack.
type Config struct {
	// Clock is the driver's clock. Nil means the real clock, with timers run
	// by a goroutine the Stack owns. A simulator sets it and calls Advance
	// itself; no goroutine is started then.
	Clock func() mono.Time
	// Rand is the random source; nil means one seeded from crypto/rand.
	Rand Rand
	// TCP holds the TCP layer's settings, as Linux's net.ipv4.tcp_*
	// sysctls do: buffer bounds, timers, options, tail loss probes, the
	// in-flight governor, congestion control. Zero fields take tcp.Config's
	// defaults; Output and Stats are the stack's own, and a zero ISNKey is
	// drawn from Rand (stacks that share one accept each other's SYN
	// cookies).
	TCP tcp.Config
}

// Stack is one host's TCP/IP stack: its interfaces, routes, neighbour
// caches, sockets and timers.
//
// Locking: mu is the loop lock. It guards every field below it and all
// protocol state reached from them; whoever holds it is the event loop.
// Device readers, the timer goroutine and application calls all take it
// for the duration of one step, so protocol code never sees concurrency.
// Methods ending in Locked need it held.
type Stack struct {
	clock func() mono.Time
	epoch time.Time // the real clock's zero; unused on a simulated clock

	mu     loopLock
	rand   Rand
	nics   []*NIC
	routes []Route
	timers timerHeap
	stats  Stats
	dirty  []*NIC // NICs with queued output, flushed when a step ends
	closed bool

	reasm       *reassembler
	ipIDs       []uint16 // IPv4 identification counters, by flow hash
	ipIDKey     uint64
	icmpBucket  tokenBucket
	udp         map[uint16]*UDPConn
	pings       map[uint16]*PingConn
	pingPattern []byte

	// The TCP layer's entry points, set when it is enabled.
	tcpInput     func(now mono.Time, nic *NIC, h ip.IPv4)
	tcpSoftError func(orig ip.IPv4, errno syscall.Errno)
	tcp          tcpLayer

	drv *driver // nil on a simulated clock
}

// New returns a Stack with no interfaces.
func New(cfg Config) *Stack {
	s := &Stack{clock: cfg.Clock, rand: cfg.Rand}
	if s.rand == nil {
		var seed [32]byte
		_, _ = rand.Read(seed[:])
		s.rand = mrand.NewChaCha8(seed)
	}
	s.tcp.cfg = cfg.TCP.Clone()
	s.initTCPLocked()
	if s.clock == nil {
		s.epoch = time.Now()
		s.clock = func() mono.Time { return mono.Time(time.Since(s.epoch)) }
		s.drv = startDriver(s)
	}
	return s
}

// Now reads the stack's clock.
func (s *Stack) Now() mono.Time { return s.clock() }

// ErrClosed is returned by operations on a closed Stack.
var ErrClosed = fmt.Errorf("netstack: stack closed: %w", net.ErrClosed)

// Link is where a NIC's outbound frames go: the real-time driver writes
// them to a device.Device, the simulator puts them on its wire. Frames are
// frames[i][offset:]; the buffers belong to the stack and are reused as soon
// as Transmit returns, so a Link that keeps a frame copies it.
type Link interface {
	Transmit(frames [][]byte, offset int)
}

// NICConfig describes an interface.
type NICConfig struct {
	Name string
	// LinkAddr is the interface's MAC address; nil makes an L3 interface
	// (TUN) that carries bare IP packets.
	LinkAddr net.HardwareAddr
	// MTU is the largest IP packet the link carries; 0 means 1500.
	MTU int
	// Addrs are the interface's addresses with their prefix lengths; each
	// prefix is a connected network.
	Addrs []netip.Prefix
}

// NIC is one interface of a Stack.
type NIC struct {
	s     *Stack
	id    int
	name  string
	mac   ip.MAC
	l2    bool
	mtu   int
	addrs []netip.Prefix
	// bcasts are the directed broadcast addresses of addrs' networks, each
	// once.
	bcasts []netip.Addr
	link   Link

	// Guarded by s.mu.
	neigh   *neighborCache // made on first use
	txq     []txFrame      // frames queued by this step
	txViews [][]byte       // reused slice header array for Transmit
	queued  bool           // on s.dirty
	// tx, on a NIC made by AttachDevice, takes the output instead of link,
	// to be written after the loop lock is released; nil on a simulated
	// clock, whose links transmit at the end of the step.
	tx *txQueue
	// offloads are the device's virtio-net offloads (AttachDevice): TCP
	// leaves checksums to it and, with TSO, sends super-segments.
	offloads device.Offloads
	// rxCsumOK says the frame being handled carries the kernel's word for
	// its transport checksum (virtio-net NEEDS_CSUM: the kernel's own, not
	// computed yet; DATA_VALID: verified), so TCP and UDP skip theirs, as
	// a NIC's CHECKSUM_UNNECESSARY spares Linux. Set per frame by the
	// driver's reader; never for a reassembled datagram.
	rxCsumOK bool
	// rxBuf is the pooled buffer the frame being handled lies in when the
	// driver's reader lends it: a connection may keep it rather than copy
	// the payload (tcp.Segment.Buf), and sets it to nil then. Nil when the
	// caller keeps its frames, and for a reassembled datagram.
	rxBuf *[]byte
	// gather says TCP may send payload as a tail that the device writes
	// from the send buffer (txFrame, device.GatherWriter).
	gather bool
}

// frameOffset is where outbound frames start in their buffers: room for a
// device's own header in front of the frame.
const frameOffset = device.Headroom

// AddNIC adds an interface whose output goes to link. The real-time driver
// uses AttachDevice instead, which calls this.
func (s *Stack) AddNIC(cfg NICConfig, link Link) (*NIC, error) {
	if cfg.MTU == 0 {
		cfg.MTU = 1500
	}
	if cfg.MTU < 68 || cfg.MTU > 65535 {
		return nil, fmt.Errorf("netstack: NIC %q: MTU %d outside 68..65535", cfg.Name, cfg.MTU)
	}
	n := &NIC{s: s, name: cfg.Name, mtu: cfg.MTU, link: link}
	if cfg.LinkAddr != nil {
		if len(cfg.LinkAddr) != 6 {
			return nil, fmt.Errorf("netstack: NIC %q: link address %v is not a 6-byte MAC", cfg.Name, cfg.LinkAddr)
		}
		copy(n.mac[:], cfg.LinkAddr)
		n.l2 = true
	}
	for _, p := range cfg.Addrs {
		if !p.Addr().Is4() {
			return nil, fmt.Errorf("netstack: NIC %q: address %v: only IPv4 is supported", cfg.Name, p)
		}
		n.addrs = append(n.addrs, p)
		if b := lastAddr(p); p.Bits() < 31 && !slices.Contains(n.bcasts, b) {
			n.bcasts = append(n.bcasts, b)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	n.id = len(s.nics)
	s.nics = append(s.nics, n)
	for _, p := range cfg.Addrs {
		// Many addresses on one network (a host holding a range of them)
		// make one connected route, not one each for every lookup to scan.
		if r := (Route{Dst: p.Masked(), NIC: n}); !slices.Contains(s.routes, r) {
			s.routes = append(s.routes, r)
		}
		n.announceLocked(p.Addr())
	}
	s.endStepLocked()
	return n, nil
}

// Name returns the interface's name.
func (n *NIC) Name() string { return n.name }

// MTU returns the interface's MTU.
func (n *NIC) MTU() int { return n.mtu }

// hasAddr reports whether a is one of n's addresses.
func (n *NIC) hasAddr(a netip.Addr) bool {
	for _, p := range n.addrs {
		if p.Addr() == a {
			return true
		}
	}
	return false
}

// primaryAddr returns n's first address, the source for locally
// originated packets on it.
func (n *NIC) primaryAddr() (netip.Addr, bool) {
	if len(n.addrs) == 0 {
		return netip.Addr{}, false
	}
	return n.addrs[0].Addr(), true
}

// queueLocked queues a built frame for transmission when the current step
// ends. The buffer returns to the pool after Transmit.
func (n *NIC) queueLocked(b *[]byte) {
	n.queueFrameLocked(txFrame{b: b})
}

// queueFrameLocked queues f for the device, taking ownership of it.
func (n *NIC) queueFrameLocked(f txFrame) {
	n.txq = append(n.txq, f)
	if !n.queued {
		n.queued = true
		n.s.dirty = append(n.s.dirty, n)
	}
}

// flushLocked hands every queued frame to the links, or to the writer of a
// NIC on a device, which writes it after the loop lock is released.
func (s *Stack) flushLocked() {
	for _, n := range s.dirty {
		n.queued = false
		if n.tx != nil {
			s.stats.Link.FramesSent += uint64(len(n.txq))
			s.stats.Link.TxErrors += n.tx.pushLocked(n.txq, &s.mu)
			clear(n.txq)
			n.txq = n.txq[:0]
			continue
		}
		views := framesOf(n.txq, n.txViews)
		n.link.Transmit(views, frameOffset)
		s.stats.Link.FramesSent += uint64(len(views))
		releaseFrames(n.txq, views)
		n.txq = n.txq[:0]
		n.txViews = views[:0]
	}
	s.dirty = s.dirty[:0]
}

// endStepLocked finishes one step of the event loop: output goes out and the
// timer goroutine learns of an earlier deadline.
func (s *Stack) endStepLocked() {
	s.flushLocked()
	if s.drv != nil {
		s.drv.rearmLocked(s.timers.next())
	}
}

// Receive processes inbound frames that arrived on nic at now.
func (s *Stack) Receive(now mono.Time, nic *NIC, frames [][]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.receiveLocked(now, nic, frames, nil, nil)
}

// receiveNow is Receive at the time the loop lock is taken. The real-time
// driver uses it (and advanceNow) so that steps see the clock in the order
// they run: a step at a time read before waiting for the lock could send
// a TCP timestamp older than one already sent, which the peer drops (PAWS).
// Both take the lock ahead of application calls, which also wait for room
// in the devices' output queues first (see loopLock).
//
// meta, when not nil, holds each frame's virtio-net header: a frame whose
// transport checksum the kernel vouches for is not verified again (partial
// checksums stay partial: nothing past TCP and UDP reads them).
//
// bufs, when not nil, holds the pooled buffer each frame lies in, lent to
// the stack: a buffer a connection kept is set to nil, for the caller to
// replace.
func (s *Stack) receiveNow(nic *NIC, frames [][]byte, meta []device.VnetHdr, bufs []*[]byte) (woke bool) {
	s.mu.lockDriver()
	defer s.mu.Unlock()
	s.mu.woke = false
	s.receiveLocked(s.clock(), nic, frames, meta, bufs)
	return s.mu.woke
}

func (s *Stack) receiveLocked(now mono.Time, nic *NIC, frames [][]byte, meta []device.VnetHdr, bufs []*[]byte) {
	if s.closed {
		return
	}
	for i, f := range frames {
		if meta != nil {
			nic.rxCsumOK = meta[i].Flags&(device.VnetNeedsCsum|device.VnetDataValid) != 0
		}
		if bufs != nil {
			nic.rxBuf = bufs[i]
		}
		s.handleFrameLocked(now, nic, f)
		if bufs != nil {
			bufs[i], nic.rxBuf = nic.rxBuf, nil
		}
	}
	nic.rxCsumOK = false
	s.endStepLocked()
}

// Advance fires every timer due at or before now.
func (s *Stack) Advance(now mono.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advanceLocked(now)
}

// advanceNow is Advance at the time the loop lock is taken (see receiveNow).
func (s *Stack) advanceNow() {
	s.mu.lockDriver()
	defer s.mu.Unlock()
	s.advanceLocked(s.clock())
}

func (s *Stack) advanceLocked(now mono.Time) {
	if s.closed {
		return
	}
	s.timers.fire(now)
	s.endStepLocked()
}

// NextDeadline returns the earliest armed timer, or mono.Never.
func (s *Stack) NextDeadline() mono.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.timers.next()
}

// Close stops the stack: every goroutine it started returns before Close
// does, and later calls fail with ErrClosed. Devices attached with
// AttachDevice are closed too.
func (s *Stack) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	// Sockets close with the stack: blocked calls return, later ones fail.
	for _, c := range s.udp {
		c.closeLocked()
	}
	for _, p := range s.pings {
		p.closeLocked()
	}
	s.tcpCloseAllLocked()
	s.mu.Unlock()
	var errs []error
	if s.drv != nil {
		errs = append(errs, s.drv.stop())
	}
	return errors.Join(errs...)
}
