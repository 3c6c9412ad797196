package netstack

import (
	"errors"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tapstack/tapstack/device"
	"github.com/tapstack/tapstack/mono"
)

// driver is the real-time driver: one reader goroutine per attached device
// and one goroutine that fires timers on the real clock. It only moves
// frames and time into the core; all protocol work happens under the loop
// lock in the core's entry points.
type driver struct {
	s    *Stack
	kick chan struct{} // an earlier deadline was armed
	done chan struct{}
	wg   sync.WaitGroup // the timer goroutine and the device readers
	txwg sync.WaitGroup // the device writers, which stop first

	// Guarded by s.mu.
	armed mono.Time // the deadline the timer goroutine sleeps toward
	devs  []device.Device
}

func startDriver(s *Stack) *driver {
	d := &driver{s: s, kick: make(chan struct{}, 1), done: make(chan struct{}), armed: mono.Never}
	s.mu.gated = true
	d.wg.Add(1)
	go d.timerLoop()
	return d
}

func (d *driver) timerLoop() {
	defer d.wg.Done()
	t := time.NewTimer(time.Hour)
	t.Stop()
	for {
		d.s.mu.lockDriver()
		next := d.s.timers.next()
		d.armed = next
		d.s.mu.Unlock()
		var fire <-chan time.Time
		if next != mono.Never {
			t.Reset(next.Sub(d.s.Now()))
			fire = t.C
		}
		select {
		case <-fire:
			d.s.advanceNow()
		case <-d.kick:
			t.Stop()
		case <-d.done:
			t.Stop()
			return
		}
	}
}

// rearmLocked wakes the timer goroutine when next is earlier than what it
// sleeps toward.
func (d *driver) rearmLocked(next mono.Time) {
	if next < d.armed {
		d.armed = next
		select {
		case d.kick <- struct{}{}:
		default:
		}
	}
}

// stop ends every driver goroutine and closes the attached devices. The
// writers first send what steps queued before the stack closed, so output
// such as a FIN queued by a Close just before is not lost.
func (d *driver) stop() error {
	close(d.done)
	d.txwg.Wait()
	d.s.mu.Lock()
	devs := d.devs
	d.s.mu.Unlock()
	var errs []error
	for _, dev := range devs {
		errs = append(errs, dev.Close())
	}
	d.wg.Wait()
	return errors.Join(errs...)
}

// deviceLink writes a NIC's output to its device under the loop lock. It
// carries the frames a NIC sends while AttachDevice sets it up (the
// gratuitous ARP); after that the NIC's txQueue does.
type deviceLink struct {
	dev device.Device
	s   *Stack
}

func (l *deviceLink) Transmit(frames [][]byte, offset int) {
	l.s.stats.Link.TxErrors += writeAll(l.dev, frames, offset)
}

// writeAll writes frames to dev and returns how many it failed to take.
func writeAll(dev device.Device, frames [][]byte, offset int) uint64 {
	for len(frames) > 0 {
		n, err := dev.WriteBatch(frames, offset)
		if err != nil {
			return uint64(len(frames) - n)
		}
		frames = frames[n:]
	}
	return 0
}

// writeAllOffload is writeAll for a device with offloads: each frame's
// virtio-net header was left in its headroom by the layer that built it
// (zero for a plain frame).
func writeAllOffload(dev device.Offloader, frames [][]byte, meta *[]device.VnetHdr) uint64 {
	m := (*meta)[:0]
	for _, f := range frames {
		h, _ := device.DecodeVnetHdr(f[frameOffset-device.VnetHdrLen : frameOffset])
		m = append(m, h)
	}
	*meta = m
	for len(frames) > 0 {
		n, err := dev.WriteBatchOffload(frames, m, frameOffset)
		if err != nil {
			return uint64(len(frames) - n)
		}
		frames, m = frames[n:], m[n:]
	}
	return 0
}

// AttachDevice adds an interface backed by dev and starts reading from it.
// A zero MTU or nil LinkAddr in cfg is taken from the device. The device is
// closed by Stack.Close.
//
// The NIC's output is written outside the loop lock (see txQueue), in the
// order the steps that made it ran.
func (s *Stack) AttachDevice(dev device.Device, cfg NICConfig) (*NIC, error) {
	if s.drv == nil {
		return nil, errors.New("netstack: AttachDevice needs the real-time driver; a stack on a simulated clock uses AddNIC")
	}
	if cfg.MTU == 0 {
		cfg.MTU = dev.MTU()
	}
	if cfg.LinkAddr == nil {
		cfg.LinkAddr = dev.LinkAddr()
	}
	nic, err := s.AddNIC(cfg, &deviceLink{dev: dev, s: s})
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	nic.tx = newTxQueue(dev)
	nic.offloads = device.OffloadsOf(dev)
	// TCP payload goes from send buffers to the device uncopied when the
	// device writes frames in parts.
	if gw, ok := dev.(device.OffloadGatherWriter); ok && nic.offloads != 0 {
		nic.tx.gatherOffload, nic.gather = gw, true
	} else if gw, ok := dev.(device.GatherWriter); ok && nic.offloads == 0 {
		nic.tx.gather, nic.gather = gw, true
	}
	s.mu.addQueue(nic.tx)
	s.drv.devs = append(s.drv.devs, dev)
	s.drv.wg.Add(1)
	s.drv.txwg.Add(1)
	s.mu.Unlock()
	go nic.tx.run(s.drv.done, &s.drv.txwg)
	go s.drv.readLoop(dev, nic)
	return nic, nil
}

// loopLock is the loop lock, Stack.mu. A step that queues output on a
// device whose queue nobody is writing claims the queue, and Unlock, once
// the lock is released, writes it: no device write happens under the lock,
// yet a step's frames leave before those of any step that ran after it.
// On a simulated clock nothing is ever queued and the lock is a mutex.
type loopLock struct {
	sync.Mutex
	// gate queues the application's calls on a real-time stack, so that at
	// most one of them at a time contends for the mutex with the driver's
	// goroutines (a thousand goroutines writing to sockets must not queue
	// ahead of the device reader, whose frames the kernel drops when it
	// falls behind), and so that the one at the gate can wait for room in
	// the devices' queues before it makes more output.
	gate     sync.Mutex
	gated    bool                       // set before the stack is shared
	queues   atomic.Pointer[[]*txQueue] // the devices' queues, copied on write
	claimed  [2]*txQueue                // queues the step writes after unlocking
	nclaimed int
	woke     bool // a goroutine blocked on a waitList was woken (waitList.wakeLocked)
}

// Lock takes the lock for an application's call. On a real-time stack it
// first waits, at the gate, until every device queue is below txQueueMax.
func (l *loopLock) Lock() {
	if !l.gated {
		l.Mutex.Lock()
		return
	}
	l.gate.Lock()
	if qs := l.queues.Load(); qs != nil {
		for _, q := range *qs {
			if q.over.Load() {
				q.waitRoom()
			}
		}
	}
	l.Mutex.Lock()
	l.gate.Unlock()
}

// lockDriver takes the lock for a driver goroutine's step, ahead of
// application calls waiting at the gate.
func (l *loopLock) lockDriver() { l.Mutex.Lock() }

// Unlock releases the lock, then writes what the step claimed.
func (l *loopLock) Unlock() {
	if l.nclaimed == 0 {
		l.Mutex.Unlock()
		return
	}
	claimed, n := l.claimed, l.nclaimed
	l.claimed, l.nclaimed = [2]*txQueue{}, 0
	l.Mutex.Unlock()
	for _, q := range claimed[:n] {
		q.drain()
	}
}

// addQueue makes Lock wait for room in q too. The loop lock is held.
func (l *loopLock) addQueue(q *txQueue) {
	var qs []*txQueue
	if old := l.queues.Load(); old != nil {
		qs = append(qs, *old...)
	}
	qs = append(qs, q)
	l.queues.Store(&qs)
}

// holds reports whether the running step claimed q.
func (l *loopLock) holds(q *txQueue) bool {
	for _, c := range l.claimed[:l.nclaimed] {
		if c == q {
			return true
		}
	}
	return false
}

// txQueue carries one NIC's output from the steps that build it, under the
// loop lock, to the device, outside it. It is a FIFO with one writer at a
// time, so frames leave in the order steps queued them. The writer is the
// step that found the queue idle, after it unlocks; when more than its own
// output has piled up meanwhile it hands the rest to the NIC's writer
// goroutine, which writes until the queue is empty. So a lone step writes
// its own frames with no goroutine switch, and under load one goroutine
// writes while the others, the device reader first, go on with their steps.
//
// The queue is bounded, as a qdisc is: an application's call that finds
// more than txQueueMax bytes queued waits at the loop lock's gate, before
// it makes more output, until the writer has taken the queue below that;
// so a stack that makes output faster than its device takes it slows to
// the device's pace, and a frame waits in the queue some milliseconds at
// most, far less than a retransmission timeout. The driver's goroutines do
// not wait, so that the ACKs that free the queue keep coming in and timers
// keep firing; only at txQueueHard, which their output alone would have to
// reach, do their steps wait, holding the loop lock.
type txQueue struct {
	dev  device.Device
	wake chan struct{} // hands the queue to the writer goroutine

	mu      sync.Mutex
	cond    sync.Cond // frames were taken out, or state changed
	ring    []txFrame // queued frames, the oldest at head; len is a power of 2
	head    int
	n       int
	bytes   int    // frame bytes queued
	errors  uint64 // frames the device failed to take, not yet in Stats
	state   txState
	budget  int         // frames the claiming step writes before handing over
	waiters int         // goroutines waiting for room
	closed  bool        // the writer goroutine has returned: frames are dropped
	over    atomic.Bool // bytes >= txQueueMax; read without mu by Lock

	// gather (gatherOffload with offloads) is the device when the NIC
	// sends TCP payload from send buffers (NIC.gather); its frames are all
	// written in parts.
	gather        device.GatherWriter
	gatherOffload device.OffloadGatherWriter

	// The current writer's.
	batch  []txFrame
	views  [][]byte
	tails  [][2][]byte
	meta   []device.VnetHdr
	failed uint64
}

type txState uint8

const (
	txIdle    txState = iota // nothing queued, nobody writing
	txClaimed                // a step writes once it has unlocked
	txWriter                 // the writer goroutine writes
)

const (
	// txQueueMax is the frame bytes a NIC's queue holds before steps wait
	// for the writer: about 1400 full-size frames, some milliseconds of a
	// TAP device's pace.
	txQueueMax = 2 << 20
	// txQueueHard bounds the queue's memory whatever the number of
	// goroutines.
	txQueueHard = 16 * txQueueMax
	// txChunk is the most frames the writer takes at a time, so that room
	// frees in small steps and a waiting step waits little.
	txChunk = 64
)

func newTxQueue(dev device.Device) *txQueue {
	q := &txQueue{dev: dev, wake: make(chan struct{}, 1), ring: make([]txFrame, 256),
		batch: make([]txFrame, 0, txChunk), views: make([][]byte, 0, txChunk)}
	q.cond.L = &q.mu
	return q
}

// pushLocked queues frames, taking ownership of their buffers, and returns
// the device errors counted since the last push, for Stats. l is the loop
// lock, held.
func (q *txQueue) pushLocked(frames []txFrame, l *loopLock) (errs uint64) {
	q.mu.Lock()
	// The writer, unless it is this very step, makes progress without the
	// loop lock.
	if q.bytes >= txQueueHard && q.state != txIdle && !q.closed && !l.holds(q) {
		q.waiters++
		for q.bytes >= txQueueHard && q.state != txIdle && !q.closed {
			q.cond.Wait()
		}
		q.waiters--
	}
	if q.closed {
		q.mu.Unlock()
		for i := range frames {
			frames[i].release()
		}
		return 0
	}
	if q.n+len(frames) > len(q.ring) {
		q.growLocked(q.n + len(frames))
	}
	mask := len(q.ring) - 1
	for i := range frames {
		q.ring[(q.head+q.n)&mask] = frames[i]
		q.n++
		q.bytes += frames[i].size()
	}
	errs, q.errors = q.errors, 0
	if q.bytes >= txQueueMax {
		q.over.Store(true)
	}
	wake := false
	if q.state == txIdle {
		if l.nclaimed < len(l.claimed) {
			q.state = txClaimed
			q.budget = max(len(frames), txChunk)
			l.claimed[l.nclaimed] = q
			l.nclaimed++
		} else {
			q.state = txWriter
			wake = true
		}
	}
	q.mu.Unlock()
	if wake {
		q.handOver()
	}
	return errs
}

// waitRoom waits until the queue is below txQueueMax or idle.
func (q *txQueue) waitRoom() {
	q.mu.Lock()
	q.waiters++
	for q.bytes >= txQueueMax && q.state != txIdle && !q.closed {
		q.cond.Wait()
	}
	q.waiters--
	q.mu.Unlock()
}

// handOver wakes the writer goroutine, which owns the queue now. One hand
// over is outstanding at a time, so the token always fits.
func (q *txQueue) handOver() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// growLocked makes room for at least n frames.
func (q *txQueue) growLocked(n int) {
	size := len(q.ring)
	for size < n {
		size *= 2
	}
	r := make([]txFrame, size)
	mask := len(q.ring) - 1
	for i := 0; i < q.n; i++ {
		r[i] = q.ring[(q.head+i)&mask]
	}
	q.ring, q.head = r, 0
}

// drain is the claiming step's write, after it unlocked: its own frames,
// and what others queued meanwhile up to its budget; the writer goroutine
// gets the rest.
func (q *txQueue) drain() {
	written := 0
	for q.take() {
		written += len(q.batch)
		q.write()
		if written >= q.budget {
			q.mu.Lock()
			if q.n == 0 {
				q.state = txIdle
				q.cond.Broadcast()
				q.mu.Unlock()
				return
			}
			q.state = txWriter
			q.cond.Broadcast()
			q.mu.Unlock()
			q.handOver()
			return
		}
	}
}

// run is the writer goroutine: it writes what it is handed until done is
// closed, then what is left.
func (q *txQueue) run(done <-chan struct{}, wg *sync.WaitGroup) {
	defer wg.Done()
	for {
		select {
		case <-q.wake:
			for q.take() {
				q.write()
			}
		case <-done:
			q.mu.Lock()
			for q.state == txClaimed {
				q.cond.Wait()
			}
			q.state = txWriter
			q.mu.Unlock()
			for q.take() {
				q.write()
			}
			q.mu.Lock()
			q.closed = true
			q.cond.Broadcast()
			q.mu.Unlock()
			return
		}
	}
}

// take moves up to txChunk of the oldest frames into the writer's batch.
// With none left it makes the queue idle and returns false.
func (q *txQueue) take() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.errors += q.failed
	q.failed = 0
	k := min(q.n, txChunk)
	if k == 0 {
		q.state = txIdle
		q.over.Store(false)
		q.cond.Broadcast()
		return false
	}
	before := q.bytes
	mask := len(q.ring) - 1
	for range k {
		f := q.ring[q.head]
		q.ring[q.head] = txFrame{}
		q.head = (q.head + 1) & mask
		q.batch = append(q.batch, f)
		q.bytes -= f.size()
	}
	q.n -= k
	if q.bytes < txQueueMax {
		q.over.Store(false)
	}
	if q.waiters > 0 && (q.bytes < txQueueMax || before >= txQueueHard) {
		q.cond.Broadcast()
	}
	return true
}

// write writes the batch and returns its buffers to the pool.
func (q *txQueue) write() {
	if q.gather != nil || q.gatherOffload != nil {
		q.failed += q.writeGather()
		q.batch = q.batch[:0]
		return
	}
	views := framesOf(q.batch, q.views)
	if od, ok := q.dev.(device.Offloader); ok && od.Offloads() != 0 {
		q.failed += writeAllOffload(od, views, &q.meta)
	} else {
		q.failed += writeAll(q.dev, views, frameOffset)
	}
	releaseFrames(q.batch, views)
	q.batch = q.batch[:0]
	q.views = views[:0]
}

// writeGather writes the batch with WriteBatchGather, releases its frames
// and returns how many the device failed to take.
func (q *txQueue) writeGather() (failed uint64) {
	views, tails, meta := q.views[:0], q.tails[:0], q.meta[:0]
	for i := range q.batch {
		b := *q.batch[i].b
		views = append(views, b)
		tails = append(tails, q.batch[i].tail)
		if q.gatherOffload != nil {
			h, _ := device.DecodeVnetHdr(b[frameOffset-device.VnetHdrLen : frameOffset])
			meta = append(meta, h)
		}
	}
	for h, t, m := views, tails, meta; len(h) > 0; {
		var n int
		var err error
		if q.gatherOffload != nil {
			n, err = q.gatherOffload.WriteBatchGatherOffload(h, t, m, frameOffset)
			m = m[n:]
		} else {
			n, err = q.gather.WriteBatchGather(h, t, frameOffset)
		}
		if err != nil {
			failed = uint64(len(h) - n)
			break
		}
		h, t = h[n:], t[n:]
	}
	q.meta = meta[:0]
	releaseFrames(q.batch, views)
	clear(tails)
	q.views, q.tails = views[:0], tails[:0]
	return failed
}

// readLoop feeds frames from dev into the core until the device closes.
func (d *driver) readLoop(dev device.Device, nic *NIC) {
	defer d.wg.Done()
	batch := max(dev.BatchSize(), 1)
	size := frameOffset + ethHeaderRoom + nic.mtu
	// With offloads (nic.offloads, set before this goroutine starts) the
	// kernel hands over coalesced (GRO) frames up to 64 KiB, with virtio-net
	// headers that say when it vouches for a checksum (see NIC.rxCsumOK).
	var meta []device.VnetHdr
	od, _ := dev.(device.Offloader)
	if nic.offloads != 0 {
		size = frameOffset + device.MaxOffloadFrameSize
		meta = make([]device.VnetHdr, batch)
	}
	// The buffers are lent to the stack with their frames: one a connection
	// kept (see NIC.rxBuf) is replaced from the pool.
	owned := make([]*[]byte, batch)
	bufs := make([][]byte, batch)
	for i := range bufs {
		owned[i] = getBuf(size)
		bufs[i] = (*owned[i])[:size]
	}
	defer func() {
		for _, b := range owned {
			putBuf(b)
		}
	}()
	sizes := make([]int, batch)
	views := make([][]byte, batch)
	for {
		var n int
		var err error
		if meta != nil {
			n, err = od.ReadBatchOffload(bufs, sizes, meta, frameOffset)
		} else {
			n, err = dev.ReadBatch(bufs, sizes, frameOffset)
		}
		if err != nil {
			select {
			case <-d.done:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			d.s.mu.Lock()
			d.s.stats.Link.RxErrors++
			d.s.mu.Unlock()
			// A device that keeps failing must not spin a core.
			select {
			case <-d.done:
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		for i := 0; i < n; i++ {
			views[i] = bufs[i][frameOffset : frameOffset+sizes[i]]
		}
		var m []device.VnetHdr // nil without offloads
		if meta != nil {
			m = meta[:n]
		}
		if d.s.receiveNow(nic, views[:n], m, owned[:n]) && n < batch {
			// The step woke an application goroutine, and the device had no
			// more frames waiting. The woken goroutine sits in this thread's
			// run-next slot while the runtime wakes another thread to take it
			// (a futex, on a VM an inter-processor interrupt: tens of
			// microseconds now and then); yielding runs it here at once, with
			// the frames just read in this core's cache. After a full batch
			// more frames wait, and reading them comes first.
			// (docs/design.md, "Yield to the woken".)
			runtime.Gosched()
		}
		for i, b := range owned[:n] {
			if b == nil {
				owned[i] = getBuf(size)
				bufs[i] = (*owned[i])[:size]
			}
		}
	}
}

// ethHeaderRoom is the link header space a read buffer keeps beyond the MTU:
// an Ethernet header with one 802.1Q tag.
const ethHeaderRoom = 14 + 4
