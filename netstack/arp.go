package netstack

import (
	"net/netip"

	"github.com/tapstack/tapstack/ip"
	"github.com/tapstack/tapstack/mono"
)

// handleARPLocked answers requests for our addresses and learns from every
// ARP packet (RFC 826's merge rule: update a known sender; create an entry
// only when we are the target).
func (s *Stack) handleARPLocked(now mono.Time, nic *NIC, b []byte) {
	a, err := ip.ParseARP(b)
	if err != nil {
		s.stats.ARP.Malformed++
		return
	}
	s.stats.ARP.Received++
	spa, tpa := a.SenderProtocolAddr(), a.TargetProtocolAddr()
	sha := a.SenderHardwareAddr()
	if !spa.IsValid() || spa.IsUnspecified() || sha.IsMulticast() {
		// Probes (RFC 5227) have sender 0.0.0.0: nothing to learn.
		s.stats.ARP.NoSender++
	} else if nic.hasAddr(spa) {
		s.stats.ARP.AddressConflict++
		return
	} else {
		if nic.neigh == nil {
			nic.neigh = newNeighborCache(nic)
		}
		nic.neigh.learnLocked(now, spa, sha, nic.hasAddr(tpa))
	}
	if a.Op() == ip.ARPRequest && nic.hasAddr(tpa) {
		nic.sendARPLocked(ip.ARPReply, sha, tpa, sha, spa)
	}
}

// sendARPRequestLocked asks who has target, by broadcast or, when
// refreshing a known entry, by unicast to its MAC as Linux does.
func (n *NIC) sendARPRequestLocked(target netip.Addr, known ip.MAC, unicast bool) {
	src, ok := n.sourceFor(target)
	if !ok {
		return
	}
	dst := ip.BroadcastMAC
	if unicast {
		dst = known
	}
	n.sendARPLocked(ip.ARPRequest, dst, src, ip.MAC{}, target)
}

// announceLocked sends a gratuitous ARP for a (a request with sender and
// target both a), so neighbours update their caches.
func (n *NIC) announceLocked(a netip.Addr) {
	n.sendARPLocked(ip.ARPRequest, ip.BroadcastMAC, a, ip.MAC{}, a)
}

func (n *NIC) sendARPLocked(op ip.ARPOp, dst ip.MAC, spa netip.Addr, tha ip.MAC, tpa netip.Addr) {
	if !n.l2 {
		return
	}
	b := getBuf(frameOffset + ip.EthernetHeaderLen + ip.ARPLen)
	frame := (*b)[frameOffset : frameOffset+ip.EthernetHeaderLen+ip.ARPLen]
	*b = (*b)[:frameOffset+len(frame)]
	eth := ip.EthernetFields{Dst: dst, Src: n.mac, EtherType: ip.EtherTypeARP}
	arp := ip.ARPFields{Op: op, SenderHardwareAddr: n.mac, SenderProtocolAddr: spa,
		TargetHardwareAddr: tha, TargetProtocolAddr: tpa}
	if eth.Encode(frame) != nil || arp.Encode(frame[ip.EthernetHeaderLen:]) != nil {
		n.s.stats.Link.EncodeErrors++
		putBuf(b)
		return
	}
	n.s.stats.ARP.Sent++
	n.queueLocked(b)
}

// sourceFor picks n's address on the network of dst, or its first address.
func (n *NIC) sourceFor(dst netip.Addr) (netip.Addr, bool) {
	for _, p := range n.addrs {
		if p.Contains(dst) {
			return p.Addr(), true
		}
	}
	return n.primaryAddr()
}
