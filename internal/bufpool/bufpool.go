// Package bufpool owns the pooled byte buffers the stack's layers pass to
// one another: frames read from and written to devices, and the chunks of
// TCP's socket buffers. One pool serves them all so that a buffer can
// change hands without a copy: a frame the device reader filled can become
// part of a connection's receive buffer, and goes back here once read.
//
// Buffers come in size classes: powers of two from 2 KiB to 8 MiB, and
// Frame, which holds a 64 KiB IP packet with a link header and headroom. A
// buffer is put back by its capacity; one of no class is left to the
// collector.
package bufpool

import (
	"math/bits"
	"sync"
	"sync/atomic"
)

const (
	minShift = 11 // 2 KiB
	maxShift = 23 // 8 MiB

	// Frame is the size of the buffers that hold the largest frames: a
	// 64 KiB IP packet or a coalesced (GRO) frame, a link header and the
	// device headroom in front.
	Frame = 65536 + 256
)

var (
	pow2   [maxShift + 1]sync.Pool
	frames = sync.Pool{New: func() any { b := make([]byte, Frame); return &b }}
)

// Get returns a buffer of at least n bytes, its length its capacity: a
// pooled power of two up to 8 MiB, a fresh buffer beyond. Its bytes are
// whatever its last user left.
func Get(n int) *[]byte {
	shift := max(bits.Len(uint(n-1)), minShift)
	if shift > maxShift {
		b := make([]byte, n)
		return &b
	}
	if v := pow2[shift].Get(); v != nil {
		b := v.(*[]byte)
		*b = (*b)[:cap(*b)]
		return b
	}
	b := make([]byte, 1<<shift)
	return &b
}

// GetFrame returns a buffer of Frame bytes.
func GetFrame() *[]byte {
	b := frames.Get().(*[]byte)
	*b = (*b)[:Frame]
	return b
}

// Put gives b back to the pool of its class. Any goroutine may call it;
// nothing may use b afterwards.
func Put(b *[]byte) {
	n := cap(*b)
	switch {
	case n == Frame:
		frames.Put(b)
	case n&(n-1) == 0 && n >= 1<<minShift && n <= 1<<maxShift:
		pow2[bits.Len(uint(n-1))].Put(b)
	}
}

// A Ref shares a pooled buffer among holders that read it at once (a TCP
// send buffer's chunk and the frames pointing into it that a device has
// yet to write); the last to Release it puts the buffer back. Refs are
// pooled themselves.
type Ref struct {
	b    *[]byte
	refs atomic.Int32
}

var refs = sync.Pool{New: func() any { return new(Ref) }}

// NewRef returns a Ref to b with one holder, the caller.
func NewRef(b *[]byte) *Ref {
	r := refs.Get().(*Ref)
	r.b = b
	r.refs.Store(1)
	return r
}

// Hold adds a holder.
func (r *Ref) Hold() { r.refs.Add(1) }

// Release drops a holder; the last one puts the buffer back. Any goroutine
// may call it.
func (r *Ref) Release() {
	if r.refs.Add(-1) == 0 {
		Put(r.b)
		r.b = nil
		refs.Put(r)
	}
}
