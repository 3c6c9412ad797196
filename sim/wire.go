package sim

import (
	"encoding/binary"

	"github.com/tapstack/tapstack/internal/heapq"
	"github.com/tapstack/tapstack/mono"
	"github.com/tapstack/tapstack/sim/impair"
)

// Dir is one direction of a link: frames from one end, impaired by an
// impair.Link with its own seed, on their way to the other end (a host's
// interface or a switch port). It implements netstack.Link: the sending
// stack hands it frames, which it copies, so a test may also inject frames
// of its own with Transmit.
type Dir struct {
	w     *World
	id    uint32
	name  string
	imp   *impair.Link
	to    port
	stats DirStats
	// fromHost: the sending end is a host's interface (not a switch), so
	// frames handed in here are on their first hop.
	fromHost bool
}

// DirStats counts what a direction carried, on top of its impairment
// model's impair.Stats.
type DirStats struct {
	Frames         uint64 // frames handed to the direction
	Bytes          uint64
	Delivered      uint64 // copies delivered to the far end, duplicates included
	DeliveredBytes uint64
	Overflow       uint64 // frames dropped: the World's MaxInFlight was reached
	InFlight       int    // copies on the wire now
	// Spared counts copies the model chose to corrupt that were delivered
	// intact because they carry no IPv4 (see Config.CorruptAll).
	Spared uint64
}

// port is a receiving end.
type port interface {
	receive(w *World, frame []byte)
	isHost() bool
}

func (w *World) newDir(name string, cfg impair.Config) (*Dir, error) {
	imp, err := impair.New(cfg, w.seedFor("dir", name))
	if err != nil {
		return nil, err
	}
	d := &Dir{w: w, id: uint32(len(w.dirs)), name: name, imp: imp}
	w.dirs = append(w.dirs, d)
	return d, nil
}

// Name returns the direction's name, "from>to".
func (d *Dir) Name() string { return d.name }

// ID returns the direction's number in the World, its link id in the
// trace digest.
func (d *Dir) ID() int { return int(d.id) }

// Stats returns the direction's counters.
func (d *Dir) Stats() DirStats { return d.stats }

// Impair returns the impairment model's counters: drops by reason,
// duplicates, corruptions, reorderings.
func (d *Dir) Impair() impair.Stats { return d.imp.Stats() }

// Config returns the direction's impairments, defaults filled in.
func (d *Dir) Config() impair.Config { return d.imp.Config() }

// Transmit puts frames[i][offset:] on the wire at the World's current
// time. The frames are copied; the caller keeps its buffers.
func (d *Dir) Transmit(frames [][]byte, offset int) {
	for _, f := range frames {
		d.w.send(d, f[offset:])
	}
}

// fateOverflow marks, in the digest, a frame dropped for MaxInFlight.
const fateOverflow = 0xff

// send decides the fate of frame on d at now, records it in the digest and
// queues its copies.
func (w *World) send(d *Dir, frame []byte) {
	d.stats.Frames++
	d.stats.Bytes += uint64(len(frame))
	dec := d.imp.Decide(w.now, len(frame))
	fate := byte(dec.Drop)
	if dec.Drop == impair.Kept && w.inFlight+dec.Copies > w.cfg.MaxInFlight {
		d.stats.Overflow++
		fate = fateOverflow
		dec.Copies = 0
	}

	r := w.rec[:0]
	r = binary.BigEndian.AppendUint64(r, uint64(w.now))
	r = binary.BigEndian.AppendUint32(r, d.id)
	r = binary.BigEndian.AppendUint32(r, uint32(len(frame)))
	r = append(r, fate, byte(dec.Copies))
	for _, c := range dec.Copy[:dec.Copies] {
		r = binary.BigEndian.AppendUint64(r, uint64(c.At))
		r = binary.BigEndian.AppendUint32(r, uint32(int32(c.Bit)))
		r = append(r, boolByte(c.Held))
	}
	w.digest.Write(r)
	w.digest.Write(frame)

	if dec.Copies == 0 {
		if w.capture != nil {
			w.capture.drop(w, frame)
		}
		if len(w.observers) > 0 {
			reason := dec.Drop
			if fate == fateOverflow {
				reason = ReasonOverflow
			}
			w.observe(&WireEvent{Kind: Dropped, At: w.now, Dir: d, Frame: frame, Reason: reason})
		}
		return
	}
	if len(w.observers) > 0 {
		w.observe(&WireEvent{Kind: Sent, At: w.now, Dir: d, Frame: frame, Copies: dec.Copies})
	}
	for _, c := range dec.Copy[:dec.Copies] {
		b := w.pool.get(len(frame))
		copy(b, frame)
		if c.Bit >= 0 && !w.cfg.CorruptAll && !isIPv4Frame(frame) {
			d.stats.Spared++
			c.Bit = -1
		}
		impair.Corrupt(b, c.Bit)
		w.frames.push(inFlight{at: c.At, dir: d, buf: b, n: len(frame), corrupted: c.Bit >= 0})
		w.inFlight++
		d.stats.InFlight++
	}
}

// isIPv4Frame reports whether an Ethernet frame carries IPv4.
func isIPv4Frame(f []byte) bool { return len(f) >= 14 && f[12] == 0x08 && f[13] == 0x00 }

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// deliverNext hands the earliest frame in flight to its receiving end.
func (w *World) deliverNext() {
	f := w.frames.pop()
	w.inFlight--
	d := f.dir
	d.stats.InFlight--
	d.stats.Delivered++
	d.stats.DeliveredBytes += uint64(f.n)
	frame := f.buf[:f.n]
	if w.capture != nil {
		w.capture.deliver(w, d, frame)
	}
	if len(w.observers) > 0 {
		w.observe(&WireEvent{Kind: Delivered, At: w.now, Dir: d, Frame: frame, Corrupted: f.corrupted})
	}
	d.to.receive(w, frame)
	w.pool.put(f.buf)
}

// EventKind says what happened to a frame on a wire.
type EventKind uint8

const (
	Sent      EventKind = iota // handed to a direction, to be delivered as Copies copies
	Dropped                    // handed to a direction and dropped (Reason)
	Delivered                  // one copy reached the far end (Corrupted or intact)
)

func (k EventKind) String() string {
	switch k {
	case Sent:
		return "sent"
	case Dropped:
		return "dropped"
	case Delivered:
		return "delivered"
	}
	return "EventKind(?)"
}

// ReasonOverflow is the Reason of a frame dropped because the World's
// MaxInFlight was reached; the others are impair's.
const ReasonOverflow = impair.NumReasons

// WireEvent is one frame's passage on a wire, as an observer sees it.
type WireEvent struct {
	Kind      EventKind
	At        mono.Time
	Dir       *Dir
	Frame     []byte // valid only during the observer's call; do not modify
	Copies    int    // Sent: 1, or 2 when duplicated
	Reason    impair.Reason
	Corrupted bool // Delivered: a bit of this copy was flipped
}

// Observe registers f to see every frame sent, dropped and delivered on
// every wire, in order. It is how checkers and plots watch a run.
func (w *World) Observe(f func(*WireEvent)) { w.observers = append(w.observers, f) }

func (w *World) observe(e *WireEvent) {
	for _, f := range w.observers {
		f(e)
	}
}

// inFlight is one copy of a frame on a wire.
type inFlight struct {
	at        mono.Time
	dir       *Dir
	buf       []byte
	n         int
	corrupted bool
}

// frameQueue holds the copies by (at, order of queueing): equal instants
// deliver in queueing order.
type frameQueue struct {
	q heapq.Queue[inFlight]
}

func (q *frameQueue) next() mono.Time { return q.q.Next() }
func (q *frameQueue) push(f inFlight) { q.q.Push(f.at, f) }
func (q *frameQueue) pop() inFlight   { return q.q.Pop() }

// framePool recycles the buffers of frames in flight: one holding a
// standard frame, one holding the largest an interface may send. It holds
// at most what was once in flight, itself bounded by MaxInFlight.
type framePool struct{ small, large [][]byte }

const (
	smallFrame = 2048
	largeFrame = 65536 + 64
)

func (p *framePool) get(n int) []byte {
	var l *[][]byte
	switch {
	case n <= smallFrame:
		l = &p.small
	case n <= largeFrame:
		l = &p.large
	default:
		return make([]byte, n)
	}
	if k := len(*l); k > 0 {
		b := (*l)[k-1]
		(*l)[k-1] = nil
		*l = (*l)[:k-1]
		return b[:n]
	}
	if l == &p.small {
		return make([]byte, n, smallFrame)
	}
	return make([]byte, n, largeFrame)
}

func (p *framePool) put(b []byte) {
	switch cap(b) {
	case smallFrame:
		p.small = append(p.small, b)
	case largeFrame:
		p.large = append(p.large, b)
	}
}
