package sim

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/tapstack/tapstack/mono"
	"github.com/tapstack/tapstack/tcp"
)

// DefaultInfoSamples is how many samples a TCPInfoSeries keeps when
// Config.InfoSamples is 0: enough for a plot a thousand pixels wide.
const DefaultInfoSamples = 1024

// InfoConn is a connection whose own state can be sampled: netstack's
// *TCPConn.
type InfoConn interface {
	Info() tcp.Info
	LocalAddrPort() netip.AddrPort
	RemoteAddrPort() netip.AddrPort
}

// TCPInfoSample is a connection's state from At until the next sample: the
// fields of tcp.Info that move while data flows.
type TCPInfoSample struct {
	At                mono.Time
	State             tcp.State
	InRecovery        bool
	Cwnd, Ssthresh    int // bytes
	InFlight, SndWnd  int // bytes
	SRTT, RTTVar, RTO time.Duration
	// Running totals: a sample whose count exceeds the one before marks a
	// retransmission or a timeout since.
	Retransmits, Timeouts uint32
}

// TCPInfoSeries is one connection's tcp.Info as its stack holds it, read
// over virtual time (World.SampleTCP): once the World is done with an
// instant, and when a run returns, each connection whose host a step of
// that instant may have touched (a frame or timer reached its stack, or a
// task or World timer that may call it ran) is read, and a change is
// recorded. Reading takes the stack's lock and changes nothing, so
// sampling leaves a run, and its digest, as they were.
//
// Memory is bounded: Samples holds at most Config.InfoSamples entries.
// Changes less than Resolution after the last sample overwrite it (its At
// stays); when Samples is full, every other one is dropped and Resolution
// grows to match, so a long run keeps an even, coarser record. Info, SRTT
// and MaxCwnd see every change regardless.
type TCPInfoSeries struct {
	Name          string
	Host          *Host
	Local, Remote netip.AddrPort
	Start         mono.Time // when sampling began
	Samples       []TCPInfoSample
	Resolution    time.Duration // least spacing of Samples now; 0 at first
	// Info is the latest state read, at At. Once the connection is closed
	// it is the final one and sampling stops.
	Info tcp.Info
	At   mono.Time
	// SRTT summarises the values the smoothed RTT took, one per change
	// observed (a connection that never measured an RTT has none).
	SRTT    RTTStats
	MaxCwnd int

	c        InfoConn
	max      int
	done     bool
	lastSRTT time.Duration
}

// SampleTCP starts sampling c, a connection of h's stack, under name. It
// takes a first sample now. Sampling stops when the connection is closed
// (tcp.Closed) or the World is.
func (w *World) SampleTCP(h *Host, name string, c InfoConn) *TCPInfoSeries {
	s := &TCPInfoSeries{Name: name, Host: h, Start: w.now, c: c, max: w.cfg.InfoSamples,
		Local: c.LocalAddrPort(), Remote: c.RemoteAddrPort()}
	s.sample(w.now, true)
	if !s.done {
		w.probes = append(w.probes, s)
	}
	return s
}

// Done reports whether sampling has stopped: the connection is closed.
func (s *TCPInfoSeries) Done() bool { return s.done }

// sampleInfo reads every sampled connection whose host may have changed
// since the last call: a frame reached it, its timers ran, a task calling
// it ran, or a World timer or a task not bound to a host ran (which may
// call any stack).
func (w *World) sampleInfo() {
	if len(w.probes) == 0 {
		return
	}
	keep := w.probes[:0]
	for _, s := range w.probes {
		if w.touchAll || s.Host.touched {
			s.sample(w.now, false)
		}
		if !s.done {
			keep = append(keep, s)
		}
	}
	clear(w.probes[len(keep):])
	w.probes = keep
	w.touchAll = false
	for _, h := range w.hosts {
		h.touched = false
	}
}

func (s *TCPInfoSeries) sample(now mono.Time, first bool) {
	in := s.c.Info()
	if !first && in == s.Info {
		return
	}
	s.Info, s.At = in, now
	if !s.Local.IsValid() {
		s.Local, s.Remote = s.c.LocalAddrPort(), s.c.RemoteAddrPort()
	}
	if in.SRTT > 0 && in.SRTT != s.lastSRTT {
		s.SRTT.add(in.SRTT)
	}
	s.lastSRTT = in.SRTT
	s.MaxCwnd = max(s.MaxCwnd, in.Cwnd)
	if in.State == tcp.Closed {
		s.done = true
	}
	x := TCPInfoSample{At: now, State: in.State, InRecovery: in.InRecovery,
		Cwnd: in.Cwnd, Ssthresh: in.Ssthresh, InFlight: in.InFlight, SndWnd: in.SndWnd,
		SRTT: in.SRTT, RTTVar: in.RTTVar, RTO: in.RTO, Retransmits: in.Retransmits, Timeouts: in.Timeouts}
	n := len(s.Samples)
	if n > 0 {
		last := &s.Samples[n-1]
		x.At = last.At
		if *last == x {
			return // a change in a field not sampled
		}
		if now.Sub(last.At) <= s.Resolution {
			*last = x
			return
		}
		x.At = now
	}
	if n >= s.max {
		s.decimate()
	}
	s.Samples = append(s.Samples, x)
}

// decimate halves Samples, keeping the first, every other one after it,
// and the last, and doubles the resolution (or sets it from the span
// covered, the first time).
func (s *TCPInfoSeries) decimate() {
	n := len(s.Samples)
	if n < 4 {
		return
	}
	span := s.Samples[n-1].At.Sub(s.Samples[0].At)
	last := s.Samples[n-1]
	k := 0
	for i := 0; i < n-1; i += 2 {
		s.Samples[k] = s.Samples[i]
		k++
	}
	s.Samples[k] = last
	k++
	clear(s.Samples[k:])
	s.Samples = s.Samples[:k]
	s.Resolution = max(2*s.Resolution, span/time.Duration(k))
}

// String summarises the connection as its stack saw it.
func (s *TCPInfoSeries) String() string {
	in := &s.Info
	srtt := "no RTT sample"
	if s.SRTT.N > 0 {
		srtt = fmt.Sprintf("srtt min/mean/max %v/%v/%v", s.SRTT.Min.Round(time.Microsecond),
			s.SRTT.Mean().Round(time.Microsecond), s.SRTT.Max.Round(time.Microsecond))
	}
	return fmt.Sprintf("%v>%v: %v, %d retransmissions (%d fast recoveries, %d timeouts, %d D-SACKs, %d undone), %s, max cwnd %d bytes",
		s.Local, s.Remote, in.State, in.Retransmits, in.FastRecoveries, in.Timeouts, in.DSACKsReceived, in.SpuriousUndos,
		srtt, s.MaxCwnd)
}
