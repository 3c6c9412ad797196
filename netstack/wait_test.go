package netstack

import (
	"testing"
)

// Every goroutine blocked on a waitList wakes: the first, on the reused
// one-slot channel, and those that blocked while it waited, on the shared
// one, and the loop lock notes that someone was woken (the device reader
// yields to it); a wait ended by its stop channel leaves the list as it
// found it, and a wake-up with nobody waiting notes nothing.
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
	s.mu.woke = false
	w.wakeLocked(&s.mu)
	noted := s.mu.woke
	s.mu.Unlock()
	if !busy || !shared {
		t.Fatalf("three waiters: busy %v, shared channel %v", busy, shared)
	}
	if !noted {
		t.Error("waking three waiters was not noted")
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
	s.mu.woke = false
	w.wakeLocked(&s.mu) // nobody waits: no token is left for the next
	leftover, noted := len(w.one), s.mu.woke
	s.mu.Unlock()
	switch {
	case wokenAfterStop:
		t.Fatal("a wait with its stop ready reported a wake-up")
	case waiting || tokens != 0:
		t.Fatalf("after a stopped wait: waiting %v, %d tokens", waiting, tokens)
	case leftover != 0:
		t.Fatal("a wake-up with no waiter left a token")
	case noted:
		t.Fatal("a wake-up with no waiter was noted")
	}
}

// waitingLocked reports whether a goroutine is blocked on w (tests wait
// for it before acting on the blocked call).
func (w *waitList) waitingLocked() bool { return w.oneBusy || w.many != nil }
