package main

import (
	"container/heap"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/tapstack/tapstack/mono"
	"github.com/tapstack/tapstack/sim/impair"
)

// The wire joins the two stacks of a pair: one lane per direction, each a
// queue of bare IP packets. Both stacks use the same wire code, so the link
// costs the same on either side: a packet is copied once into the lane when
// the sending stack writes it and once out of it into the receiving stack's
// own buffer (as a TAP device would copy it into and out of the kernel), and
// the same impairment model decides its fate.
//
// A lane never blocks its writer: a stack transmits while holding its own
// locks, so a writer that waited for the peer's reader could deadlock with
// the peer doing the same. A packet that finds the lane full is dropped and
// counted, as a NIC queue would drop it. The limit is large enough that
// bulk transfers without impairment do not hit it; the count is reported so
// a run where it did is visible.

// laneBytesMax bounds the bytes queued in one lane; laneFramesMax bounds
// the packets. Both are far above what the TCP windows used here can put in
// flight on one lane (8 connections x 4 MiB).
const (
	laneBytesMax  = 64 << 20
	laneFramesMax = 1 << 16
	smallFrame    = 256 // ACKs and requests fit a small buffer
)

// errWireClosed is returned to a reader whose lane is closed.
var errWireClosed = errors.New("bench: wire closed: " + net.ErrClosed.Error())

// wireConfig shapes a wire: the MTU of both lanes and each lane's
// impairment (nil: a perfect lane).
type wireConfig struct {
	MTU    int
	Impair *impair.Config
	Seed   uint64 // master seed; each lane derives its own stream
}

// newWire returns the two lanes of a wire: ab carries packets from stack A
// to stack B, ba the other way.
func newWire(cfg wireConfig) (ab, ba *lane, err error) {
	epoch := time.Now()
	lanes := [2]*lane{}
	for i := range lanes {
		l := &lane{mtu: cfg.MTU, epoch: epoch, ready: make(chan struct{}, 1)}
		l.ring = make([][]byte, 1024)
		if cfg.Impair != nil {
			l.imp, err = impair.New(*cfg.Impair, impair.DeriveSeed(cfg.Seed, impair.StreamUser+uint64(i)))
			if err != nil {
				return nil, nil, err
			}
		}
		lanes[i] = l
	}
	return lanes[0], lanes[1], nil
}

// lane is one direction of a wire. mu guards every field but ready and the
// immutable configuration.
type lane struct {
	mtu   int
	epoch time.Time
	ready chan struct{} // one token: "packets were queued"

	mu     sync.Mutex
	imp    *impair.Link // nil: deliver everything at once
	ring   [][]byte     // packets deliverable now, oldest at head
	head   int
	count  int
	bytes  int      // bytes queued, ring and held
	held   heldHeap // packets the impairment delays, by delivery instant
	seq    uint64   // orders held packets with equal instants
	free   [][]byte // MTU-sized buffers
	freeS  [][]byte // small buffers
	closed bool

	sent, queueDrops uint64
}

// laneStats counts what happened on a lane.
type laneStats struct {
	Sent        uint64 // packets handed to the lane
	QueueDrops  uint64 // dropped because the lane was full
	ImpairDrops uint64 // dropped by the impairment model
}

func (l *lane) stats() laneStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := laneStats{Sent: l.sent, QueueDrops: l.queueDrops}
	if l.imp != nil {
		st := l.imp.Stats()
		s.ImpairDrops = st.DroppedTotal()
	}
	return s
}

func (l *lane) now() mono.Time { return mono.Time(time.Since(l.epoch)) }

// bufLocked returns a buffer for a packet of n bytes.
func (l *lane) bufLocked(n int) []byte {
	if n <= smallFrame {
		if k := len(l.freeS); k > 0 {
			b := l.freeS[k-1]
			l.freeS = l.freeS[:k-1]
			return b[:n]
		}
		return make([]byte, n, smallFrame)
	}
	if k := len(l.free); k > 0 {
		b := l.free[k-1]
		l.free = l.free[:k-1]
		return b[:n]
	}
	return make([]byte, n, l.mtu)
}

func (l *lane) releaseLocked(b []byte) {
	l.bytes -= len(b)
	if cap(b) == smallFrame {
		l.freeS = append(l.freeS, b[:0])
	} else {
		l.free = append(l.free, b[:0])
	}
}

// write queues one packet, the concatenation of parts, copying it. It
// never blocks.
func (l *lane) write(parts ...[]byte) {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	l.mu.Lock()
	if l.closed || n > l.mtu || n == 0 {
		l.mu.Unlock()
		return
	}
	l.sent++
	var d impair.Decision
	now := mono.Time(0)
	if l.imp != nil {
		now = l.now()
		d = l.imp.Decide(now, n)
		if d.Copies == 0 {
			l.mu.Unlock()
			return
		}
	} else {
		d.Copies = 1
	}
	queued := false
	for c := 0; c < d.Copies; c++ {
		if l.bytes+n > laneBytesMax || l.count+len(l.held) >= laneFramesMax {
			l.queueDrops++
			continue
		}
		b := l.bufLocked(n)
		off := 0
		for _, p := range parts {
			off += copy(b[off:], p)
		}
		l.bytes += n
		dv := d.Copy[c]
		if l.imp == nil {
			l.pushLocked(b)
			queued = true
			continue
		}
		impair.Corrupt(b, dv.Bit)
		if dv.At > now {
			l.seq++
			heap.Push(&l.held, heldFrame{at: dv.At, seq: l.seq, b: b})
		} else {
			l.pushLocked(b)
		}
		queued = true
	}
	l.mu.Unlock()
	if queued {
		select {
		case l.ready <- struct{}{}:
		default:
		}
	}
}

func (l *lane) pushLocked(b []byte) {
	if l.count == len(l.ring) {
		r := make([][]byte, 2*len(l.ring))
		for i := 0; i < l.count; i++ {
			r[i] = l.ring[(l.head+i)%len(l.ring)]
		}
		l.ring, l.head = r, 0
	}
	l.ring[(l.head+l.count)%len(l.ring)] = b
	l.count++
}

// read waits for at least one packet, then moves up to len(dst) of them
// into dst, oldest first, and returns how many. The caller hands them back
// with release once it has copied them.
func (l *lane) read(dst [][]byte) (int, error) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			return 0, errWireClosed
		}
		wait := time.Duration(-1)
		if len(l.held) > 0 {
			now := l.now()
			for len(l.held) > 0 && l.held[0].at <= now {
				l.pushLocked(heap.Pop(&l.held).(heldFrame).b)
			}
			if len(l.held) > 0 {
				wait = l.held[0].at.Sub(now)
			}
		}
		n := 0
		for n < len(dst) && l.count > 0 {
			dst[n] = l.ring[l.head]
			l.ring[l.head] = nil
			l.head = (l.head + 1) % len(l.ring)
			l.count--
			n++
		}
		l.mu.Unlock()
		if n > 0 {
			return n, nil
		}
		var fire <-chan time.Time
		if wait >= 0 {
			if timer == nil {
				timer = time.NewTimer(wait)
			} else {
				timer.Reset(wait)
			}
			fire = timer.C
		}
		select {
		case <-l.ready:
		case <-fire:
		}
	}
}

// release returns packets obtained from read.
func (l *lane) release(bufs [][]byte) {
	l.mu.Lock()
	for i, b := range bufs {
		l.releaseLocked(b)
		bufs[i] = nil
	}
	l.mu.Unlock()
}

// close wakes a pending read, which returns errWireClosed; later writes
// are dropped.
func (l *lane) close() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	select {
	case l.ready <- struct{}{}:
	default:
	}
}

// heldFrame is a packet waiting for its delivery instant.
type heldFrame struct {
	at  mono.Time
	seq uint64
	b   []byte
}

type heldHeap []heldFrame

func (h heldHeap) Len() int { return len(h) }
func (h heldHeap) Less(i, j int) bool {
	if h[i].at != h[j].at {
		return h[i].at < h[j].at
	}
	return h[i].seq < h[j].seq
}
func (h heldHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *heldHeap) Push(x any)   { *h = append(*h, x.(heldFrame)) }
func (h *heldHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	old[len(old)-1] = heldFrame{}
	*h = old[:len(old)-1]
	return x
}
