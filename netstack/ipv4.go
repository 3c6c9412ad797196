package netstack

import (
	"errors"
	"net/netip"

	"github.com/tapstack/tapstack/internal/bufpool"
	"github.com/tapstack/tapstack/ip"
	"github.com/tapstack/tapstack/mono"
)

// We are a host (RFC 1122), not a router: packets for other addresses are
// dropped, never forwarded.

const defaultTTL = 64 // Linux's ip_default_ttl

// ErrMessageTooLong is returned for a packet that needs fragmenting when
// fragmenting is not allowed, or that exceeds 65535 bytes.
var ErrMessageTooLong = errors.New("netstack: message too long")

// handleIPv4Locked validates an inbound IPv4 packet and hands it up.
func (s *Stack) handleIPv4Locked(now mono.Time, nic *NIC, b []byte) {
	st := &s.stats.IPv4
	st.Received++
	h, err := ip.ParseIPv4(b)
	if err != nil {
		if errors.Is(err, ip.ErrTruncated) {
			st.Truncated++
		} else {
			st.Malformed++
		}
		return
	}
	if !h.ChecksumValid() {
		st.BadChecksum++
		return
	}
	// RFC 1122 §3.2.1.7: a host must not drop a packet for a low TTL; it
	// is the routers' field. Linux delivers TTL 0 locally too.
	dst, src := h.Dst(), h.Src()
	if !nic.hasAddr(dst) && !nic.isBroadcast(dst) {
		st.NotForUs++
		return
	}
	// RFC 1122 §3.2.1.3: discard datagrams from sources that cannot be on
	// the wire. Loopback and our own addresses are martians, as on Linux;
	// answering them would send to 127/8 or resolve our own address.
	if !src.IsUnspecified() && (nic.isBroadcast(src) || src.IsMulticast() || src.IsLoopback() || s.isLocalAddrLocked(src)) {
		st.BadSource++
		return
	}
	if h.IsFragment() {
		whole, buf := s.reassemblerLocked().addLocked(now, nic, h)
		if buf == nil {
			return
		}
		// The kernel saw fragments, not this datagram, which is not in the
		// frame's buffer either.
		lent := nic.rxBuf
		nic.rxCsumOK, nic.rxBuf = false, nil
		s.deliverIPv4Locked(now, nic, whole)
		nic.rxBuf = lent
		putBuf(buf)
		return
	}
	s.deliverIPv4Locked(now, nic, h)
}

// deliverIPv4Locked hands a whole datagram addressed to us to its protocol.
func (s *Stack) deliverIPv4Locked(now mono.Time, nic *NIC, h ip.IPv4) {
	s.stats.IPv4.Delivered++
	switch h.Protocol() {
	case ip.ProtocolICMP:
		s.handleICMPLocked(now, nic, h)
	case ip.ProtocolUDP:
		s.handleUDPLocked(now, nic, h)
	case ip.ProtocolTCP:
		if s.tcpInput != nil {
			s.tcpInput(now, nic, h)
			return
		}
		fallthrough
	default:
		s.stats.IPv4.UnknownProtocol++
		s.icmpErrorLocked(now, nic, h, ip.ICMPv4DestinationUnreachable, ip.ICMPv4ProtocolUnreachable)
	}
}

// ipv4Out says how to send one IPv4 packet.
type ipv4Out struct {
	proto    ip.Protocol
	src, dst netip.Addr
	ttl      uint8 // 0 means defaultTTL
	tos      uint8
	df       bool // don't fragment
	gso      bool // a TSO super-segment: the device cuts it to the MTU
	// tail is payload the device writes after the packet's buffer, held
	// by refs (a gather write; only on a NIC with gather, and with df).
	tail [2][]byte
	refs [2]*bufpool.Ref
}

// ipPayloadOffset is where the IPv4 payload starts in a pooled buffer for
// nic: room for the frame offset, the link header and an option-less IPv4
// header.
func (n *NIC) ipPayloadOffset() int { return n.ipOffset() + ip.IPv4MinHeaderLen }

// sendIPv4Locked sends the IPv4 payload that sits in b from
// r.NIC.ipPayloadOffset() to len(*b), fragmenting it to the MTU when allowed.
// It takes ownership of b.
func (s *Stack) sendIPv4Locked(now mono.Time, r Route, nh netip.Addr, o ipv4Out, b *[]byte) error {
	nic := r.NIC
	off := nic.ipOffset()
	total := len(*b) - off + len(o.tail[0]) + len(o.tail[1])
	if total > 0xffff {
		putBuf(b)
		releaseRefs(o.refs)
		s.stats.IPv4.TooLong++
		return ErrMessageTooLong
	}
	if o.ttl == 0 {
		o.ttl = defaultTTL
	}
	f := ip.IPv4Fields{TOS: o.tos, TotalLength: uint16(total), ID: s.ipIDLocked(o.src, o.dst, o.proto),
		TTL: o.ttl, Protocol: o.proto, Src: o.src, Dst: o.dst}
	if o.df {
		f.Flags = ip.IPv4FlagDF
	}
	if err := f.Encode((*b)[off:]); err != nil {
		putBuf(b)
		releaseRefs(o.refs)
		s.stats.Link.EncodeErrors++
		return err
	}
	s.stats.IPv4.Sent++
	if o.tail[0] != nil && (total <= nic.mtu || o.gso) {
		nic.outputFrameLocked(now, nh, txFrame{b: b, tail: o.tail, refs: o.refs})
		return nil
	}
	if total <= nic.mtu || o.gso {
		nic.outputLocked(now, nh, b)
		return nil
	}
	if o.df || o.tail[0] != nil {
		releaseRefs(o.refs)
		putBuf(b)
		s.stats.IPv4.TooLong++
		return ErrMessageTooLong
	}
	h := ip.IPv4((*b)[off:len(*b)])
	payload := h.Payload()
	chunk := (nic.mtu - ip.IPv4MinHeaderLen) &^ (ip.IPv4FragmentUnit - 1)
	for at := 0; at < len(payload); at += chunk {
		n := min(chunk, len(payload)-at)
		fb := getBuf(off + ip.IPv4MinHeaderLen + n)
		*fb = (*fb)[:off+ip.IPv4MinHeaderLen+n]
		if err := h.EncodeFragmentHeader((*fb)[off:], at, n, at+n < len(payload)); err != nil {
			putBuf(fb)
			s.stats.Link.EncodeErrors++
			break
		}
		copy((*fb)[off+ip.IPv4MinHeaderLen:], payload[at:at+n])
		s.stats.IPv4.FragmentsSent++
		nic.outputLocked(now, nh, fb)
	}
	putBuf(b)
	return nil
}

// ipIDLocked returns the identification for the next datagram from src to
// dst. RFC 6864 asks only that IDs of fragmentable datagrams not repeat
// within a flow while they may be in flight; like Linux, we keep a
// counter per hash bucket of (src, dst, protocol), each starting at a random
// value, so IDs reveal nothing across flows.
func (s *Stack) ipIDLocked(src, dst netip.Addr, proto ip.Protocol) uint16 {
	if s.ipIDs == nil {
		s.ipIDs = make([]uint16, ipIDBuckets)
		for i := range s.ipIDs {
			s.ipIDs[i] = uint16(s.rand.Uint64())
		}
		s.ipIDKey = s.rand.Uint64()
	}
	a, d := src.As4(), dst.As4()
	x := uint64(a[0])<<56 | uint64(a[1])<<48 | uint64(a[2])<<40 | uint64(a[3])<<32 |
		uint64(d[0])<<24 | uint64(d[1])<<16 | uint64(d[2])<<8 | uint64(d[3])
	i := mix64(x^s.ipIDKey^uint64(proto)) % ipIDBuckets
	s.ipIDs[i]++
	return s.ipIDs[i]
}

const ipIDBuckets = 2048

// mix64 is SplitMix64's finaliser: a fast, well-spread 64-bit hash.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// routeFromLocked finds the route to dst and the source address to use:
// src itself when it is set (it must be one of ours), else the address of
// the route's interface on dst's network.
func (s *Stack) routeFromLocked(src, dst netip.Addr) (Route, netip.Addr, netip.Addr, error) {
	r, nh, err := s.routeLocked(dst)
	if err != nil {
		return r, nh, src, err
	}
	if !src.IsValid() || src.IsUnspecified() {
		var ok bool
		if src, ok = r.NIC.sourceFor(nh); !ok {
			return r, nh, src, ErrNoRoute
		}
	}
	return r, nh, src, nil
}
