package device

import (
	"fmt"
	"net"
	"sync"
	"sync/atomic"
)

// PipeConfig shapes a Pipe. The zero value gives an Ethernet pipe with
// MTU 1500, 256 queued frames per direction and DefaultBatchSize.
type PipeConfig struct {
	MTU       int  // 0 means 1500
	QueueLen  int  // frames buffered per direction; 0 means 256
	BatchSize int  // 0 means DefaultBatchSize
	L3        bool // carry bare IP packets: LinkAddr is nil, frames up to MTU
	// MACs are the two ends' LinkAddr; nil entries default to
	// 02:00:00:00:00:01 and 02:00:00:00:00:02.
	MACs [2]net.HardwareAddr
	// Offloads makes both ends Offloaders with these offloads, passing
	// each frame's VnetHdr to the peer untouched, as a veth between two
	// kernels does: a GSO frame arrives whole (up to MaxOffloadFrameSize),
	// a partial checksum stays partial. Any other frame must fit the MTU.
	Offloads Offloads
}

// Pipe returns two connected in-memory devices: a frame written to one is
// read from the other. It is a wire for tests, with the same contract as a
// real device: writes never block (a frame that finds the peer's queue full,
// or the peer closed, is dropped and counted in the writer's tx drops), reads
// block until a frame arrives or the end is closed, and a frame is copied
// into the queue so the writer may reuse its buffer at once.
//
// Closing one end closes it for reading and writing; the other end stays
// open and its frames are dropped, as on an unplugged cable. Frame buffers
// are allocated when the queue grows deeper than ever before and recycled,
// so a steady flow allocates nothing.
func Pipe(cfg PipeConfig) (*PipeEnd, *PipeEnd) {
	if cfg.MTU <= 0 {
		cfg.MTU = 1500
	}
	if cfg.QueueLen <= 0 {
		cfg.QueueLen = 256
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	maxFrame := cfg.MTU
	if !cfg.L3 {
		maxFrame += EthernetHeaderLen
	}
	var ends [2]*PipeEnd
	for i := range ends {
		e := &PipeEnd{mtu: cfg.MTU, maxFrame: maxFrame, batch: cfg.BatchSize,
			offloads: cfg.Offloads, done: make(chan struct{})}
		if cfg.Offloads != 0 {
			e.vnet = VnetHdrLen
		}
		e.rx.slots = make([][]byte, cfg.QueueLen)
		e.rx.free = make([][]byte, 0, cfg.QueueLen)
		e.rx.ready = make(chan struct{}, 1)
		if !cfg.L3 {
			e.mac = cfg.MACs[i]
			if e.mac == nil {
				e.mac = net.HardwareAddr{0x02, 0, 0, 0, 0, byte(i + 1)}
			}
		}
		ends[i] = e
	}
	ends[0].peer, ends[1].peer = ends[1], ends[0]
	return ends[0], ends[1]
}

// PipeEnd is one end of a Pipe.
type PipeEnd struct {
	peer     *PipeEnd
	mac      net.HardwareAddr
	mtu      int
	maxFrame int
	batch    int
	offloads Offloads
	vnet     int // VnetHdrLen with offloads: queued frames carry their header

	rx     pipeQueue // frames written by the peer, waiting to be read here
	closed atomic.Bool
	done   chan struct{} // closed by Close

	rxDropped atomic.Uint64 // frames too long for the reader's buffer
	txDropped atomic.Uint64 // frames too long, or no room at the peer
}

// pipeQueue is a ring of frames. mu guards every field but ready.
type pipeQueue struct {
	mu     sync.Mutex
	slots  [][]byte // the queued frames, a ring
	free   [][]byte // buffers of at least maxFrame bytes, unused
	head   int      // index of the oldest frame
	count  int
	closed bool
	ready  chan struct{} // one token: "frames were queued"
}

// MTU is PipeConfig.MTU.
func (e *PipeEnd) MTU() int { return e.mtu }

// BatchSize is PipeConfig.BatchSize.
func (e *PipeEnd) BatchSize() int { return e.batch }

// LinkAddr is this end's MAC, nil for an L3 pipe.
func (e *PipeEnd) LinkAddr() net.HardwareAddr { return e.mac }

// Drops reports frames too long for the reader's buffer (rx), and frames
// written that were too long or found the peer full or closed (tx).
func (e *PipeEnd) Drops() (rx, tx uint64) { return e.rxDropped.Load(), e.txDropped.Load() }

// Queued is the number of frames waiting to be read at this end.
func (e *PipeEnd) Queued() int {
	e.rx.mu.Lock()
	defer e.rx.mu.Unlock()
	return e.rx.count
}

// Close closes this end; a pending ReadBatch returns an error wrapping
// net.ErrClosed. Closing twice is harmless.
func (e *PipeEnd) Close() error {
	if e.closed.Swap(true) {
		return nil
	}
	e.rx.mu.Lock()
	e.rx.closed = true
	e.rx.mu.Unlock()
	close(e.done)
	return nil
}

// ReadBatch waits for a frame, then returns the frames queued, up to
// min(len(bufs), BatchSize). With offloads it completes partial checksums
// (see Offloader).
func (e *PipeEnd) ReadBatch(bufs [][]byte, sizes []int, offset int) (int, error) {
	return e.read(bufs, sizes, nil, offset)
}

// Offloads is PipeConfig.Offloads.
func (e *PipeEnd) Offloads() Offloads { return e.offloads }

// ReadBatchOffload is ReadBatch that also returns each frame's metadata
// (zero without offloads); at most len(meta) frames are read.
func (e *PipeEnd) ReadBatchOffload(bufs [][]byte, sizes []int, meta []VnetHdr, offset int) (int, error) {
	return e.read(bufs[:min(len(bufs), len(meta))], sizes, meta, offset)
}

func (e *PipeEnd) read(bufs [][]byte, sizes []int, meta []VnetHdr, offset int) (int, error) {
	if err := checkBatch(bufs, offset, true); err != nil {
		return 0, err
	}
	max := min(len(bufs), len(sizes), e.batch)
	if max == 0 {
		return 0, nil
	}
	q := &e.rx
	for {
		q.mu.Lock()
		if q.closed {
			q.mu.Unlock()
			return 0, fmt.Errorf("device: pipe: read: %w", net.ErrClosed)
		}
		n := 0
		for n < max && q.count > 0 {
			f := q.slots[q.head]
			q.slots[q.head] = nil
			q.head = (q.head + 1) % len(q.slots)
			q.count--
			q.free = append(q.free, f[:cap(f)])
			dst := bufs[n][offset-e.vnet:]
			if len(f) > len(dst) {
				e.rxDropped.Add(1)
				continue
			}
			copy(dst, f)
			if e.vnet != 0 && !takeVnet(dst[:len(f)], meta, n) {
				e.rxDropped.Add(1)
				continue
			}
			if e.vnet == 0 && meta != nil {
				meta[n] = VnetHdr{}
			}
			sizes[n] = len(f) - e.vnet
			n++
		}
		q.mu.Unlock()
		if n > 0 {
			return n, nil
		}
		select {
		case <-q.ready:
		case <-e.done:
		}
	}
}

// WriteBatch queues copies of the frames at the peer; it never blocks. n is
// always len(bufs) unless this end is closed.
func (e *PipeEnd) WriteBatch(bufs [][]byte, offset int) (int, error) {
	if err := checkBatch(bufs, offset, false); err != nil {
		return 0, err
	}
	if e.vnet != 0 {
		clearVnet(bufs, offset)
	}
	return e.write(bufs, nil, nil, offset)
}

// WriteBatchGather implements GatherWriter: each frame is copied from its
// parts into the peer's queue.
func (e *PipeEnd) WriteBatchGather(heads [][]byte, tails [][2][]byte, offset int) (int, error) {
	if err := checkTails(heads, tails); err != nil {
		return 0, err
	}
	if err := checkBatch(heads, offset, false); err != nil {
		return 0, err
	}
	if e.vnet != 0 {
		clearVnet(heads, offset)
	}
	return e.write(heads, nil, tails, offset)
}

// WriteBatchOffload is WriteBatch with each frame's metadata, passed to the
// peer with the frame (see Offloader).
func (e *PipeEnd) WriteBatchOffload(bufs [][]byte, meta []VnetHdr, offset int) (int, error) {
	if err := prepareOffload(bufs, meta, offset, e.offloads, e.vnet); err != nil {
		return 0, err
	}
	return e.write(bufs, meta, nil, offset)
}

// WriteBatchGatherOffload implements OffloadGatherWriter: each frame is
// copied from its parts and passed on with its metadata.
func (e *PipeEnd) WriteBatchGatherOffload(heads [][]byte, tails [][2][]byte, meta []VnetHdr, offset int) (int, error) {
	if err := checkTails(heads, tails); err != nil {
		return 0, err
	}
	if err := prepareOffload(heads, meta, offset, e.offloads, e.vnet); err != nil {
		return 0, err
	}
	return e.write(heads, meta, tails, offset)
}

// write queues the frames bufs[i][offset:], each followed by tails[i] when
// tails is not nil, for the peer.
func (e *PipeEnd) write(bufs [][]byte, meta []VnetHdr, tails [][2][]byte, offset int) (int, error) {
	if e.closed.Load() {
		return 0, fmt.Errorf("device: pipe: write: %w", net.ErrClosed)
	}
	q := &e.peer.rx
	queued := false
	q.mu.Lock()
	for i, b := range bufs {
		f := b[offset:]
		var tail [2][]byte
		if tails != nil {
			tail = tails[i]
		}
		size := len(f) + len(tail[0]) + len(tail[1])
		limit := e.maxFrame
		if meta != nil && meta[i].IsGSO() {
			limit = MaxOffloadFrameSize
		}
		if size == 0 || size > limit || q.closed || q.count == len(q.slots) {
			e.txDropped.Add(1)
			continue
		}
		f = b[offset-e.vnet:] // with the header, if any
		var s []byte
		if k := len(q.free); k > 0 {
			s, q.free = q.free[k-1], q.free[:k-1]
		}
		if cap(s) < e.vnet+size {
			s = make([]byte, max(e.vnet+e.maxFrame, e.vnet+size))
		}
		s = s[:cap(s)]
		n := copy(s, f)
		n += copy(s[n:], tail[0])
		n += copy(s[n:], tail[1])
		q.slots[(q.head+q.count)%len(q.slots)] = s[:n]
		q.count++
		queued = true
	}
	q.mu.Unlock()
	if queued {
		select {
		case q.ready <- struct{}{}:
		default: // a token is already waiting
		}
	}
	return len(bufs), nil
}
