package impair

import (
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/tapstack/tapstack/device"
	"github.com/tapstack/tapstack/mono"
)

// Limits on what one direction of a wrapped device holds: copies beyond
// them are dropped and counted (DeviceStats.TxOverflow, RxOverflow).
const (
	MaxHeld      = 4096     // copies waiting for their instant
	MaxHeldBytes = 32 << 20 // bytes of those copies
)

var errClosed = fmt.Errorf("impair: %w", net.ErrClosed)

// Device is a device.Device with a Link applied to each direction: tx to
// frames written, rx to frames read. Its clock is the real one, as instants
// since WrapDevice was called, so Config.Partitions are relative to that.
//
// Frames delivered at once and unmodified pass through: written from, or
// read into, the caller's buffers, with no copy. Only a delayed, duplicated
// or corrupted copy is copied, into a pooled buffer the Device owns (the
// caller's buffer is lent for the duration of the call only). Two
// exceptions on the read side: a frame that follows a dropped one in the
// same batch is moved down within the caller's buffers, and once a batch
// holds a frame that must wait, the frames after it wait in pooled buffers
// too, so that delivery order stays (instant, order read).
//
// Written copies that must wait are sent by one goroutine per Device when
// their time comes. Read copies wait in a queue that ReadBatch returns from
// when they are due; while any wait, ReadBatch reads the underlying device
// through a helper goroutine so that it can stop waiting for new frames
// when a held one falls due. Close stops both goroutines.
type Device struct {
	dev   device.Device
	start time.Time
	batch int // dev.BatchSize(), at least 1

	done      chan struct{} // closed by Close
	closeOnce sync.Once
	wg        sync.WaitGroup

	tx struct {
		// mu guards the fields below and serialises dev.WriteBatch between
		// WriteBatch and the sender goroutine; it is held while writing.
		mu          sync.Mutex
		link        *Link
		q           heldQueue
		pool        bufPool
		out         [][]byte // one write's worth of pooled frames
		overflow    uint64
		writeErrors uint64
		wake        chan struct{} // cap 1: an earlier instant was queued
	}

	rx struct {
		// mu guards link, q, pool and the counters. It is never held while
		// blocked: ReadBatch's caller is one goroutine at a time (the
		// device.Device contract), mu only orders it against Stats.
		mu       sync.Mutex
		link     *Link
		q        heldQueue
		pool     bufPool
		overflow uint64
		tooLong  uint64

		// The helper reader. While outstanding, rbufs and rsizes belong to
		// it; otherwise to ReadBatch. Only ReadBatch touches outstanding.
		outstanding bool
		rbufs       [][]byte
		rsizes      []int
		req         chan readReq // cap 1
		res         chan readRes // cap 1
		timer       *time.Timer
	}
}

type readReq struct{ n, offset int }

type readRes struct {
	n   int
	err error
	at  mono.Time
}

// WrapDevice returns dev with tx applied to frames written and rx to frames
// read. Each direction draws from its own stream of seed (DeriveSeed with
// StreamTx, StreamRx). Closing the result closes dev.
func WrapDevice(dev device.Device, tx, rx Config, seed uint64) (*Device, error) {
	txl, err := New(tx, DeriveSeed(seed, StreamTx))
	if err != nil {
		return nil, fmt.Errorf("tx: %w", err)
	}
	rxl, err := New(rx, DeriveSeed(seed, StreamRx))
	if err != nil {
		return nil, fmt.Errorf("rx: %w", err)
	}
	w := &Device{dev: dev, start: time.Now(), batch: max(dev.BatchSize(), 1), done: make(chan struct{})}
	w.tx.link = txl
	w.tx.out = make([][]byte, 0, w.batch)
	w.tx.wake = make(chan struct{}, 1)
	w.rx.link = rxl
	w.rx.rbufs = make([][]byte, w.batch)
	w.rx.rsizes = make([]int, w.batch)
	w.rx.req = make(chan readReq, 1)
	w.rx.res = make(chan readRes, 1)
	w.rx.timer = time.NewTimer(time.Hour)
	w.rx.timer.Stop()
	w.wg.Add(2)
	go w.sender()
	go w.reader()
	return w, nil
}

// checkOffset refuses an offset outside a buffer: API misuse, not a drop.
func checkOffset(bufs [][]byte, offset int) error {
	for i, b := range bufs {
		if offset < 0 || offset > len(b) {
			return fmt.Errorf("impair: %w: offset %d outside buffer %d of %d bytes", device.ErrInvalid, offset, i, len(b))
		}
	}
	return nil
}

func (w *Device) now() mono.Time { return mono.Time(time.Since(w.start)) }

func (w *Device) closed() bool {
	select {
	case <-w.done:
		return true
	default:
		return false
	}
}

// BatchSize, MTU and LinkAddr are the wrapped device's.
func (w *Device) BatchSize() int             { return w.dev.BatchSize() }
func (w *Device) MTU() int                   { return w.dev.MTU() }
func (w *Device) LinkAddr() net.HardwareAddr { return w.dev.LinkAddr() }

// WriteBatch applies the tx Link to each frame. Dropped frames count as
// written: a lossy wire swallows them silently.
func (w *Device) WriteBatch(bufs [][]byte, offset int) (int, error) {
	if w.closed() {
		return 0, errClosed
	}
	if err := checkOffset(bufs, offset); err != nil {
		return 0, err
	}
	now := w.now()
	tx := &w.tx
	tx.mu.Lock()
	defer tx.mu.Unlock()
	w.flushLocked(now) // anything already due goes before this batch
	run := 0           // bufs[run:i] pass through, written in one call
	for i, b := range bufs {
		frame := b[offset:]
		d := tx.link.Decide(now, len(frame))
		if d.Drop == Kept && d.Copies == 1 && d.Copy[0].At <= now && !d.Copy[0].Corrupted() {
			continue
		}
		if run < i {
			if n, err := w.dev.WriteBatch(bufs[run:i], offset); err != nil {
				return run + n, err
			}
		}
		run = i + 1
		for _, c := range d.Copy[:d.Copies] {
			switch {
			case c.At <= now && !c.Corrupted(): // a duplicate, out now
				if _, err := w.dev.WriteBatch(bufs[i:i+1], offset); err != nil {
					return i, err
				}
			case c.At <= now: // corrupted, not delayed: out now, in order
				buf := tx.pool.get(device.Headroom + len(frame))
				copy(buf[device.Headroom:], frame)
				Corrupt(buf[device.Headroom:], c.Bit)
				tx.out = append(tx.out[:0], buf)
				_, err := w.dev.WriteBatch(tx.out, device.Headroom)
				tx.out[0] = nil
				tx.pool.put(buf)
				if err != nil {
					return i, err
				}
			case tx.q.len() >= MaxHeld || tx.q.bytes+len(frame) > MaxHeldBytes:
				tx.overflow++
			default:
				buf := tx.pool.get(device.Headroom + len(frame))
				copy(buf[device.Headroom:], frame)
				Corrupt(buf[device.Headroom:], c.Bit)
				if tx.q.push(held{at: c.At, buf: buf, off: device.Headroom, n: len(frame)}) {
					select { // the sender's timer is set too late now
					case tx.wake <- struct{}{}:
					default:
					}
				}
			}
		}
	}
	if run < len(bufs) {
		if n, err := w.dev.WriteBatch(bufs[run:], offset); err != nil {
			return run + n, err
		}
	}
	return len(bufs), nil
}

// flushLocked writes the held copies due at now, in order, in batches. A
// failed write drops the copies it did not take (counted): they are not the
// current caller's frames, so there is nobody to return the error to.
func (w *Device) flushLocked(now mono.Time) {
	tx := &w.tx
	for tx.q.len() > 0 && tx.q.next() <= now {
		tx.out = tx.out[:0]
		for len(tx.out) < w.batch && tx.q.len() > 0 && tx.q.next() <= now {
			h := tx.q.pop()
			tx.out = append(tx.out, h.buf[:h.off+h.n])
		}
		n, err := w.dev.WriteBatch(tx.out, device.Headroom)
		if err != nil {
			tx.writeErrors += uint64(len(tx.out) - n)
		}
		for i, b := range tx.out {
			tx.pool.put(b)
			tx.out[i] = nil
		}
	}
}

// sender writes held copies when they fall due.
func (w *Device) sender() {
	defer w.wg.Done()
	t := time.NewTimer(time.Hour)
	t.Stop()
	defer t.Stop()
	for {
		w.tx.mu.Lock()
		w.flushLocked(w.now())
		next := w.tx.q.next()
		w.tx.mu.Unlock()
		if next != mono.Never {
			t.Reset(next.Sub(w.now()))
		}
		select {
		case <-t.C:
		case <-w.tx.wake:
		case <-w.done:
			return
		}
	}
}

// reader reads the underlying device on ReadBatch's behalf, into rbufs.
func (w *Device) reader() {
	defer w.wg.Done()
	for {
		select {
		case r := <-w.rx.req:
			n, err := w.dev.ReadBatch(w.rx.rbufs[:r.n], w.rx.rsizes[:r.n], r.offset)
			w.rx.res <- readRes{n, err, w.now()}
		case <-w.done:
			return
		}
	}
}

// ReadBatch applies the rx Link to frames read from the wrapped device and
// returns those due, blocking until there is at least one.
func (w *Device) ReadBatch(bufs [][]byte, sizes []int, offset int) (int, error) {
	rx := &w.rx
	if len(bufs) == 0 || len(sizes) < len(bufs) {
		return 0, fmt.Errorf("impair: %w: ReadBatch with %d buffers and %d sizes", device.ErrInvalid, len(bufs), len(sizes))
	}
	if err := checkOffset(bufs, offset); err != nil {
		return 0, err
	}
	for {
		if w.closed() {
			return 0, errClosed
		}
		now := w.now()
		rx.mu.Lock()
		n := w.popDueLocked(now, bufs, sizes, offset)
		next, empty := rx.q.next(), rx.q.len() == 0
		rx.mu.Unlock()
		if n > 0 {
			return n, nil
		}

		if empty && !rx.outstanding {
			// Nothing waits: read straight into the caller's buffers.
			m, err := w.dev.ReadBatch(bufs, sizes, offset)
			if m > 0 {
				rx.mu.Lock()
				n = w.admitDirectLocked(w.now(), bufs, sizes, offset, m)
				rx.mu.Unlock()
			}
			if n > 0 || err != nil {
				return n, err
			}
			continue
		}

		if !rx.outstanding {
			w.startRead(bufs, offset)
		}
		if next != mono.Never {
			rx.timer.Reset(next.Sub(w.now()))
		}
		select {
		case r := <-rx.res:
			rx.timer.Stop()
			rx.outstanding = false
			rx.mu.Lock()
			w.admitReadLocked(r, offset)
			n = w.popDueLocked(w.now(), bufs, sizes, offset)
			rx.mu.Unlock()
			if n > 0 {
				return n, nil
			}
			if r.err != nil {
				return 0, r.err
			}
		case <-rx.timer.C:
		case <-w.done:
			rx.timer.Stop()
			return 0, errClosed
		}
	}
}

// startRead hands the helper reader buffers as large as the caller's.
func (w *Device) startRead(bufs [][]byte, offset int) {
	rx := &w.rx
	size := 0
	for _, b := range bufs {
		size = max(size, len(b))
	}
	n := min(len(bufs), w.batch)
	rx.mu.Lock()
	for i := range n {
		if cap(rx.rbufs[i]) < size {
			rx.pool.put(rx.rbufs[i])
			rx.rbufs[i] = rx.pool.get(size)
		}
		rx.rbufs[i] = rx.rbufs[i][:size]
	}
	rx.mu.Unlock()
	rx.outstanding = true
	rx.req <- readReq{n, offset}
}

// admitReadLocked decides the frames the helper read and queues their
// copies. The first copy keeps the reader's buffer; a duplicate is copied
// from it before either is corrupted.
func (w *Device) admitReadLocked(r readRes, offset int) {
	rx := &w.rx
	for i := range r.n {
		n, src := rx.rsizes[i], rx.rbufs[i]
		if n < 0 || n > len(src)-offset {
			rx.tooLong++ // the wrapped device broke its contract
			continue
		}
		d := rx.link.Decide(r.at, n)
		var dup []byte
		if d.Copies == 2 {
			dup = rx.pool.get(offset + n)
			copy(dup[offset:], src[offset:offset+n])
		}
		for k, c := range d.Copy[:d.Copies] {
			buf := src
			if k == 1 {
				buf = dup
			}
			if rx.q.len() >= MaxHeld || rx.q.bytes+n > MaxHeldBytes {
				rx.overflow++
				if k == 1 {
					rx.pool.put(dup)
				}
				continue
			}
			if k == 0 {
				rx.rbufs[i] = nil // the queue owns it now
			}
			Corrupt(buf[offset:offset+n], c.Bit)
			rx.q.push(held{at: c.At, buf: buf, off: offset, n: n})
		}
	}
}

// admitDirectLocked decides the m frames read into the caller's buffers.
// Frames passing straight through stay (moved down over dropped ones);
// from the first frame that must wait, the rest are copied into the queue.
// It returns how many frames bufs holds for the caller now.
func (w *Device) admitDirectLocked(now mono.Time, bufs [][]byte, sizes []int, offset, m int) int {
	rx := &w.rx
	k := 0
	for i := 0; i < m; i++ {
		n := sizes[i]
		if n < 0 || n > len(bufs[i])-offset {
			rx.tooLong++ // the wrapped device broke its contract
			continue
		}
		d := rx.link.Decide(now, n)
		if d.Drop != Kept {
			continue
		}
		if d.Copies == 1 && d.Copy[0].At <= now && !d.Copy[0].Corrupted() && n <= len(bufs[k])-offset {
			if k != i {
				copy(bufs[k][offset:offset+n], bufs[i][offset:offset+n])
				sizes[k] = n
			}
			k++
			continue
		}
		// Queue this frame and every later one, so order holds.
		for j := i; j < m; j++ {
			n := sizes[j]
			if j > i {
				if n < 0 || n > len(bufs[j])-offset {
					rx.tooLong++
					continue
				}
				d = rx.link.Decide(now, n)
			}
			for _, c := range d.Copy[:d.Copies] {
				if rx.q.len() >= MaxHeld || rx.q.bytes+n > MaxHeldBytes {
					rx.overflow++
					continue
				}
				buf := rx.pool.get(offset + n)
				copy(buf[offset:], bufs[j][offset:offset+n])
				Corrupt(buf[offset:offset+n], c.Bit)
				rx.q.push(held{at: c.At, buf: buf, off: offset, n: n})
			}
		}
		return k + w.popDueLocked(now, bufs[k:], sizes[k:], offset)
	}
	return k
}

// popDueLocked copies the held frames due at now into bufs.
func (w *Device) popDueLocked(now mono.Time, bufs [][]byte, sizes []int, offset int) int {
	rx := &w.rx
	k := 0
	for k < len(bufs) && rx.q.len() > 0 && rx.q.next() <= now {
		h := rx.q.pop()
		if h.n > len(bufs[k])-offset {
			rx.tooLong++
		} else {
			sizes[k] = copy(bufs[k][offset:], h.buf[h.off:h.off+h.n])
			k++
		}
		rx.pool.put(h.buf)
	}
	return k
}

// DeviceStats are a wrapped device's counts.
type DeviceStats struct {
	Tx, Rx        Stats  // the Links' decisions
	TxHeld        int    // written copies waiting for their instant
	RxHeld        int    // read copies waiting for their instant
	TxOverflow    uint64 // written copies dropped: MaxHeld or MaxHeldBytes reached
	RxOverflow    uint64 // read copies dropped: MaxHeld or MaxHeldBytes reached
	TxWriteErrors uint64 // held copies the wrapped device failed to write
	RxTooLong     uint64 // read frames that did not fit the caller's buffer
}

// Stats returns the counts so far. It may be called concurrently with
// everything else.
func (w *Device) Stats() DeviceStats {
	var s DeviceStats
	w.tx.mu.Lock()
	s.Tx, s.TxHeld, s.TxOverflow, s.TxWriteErrors = w.tx.link.Stats(), w.tx.q.len(), w.tx.overflow, w.tx.writeErrors
	w.tx.mu.Unlock()
	w.rx.mu.Lock()
	s.Rx, s.RxHeld, s.RxOverflow, s.RxTooLong = w.rx.link.Stats(), w.rx.q.len(), w.rx.overflow, w.rx.tooLong
	w.rx.mu.Unlock()
	return s
}

// Close stops the Device's goroutines, drops the copies still held and
// closes the wrapped device, returning its error (a second Close returns
// an error wrapping net.ErrClosed). A blocked ReadBatch
// returns an error wrapping net.ErrClosed.
func (w *Device) Close() error {
	err := errClosed
	w.closeOnce.Do(func() {
		close(w.done)
		err = w.dev.Close() // unblocks the helper reader and a pending write
		w.wg.Wait()
		w.tx.mu.Lock()
		w.tx.q = heldQueue{}
		w.tx.mu.Unlock()
		w.rx.mu.Lock()
		w.rx.q = heldQueue{}
		w.rx.mu.Unlock()
	})
	return err
}
