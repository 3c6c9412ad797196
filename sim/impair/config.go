package impair

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/tapstack/tapstack/mono"
)

// Defaults applied by New where a Config leaves a field zero.
const (
	// DefaultCorruptOffset skips an Ethernet header, so a flipped bit lands
	// where a checksum catches it instead of misdelivering the frame.
	DefaultCorruptOffset = 14
	// CorruptAnywhere as Config.CorruptOffset lets any bit be flipped.
	CorruptAnywhere = -1
	// DefaultQueue is the rate limiter's queue when Config.Queue is 0.
	DefaultQueue = 64 << 10
	// MinReorderDelay is the least default reorder hold (see Config.ReorderDelay).
	MinReorderDelay = time.Millisecond
)

// Limits: a Config beyond them is refused, a frame beyond MaxFrameLen is
// dropped as DropMTU. They keep every sum of instants and durations far from
// overflow.
const (
	MaxDelay    = time.Hour
	MaxRate     = 10_000_000_000_000 // bits/s: 10 Tbit/s
	MaxQueue    = 1 << 30            // bytes
	MaxFrameLen = 1 << 24            // bytes
)

// Config is the impairment of one direction of a link. The zero Config
// delivers every frame at once, intact.
//
// Stages apply in this order, each to what the one before let through:
// partition (at the send instant), MTU, Loss, Burst, the rate limiter and its
// queue, Duplicate; then per copy Delay and Jitter, Reorder, Corrupt, and
// partition again at the delivery instant. So a lost frame never occupies
// the bottleneck (the loss is upstream of it), and a duplicate never does
// (it appears downstream).
type Config struct {
	// Loss drops each frame independently with this probability.
	Loss Prob
	// Burst drops frames in bursts (Gilbert-Elliott); zero is off.
	Burst GilbertElliott

	// Duplicate delivers one extra copy of a frame with this probability.
	// The copy gets its own jitter, reorder and corruption draws and is
	// delivered after the original unless one of them is held back.
	Duplicate Prob

	// Corrupt flips one uniformly chosen bit of a copy with this
	// probability. Only bits at byte offset CorruptOffset or later are
	// chosen: 0 means DefaultCorruptOffset, CorruptAnywhere means byte 0. A
	// copy no longer than the offset is left intact (not counted).
	Corrupt       Prob
	CorruptOffset int

	// Delay is the one-way latency added after serialization. Jitter
	// spreads it uniformly over [Delay-Jitter, Delay+Jitter] (so Jitter <=
	// Delay), but never reorders: a copy is not delivered before the last
	// in-order copy, so with Jitter larger than the gap between frames the
	// effective delay distribution leans upward. (netem's jitter reorders;
	// here only Reorder does.)
	Delay  time.Duration
	Jitter time.Duration

	// Reorder holds a copy back by an extra ReorderDelay with this
	// probability; frames sent within ReorderDelay after it overtake it.
	// The displacement is in time, not in frames, because that is how TCP
	// measures reordering (RACK's reordering window is a fraction of the
	// RTT): a hold below minRTT/4 should cause no spurious retransmission,
	// one above it should, and the test picks its side by choosing
	// ReorderDelay. In frames it is about ReorderDelay times the frame rate.
	// ReorderDelay 0 means max(2*Delay, MinReorderDelay): a held frame
	// arrives a whole RTT late.
	Reorder      Prob
	ReorderDelay time.Duration

	// Rate limits the link to this many bits per second (0: unlimited). A
	// frame is delivered Delay after its last bit leaves (store and
	// forward). The backlog — bytes not yet serialized, the rest of the
	// frame on the wire included — may not exceed Queue bytes: a frame that
	// would push it past is dropped (DropQueue), unless the link is idle.
	// Queue 0 means DefaultQueue; Queue without Rate is an error.
	Rate  uint64
	Queue int

	// MTU drops frames longer than this many bytes, counted as the caller
	// counts them: the whole frame on an Ethernet link (0: no limit).
	MTU int

	// Partitions are intervals on the caller's clock during which the link
	// is cut: a frame sent in one, or a copy that would be delivered in one,
	// is dropped. Sorted, non-overlapping; End may be mono.Never.
	Partitions []Interval
}

// GilbertElliott is a two-state Markov chain over frames: in the good state
// a frame is lost with LossGood, in the bad one with LossBad; after each
// frame the chain moves good->bad with P and bad->good with R. With
// LossBad = 100% and LossGood = 0, bursts last 1/R frames on average and a
// fraction P/(P+R) of frames is lost. The chain starts good.
type GilbertElliott struct {
	P        Prob // good -> bad
	R        Prob // bad -> good
	LossBad  Prob
	LossGood Prob
}

func (g GilbertElliott) enabled() bool { return g.P != 0 || g.LossGood != 0 }

// Interval is [Start, End) on the caller's clock.
type Interval struct{ Start, End mono.Time }

// ConfigError names the field of a Config that is invalid and why.
type ConfigError struct {
	Field  string // e.g. "Jitter", "Burst.R", "Partitions[2]"
	Reason string
}

func (e *ConfigError) Error() string { return "impair: Config." + e.Field + ": " + e.Reason }

// Validate reports the first invalid field of c, or nil.
func (c Config) Validate() error {
	bad := func(field, format string, args ...any) error {
		return &ConfigError{field, fmt.Sprintf(format, args...)}
	}
	for _, p := range []struct {
		name string
		p    Prob
	}{
		{"Loss", c.Loss}, {"Burst.P", c.Burst.P}, {"Burst.R", c.Burst.R},
		{"Burst.LossBad", c.Burst.LossBad}, {"Burst.LossGood", c.Burst.LossGood},
		{"Duplicate", c.Duplicate}, {"Corrupt", c.Corrupt}, {"Reorder", c.Reorder},
	} {
		if p.p > Always {
			return bad(p.name, "%d ppm is above 100%%", uint32(p.p))
		}
	}
	if c.Burst.P != 0 {
		if c.Burst.R == 0 {
			return bad("Burst.R", "0 while Burst.P is set: the chain would never leave the bad state")
		}
		if c.Burst.LossBad == 0 {
			return bad("Burst.LossBad", "0 while Burst.P is set: the bad state would lose nothing")
		}
	}
	for _, d := range []struct {
		name string
		d    time.Duration
	}{{"Delay", c.Delay}, {"Jitter", c.Jitter}, {"ReorderDelay", c.ReorderDelay}} {
		if d.d < 0 || d.d > MaxDelay {
			return bad(d.name, "%v is outside [0, %v]", d.d, MaxDelay)
		}
	}
	if c.Jitter > c.Delay {
		return bad("Jitter", "%v exceeds Delay %v: delays would go negative", c.Jitter, c.Delay)
	}
	if c.CorruptOffset < CorruptAnywhere || c.CorruptOffset > MaxFrameLen {
		return bad("CorruptOffset", "%d is outside [%d, %d]", c.CorruptOffset, CorruptAnywhere, MaxFrameLen)
	}
	if c.Rate > MaxRate {
		return bad("Rate", "%d bit/s is above %d", c.Rate, uint64(MaxRate))
	}
	if c.Queue < 0 || c.Queue > MaxQueue {
		return bad("Queue", "%d bytes is outside [0, %d]", c.Queue, MaxQueue)
	}
	if c.Queue != 0 && c.Rate == 0 {
		return bad("Queue", "set without Rate: the queue exists only behind a rate limit")
	}
	if c.MTU < 0 || c.MTU > MaxFrameLen {
		return bad("MTU", "%d is outside [0, %d]", c.MTU, MaxFrameLen)
	}
	for i, iv := range c.Partitions {
		f := "Partitions[" + strconv.Itoa(i) + "]"
		if iv.Start >= iv.End {
			return bad(f, "start %v is not before end %v", iv.Start, iv.End)
		}
		if i > 0 && iv.Start < c.Partitions[i-1].End {
			return bad(f, "starts at %v, before Partitions[%d] ends at %v", iv.Start, i-1, c.Partitions[i-1].End)
		}
	}
	return nil
}

// String lists the impairments that are on, e.g.
// "loss=1% delay=10ms±2ms rate=10000000bit/s queue=65536B"; "none" for the
// zero Config. It is meant for logs and reproduce lines.
func (c Config) String() string {
	var b []string
	add := func(s string) { b = append(b, s) }
	if c.Loss != 0 {
		add("loss=" + c.Loss.String())
	}
	if c.Burst != (GilbertElliott{}) {
		add(fmt.Sprintf("burst=p:%v,r:%v,bad:%v,good:%v", c.Burst.P, c.Burst.R, c.Burst.LossBad, c.Burst.LossGood))
	}
	if c.Duplicate != 0 {
		add("dup=" + c.Duplicate.String())
	}
	if c.Corrupt != 0 {
		add(fmt.Sprintf("corrupt=%v@%d", c.Corrupt, c.CorruptOffset))
	}
	if c.Delay != 0 || c.Jitter != 0 {
		s := "delay=" + c.Delay.String()
		if c.Jitter != 0 {
			s += "±" + c.Jitter.String()
		}
		add(s)
	}
	if c.Reorder != 0 {
		add(fmt.Sprintf("reorder=%v/%v", c.Reorder, c.ReorderDelay))
	}
	if c.Rate != 0 {
		add(fmt.Sprintf("rate=%dbit/s queue=%dB", c.Rate, c.Queue))
	}
	if c.MTU != 0 {
		add("mtu=" + strconv.Itoa(c.MTU))
	}
	for _, iv := range c.Partitions {
		add(fmt.Sprintf("partition=[%v,%v)", iv.Start, iv.End))
	}
	if len(b) == 0 {
		return "none"
	}
	return strings.Join(b, " ")
}
