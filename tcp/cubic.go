package tcp

import (
	"fmt"
	"time"

	"github.com/tapstack/tapstack/mono"
)

// CUBIC (RFC 9438) in integer arithmetic, so a run replays exactly:
// β = 717/1024 (0.7), C = 0.4 segments/s³, time in milliseconds, and the
// cube root by bisection. Fast convergence (§4.7) and the Reno-friendly
// region (§4.3) are included.
type Cubic struct {
	mss        int
	wMax       int // bytes, the window before the last reduction
	wLastMax   int
	k          int64 // ms from the epoch to wMax
	origin     int   // bytes
	epoch      mono.Time
	inEpoch    bool
	wEst       int // Reno-friendly estimate, bytes
	renoAcc    int
	cubicCarry int // bytes of increase owed below one byte per ACK
	// heldSince is when ACKs began to come for flights that did not use
	// the window, 0 while they do: the curve's clock stops meanwhile.
	heldSince mono.Time
}

const (
	cubicBeta1024 = 717 // β·1024
	// α for the Reno-friendly estimate: 3(1-β)/(1+β)·1024.
	cubicAlpha1024 = 542
)

// NewCubic returns CUBIC for a connection sending mss-byte segments.
func NewCubic(mss int) CongestionControl { return &Cubic{mss: mss} }

// CongestionControlByName returns what Config.NewCongestionControl takes
// for name: "reno" or "" NewReno, the default (nil), "cubic" NewCubic.
func CongestionControlByName(name string) (func(mss int) CongestionControl, error) {
	switch name {
	case "", "reno":
		return nil, nil
	case "cubic":
		return NewCubic, nil
	}
	return nil, fmt.Errorf("tcp: congestion control %q: want reno or cubic", name)
}

func (q *Cubic) Name() string { return "cubic" }

// cbrt returns the integer cube root of x (x >= 0), rounded down.
func cbrt(x int64) int64 {
	lo, hi := int64(0), int64(2097151) // the largest cube below 2^63
	for lo < hi {
		m := (lo + hi + 1) / 2
		if m*m*m <= x {
			lo = m
		} else {
			hi = m - 1
		}
	}
	return lo
}

func (q *Cubic) OnLoss(_ mono.Time, cwnd, _ int) int {
	q.inEpoch = false
	if cwnd < q.wLastMax {
		// Fast convergence: release bandwidth to new flows.
		q.wLastMax = cwnd
		q.wMax = cwnd * (1024 + cubicBeta1024) / 2048
	} else {
		q.wLastMax = cwnd
		q.wMax = cwnd
	}
	return max(cwnd*cubicBeta1024/1024, 2*q.mss)
}

func (q *Cubic) OnAck(now mono.Time, cwnd, ssthresh, acked int, srtt time.Duration) int {
	if acked == 0 {
		// The application or the peer's window holds the flight back: no
		// growth, and the time does not count towards the curve (RFC 9438
		// §5.8; Linux moves the epoch on by an idle period the same way).
		if q.heldSince == 0 {
			q.heldSince = max(now, 1)
		}
		return cwnd
	}
	if q.heldSince != 0 {
		if q.inEpoch {
			q.epoch = q.epoch.Add(now.Sub(q.heldSince))
		}
		q.heldSince = 0
	}
	if cwnd < ssthresh {
		return slowStart(cwnd, ssthresh, acked)
	}
	if !q.inEpoch {
		q.inEpoch, q.epoch = true, now
		q.wEst, q.renoAcc = cwnd, 0
		if cwnd < q.wMax {
			// K = cbrt((W_max - cwnd) / C) seconds, in segments:
			// in ms, cbrt(segments · 10⁹ / 0.4).
			segs := int64(q.wMax-cwnd) / int64(q.mss)
			q.k = cbrt(segs * 2_500_000_000)
			q.origin = q.wMax
		} else {
			q.k, q.origin = 0, cwnd
		}
	}
	t := int64(now.Sub(q.epoch)/time.Millisecond) + int64(srtt/time.Millisecond)
	d := min(max(t-q.k, -1_000_000), 1_000_000)
	// W_cubic(t) = C·(t-K)³ + W_max, C = 0.4 segments/s³.
	target := int64(q.origin) + 4*d*d*d/10*int64(q.mss)/1_000_000_000
	target = min(max(target, int64(cwnd)), int64(cwnd)*3/2)
	// The Reno-friendly estimate grows by α segments per window.
	q.renoAcc += acked * cubicAlpha1024 / 1024
	for q.renoAcc >= q.wEst && q.wEst > 0 {
		q.renoAcc -= q.wEst
		q.wEst += q.mss
	}
	if int64(q.wEst) > target {
		target = int64(q.wEst)
	}
	if target <= int64(cwnd) {
		return cwnd
	}
	// Grow by (target - cwnd) / cwnd per acknowledged byte.
	q.cubicCarry += int((target - int64(cwnd)) * int64(acked) / int64(cwnd))
	inc := q.cubicCarry
	q.cubicCarry = 0
	return cwnd + inc
}
