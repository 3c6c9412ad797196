// Package mono is the protocol core's notion of time: an instant on a
// monotonic clock, counted in nanoseconds from the driver's epoch.
//
// The core never reads a clock. The real-time driver passes instants derived
// from time.Now, the simulator passes virtual ones; both are plain integers,
// so a run on the virtual clock replays exactly and a deadline costs 8 bytes.
package mono

import "time"

// Time is an instant: nanoseconds since the driving clock's epoch.
type Time int64

// Never is a deadline that does not fire; it sorts after every real instant.
const Never Time = 1<<63 - 1

// Add returns t+d, saturating at Never.
func (t Time) Add(d time.Duration) Time {
	if t == Never || (d > 0 && t > Never-Time(d)) {
		return Never
	}
	return t + Time(d)
}

// Sub returns the duration t-u.
func (t Time) Sub(u Time) time.Duration { return time.Duration(t - u) }

// Before reports whether t is earlier than u.
func (t Time) Before(u Time) bool { return t < u }

// After reports whether t is later than u.
func (t Time) After(u Time) bool { return t > u }

// Min returns the earlier of t and u: the usual way to merge deadlines.
func Min(t, u Time) Time {
	if u < t {
		return u
	}
	return t
}

// String formats t as the duration since the epoch, or "never".
func (t Time) String() string {
	if t == Never {
		return "never"
	}
	return time.Duration(t).String()
}
