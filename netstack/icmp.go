package netstack

import (
	"errors"
	"net/netip"
	"syscall"
	"time"

	"github.com/tapstack/tapstack/ip"
	"github.com/tapstack/tapstack/mono"
)

// ICMP errors we send are rate-limited by a token bucket, as Linux does
// (icmp_msgs_per_sec 1000, icmp_msgs_burst 50), so a flood of bad packets
// cannot make us flood back.
const (
	icmpErrorsPerSecond = 1000
	icmpErrorBurst      = 50
	// icmpErrorQuoteMax bounds an error message to 576 bytes (RFC 1812
	// §4.3.2.3): as much of the offending datagram as fits.
	icmpErrorQuoteMax = 576 - ip.IPv4MinHeaderLen - ip.ICMPv4HeaderLen
)

// handleICMPLocked answers echo requests and turns error messages into
// socket errors.
func (s *Stack) handleICMPLocked(now mono.Time, nic *NIC, h ip.IPv4) {
	st := &s.stats.ICMP
	st.Received++
	m, err := ip.ParseICMPv4(h.Payload())
	if err != nil {
		st.Malformed++
		return
	}
	if !m.ChecksumValid() {
		st.BadChecksum++
		return
	}
	switch m.Type() {
	case ip.ICMPv4Echo:
		if nic.isBroadcast(h.Dst()) {
			st.BroadcastEchoIgnored++ // Linux's icmp_echo_ignore_broadcasts
			return
		}
		st.EchoRequests++
		s.sendICMPLocked(now, h.Dst(), h.Src(), ip.ICMPv4Fields{Type: ip.ICMPv4EchoReply, ID: m.ID(), Seq: m.Seq()}, m.Payload())
	case ip.ICMPv4EchoReply:
		s.deliverEchoReplyLocked(now, h, m)
	case ip.ICMPv4DestinationUnreachable, ip.ICMPv4TimeExceeded, ip.ICMPv4ParameterProblem, ip.ICMPv4SourceQuench:
		orig, err := m.OriginalDatagram()
		if err != nil {
			st.Malformed++
			return
		}
		st.ErrorsReceived++
		s.deliverSoftErrorLocked(orig, icmpErrno(m.Type(), m.Code()))
	default:
		st.Ignored++
	}
}

// icmpErrno maps an ICMP error to the errno Linux reports on a socket
// (net/ipv4/icmp.c icmp_err_convert).
func icmpErrno(t ip.ICMPv4Type, c ip.ICMPv4Code) syscall.Errno {
	switch t {
	case ip.ICMPv4DestinationUnreachable:
		switch c {
		case ip.ICMPv4NetUnreachable, ip.ICMPv4NetUnknown, ip.ICMPv4NetUnreachableForTOS:
			return syscall.ENETUNREACH
		case ip.ICMPv4ProtocolUnreachable:
			return syscall.ENOPROTOOPT
		case ip.ICMPv4PortUnreachable:
			return syscall.ECONNREFUSED
		case ip.ICMPv4FragmentationNeeded:
			return syscall.EMSGSIZE
		case ip.ICMPv4SourceRouteFailed:
			return syscall.EOPNOTSUPP
		case ip.ICMPv4NetProhibited, ip.ICMPv4HostProhibited, ip.ICMPv4CommunicationProhibited:
			return syscall.EACCES
		}
		return syscall.EHOSTUNREACH
	case ip.ICMPv4ParameterProblem:
		return syscall.EPROTO
	}
	return syscall.EHOSTUNREACH
}

// sendICMPLocked sends an ICMP message with the given header fields and
// body from src to dst.
func (s *Stack) sendICMPLocked(now mono.Time, src, dst netip.Addr, f ip.ICMPv4Fields, body ...[]byte) error {
	r, nh, src, err := s.routeFromLocked(src, dst)
	if err != nil {
		s.stats.ICMP.NoRoute++
		return err
	}
	n := ip.ICMPv4HeaderLen
	for _, p := range body {
		n += len(p)
	}
	off := r.NIC.ipPayloadOffset()
	b := getBuf(off + n)
	*b = (*b)[:off+n]
	at := off + ip.ICMPv4HeaderLen
	for _, p := range body {
		at += copy((*b)[at:], p)
	}
	if err := f.Encode((*b)[off:]); err != nil {
		putBuf(b)
		s.stats.Link.EncodeErrors++
		return err
	}
	s.stats.ICMP.Sent++
	return s.sendIPv4Locked(now, r, nh, ipv4Out{proto: ip.ProtocolICMP, src: src, dst: dst}, b)
}

// icmpErrorLocked reports a problem with datagram h to its sender, unless
// RFC 1122 §3.2.2 forbids it: never about an ICMP error, a datagram sent to
// a broadcast address, a fragment other than the first, or one whose
// source is not a unicast host.
func (s *Stack) icmpErrorLocked(now mono.Time, nic *NIC, h ip.IPv4, t ip.ICMPv4Type, c ip.ICMPv4Code) {
	if nic.isBroadcast(h.Dst()) || h.Dst().IsMulticast() || h.FragmentOffset() != 0 {
		return
	}
	if h.Protocol() == ip.ProtocolICMP {
		if m, err := ip.ParseICMPv4(h.Payload()); err != nil || m.Type().IsError() {
			return
		}
	}
	quote := h[:min(len(h), icmpErrorQuoteMax)]
	s.sendICMPErrorLocked(now, h.Src(), h.Dst(), quote, t, c)
}

// sendICMPErrorLocked sends error t/c about a datagram from origSrc to
// origDst whose leading bytes are quote, subject to the rate limit.
func (s *Stack) sendICMPErrorLocked(now mono.Time, origSrc, origDst netip.Addr, quote []byte, t ip.ICMPv4Type, c ip.ICMPv4Code) {
	if origSrc.IsUnspecified() || origSrc.IsMulticast() || origSrc.IsLoopback() ||
		origSrc == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return
	}
	if !s.icmpBucket.take(now) {
		s.stats.ICMP.RateLimited++
		return
	}
	s.stats.ICMP.ErrorsSent++
	_ = s.sendICMPLocked(now, origDst, origSrc, ip.ICMPv4Fields{Type: t, Code: c}, quote)
}

// tokenBucket limits a rate, refilled by elapsed time (an input).
type tokenBucket struct {
	tokens int64 // credit in nanoseconds; one token costs a second / rate
	last   mono.Time
	primed bool
}

// take spends one token if there is one. Tokens accrue at
// icmpErrorsPerSecond up to icmpErrorBurst.
func (b *tokenBucket) take(now mono.Time) bool {
	const unit = int64(time.Second / icmpErrorsPerSecond) // time per token
	const capacity = icmpErrorBurst * unit
	if !b.primed {
		b.primed, b.tokens, b.last = true, capacity, now
	}
	b.tokens = min(capacity, b.tokens+int64(now.Sub(b.last)))
	b.last = now
	if b.tokens < unit {
		return false
	}
	b.tokens -= unit
	return true
}

// ErrHostUnreachable is a soft error: resolution of the next hop failed.
var ErrHostUnreachable = errors.New("netstack: host unreachable")

// unreachableLocked reports that packet p (a pooled buffer with an IPv4
// packet at n.ipOffset()) could not be delivered because its next hop did
// not answer ARP: its sender learns EHOSTUNREACH. It does not free p.
func (n *NIC) unreachableLocked(now mono.Time, p *[]byte) {
	h, err := ip.ParseIPv4((*p)[n.ipOffset():])
	if err != nil || h.FragmentOffset() != 0 {
		return
	}
	n.s.deliverSoftErrorLocked(h, syscall.EHOSTUNREACH)
}
