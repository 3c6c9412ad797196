package sim

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/fnv"
	"math/rand/v2"
	"time"

	"github.com/tapstack/tapstack/mono"
	"github.com/tapstack/tapstack/sim/impair"
	"github.com/tapstack/tapstack/tcp"
)

// DefaultEpoch is the wall-clock instant virtual time 0 stands for in
// captures: fixed, so a pcap replays byte for byte.
var DefaultEpoch = time.Date(2000, time.January, 1, 0, 0, 0, 0, time.UTC)

// Limits on what a run may spend; beyond them a frame is dropped and
// counted, or the run fails, rather than the simulator growing without
// bound or spinning forever at one instant.
const (
	// DefaultMaxInFlight bounds the frames on all wires at once.
	DefaultMaxInFlight = 1 << 20
	// maxStepsPerInstant bounds the steps taken without the clock moving:
	// more means frames or tasks feed each other at zero delay forever.
	maxStepsPerInstant = 1 << 20
	// maxTaskRounds bounds the rounds of ready tasks after one step: more
	// means a task keeps waking itself without waiting for anything.
	maxTaskRounds = 1 << 16
)

// Config configures a World.
type Config struct {
	// Seed is the master seed: every random choice of the run (each stack's
	// ISNs, ports and jitter, each link direction's impairments, the
	// applications' choices through World.Rand) derives from it.
	Seed uint64
	// Epoch is the wall-clock instant virtual time 0 stands for in
	// captures; zero means DefaultEpoch.
	Epoch time.Time
	// MaxInFlight bounds the frames on all wires at once; 0 means
	// DefaultMaxInFlight. A frame beyond it is dropped (DirStats.Overflow).
	MaxInFlight int
	// CorruptAll lets impair.Config.Corrupt flip bits of every frame. By
	// default only frames carrying IPv4 are corrupted: the rest are
	// delivered intact and counted in DirStats.Spared. A real link's CRC
	// catches its own bit errors; what gets past it is damage done on the
	// way (a router's memory, a NIC's DMA) to packets that IP, UDP and TCP
	// checksums must catch. ARP has no checksum: a flipped bit in a reply
	// teaches a neighbour cache a wrong address, which blackholes a host
	// for up to a minute, a fault worth simulating on purpose only.
	CorruptAll bool
	// InfoSamples bounds the samples each TCPInfoSeries keeps (see
	// World.SampleTCP); 0 means DefaultInfoSamples, and at least 4 are kept.
	InfoSamples int
	// TCP is the TCP settings of every host's stack (netstack.Config.TCP).
	TCP tcp.Config
}

// World is one simulated network: hosts running the real netstack.Stack,
// wires and switches between them, applications (tasks and timers), and a
// virtual clock. Everything runs on the caller's goroutine; a World starts
// no goroutine and is not safe for concurrent use. Stacks of a World must
// be called only from that goroutine (from tasks, timers and between runs).
type World struct {
	cfg   Config
	now   mono.Time
	steps uint64
	err   error

	// sameInstant counts steps since the clock last moved.
	sameInstant uint64

	names    map[string]bool
	hosts    []*Host
	switches []*Switch
	dirs     []*Dir

	frames   frameQueue
	timers   timerHeap
	pool     framePool
	inFlight int
	one      [1][]byte // Receive's argument, reused

	tasks []*Task
	live  int // tasks not exited
	ready []*Task
	spare []*Task

	digest    hash.Hash
	rec       [64]byte // a digest record's header
	capture   *capture
	observers []func(*WireEvent)
	closed    bool

	// Connections sampled after each step (SampleTCP), and what the step
	// may have touched: a host's flag, or every host.
	probes   []*TCPInfoSeries
	touchAll bool
}

// New returns an empty World at virtual time 0.
func New(cfg Config) *World {
	if cfg.Epoch.IsZero() {
		cfg.Epoch = DefaultEpoch
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	if cfg.InfoSamples <= 0 {
		cfg.InfoSamples = DefaultInfoSamples
	}
	cfg.InfoSamples = max(cfg.InfoSamples, 4)
	return &World{cfg: cfg, names: make(map[string]bool), digest: sha256.New()}
}

// Seed returns the master seed.
func (w *World) Seed() uint64 { return w.cfg.Seed }

// Now returns the virtual time. Every stack of the World reads its clock
// here.
func (w *World) Now() mono.Time { return w.now }

// Time converts a virtual instant to the wall-clock time captures show.
func (w *World) Time(t mono.Time) time.Time { return w.cfg.Epoch.Add(time.Duration(t)) }

// Steps returns how many steps the World has taken: frames delivered,
// timer expiries and batches of stack timers. An idle network takes none.
func (w *World) Steps() uint64 { return w.steps }

// Hosts returns the hosts in the order they were added.
func (w *World) Hosts() []*Host { return w.hosts }

// Dirs returns every link direction in the order they were made.
func (w *World) Dirs() []*Dir { return w.dirs }

// seedFor derives the seed of a named part of the World. Names, not
// creation order, pick the streams: adding a host to a scenario leaves
// every other part's random choices alone.
func (w *World) seedFor(kind, name string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(kind))
	h.Write([]byte{0})
	h.Write([]byte(name))
	return impair.DeriveSeed(w.cfg.Seed, h.Sum64())
}

// Rand returns a random source for scenario code, independent of every
// other stream of the World and determined by the seed and name.
func (w *World) Rand(name string) *rand.Rand {
	return rand.New(rand.NewPCG(w.seedFor("rand", name), w.seedFor("rand2", name)))
}

// At schedules f at virtual instant at (now, if at is earlier). Timers due
// at one instant fire in the order they were scheduled.
func (w *World) At(at mono.Time, f func()) *Timer {
	t := &Timer{w: w, index: -1, fire: f}
	w.timers.set(t, max(at, w.now))
	return t
}

// After schedules f d after now.
func (w *World) After(d time.Duration, f func()) *Timer { return w.At(w.now.Add(d), f) }

// Failure is the error a run stops with when a task or check fails.
type Failure struct {
	At  mono.Time // virtual time of the failure
	Who string    // the task that failed, or "" when reported by World.Fail
	Err error
}

func (f *Failure) Error() string {
	if f.Who == "" {
		return fmt.Sprintf("sim: at %v: %v", f.At, f.Err)
	}
	return fmt.Sprintf("sim: at %v: %s: %v", f.At, f.Who, f.Err)
}

func (f *Failure) Unwrap() error { return f.Err }

// Fail stops the run with err; only the first failure is kept.
func (w *World) Fail(err error) { w.failAs("", err) }

func (w *World) failAs(who string, err error) {
	if w.err == nil && err != nil {
		w.err = &Failure{At: w.now, Who: who, Err: err}
	}
}

// Err returns the failure that stopped the World, if any.
func (w *World) Err() error { return w.err }

// ErrLimit is wrapped by RunUntil's error when the virtual deadline comes
// before the condition holds.
var ErrLimit = errors.New("sim: virtual deadline reached")

// ErrClosed is returned by runs of a closed World.
var ErrClosed = errors.New("sim: world closed")

// Run runs the World until virtual time until: everything due at or before
// it happens, then the clock reads until. It returns the first failure.
func (w *World) Run(until mono.Time) error { return w.run(until, nil) }

// RunFor runs the World for d of virtual time.
func (w *World) RunFor(d time.Duration) error { return w.run(w.now.Add(d), nil) }

// RunUntil runs the World until done returns true (checked after every
// step, once the ready tasks have run) or, failing that, until limit, when
// it returns an error wrapping ErrLimit. The clock stops at the instant
// done became true.
func (w *World) RunUntil(done func() bool, limit mono.Time) error {
	if done == nil {
		return w.run(limit, nil)
	}
	return w.run(limit, done)
}

func (w *World) run(limit mono.Time, done func() bool) error {
	if w.closed {
		return ErrClosed
	}
	w.touchAll = true // the caller may have used the stacks between runs
	for {
		w.runReady()
		if w.err != nil {
			w.sampleInfo()
			return w.err
		}
		if done != nil && done() {
			w.sampleInfo()
			return nil
		}
		next, kind := w.next()
		if next > w.now || next > limit {
			// The instant is over: connections are read once for all its
			// steps.
			w.sampleInfo()
		}
		if next > limit {
			w.now = max(w.now, limit)
			if done != nil {
				return fmt.Errorf("%w: %v", ErrLimit, limit)
			}
			return nil
		}
		if next > w.now {
			w.now = next
			w.sameInstant = 0
		} else if w.sameInstant++; w.sameInstant > maxStepsPerInstant {
			w.Fail(fmt.Errorf("no progress: %d steps without the clock moving", maxStepsPerInstant))
			return w.err
		}
		w.steps++
		switch kind {
		case stepFrame:
			w.deliverNext()
		case stepStacks:
			for _, h := range w.hosts {
				if h.stack.NextDeadline() <= w.now {
					h.stack.Advance(w.now)
					h.touched = true
				}
			}
		case stepTimer:
			w.timers.pop().fire()
			w.touchAll = true
		}
	}
}

type stepKind uint8

const (
	stepFrame stepKind = iota
	stepStacks
	stepTimer
)

// next returns the earliest thing to happen. At equal instants frames come
// first, then stack timers, then the World's timers: any fixed order
// replays, this one lets a timer see the frames of its instant.
func (w *World) next() (mono.Time, stepKind) {
	at, kind := w.frames.next(), stepFrame
	for _, h := range w.hosts {
		if d := h.stack.NextDeadline(); d < at {
			at, kind = d, stepStacks
		}
	}
	if t := w.timers.next(); t < at {
		at, kind = t, stepTimer
	}
	return at, kind
}

// Digest returns the trace digest: SHA-256, in hex, over every frame put
// on a wire, in order, each with its virtual time, link direction and
// fate (see the package doc). Two runs of one scenario with one seed have
// the same digest.
func (w *World) Digest() string {
	return hex.EncodeToString(w.digest.Sum(nil))
}

// Close closes every stack. The World cannot run again.
func (w *World) Close() error {
	if w.closed {
		return nil
	}
	w.closed = true
	var errs []error
	for _, h := range w.hosts {
		errs = append(errs, h.stack.Close())
	}
	return errors.Join(errs...)
}
