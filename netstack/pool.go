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

// txFrame is an outbound frame: the bytes of b from frameOffset on, then,
// for a gather write, those of tail, which lie in a TCP send buffer's
// chunks and which refs keep from going back to the pool until the device
// has written them.
type txFrame struct {
	b    *[]byte
	tail [2][]byte
	refs [2]*bufpool.Ref
}

// size is the frame's length.
func (f *txFrame) size() int { return len(*f.b) - frameOffset + len(f.tail[0]) + len(f.tail[1]) }

// release gives the frame's buffer back and lets go of its tail.
func (f *txFrame) release() {
	putBuf(f.b)
	releaseRefs(f.refs)
	*f = txFrame{}
}

// whole returns the frame in one pooled buffer, its tail copied behind
// the head, and lets go of the tail.
func (f *txFrame) whole() *[]byte {
	n := len(*f.b)
	b := getBuf(n + len(f.tail[0]) + len(f.tail[1]))
	*b = (*b)[:n+len(f.tail[0])+len(f.tail[1])]
	k := copy(*b, *f.b)
	k += copy((*b)[k:], f.tail[0])
	copy((*b)[k:], f.tail[1])
	f.release()
	return b
}

func releaseRefs(refs [2]*bufpool.Ref) {
	for _, r := range refs {
		if r != nil {
			r.Release()
		}
	}
}

// framesOf fills views (reusing its array) with the frames' buffers, for a
// Link or a device write.
func framesOf(frames []txFrame, views [][]byte) [][]byte {
	views = views[:0]
	for i := range frames {
		views = append(views, *frames[i].b)
	}
	return views
}

// releaseFrames releases written frames and drops views' references to
// them.
func releaseFrames(frames []txFrame, views [][]byte) {
	for i := range frames {
		frames[i].release()
	}
	clear(views)
}
