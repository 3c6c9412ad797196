// Package impair owns the network impairment model: loss (uniform and
// Gilbert-Elliott bursts), duplication, bit corruption, delay with jitter,
// reordering, a rate limit with a bounded queue, an MTU and partitions, each
// direction of a link described by a Config whose faults are data.
//
// The model is sans-I/O. A Link is given an instant (mono.Time) and a frame
// length and returns a Decision: dropped, with a Reason that is counted in
// Stats, or delivered as one or two copies, each with its delivery instant
// and the bit to flip, if any. It holds no frames, reads no clock, starts no
// goroutine and does not allocate; the caller keeps each copy until its
// instant and applies the corruption to its own copy of the frame
// (Corrupt). Probabilities are integer parts per million (Prob), so the
// same seed and the same sequence of (now, length) give the same decisions
// on every machine and Go release: a failing seed is a bug report. Each
// impairment draws from its own PRNG stream (math/rand/v2 PCG), and
// DeriveSeed splits one master seed into independent per-link, per-direction
// seeds.
//
// Two users drive it: the simulator's in-memory wire, on a virtual clock in
// one goroutine, and WrapDevice, which applies a Link to each direction of
// a real device.Device on the real clock (the replacement for tc netem
// behind `tapstack up --loss --reorder --dup --corrupt --delay --seed`).
// The wrapper is a driver, not core: it reads time.Now and runs one sender
// goroutine and one helper reader per device, both stopped by Close. Frames
// that are neither delayed nor changed pass through it without a copy;
// those that wait are copied into pooled buffers, at most MaxHeld copies
// (MaxHeldBytes bytes) per direction, the rest dropped and counted.
//
// What the model does not do, on purpose: jitter does not reorder (only
// Reorder does; see Config.Delay), reordering is a hold in time rather than
// a depth in frames (see Config.Reorder), and the Gilbert-Elliott chain steps
// per frame, not per unit of time.
package impair
