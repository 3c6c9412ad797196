package tcp

import (
	"testing"
	"time"

	"github.com/tapstack/tapstack/mono"
)

func TestCbrt(t *testing.T) {
	for _, x := range []int64{0, 1, 7, 8, 26, 27, 1000, 999_999, 1_000_000, 1 << 60} {
		r := cbrt(x)
		if r*r*r > x || (r+1)*(r+1)*(r+1) <= x {
			t.Errorf("cbrt(%d) = %d", x, r)
		}
	}
}

// After a loss at W, CUBIC sets ssthresh to 0.7 W, then grows concavely
// back to W at K = cbrt(0.3 W / C) seconds and convexly beyond it.
func TestCubicCurve(t *testing.T) {
	const mss = 1000
	q := NewCubic(mss).(*Cubic)
	w := 100 * mss
	ss := q.OnLoss(0, w, w)
	if ss != w*717/1024 { // β = 717/1024 ≈ 0.7
		t.Fatalf("ssthresh %d, want %d", ss, w*717/1024)
	}
	cwnd := ss
	now := mono.Time(0)
	rtt := 100 * time.Millisecond
	atK := -1
	for step := 1; step <= 100; step++ { // 10 s of RTTs, one window ACKed per RTT
		now = now.Add(rtt)
		for acked := 0; acked < cwnd; acked += mss {
			cwnd = q.OnAck(now, cwnd, ss, mss, rtt)
		}
		if atK < 0 && cwnd >= w {
			atK = step
		}
	}
	// K = cbrt((W - 0.7 W) / C) = cbrt(29 segments / 0.4) ≈ 4.17 s: the
	// window is back near W then.
	if wantK := cbrt(int64((w-ss)/mss) * 2_500_000_000); q.k != wantK || q.k < 4100 || q.k > 4230 {
		t.Fatalf("K %d ms", q.k)
	}
	// Per-ACK growth toward the target trails it by an RTT or so.
	if atK < 40 || atK > 52 {
		t.Fatalf("window regained W after %d RTTs, want a little after K = 42", atK)
	}
	if cwnd <= w*3/2 {
		t.Fatalf("no convex growth past W_max: cwnd %d after 10 s", cwnd)
	}
}

func TestCongestionControlByName(t *testing.T) {
	for _, name := range []string{"", "reno"} {
		if f, err := CongestionControlByName(name); f != nil || err != nil {
			t.Errorf("%q: want NewReno (nil), got %v", name, err)
		}
	}
	f, err := CongestionControlByName("cubic")
	if err != nil || f == nil {
		t.Fatalf("cubic: %v", err)
	}
	if _, ok := f(1460).(*Cubic); !ok {
		t.Errorf("cubic made %T", f(1460))
	}
	if _, err := CongestionControlByName("vegas"); err == nil {
		t.Error("an unknown name was taken")
	}
}

// Time in which the flight did not use the window (ACKs with acked 0) does
// not count towards the curve (RFC 9438 §5.8): a connection held back for
// five seconds in the middle of its recovery from a loss then grows as one
// that never paused.
func TestCubicClockStopsWhileHeldBack(t *testing.T) {
	const mss = 1000
	rtt := 100 * time.Millisecond
	run := func(active1, held, active2 int) int {
		q := NewCubic(mss).(*Cubic)
		w := 100 * mss
		ss := q.OnLoss(0, w, w)
		cwnd := ss
		now := mono.Time(time.Second)
		step := func(acked int) {
			now = now.Add(rtt)
			for sent := 0; sent < cwnd; sent += mss {
				if got := q.OnAck(now, cwnd, ss, acked, rtt); acked == 0 && got != cwnd {
					t.Fatalf("the window grew from %d to %d on an ACK of a flight that did not use it", cwnd, got)
				} else {
					cwnd = got
				}
			}
		}
		for range active1 {
			step(mss)
		}
		for range held {
			step(0)
		}
		for range active2 {
			step(mss)
		}
		return cwnd
	}
	paused, straight := run(10, 50, 20), run(10, 0, 20)
	if paused != straight {
		t.Errorf("cwnd %d after 3 s of growth around 5 s held back, %d after 3 s straight", paused, straight)
	}
}
