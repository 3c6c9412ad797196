package netstack

import "github.com/tapstack/tapstack/internal/bufpool"

// Buffers for frames come from internal/bufpool, the pool TCP's socket
// buffers share: one class holds a frame of a standard 1500-byte MTU with
// headroom, one a 64 KiB packet (large MTUs, fragment reassembly, coalesced
// frames). Pooling keeps the steady-state paths free of allocation, and the
// shared pool lets a connection keep a frame the reader filled.
const smallBufSize = 2048

// getBuf returns a pooled buffer of at least n bytes, or a fresh one when n
// is larger than any pool's size.
//
// The headroom before frameOffset comes zeroed: on a device with offloads
// it carries the frame's virtio-net header, and zero means a plain frame.
func getBuf(n int) *[]byte {
	var b *[]byte
	switch {
	case n <= smallBufSize:
		b = bufpool.Get(smallBufSize)
	case n <= bufpool.Frame:
		b = bufpool.GetFrame()
	default:
		nb := make([]byte, n)
		return &nb
	}
	clear((*b)[:frameOffset])
	return b
}

// putBuf returns b to its pool. Any goroutine may call it: a device's
// writer returns the buffers it wrote without the loop lock.
func putBuf(b *[]byte) { bufpool.Put(b) }

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
