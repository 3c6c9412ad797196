package netstack

import (
	"testing"
)

// Every goroutine blocked on a waitList wakes: the first, on the reused
// one-slot channel, and those that blocked while it waited, on the shared
// one; a wait ended by its stop channel leaves the list as it found it.
func TestWaitListWakesEveryWaiter(t *testing.T) {
	s := New(Config{})
	defer s.Close()
	var w waitList
	const n = 3
	woken := make(chan bool, n)
	registered := 0 // guarded by the loop lock, as w is
	for range n {
		go func() {
			s.mu.Lock()
			registered++ // block registers before it lets the lock go
			woken <- w.block(&s.mu, nil)
			s.mu.Unlock()
		}()
	}
	waitUntil(t, s, "all three to block", func() bool { return registered == n })
	s.mu.Lock()
	busy, shared := w.oneBusy, w.many != nil
	w.wakeLocked()
	s.mu.Unlock()
	if !busy || !shared {
		t.Fatalf("three waiters: busy %v, shared channel %v", busy, shared)
	}
	for range n {
		if !<-woken {
			t.Fatal("a waiter was not woken")
		}
	}

	stop := make(chan struct{})
	close(stop)
	s.mu.Lock()
	wokenAfterStop := w.block(&s.mu, stop)
	waiting, tokens := w.waitingLocked(), len(w.one)
	w.wakeLocked() // nobody waits: no token is left for the next
	leftover := len(w.one)
	s.mu.Unlock()
	switch {
	case wokenAfterStop:
		t.Fatal("a wait with its stop ready reported a wake-up")
	case waiting || tokens != 0:
		t.Fatalf("after a stopped wait: waiting %v, %d tokens", waiting, tokens)
	case leftover != 0:
		t.Fatal("a wake-up with no waiter left a token")
	}
}

// waitingLocked reports whether a goroutine is blocked on w (tests wait
// for it before acting on the blocked call).
func (w *waitList) waitingLocked() bool { return w.oneBusy || w.many != nil }

// A step's wake-ups fire once it has released the loop lock, the woken
// finding it free, and all of them, beyond the few kept for after it.
func TestWakeupsFireAfterTheStep(t *testing.T) {
	s := New(Config{})
	defer s.Close()
	const n = 2*wakesMax + 1
	lists := make([]waitList, n)
	woken := make(chan bool, n)
	registered := 0 // guarded by the loop lock
	for i := range lists {
		go func() {
			s.mu.Lock()
			registered++
			woken <- lists[i].block(&s.mu, nil)
			s.mu.Unlock()
		}()
	}
	waitUntil(t, s, "all to block", func() bool { return registered == n })
	s.mu.Lock()
	for i := range lists {
		lists[i].wakeLocked()
		lists[i].wakeLocked() // a repeat is one wake-up
	}
	pending, tokens := len(s.mu.wakes), 0
	for i := range lists {
		tokens += len(lists[i].one)
	}
	s.mu.Unlock()
	if pending != n || tokens != 0 {
		t.Fatalf("inside the step: %d wake-ups pending, %d delivered; want %d and 0", pending, tokens, n)
	}
	for range n {
		if !<-woken {
			t.Fatal("a waiter was not woken")
		}
	}
}
