package netstack

import (
	"sync"
	"time"
)

// waitList lets goroutines block until protocol state they wait for changes.
// Guarded by the loop lock. A channel is made only when someone blocks, so
// a wake-up with no waiter costs nothing.
type waitList struct {
	ch chan struct{}
}

// chanLocked returns a channel that closes at the next wake-up.
func (w *waitList) chanLocked() <-chan struct{} {
	if w.ch == nil {
		w.ch = make(chan struct{})
	}
	return w.ch
}

// wakeLocked wakes every waiter.
func (w *waitList) wakeLocked() {
	if w.ch != nil {
		close(w.ch)
		w.ch = nil
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

// moveDeadline sets d and, when its channel changed, wakes w's waiters to
// wait again: a call blocked on the old channel (nil before the first
// deadline or after one was cleared) would never see the new one.
func moveDeadline(s *Stack, d *deadlineTimer, t time.Time, w *waitList) {
	before := d.wait()
	d.set(t)
	if d.wait() != before {
		s.mu.Lock()
		w.wakeLocked()
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
