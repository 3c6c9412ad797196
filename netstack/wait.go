package netstack

import (
	"sync"
	"time"
)

// waitList lets goroutines block until protocol state they wait for changes.
// Guarded by the loop lock. The first goroutine to block waits on a
// one-slot channel that is kept and reused, so a socket's reader or writer
// blocks and wakes without allocating; others that block while it waits
// (concurrent readers of one socket) share a channel that the next wake-up
// closes, made only for them. Wake-ups may be spurious: a waiter looks
// again at what it waits for.
type waitList struct {
	one     chan struct{} // capacity 1: a token in it says "look again"
	many    chan struct{}
	oneBusy bool // a goroutine waits on one
}

// block waits for the next wake-up or for stop to be ready, whichever is
// first, and reports whether it was woken. The loop lock mu is held on
// entry and on return, and released while it waits.
func (w *waitList) block(mu *loopLock, stop <-chan struct{}) bool {
	ch := w.many
	isOne := !w.oneBusy
	if isOne {
		if w.one == nil {
			w.one = make(chan struct{}, 1)
		}
		w.oneBusy, ch = true, w.one
	} else if ch == nil {
		w.many = make(chan struct{})
		ch = w.many
	}
	mu.Unlock()
	woken := true
	select {
	case <-ch:
	case <-stop:
		woken = false
	}
	mu.Lock()
	if isOne {
		w.oneBusy = false
		select {
		case <-w.one: // a wake-up that came after stop, or after the first
		default:
		}
	}
	return woken
}

// wakeLocked wakes every waiter. mu is the loop lock, held: it notes that
// a blocked goroutine was woken (loopLock.woke).
func (w *waitList) wakeLocked(mu *loopLock) {
	if w.oneBusy {
		select {
		case w.one <- struct{}{}:
			mu.woke = true
		default: // a token is already there
		}
	}
	if w.many != nil {
		close(w.many)
		w.many = nil
		mu.woke = true
	}
}

// deadlineTimer implements one direction of net.Conn's deadlines: a channel
// that is closed once the deadline passes and replaced when it is moved.
// Deadlines are wall-clock by the net.Conn contract, so this lives in the
// adapter layer, never in the protocol core.
//
// The zero value has no deadline and allocates nothing until one is set:
// a nil channel never becomes ready, which is what "no deadline" means to
// a select. Idle connections are many; deadlines are few.
type deadlineTimer struct {
	mu     sync.Mutex
	timer  *time.Timer
	cancel chan struct{} // closed when the deadline has passed; nil until one is set
}

func newDeadlineTimer() *deadlineTimer {
	return &deadlineTimer{cancel: make(chan struct{})}
}

// set moves the deadline; the zero time means none.
func (d *deadlineTimer) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.cancel // the timer fired: wait for its close before replacing
	}
	d.timer = nil
	closed := isClosedChan(d.cancel)
	if t.IsZero() {
		if closed {
			d.cancel = nil
		}
		return
	}
	if closed || d.cancel == nil {
		d.cancel = make(chan struct{})
	}
	if dur := time.Until(t); dur > 0 {
		cancel := d.cancel
		d.timer = time.AfterFunc(dur, func() { close(cancel) })
		return
	}
	close(d.cancel) // open here: a closed one was replaced above
}

// moveDeadline sets d and, when its channel changed, wakes the calls
// waiting on it (wakeLocked, run under the loop lock) to wait again: a call
// blocked on the old channel (nil before the first deadline or after one
// was cleared) would never see the new one.
func moveDeadline(s *Stack, d *deadlineTimer, t time.Time, wakeLocked func()) {
	before := d.wait()
	d.set(t)
	if d.wait() != before {
		s.mu.Lock()
		wakeLocked()
		s.mu.Unlock()
	}
}

// wait returns a channel that is closed when the deadline passes.
func (d *deadlineTimer) wait() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cancel
}

// stop releases the timer.
func (d *deadlineTimer) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
}

func isClosedChan(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
