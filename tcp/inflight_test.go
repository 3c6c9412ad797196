package tcp

import (
	"math/rand/v2"
	"testing"
	"time"
)

// govRun drives a governor through n periods on a model path, where
// rate(cap) is what a period at that cap delivers, starting from an
// uncapped flight of first bytes; it returns the cap each period ran at.
func govRun(n int, first, floor int64, rate func(cap int64) int64) []int64 {
	var g inflightGov
	ran := make([]int64, 0, n)
	for range n {
		c := g.cap
		if c == 0 {
			c = first
		}
		g.flight = c
		ran = append(ran, c)
		g.judge(rate(c), floor)
	}
	return ran
}

// noisy returns rate with each period's value off by up to ±frac, from a
// fixed seed.
func noisy(frac float64, rate func(int64) int64) func(int64) int64 {
	r := rand.New(rand.NewPCG(1, 2))
	return func(c int64) int64 { return int64(float64(rate(c)) * (1 + frac*(2*r.Float64()-1))) }
}

const (
	govTestFloor = 256 << 10
	govTestBDP   = 1 << 20
)

// onPath is a path whose rate grows with the flight up to its
// bandwidth-delay product (1 MiB here), and not beyond.
func onPath(c int64) int64 { return min(c, govTestBDP) * 1000 }

// Where more in flight delivers no faster (two stacks in one process),
// the cap comes down to the floor and stays there but for the trials up,
// which noise lets through now and then.
func TestInflightGovernorFindsTheFloor(t *testing.T) {
	for _, tc := range []struct {
		noise         float64
		atFloor, near int // of the last 300 periods: at the floor, and at most twice it
	}{{0, 290, 290}, {0.3, 200, 285}} {
		ran := govRun(400, 4<<20, govTestFloor, noisy(tc.noise, func(int64) int64 { return 3e9 }))
		var at, near int
		for _, c := range ran[100:] {
			if c == govTestFloor {
				at++
			}
			if c <= 2*govTestFloor {
				near++
			}
		}
		if at < tc.atFloor || near < tc.near {
			t.Errorf("noise ±%.0f%%: of the last 300 periods %d at the floor, %d at most twice it; caps %v", 100*tc.noise, at, near, ran[:40])
		}
	}
}

// Where the rate needs the window, the cap never settles below it and the
// path keeps its rate: only trials run below, and fewer as they fail.
func TestInflightGovernorKeepsTheWindowAPathNeeds(t *testing.T) {
	for _, noise := range []float64{0, 0.3} {
		ran := govRun(400, 4<<20, govTestFloor, noisy(noise, onPath))
		var below int
		var got int64
		for _, c := range ran[100:] {
			if c < govTestBDP {
				below++
			}
			got += onPath(c)
		}
		want := int64(300) * onPath(govTestBDP)
		if noise == 0 && below > 300/20 || got < want*9/10 {
			t.Errorf("noise ±%.0f%%: %d of the last 300 periods below the path's window, %.1f%% of its rate; caps %v",
				100*noise, below, 100*float64(got)/float64(want), ran[:40])
		}
	}
}

// A cap holds the flight, and the send buffer takes no more than twice it,
// while the peer's window is what would limit the flight; a period in
// which the application ran out of data judges nothing; where the
// congestion window limits the flight, the cap does not apply.
func TestInflightCapHoldsFlightAndSendBuffer(t *testing.T) {
	h := sendTuned(t)
	data := make([]byte, 8<<20)
	// Grow the windows: the send buffer to its bound, cwnd past the
	// peer's window.
	for round := 0; h.c.sndBuf < 4<<20 || h.c.cwnd <= int(h.c.SndWnd); round++ {
		if round > 40 {
			t.Fatalf("windows did not grow: send buffer %d, cwnd %d, peer's window %d", h.c.sndBuf, h.c.cwnd, h.c.SndWnd)
		}
		writeAll(h, data)
		h.Took()
		h.Advance(10 * time.Millisecond)
		h.Send(S{Flags: ACK, Seq: peerISS + 1, Ack: h.c.SndNxt, Wnd: 0xffff})
	}
	const capped = 256 << 10
	h.c.tune().gov.cap = capped
	writeAll(h, data)
	h.Took()
	if flight := int(h.c.SndUna.Size(h.c.SndNxt)); flight > capped {
		t.Errorf("%d in flight under a %d cap", flight, capped)
	}
	if buffered := h.c.snd.Len(); buffered > 2*capped {
		t.Errorf("send buffer holds %d under a %d cap", buffered, capped)
	}
	if got := h.c.Info().InflightCap; got != capped {
		t.Errorf("Info().InflightCap %d, want %d", got, capped)
	}
	// The application stops writing: once the flight is under half the
	// cap with nothing left to send, the period measures the application.
	g := &h.c.rt.gov
	g.begin(h.c, h.now)
	for h.c.snd.Len() > 0 {
		h.Advance(10 * time.Millisecond)
		h.Send(S{Flags: ACK, Seq: peerISS + 1, Ack: h.c.SndNxt, Wnd: 0xffff})
		h.Took()
	}
	if !g.invalid {
		t.Error("a period in which the application ran dry counts")
	}
	h.c.cwnd = int(h.c.SndWnd) // congestion control limits again
	if got := h.c.Info().InflightCap; got != 0 {
		t.Errorf("Info().InflightCap %d with cwnd limiting, want none", got)
	}
}

// A period's rate is exact however much it moved.
func TestInflightRatePerSecond(t *testing.T) {
	for _, tc := range []struct {
		n    uint64
		d    time.Duration
		want int64
	}{
		{3 << 20, 2 * time.Millisecond, 3 << 20 * 500},
		{100 << 30, 10 * time.Second, 10 << 30},    // n times 10^9 needs more than 64 bits
		{1 << 55, 2 * time.Millisecond, 1<<63 - 1}, // beyond int64: the largest
	} {
		if got := perSecond(tc.n, tc.d); got != tc.want {
			t.Errorf("perSecond(%d, %v) = %d, want %d", tc.n, tc.d, got, tc.want)
		}
	}
}
