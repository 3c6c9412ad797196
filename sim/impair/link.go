package impair

import (
	"strconv"
	"time"

	"github.com/tapstack/tapstack/mono"
)

// Reason says why a frame was dropped; Kept if it was not.
type Reason uint8

const (
	Kept          Reason = iota
	DropPartition        // sent during a partition, or every copy would arrive in one
	DropMTU              // longer than Config.MTU (or MaxFrameLen)
	DropLoss             // uniform loss
	DropBurst            // Gilbert-Elliott loss
	DropQueue            // the rate limiter's queue was full
	NumReasons
)

var reasonNames = [NumReasons]string{"kept", "partition", "mtu", "loss", "burst", "queue"}

func (r Reason) String() string {
	if r < NumReasons {
		return reasonNames[r]
	}
	return "Reason(" + strconv.Itoa(int(r)) + ")"
}

// Stats counts what a Link decided. Frames = sum(Dropped) + Delivered -
// Duplicated always holds.
type Stats struct {
	Frames     uint64             // frames decided
	Delivered  uint64             // copies to deliver, duplicates included
	Duplicated uint64             // frames delivered twice
	Corrupted  uint64             // delivered copies with a flipped bit
	Reordered  uint64             // delivered copies held back by ReorderDelay
	Dropped    [NumReasons]uint64 // frames dropped, by reason; Dropped[Kept] is 0
}

// DroppedTotal is the number of frames dropped for any reason.
func (s *Stats) DroppedTotal() uint64 {
	var t uint64
	for _, n := range s.Dropped {
		t += n
	}
	return t
}

// Decision is the fate of one frame: dropped (Drop != Kept, Copies == 0) or
// delivered as Copies (1 or 2) copies, Copy[:Copies].
type Decision struct {
	Drop   Reason
	Copies int
	Copy   [2]Delivery
}

// Delivery is when one copy arrives and what happens to it on the way.
type Delivery struct {
	At   mono.Time // delivery instant, >= the decision's now
	Bit  int       // bit to flip with Corrupt, or -1 for none
	Held bool      // held back by the reorder delay: later frames may overtake it
}

// Corrupted reports whether the copy has a bit to flip.
func (d Delivery) Corrupted() bool { return d.Bit >= 0 }

// Corrupt flips bit number bit of frame, counting from the most significant
// bit of frame[0] (network order). A bit outside the frame, or -1, leaves it
// untouched. Apply it to the caller's own copy of the frame: a buffer lent
// by someone else (a sender's retransmission queue) must not change.
func Corrupt(frame []byte, bit int) {
	if bit < 0 || bit/8 >= len(frame) {
		return
	}
	frame[bit/8] ^= 0x80 >> (bit % 8)
}

// Link is the impairment model of one direction of a link. It holds no
// frames, only what decisions depend on: PRNG streams, the burst-loss state,
// the rate limiter's backlog and the last in-order delivery instant. The
// caller holds each copy until its Delivery.At, delivering copies with equal
// instants in the order they were decided.
//
// A Link is not safe for concurrent use.
type Link struct {
	cfg          Config // as given, defaults filled in
	corruptByte  int
	reorderDelay time.Duration
	queueDur     time.Duration // Queue in time at Rate

	// One stream per impairment, each drawn from only when its probability
	// is strictly between 0 and 1: switching one impairment on or off leaves
	// the others' choices for a seed alone, as long as the same frames reach
	// them (Duplicate, say, does not change which frames Loss drops).
	loss, burst, dup, jitter, reorder, corrupt source

	bad   bool      // Gilbert-Elliott state
	busy  mono.Time // the rate limiter's last bit leaves at busy
	rem   uint64    // sub-nanosecond remainder of busy, in 1/Rate ns
	last  mono.Time // latest in-order delivery instant: jitter never goes before it
	stats Stats
}

// New returns a Link for cfg whose random choices all derive from seed.
func New(cfg Config, seed uint64) (*Link, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.Partitions = append([]Interval(nil), cfg.Partitions...)
	l := &Link{cfg: cfg, last: -1 << 63}
	switch {
	case cfg.CorruptOffset == 0:
		l.cfg.CorruptOffset = DefaultCorruptOffset
		l.corruptByte = DefaultCorruptOffset
	case cfg.CorruptOffset > 0:
		l.corruptByte = cfg.CorruptOffset
	}
	if cfg.ReorderDelay == 0 {
		l.cfg.ReorderDelay = max(2*cfg.Delay, MinReorderDelay)
	}
	l.reorderDelay = l.cfg.ReorderDelay
	if cfg.Rate != 0 {
		if cfg.Queue == 0 {
			l.cfg.Queue = DefaultQueue
		}
		l.queueDur = time.Duration(uint64(l.cfg.Queue) * 8e9 / cfg.Rate)
	}
	for i, s := range []*source{&l.loss, &l.burst, &l.dup, &l.jitter, &l.reorder, &l.corrupt} {
		s.seed(seed, uint64(i))
	}
	return l, nil
}

// Config returns the Link's configuration with New's defaults filled in.
func (l *Link) Config() Config {
	c := l.cfg
	c.Partitions = append([]Interval(nil), c.Partitions...)
	return c
}

// Stats returns the counts so far.
func (l *Link) Stats() Stats { return l.stats }

// Decide returns the fate of a frame of n bytes handed to the link at now.
// The same seed and the same sequence of (now, n) give the same decisions.
// now should not go backwards; if it does, decisions stay well defined.
// Decide does not allocate.
func (l *Link) Decide(now mono.Time, n int) Decision {
	l.stats.Frames++
	n = max(n, 0)
	c := &l.cfg
	if l.partitioned(now) {
		return l.drop(DropPartition)
	}
	if n > MaxFrameLen || (c.MTU != 0 && n > c.MTU) {
		return l.drop(DropMTU)
	}
	if l.loss.chance(c.Loss) {
		return l.drop(DropLoss)
	}
	if c.Burst.enabled() {
		p := c.Burst.LossGood
		if l.bad {
			p = c.Burst.LossBad
		}
		lost := l.burst.chance(p)
		if l.bad {
			l.bad = !l.burst.chance(c.Burst.R)
		} else {
			l.bad = l.burst.chance(c.Burst.P)
		}
		if lost {
			return l.drop(DropBurst)
		}
	}
	departure := now
	if c.Rate != 0 {
		// Serialization time with the remainder carried, so departures are
		// exact over many frames. n <= 2^24 keeps num far below 2^64.
		num := uint64(n) * 8e9
		if l.busy > now {
			num += l.rem
			if l.busy.Sub(now)+time.Duration(num/c.Rate) > l.queueDur {
				return l.drop(DropQueue)
			}
			l.busy = l.busy.Add(time.Duration(num / c.Rate))
		} else {
			l.busy = now.Add(time.Duration(num / c.Rate))
		}
		l.rem = num % c.Rate
		departure = l.busy
	}
	copies := 1
	if l.dup.chance(c.Duplicate) {
		copies = 2
	}
	base := departure.Add(c.Delay)
	var d Decision
	for range copies {
		at := base
		if c.Jitter > 0 {
			at = base.Add(time.Duration(l.jitter.below(2*uint64(c.Jitter)+1)) - c.Jitter)
		}
		at = max(at, l.last)
		held := l.reorder.chance(c.Reorder)
		if held {
			at = at.Add(l.reorderDelay)
		} else {
			l.last = at
		}
		bit := -1
		if l.corrupt.chance(c.Corrupt) && n > l.corruptByte {
			bit = 8*l.corruptByte + int(l.corrupt.below(8*uint64(n-l.corruptByte)))
		}
		if l.partitioned(at) {
			continue // this copy is lost; a duplicate may survive
		}
		d.Copy[d.Copies] = Delivery{At: at, Bit: bit, Held: held}
		d.Copies++
		if held {
			l.stats.Reordered++
		}
		if bit >= 0 {
			l.stats.Corrupted++
		}
	}
	if d.Copies == 0 {
		return l.drop(DropPartition)
	}
	l.stats.Delivered += uint64(d.Copies)
	if d.Copies == 2 {
		l.stats.Duplicated++
	}
	return d
}

func (l *Link) drop(r Reason) Decision {
	l.stats.Dropped[r]++
	return Decision{Drop: r}
}

// partitioned reports whether t lies in one of the partition intervals.
func (l *Link) partitioned(t mono.Time) bool {
	p := l.cfg.Partitions
	lo, hi := 0, len(p) // first interval with End > t
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if p[m].End > t {
			hi = m
		} else {
			lo = m + 1
		}
	}
	return lo < len(p) && p[lo].Start <= t
}
