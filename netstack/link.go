package netstack

import (
	"net/netip"
	"slices"

	"github.com/tapstack/tapstack/ip"
	"github.com/tapstack/tapstack/mono"
)

// linkHeaderLen is the link header a NIC puts in front of IP packets.
func (n *NIC) linkHeaderLen() int {
	if n.l2 {
		return ip.EthernetHeaderLen
	}
	return 0
}

// ipOffset is where an outbound IPv4 header starts in a pooled buffer.
func (n *NIC) ipOffset() int { return frameOffset + n.linkHeaderLen() }

// handleFrameLocked is the receive path's entry: one frame from nic.
func (s *Stack) handleFrameLocked(now mono.Time, nic *NIC, frame []byte) {
	s.stats.Link.FramesReceived++
	if !nic.l2 {
		s.handleIPv4Locked(now, nic, frame)
		return
	}
	eth, err := ip.ParseEthernet(frame)
	if err != nil {
		s.stats.Link.Malformed++
		return
	}
	if dst := eth.Dst(); dst != nic.mac && !dst.IsBroadcast() {
		// A promiscuous raw socket sees the whole segment's traffic.
		s.stats.Link.NotForUs++
		return
	}
	if eth.HasVLAN() {
		s.stats.Link.VLANTagged++
		return
	}
	switch eth.EtherType() {
	case ip.EtherTypeARP:
		s.handleARPLocked(now, nic, eth.Payload())
	case ip.EtherTypeIPv4:
		s.handleIPv4Locked(now, nic, eth.Payload())
	default:
		s.stats.Link.UnknownEtherType++
	}
}

// outputLocked sends an IPv4 packet that sits in b from nic.ipOffset() to
// len(*b), to next hop nh. It takes ownership of b.
func (n *NIC) outputLocked(now mono.Time, nh netip.Addr, b *[]byte) {
	if !n.l2 {
		n.queueLocked(b)
		return
	}
	if nh == netip.IPv4Unspecified() || n.isBroadcast(nh) {
		n.sendResolvedLocked(b, ip.BroadcastMAC)
		return
	}
	if n.neigh == nil {
		n.neigh = newNeighborCache(n)
	}
	if mac, ok := n.neigh.resolveLocked(now, nh, b); ok {
		n.sendResolvedLocked(b, mac)
	}
}

// outputFrameLocked is outputLocked for a frame whose payload lies
// outside its buffer (a gather write). An Ethernet NIC writes the header
// when the next hop is known; a frame that must wait for ARP is first made
// whole, so that it holds no send buffer while it waits.
func (n *NIC) outputFrameLocked(now mono.Time, nh netip.Addr, f txFrame) {
	if !n.l2 {
		n.s.stats.Link.FramesGathered++
		n.queueFrameLocked(f)
		return
	}
	dst := ip.BroadcastMAC
	if nh != netip.IPv4Unspecified() && !n.isBroadcast(nh) {
		if n.neigh == nil {
			n.neigh = newNeighborCache(n)
		}
		_, mac, ok := n.neigh.lookupLocked(now, nh)
		if !ok {
			n.outputLocked(now, nh, f.whole())
			return
		}
		dst = mac
	}
	e := ip.EthernetFields{Dst: dst, Src: n.mac, EtherType: ip.EtherTypeIPv4}
	if err := e.Encode((*f.b)[frameOffset:]); err != nil {
		n.s.stats.Link.EncodeErrors++
		f.release()
		return
	}
	n.s.stats.Link.FramesGathered++
	n.queueFrameLocked(f)
}

// isBroadcast reports whether a is the limited broadcast address or the
// directed broadcast address of one of n's networks.
func (n *NIC) isBroadcast(a netip.Addr) bool {
	if a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return true
	}
	return slices.Contains(n.bcasts, a)
}

// lastAddr returns the highest address of an IPv4 prefix.
func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3]) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// sendResolvedLocked writes the Ethernet header in front of the IPv4 packet
// in b and queues the frame.
func (n *NIC) sendResolvedLocked(b *[]byte, dst ip.MAC) {
	f := ip.EthernetFields{Dst: dst, Src: n.mac, EtherType: ip.EtherTypeIPv4}
	if err := f.Encode((*b)[frameOffset:]); err != nil {
		n.s.stats.Link.EncodeErrors++
		putBuf(b)
		return
	}
	n.queueLocked(b)
}
