package tcp

import (
	"time"

	"github.com/tapstack/tapstack/mono"
)

// CongestionControl is a congestion-control algorithm. The connection owns
// the window and the loss-recovery machinery (fast retransmit, NewReno's
// recovery, SACK); the algorithm decides how the window grows on ACKs and
// where the slow-start threshold lands after a loss. Implementations are
// deterministic: integers only.
type CongestionControl interface {
	// OnAck returns the new window after acked bytes were newly
	// acknowledged outside loss recovery. acked is 0 for an ACK of a
	// flight that did not use the window (cwndUsed): the window must not
	// grow, and an algorithm that keeps time can leave such periods out.
	OnAck(now mono.Time, cwnd, ssthresh, acked int, srtt time.Duration) (newCwnd int)
	// OnLoss returns the slow-start threshold after a loss is detected,
	// by duplicate ACKs or a timeout, with flight bytes in flight.
	OnLoss(now mono.Time, cwnd, flight int) (ssthresh int)
	// Name names the algorithm, as Linux's tcp_congestion_control.
	Name() string
}

// NewReno is RFC 5681's slow start and congestion avoidance with
// appropriate byte counting (RFC 3465, L = 2*SMSS); with the connection's
// RFC 6582 recovery it is NewReno.
type NewReno struct {
	mss int
	acc int // bytes acknowledged toward the next increase in avoidance
}

// NewNewReno returns NewReno for a connection sending mss-byte segments.
func NewNewReno(mss int) CongestionControl { return &NewReno{mss: mss} }

func (r *NewReno) Name() string { return "reno" }

// slowStart grows cwnd by every byte acknowledged, up to ssthresh, as
// Linux's tcp_slow_start: not by at most two segments per ACK (RFC 3465's
// L), which holds back a sender whose peer acknowledges many segments at
// once, as Linux does for what GRO merged.
func slowStart(cwnd, ssthresh, acked int) int { return min(cwnd+acked, ssthresh) }

func (r *NewReno) OnAck(_ mono.Time, cwnd, ssthresh, acked int, _ time.Duration) int {
	return renoOnAck(cwnd, ssthresh, acked, r.mss, &r.acc)
}

func (r *NewReno) OnLoss(_ mono.Time, _, flight int) int {
	return renoOnLoss(flight, r.mss, &r.acc)
}

// renoOnAck and renoOnLoss are NewReno, for the NewReno type and for
// connections that keep its counter themselves.
func renoOnAck(cwnd, ssthresh, acked, mss int, acc *int) int {
	if cwnd < ssthresh {
		return slowStart(cwnd, ssthresh, acked)
	}
	*acc += acked
	if *acc >= cwnd {
		*acc -= cwnd
		cwnd += mss
	}
	return cwnd
}

func renoOnLoss(flight, mss int, acc *int) int {
	*acc = 0
	return max(flight/2, 2*mss)
}

// cwndUsed reports whether the flight the ACK arrived on used the
// congestion window: only then does the window grow (RFC 7661's
// validation, as Linux's tcp_is_cwnd_limited). A window a sender did not
// fill, because the application or the peer's window held it back, was
// never tested by the path; grown anyway it would reach any size on a
// receiver-limited transfer and, once the peer's window opened, release
// all of it at once. Linux's slow-start rule is applied throughout: the
// window grows while it is under twice the flight, so a burst after such a
// period is at most the flight again, and a sender whose segments do not
// fit the window exactly still counts as using it.
func (c *Conn) cwndUsed() bool { return 2*int(c.SndUna.Size(c.SndNxt)) > c.cwnd }

// ccOnAck and ccOnLoss call the connection's algorithm. NewReno, the
// default, keeps its one counter in the Conn (renoAcc) and is called
// directly: no allocation per connection and no indirect call per ACK.
func (c *Conn) ccOnAck(now mono.Time, acked int) int {
	if c.cc != nil {
		return c.cc.OnAck(now, c.cwnd, c.ssthresh, acked, c.srtt)
	}
	return renoOnAck(c.cwnd, c.ssthresh, acked, c.sndMSS, &c.renoAcc)
}

func (c *Conn) ccOnLoss(now mono.Time, flight int) int {
	if c.cc != nil {
		return c.cc.OnLoss(now, c.cwnd, flight)
	}
	return renoOnLoss(flight, c.sndMSS, &c.renoAcc)
}
