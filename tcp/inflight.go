package tcp

import (
	"math/bits"
	"time"

	"github.com/tapstack/tapstack/mono"
	"github.com/tapstack/tapstack/tcp/seq"
)

// The in-flight governor caps what a bulk sender keeps in flight at the
// least that delivers about as fast as more would, found by measuring.
//
// Loss-based congestion control grows the window until something drops,
// and a path that drops nothing (two stacks in one process, a TAP device
// to the local kernel, a deep queue) lets the flight grow to the peer's
// window, autotuned to megabytes: the bytes wait in queues, a round trip
// of queueing, and on a fast link each one leaves the cache and comes back
// (two stacks in one process, MTU 65535: a GiB for 0.62 CPU seconds with
// 4 MiB in flight, 0.49 with the governor, interleaved runs). A least
// round trip times the best rate (BBR's estimate) cannot tell that
// queueing from delay where delivery comes in batches: it took the
// in-process MTU 1500 link to four segments in flight and halved its rate,
// because there the rate itself grows with the batch. So the governor
// measures delivery rate against in-flight directly, and only while the
// peer's window is what limits the flight (the congestion window has
// grown past it without a loss).
//
// A period is at least govRounds round trips and govPeriodMin. The first
// measures the flight the windows allow; then trials: half the cap stays
// if it delivers at least 80% of the baseline (the rate at the cap, taken
// at once when it rises and by half when it falls), twice the cap if it
// delivers 30% more, and each accepted trial goes on in its direction. The
// acceptance is loose downwards and strict upwards because one period's
// rate varies by ±30% on a busy host: a path whose rate needs the window
// loses half of it to a halving and refuses it, and noise alone rarely
// passes a 30% rise. A failed trial costs one period at the trial cap and
// spaces the next one out (1, 3, 7 ... 31 periods), so such a path loses
// little to the probing. Periods with loss recovery, in which the
// congestion window limited the flight or the application left it under
// half its limit, and trials whose cap the sender never came near, judge
// nothing.
type inflightGov struct {
	cap    int64 // bytes; 0 before the first period has measured the uncapped flight
	prev   int64 // the cap before the running trial
	base   int64 // bytes per second delivered at cap
	trial  int8  // govMeasure, govDown, govUp
	lastUp bool  // the last trial went up, so the next goes down
	wait   uint8 // periods to measure at cap before the next trial
	fails  uint8 // trials failed in a row

	// The running period.
	on       bool
	invalid  bool // recovery, cwnd or the application limited it: its rate says nothing about the cap
	rounds   uint8
	at       mono.Time
	acked    uint64 // bytesAcked when it began
	roundEnd seq.Value
	flight   int64 // the most in flight in it
}

const (
	govMeasure int8 = iota
	govDown
	govUp
)

const (
	govRounds = 8 // round trips in a period, at least
	// govPeriodMin is a period's least length: a host's scheduler moves
	// delivery over a millisecond or two (periods of 8 round trips of 60 µs
	// varied by ±40% at one cap on the in-process link).
	govPeriodMin = 2 * time.Millisecond
	govStart     = 1 << 20 // bytes acknowledged before the governor starts
	govFloorMin  = 64 << 10
	govFailsMax  = 5
)

// govFloor is the least cap: four of the largest segments the sender
// makes (fewer could leave a receiver waiting for a second segment to
// ACK), and never under 64 KiB.
func (c *Conn) govFloor() int64 {
	return int64(max(4*max(int(c.ep.gsoMax), c.sndMSS), govFloorMin))
}

// inflightCap returns the governor's cap on the flight, or 0 for none. It
// holds only while the peer's window, not the congestion window, would
// limit the flight: congestion control rules where it limits, and slow
// start must find a long path's window unhindered.
func (c *Conn) inflightCap() int {
	if c.rt == nil || c.cwndLimits() {
		return 0
	}
	return int(c.rt.gov.cap)
}

// cwndLimits reports whether the congestion window, not the peer's, is
// what limits the flight: then the governor neither caps nor judges.
func (c *Conn) cwndLimits() bool { return c.cwnd <= int(c.SndWnd) }

// govSent notes the flight after new data went out.
func (c *Conn) govSent() {
	if c.rt != nil && c.rt.gov.on {
		g := &c.rt.gov
		g.flight = max(g.flight, int64(c.SndUna.Size(c.SndNxt)))
	}
}

// govIdle runs when the sender has nothing left to send: a period in
// which the application, not the cap, held the flight under half its limit
// measured the application.
func (c *Conn) govIdle() {
	if c.rt == nil || !c.rt.gov.on {
		return
	}
	g := &c.rt.gov
	limit := int64(min(int(c.SndWnd), c.cwnd))
	if g.cap > 0 {
		limit = min(limit, g.cap)
	}
	if 2*int64(c.SndUna.Size(c.SndNxt)) < limit {
		g.invalid = true
	}
}

// govOnAck counts round trips on an ACK of new data and ends a period
// every govRounds of them.
func (c *Conn) govOnAck(now mono.Time) {
	if c.cfg.NoInflightGovernor {
		return
	}
	if c.rt == nil || !c.rt.gov.on {
		if c.bytesAcked < govStart {
			return
		}
		c.tune().gov.begin(c, now)
		return
	}
	g := &c.rt.gov
	if c.inRecov || c.cwndLimits() {
		g.invalid = true
	}
	if c.SndUna.LessThan(g.roundEnd) {
		return
	}
	g.roundEnd = c.SndNxt
	g.rounds = min(g.rounds+1, govRounds)
	d := now.Sub(g.at)
	if g.rounds < govRounds || d < govPeriodMin {
		return
	}
	if !g.invalid && (g.cap == 0 || 4*g.flight >= 3*g.cap) {
		g.judge(perSecond(c.bytesAcked-g.acked, d), c.govFloor())
	} else if g.trial != govMeasure {
		g.cap, g.trial = g.prev, govMeasure // inconclusive: back to what was measured
	}
	g.begin(c, now)
}

// perSecond is n bytes over d as bytes per second, exactly: n times 10^9
// overflows 64 bits from 18 GB on.
func perSecond(n uint64, d time.Duration) int64 {
	hi, lo := bits.Mul64(n, uint64(time.Second))
	q, _ := bits.Div64(hi, lo, uint64(d)) // d >= govPeriodMin: hi < d
	return int64(min(q, 1<<63-1))
}

// begin starts a period.
func (g *inflightGov) begin(c *Conn, now mono.Time) {
	g.on, g.invalid, g.rounds = true, false, 0
	g.at, g.acked, g.roundEnd = now, c.bytesAcked, c.SndNxt
	g.flight = int64(c.SndUna.Size(c.SndNxt))
}

// judge takes the rate of a period that ran at cap.
func (g *inflightGov) judge(rate, floor int64) {
	switch g.trial {
	case govDown:
		if rate >= g.base-g.base/5 {
			g.base, g.fails = max(g.base, rate), 0
			g.try(govDown, floor)
			return
		}
	case govUp:
		if rate >= g.base+g.base*3/10 {
			g.base, g.fails = rate, 0
			g.try(govUp, floor)
			return
		}
	default:
		if g.cap == 0 {
			g.cap = max(g.flight, floor)
		}
		// A rise is taken at once, a fall by half: one slow period
		// must not make the next trial up look like a gain.
		g.base = max(rate, (g.base+rate)/2)
		if g.wait > 0 {
			g.wait--
			return
		}
		if g.lastUp || g.prev == 0 {
			// The first trial goes down: the uncapped flight is what the
			// governor is there to question.
			g.try(govDown, floor)
		} else {
			g.try(govUp, floor)
		}
		return
	}
	// Failed: back, and wait longer before the next trial.
	g.cap, g.trial = g.prev, govMeasure
	g.fails = min(g.fails+1, govFailsMax)
	g.wait = 1<<g.fails - 1
}

// try starts a trial in direction dir, or the other way if the cap is at
// the floor.
func (g *inflightGov) try(dir int8, floor int64) {
	if dir == govDown && g.cap <= floor {
		if g.trial == govDown {
			g.trial = govMeasure // an accepted trial reached the floor
			return
		}
		dir = govUp
	}
	g.prev, g.trial, g.lastUp = g.cap, dir, dir == govUp
	if dir == govUp {
		g.cap = min(2*g.cap, 1<<31-1)
	} else {
		g.cap = max(g.cap/2, floor)
	}
}
