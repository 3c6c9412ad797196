package netstack

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/tapstack/tapstack/ip"
	"github.com/tapstack/tapstack/mono"
)

const pingQueueMax = 64 // echo replies queued per PingConn

// Echo is one echo reply received by a PingConn.
type Echo struct {
	From netip.Addr
	Seq  uint16
	Len  int // ICMP payload bytes
	TTL  uint8
	At   mono.Time // when the stack received it
}

// PingConn sends ICMP echo requests to one host and receives the replies
// carrying its identifier, like a Linux ping socket.
type PingConn struct {
	s   *Stack
	dst netip.Addr
	id  uint16

	// Guarded by s.mu.
	replies []Echo
	readers waitList
	closed  bool
}

// DialPing opens a PingConn to dst with a fresh random identifier.
func (s *Stack) DialPing(dst netip.Addr) (*PingConn, error) {
	if !dst.Is4() {
		return nil, fmt.Errorf("netstack: ping %v: only IPv4 is supported", dst)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	if s.pings == nil {
		s.pings = make(map[uint16]*PingConn)
	}
	for range 1 << 16 {
		id := uint16(s.rand.Uint64())
		if s.pings[id] == nil {
			p := &PingConn{s: s, dst: dst, id: id}
			s.pings[id] = p
			return p, nil
		}
	}
	return nil, fmt.Errorf("netstack: ping %v: no free identifier", dst)
}

// ID returns the ICMP identifier of p's requests.
func (p *PingConn) ID() uint16 { return p.id }

// SendEcho sends an echo request with sequence number seq and a payload
// of size bytes (a pattern, as ping(8) sends).
func (p *PingConn) SendEcho(seq uint16, size int) error {
	if size < 0 || size > udpPayloadMax {
		return fmt.Errorf("netstack: ping payload of %d bytes: %w", size, ErrMessageTooLong)
	}
	s := p.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.closed {
		return net.ErrClosed
	}
	body := s.pingBody(size)
	err := s.sendICMPLocked(s.clock(), netip.Addr{}, p.dst, ip.ICMPv4Fields{Type: ip.ICMPv4Echo, ID: p.id, Seq: seq}, body)
	s.endStepLocked()
	return err
}

// pingBody returns size bytes of ping(8)'s payload pattern; the slice is
// reused, so it is only valid under the loop lock.
func (s *Stack) pingBody(size int) []byte {
	if cap(s.pingPattern) < size {
		s.pingPattern = make([]byte, size)
		for i := range s.pingPattern {
			s.pingPattern[i] = byte(i)
		}
	}
	return s.pingPattern[:size]
}

// RecvEcho waits for the next reply.
func (p *PingConn) RecvEcho(ctx context.Context) (Echo, error) {
	s := p.s
	for {
		s.mu.Lock()
		if p.closed {
			s.mu.Unlock()
			return Echo{}, net.ErrClosed
		}
		if len(p.replies) > 0 {
			e := p.replies[0]
			p.replies = append(p.replies[:0], p.replies[1:]...)
			s.mu.Unlock()
			return e, nil
		}
		woken := p.readers.block(&s.mu, ctx.Done())
		s.mu.Unlock()
		if !woken {
			return Echo{}, ctx.Err()
		}
	}
}

// Close releases the identifier.
func (p *PingConn) Close() error {
	s := p.s
	s.mu.Lock()
	defer s.mu.Unlock()
	p.closeLocked()
	return nil
}

func (p *PingConn) closeLocked() {
	if !p.closed {
		p.closed = true
		delete(p.s.pings, p.id)
		p.readers.wakeLocked(&p.s.mu)
	}
}

func (s *Stack) deliverEchoReplyLocked(now mono.Time, h ip.IPv4, m ip.ICMPv4) {
	p := s.pings[m.ID()]
	if p == nil || p.dst != h.Src() {
		s.stats.ICMP.Ignored++
		return
	}
	if len(p.replies) >= pingQueueMax {
		s.stats.ICMP.Ignored++
		return
	}
	p.replies = append(p.replies, Echo{From: h.Src(), Seq: m.Seq(), Len: len(m.Payload()), TTL: h.TTL(), At: now})
	p.readers.wakeLocked(&p.s.mu)
}

// Ping sends one echo request of size payload bytes to dst and waits for
// its reply, returning the round-trip time.
func (s *Stack) Ping(ctx context.Context, dst netip.Addr, size int) (time.Duration, error) {
	p, err := s.DialPing(dst)
	if err != nil {
		return 0, err
	}
	defer p.Close()
	start := s.Now()
	if err := p.SendEcho(1, size); err != nil {
		return 0, err
	}
	for {
		e, err := p.RecvEcho(ctx)
		if err != nil {
			return 0, err
		}
		if e.Seq == 1 {
			return e.At.Sub(start), nil
		}
	}
}
