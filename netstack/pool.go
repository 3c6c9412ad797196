package netstack

import "sync"

// Buffers for outbound frames come in two sizes: one that holds a frame of a
// standard 1500-byte MTU with headroom, and one that holds a 64 KiB packet
// (large MTUs, fragment reassembly). Pooling keeps the steady-state send path
// free of allocation.
const (
	smallBufSize = 2048
	largeBufSize = 65536 + 256
)

var (
	smallBufs = sync.Pool{New: func() any { b := make([]byte, smallBufSize); return &b }}
	largeBufs = sync.Pool{New: func() any { b := make([]byte, largeBufSize); return &b }}
)

// getBuf returns a pooled buffer of at least n bytes, or a fresh one when n
// is larger than any pool's size.
//
// The headroom before frameOffset comes zeroed: on a device with offloads
// it carries the frame's virtio-net header, and zero means a plain frame.
func getBuf(n int) *[]byte {
	var b *[]byte
	switch {
	case n <= smallBufSize:
		b = smallBufs.Get().(*[]byte)
	case n <= largeBufSize:
		b = largeBufs.Get().(*[]byte)
	default:
		nb := make([]byte, n)
		return &nb
	}
	clear((*b)[:frameOffset])
	return b
}

// putBuf returns b to its pool. Any goroutine may call it: a device's
// writer returns the buffers it wrote without the loop lock.
func putBuf(b *[]byte) {
	switch cap(*b) {
	case smallBufSize:
		*b = (*b)[:smallBufSize]
		smallBufs.Put(b)
	case largeBufSize:
		*b = (*b)[:largeBufSize]
		largeBufs.Put(b)
	}
}

// framesOf fills views (reusing its array) with the frames bufs hold, for
// a Link or a device write.
func framesOf(bufs []*[]byte, views [][]byte) [][]byte {
	views = views[:0]
	for _, b := range bufs {
		views = append(views, *b)
	}
	return views
}

// releaseBufs returns written frames to the pool and drops both slices'
// references to them.
func releaseBufs(bufs []*[]byte, views [][]byte) {
	for _, b := range bufs {
		putBuf(b)
	}
	clear(bufs)
	clear(views)
}
