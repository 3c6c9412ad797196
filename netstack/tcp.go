package netstack

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
	"syscall"

	"github.com/tapstack/tapstack/checksum"
	"github.com/tapstack/tapstack/device"
	"github.com/tapstack/tapstack/ip"
	"github.com/tapstack/tapstack/mono"
	"github.com/tapstack/tapstack/tcp"
)

// TCP: the stack's side of package tcp. It demultiplexes segments to
// connections by 4-tuple and to listeners by local port, answers segments
// for no socket with a RST, builds outbound segments in place, and keeps
// each connection's deadline in the timer heap.

// TCPStats counts TCP segments: the protocol's own counters (tcp.Stats)
// and those of demultiplexing.
type TCPStats struct {
	tcp.Stats
	Received         uint64
	Malformed        uint64
	BadChecksum      uint64
	NotUnicast       uint64 // to a broadcast or multicast address
	NoPort           uint64 // no connection or listener: answered with a RST
	ListenOverflows  uint64 // handshakes completed with the accept queue full: dropped
	NoRoute          uint64 // segments that could not be sent
	EphemeralMissing uint64 // dials that found no free port
}

// tcpKey is a connection's 4-tuple, seen from our side.
type tcpKey struct {
	local, remote netip.AddrPort
}

// connTable finds connections by 4-tuple. A tuple is 64 bytes as a map
// key (two netip.AddrPort), so the table is keyed by a keyed 64-bit hash
// of it instead and a lookup checks the connection's own tuple: a slot
// costs 16 bytes, not 72, which is most of what the table costs per
// connection. A tuple whose hash another connection already holds goes to
// a second map keyed by the whole tuple; that map is almost always empty
// (two of a million random tuples share a 64-bit hash with odds around
// 1 in 10^7), and when a peer does find collisions it only moves its
// connections there, a Go map with its own random seed.
type connTable struct {
	byHash map[uint64]*TCPConn
	more   map[tcpKey]*TCPConn // tuples whose hash byHash holds for another
	key    [4]uint64           // the hash's secret
	// mask is ^0; tests narrow it to force collisions.
	mask uint64
}

// init derives the secret from secret (the ISN key) rather than drawing
// from the stack's random source, which would change every later draw and
// with it a simulation's trace.
func (t *connTable) init(secret *[16]byte) {
	t.byHash = make(map[uint64]*TCPConn)
	t.more = make(map[tcpKey]*TCPConn)
	k0, k1 := binary.LittleEndian.Uint64(secret[:8]), binary.LittleEndian.Uint64(secret[8:])
	for i := range t.key {
		t.key[i] = mix64(k0 ^ mix64(k1+uint64(i)*0x9e3779b97f4a7c15))
	}
	t.mask = ^uint64(0)
}

// hash is a keyed hash of the tuple: multiply-and-fold rounds (as
// wyhash's) over the addresses and ports mixed with the secret.
func (t *connTable) hash(k tcpKey) uint64 {
	la, ra := k.local.Addr().As16(), k.remote.Addr().As16()
	ports := uint64(k.local.Port())<<16 | uint64(k.remote.Port())
	h := mulFold(binary.LittleEndian.Uint64(la[:8])^t.key[0], binary.LittleEndian.Uint64(la[8:])^t.key[1])
	h ^= mulFold(binary.LittleEndian.Uint64(ra[:8])^t.key[2], binary.LittleEndian.Uint64(ra[8:])^t.key[3])
	return mulFold(h^ports^t.key[1], t.key[2]^0x9e3779b97f4a7c15) & t.mask
}

func mulFold(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

// get returns the connection for k, or nil.
func (t *connTable) get(k tcpKey) *TCPConn {
	if tc := t.byHash[t.hash(k)]; tc != nil && tc.key() == k {
		return tc
	}
	if len(t.more) == 0 {
		return nil
	}
	return t.more[k]
}

// put adds (or replaces) the connection for k.
func (t *connTable) put(k tcpKey, tc *TCPConn) {
	h := t.hash(k)
	if old := t.byHash[h]; old == nil || old.key() == k {
		t.byHash[h] = tc
		return
	}
	t.more[k] = tc
}

// remove forgets tc if the table holds it.
func (t *connTable) remove(tc *TCPConn) {
	k := tc.key()
	h := t.hash(k)
	if t.byHash[h] == tc {
		delete(t.byHash, h)
		return
	}
	if t.more[k] == tc {
		delete(t.more, k)
	}
}

// len returns the number of connections.
func (t *connTable) len() int { return len(t.byHash) + len(t.more) }

// each calls f for every connection, in no particular order.
func (t *connTable) each(f func(*TCPConn)) {
	for _, tc := range t.byHash {
		f(tc)
	}
	for _, tc := range t.more {
		f(tc)
	}
}

// tcpLayer is the stack's TCP state, guarded by the loop lock.
type tcpLayer struct {
	cfg       tcp.Config
	conns     connTable
	listeners map[uint16]*TCPListener
	// scratch is the LISTEN-state TCB a segment for a listener goes
	// through; when the segment makes it a connection it is kept and a new
	// scratch made.
	scratch   *tcp.Conn
	seg       tcp.Segment      // the arriving segment, parsed
	rst       tcp.HeaderFields // scratch for RSTs to no socket
	portKey   uint64           // RFC 6056's secret
	portTable [portTableSize]uint16
}

const portTableSize = 256

// tcpOutput is the Output every connection of the stack sends through.
type tcpOutput struct{ s *Stack }

// initTCPLocked enables TCP on a new stack.
func (s *Stack) initTCPLocked() {
	t := &s.tcp
	t.cfg.Output = tcpOutput{s}
	t.cfg.Stats = &s.stats.TCP.Stats
	if t.cfg.ISNKey == [len(t.cfg.ISNKey)]byte{} {
		for i := 0; i < len(t.cfg.ISNKey); i += 8 {
			v := s.rand.Uint64()
			for j := range 8 {
				t.cfg.ISNKey[i+j] = byte(v >> (8 * j))
			}
		}
	}
	t.cfg.Defaults()
	t.conns.init(&t.cfg.ISNKey)
	t.listeners = make(map[uint16]*TCPListener)
	t.scratch = new(tcp.Conn)
	t.portKey = s.rand.Uint64()
	for i := range t.portTable {
		t.portTable[i] = uint16(s.rand.Uint64())
	}
	s.tcpInput = s.tcpInputLocked
	s.tcpSoftError = s.tcpSoftErrorLocked
}

// tcpInputLocked is the receive path for TCP segments.
func (s *Stack) tcpInputLocked(now mono.Time, nic *NIC, h ip.IPv4) {
	st := &s.stats.TCP
	st.Received++
	if nic.isBroadcast(h.Dst()) || h.Dst().IsMulticast() {
		st.NotUnicast++
		return
	}
	th, err := tcp.ParseHeader(h.Payload())
	if err != nil {
		st.Malformed++
		return
	}
	if !nic.rxCsumOK && !th.ChecksumValid(checksum.PseudoHeaderV4(h.Src().As4(), h.Dst().As4(), uint8(ip.ProtocolTCP), uint16(len(th)))) {
		st.BadChecksum++
		return
	}
	t := &s.tcp
	seg := &t.seg
	tcp.SegmentOf(th, seg)
	key := tcpKey{local: netip.AddrPortFrom(h.Dst(), th.DstPort()), remote: netip.AddrPortFrom(h.Src(), th.SrcPort())}
	var reuse *tcp.Conn
	if tc := t.conns.get(key); tc != nil {
		if tc.inSynQ && len(tc.ln.acceptQ) >= tc.ln.backlog {
			// The handshake cannot complete into a full accept queue: drop
			// the segment and let the peer retry, as Linux does.
			st.ListenOverflows++
			return
		}
		seg.Buf = nic.rxBuf
		tc.c.Input(now, seg)
		nic.rxBuf, seg.Buf = seg.Buf, nil // nil if the connection kept it
		if tc.afterLocked(now)&tcp.EventReuse == 0 {
			return
		}
		reuse = tc.c // TIME-WAIT handed the tuple to a new SYN
	}
	if ln := s.tcpListenerLocked(key.local); ln != nil {
		ln.inputLocked(now, key, seg, reuse)
		return
	}
	st.NoPort++
	s.tcpResetLocked(now, key, seg)
}

// tcpResetLocked answers a segment for no socket (RFC 9293 §3.10.7.1).
func (s *Stack) tcpResetLocked(now mono.Time, key tcpKey, seg *tcp.Segment) {
	f, ok := tcp.ResetFor(seg)
	if !ok {
		return
	}
	f.SrcPort, f.DstPort = key.local.Port(), key.remote.Port()
	s.tcp.rst = f
	s.stats.TCP.ResetsSent++
	s.tcpSendLocked(now, nil, key.local, key.remote, &s.tcp.rst, [2][]byte{}, 0)
}

func (s *Stack) tcpListenerLocked(local netip.AddrPort) *TCPListener {
	ln := s.tcp.listeners[local.Port()]
	if ln == nil || !ln.addr.Addr().IsUnspecified() && ln.addr.Addr() != local.Addr() {
		return nil
	}
	return ln
}

// SendSegment implements tcp.Output.
func (o tcpOutput) SendSegment(now mono.Time, c *tcp.Conn, f *tcp.HeaderFields, payload [2][]byte) {
	local, remote := c.Addrs()
	seg := 0
	if len(payload[0])+len(payload[1]) > c.MSS() {
		seg = c.SegmentSize() // a TSO super-segment, cut at this size
	}
	o.s.tcpSendLocked(now, c, local, remote, f, payload, seg)
}

// gatherMin is the least payload a segment sends from the send buffer as
// it lies there (NIC.gather): below it a copy behind the headers costs
// less than holding the send buffer's chunk until the device is done.
const gatherMin = 16 << 10

// tcpSendLocked builds a segment in place: the payload copied once to its
// final offset in a pooled buffer, or, on a NIC that gathers, left in c's
// send buffer for the device to write from; the TCP header encoded in
// front of it with the checksum (a partial one, and the virtio-net header
// in the headroom, on a NIC with checksum offload), then IPv4 (DF set, as
// Linux does for TCP). segSize is not 0 for a TSO super-segment, which the
// device cuts at that size. c is nil for a segment without a connection (a
// RST).
func (s *Stack) tcpSendLocked(now mono.Time, c *tcp.Conn, local, remote netip.AddrPort, f *tcp.HeaderFields, payload [2][]byte, segSize int) {
	r, nh, src, err := s.routeFromLocked(local.Addr(), remote.Addr())
	if err != nil {
		s.stats.TCP.NoRoute++
		return
	}
	nic := r.NIC
	off := nic.ipPayloadOffset()
	hl := f.HeaderLen()
	plen := len(payload[0]) + len(payload[1])
	o := ipv4Out{proto: ip.ProtocolTCP, src: src, dst: remote.Addr(), df: true}
	pseudo := checksum.PseudoHeaderV4(src.As4(), remote.Addr().As4(), uint8(ip.ProtocolTCP), uint16(hl+plen))
	gather := nic.gather && c != nil && plen >= gatherMin && (segSize > 0 || off+hl+plen-nic.ipOffset() <= nic.mtu)
	n := off + hl
	if !gather {
		n += plen
	}
	b := getBuf(n)
	*b = (*b)[:n]
	if gather {
		o.tail, o.refs = payload, c.HoldPayload(f, plen)
	} else {
		p := (*b)[off+hl:]
		k := copy(p, payload[0])
		copy(p[k:], payload[1])
	}
	if nic.offloads&device.OffloadChecksum != 0 {
		// The device finishes the checksum (and with TSO cuts a
		// super-segment at the segment size): no pass over the payload.
		_, err = f.EncodePartial((*b)[off:], pseudo)
		o.gso = segSize > 0
		l3 := nic.ipOffset() - frameOffset
		meta := device.TCPOffload(l3, ip.IPv4MinHeaderLen, hl, plen, segSize, false)
		meta.Encode((*b)[frameOffset-device.VnetHdrLen : frameOffset])
	} else {
		_, err = f.Encode((*b)[off:], pseudo, checksum.SumVec(payload[:], 0))
	}
	if err != nil {
		putBuf(b)
		releaseRefs(o.refs)
		s.stats.Link.EncodeErrors++
		return
	}
	_ = s.sendIPv4Locked(now, r, nh, o, b)
}

// tcpSoftErrorLocked hands an ICMP error about a segment we sent to its
// connection.
func (s *Stack) tcpSoftErrorLocked(orig ip.IPv4, errno syscall.Errno) {
	p := orig.Payload()
	if len(p) < 4 {
		return
	}
	key := tcpKey{
		local:  netip.AddrPortFrom(orig.Src(), uint16(p[0])<<8|uint16(p[1])),
		remote: netip.AddrPortFrom(orig.Dst(), uint16(p[2])<<8|uint16(p[3])),
	}
	if tc := s.tcp.conns.get(key); tc != nil {
		tc.c.SoftError(errno)
		tc.afterLocked(s.clock())
	}
}

// endpointLocked returns the endpoint of a connection from local to
// remote, from one route lookup: the MSS is the route's MTU less the IPv4
// and TCP headers (536 without a route), and GSOMax, when the route's
// device does TSO, an IPv4 packet's limit less the largest headers.
func (s *Stack) endpointLocked(local, remote netip.AddrPort) tcp.Endpoint {
	ep := tcp.Endpoint{Local: local, Remote: remote, MSS: 536}
	r, _, _, err := s.routeFromLocked(local.Addr(), remote.Addr())
	if err != nil {
		return ep
	}
	ep.MSS = r.NIC.mtu - ip.IPv4MinHeaderLen - tcp.HeaderMinLen
	if r.NIC.offloads&device.OffloadTSO4 != 0 {
		ep.GSOMax = 0xffff - ip.IPv4MinHeaderLen - tcp.HeaderMaxLen
	}
	return ep
}

// ephemeralTCPPortLocked picks a local port for a connection to remote by
// RFC 6056's algorithm 4 (double-hash): a keyed hash of the tuple chooses
// where the search starts, and a small table of counters, indexed by a
// second hash, moves it on after each use, so ports are unpredictable to an
// outsider yet a tuple's port does not repeat soon.
func (s *Stack) ephemeralTCPPortLocked(local netip.Addr, remote netip.AddrPort) (uint16, bool) {
	t := &s.tcp
	const n = ephemeralLast - ephemeralFirst + 1
	a, r := local.As4(), remote.Addr().As4()
	x := uint64(a[0])<<56 | uint64(a[1])<<48 | uint64(a[2])<<40 | uint64(a[3])<<32 |
		uint64(r[0])<<24 | uint64(r[1])<<16 | uint64(r[2])<<8 | uint64(r[3])
	h1 := mix64(x ^ t.portKey ^ uint64(remote.Port())<<20)
	idx := mix64(x^^t.portKey) % portTableSize
	for i := uint64(0); i < n; i++ {
		p := uint16(ephemeralFirst + (h1+uint64(t.portTable[idx])+i)%n)
		k := tcpKey{local: netip.AddrPortFrom(local, p), remote: remote}
		if t.conns.get(k) == nil && t.listeners[p] == nil {
			t.portTable[idx] += uint16(i + 1)
			return p, true
		}
	}
	return 0, false
}

// tcpCloseAllLocked wakes every blocked TCP call when the stack closes.
func (s *Stack) tcpCloseAllLocked() {
	s.tcp.conns.each(func(tc *TCPConn) { // order does not matter: each is only woken
		tc.wakeLocked(true, true)
	})
	for _, ln := range s.tcp.listeners {
		ln.waiters.wakeLocked(&s.mu)
	}
}
