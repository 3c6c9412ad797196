package sim

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/tapstack/tapstack/mono"
)

// Task is an application on the World's goroutine: a step function the
// World calls when the task is ready. A task is ready when spawned, when
// woken (Wake, which is what to give a socket's SetNotify), and when its
// timer expires (WakeAt). A step does what it can without blocking — the
// sockets' non-blocking calls, until they say ErrWouldBlock — and returns.
//
// After each step of the World, ready tasks run in the order they were
// spawned, round after round until none is ready, so a run does not depend
// on the order in which a stack happened to notify its sockets.
type Task struct {
	w      *World
	name   string
	id     int
	step   func(*Task)
	queued bool
	done   bool
	err    error
	timer  *Timer
	runs   uint64
	// host, if set, is the only stack the task calls; otherwise it may
	// call any.
	host *Host
}

// Spawn adds a task; its first step runs at the current instant, once the
// World runs.
func (w *World) Spawn(name string, step func(*Task)) *Task {
	t := &Task{w: w, name: name, id: len(w.tasks), step: step}
	w.tasks = append(w.tasks, t)
	w.live++
	t.Wake()
	return t
}

// spawnOn is Spawn for a task that calls only h's stack.
func (w *World) spawnOn(h *Host, name string, step func(*Task)) *Task {
	t := w.Spawn(name, step)
	t.host = h
	return t
}

// Name returns the task's name.
func (t *Task) Name() string { return t.name }

// World returns the task's World.
func (t *Task) World() *World { return t.w }

// Now returns the virtual time.
func (t *Task) Now() mono.Time { return t.w.now }

// Wake makes the task ready. It only records that: it is safe to call from
// a socket's notify callback, with the stack's loop lock held.
func (t *Task) Wake() {
	if t.queued || t.done {
		return
	}
	t.queued = true
	t.w.ready = append(t.w.ready, t)
}

// WakeAt sets the task's one timer to wake it at at, replacing the
// previous setting; mono.Never stops it.
func (t *Task) WakeAt(at mono.Time) {
	if t.timer == nil {
		t.timer = &Timer{w: t.w, index: -1, fire: t.Wake}
	}
	if at != mono.Never {
		at = max(at, t.w.now)
	}
	t.timer.Reset(at)
}

// WakeAfter sets the task's timer d after now.
func (t *Task) WakeAfter(d time.Duration) { t.WakeAt(t.w.now.Add(d)) }

// Exit ends the task; a non-nil err fails the World's run with it.
func (t *Task) Exit(err error) {
	if t.done {
		return
	}
	t.done, t.err = true, err
	t.w.live--
	if t.timer != nil {
		t.timer.Stop()
	}
	if err != nil {
		t.w.failAs(t.name, err)
	}
}

// Exitf ends the task with a formatted error.
func (t *Task) Exitf(format string, args ...any) { t.Exit(fmt.Errorf(format, args...)) }

// Done reports whether the task has exited.
func (t *Task) Done() bool { return t.done }

// Err returns the error the task exited with.
func (t *Task) Err() error { return t.err }

// Runs returns how many steps the task has run.
func (t *Task) Runs() uint64 { return t.runs }

// TasksDone reports whether every task spawned so far has exited: the
// usual condition for RunUntil.
func (w *World) TasksDone() bool { return w.live == 0 }

// runReady runs ready tasks, in spawn order, round after round, noting
// the hosts they may have touched for sampleInfo.
func (w *World) runReady() {
	for round := 0; len(w.ready) > 0; round++ {
		if round >= maxTaskRounds {
			w.Fail(fmt.Errorf("tasks still ready after %d rounds at one instant: one wakes itself forever", round))
			return
		}
		batch := w.ready
		w.ready = w.spare[:0]
		slices.SortFunc(batch, func(a, b *Task) int { return cmp.Compare(a.id, b.id) })
		for _, t := range batch {
			t.queued = false
			if !t.done && w.err == nil {
				if t.host != nil {
					t.host.touched = true
				} else {
					w.touchAll = true
				}
				t.runs++
				t.step(t)
			}
		}
		clear(batch)
		w.spare = batch[:0]
	}
}
