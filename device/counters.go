package device

import (
	"errors"
	"net"
	"sync/atomic"
)

// DropCounter is implemented by devices that drop frames themselves: every
// backend here, Pipe ends and the wrappers (which pass their device's on).
type DropCounter interface {
	// Drops returns the frames dropped since the device was opened: rx,
	// received but not delivered (too long for the buffer, or lost by the
	// kernel); tx, taken by WriteBatch but not sent (refused, or no room).
	Drops() (rx, tx uint64)
}

// drops returns d's drop counts, or zeros when it does not count them.
func drops(d Device) (rx, tx uint64) {
	if dc, ok := d.(DropCounter); ok {
		return dc.Drops()
	}
	return 0, 0
}

// Stats is a snapshot of a Counters device.
type Stats struct {
	RxFrames, RxBytes uint64 // frames delivered by ReadBatch, and their bytes
	TxFrames, TxBytes uint64 // frames taken by WriteBatch, and their bytes
	RxBatches         uint64 // ReadBatch calls that delivered frames
	TxBatches         uint64 // WriteBatch calls that took frames
	RxErrors          uint64 // ReadBatch calls that failed, other than after Close
	TxErrors          uint64 // WriteBatch calls that failed, other than after Close
	RxDropped         uint64 // the wrapped device's receive drops (DropCounter)
	TxDropped         uint64 // the wrapped device's transmit drops (DropCounter)
}

// Counters is a Device that counts what passes through the device it wraps.
// Counting is a few atomic adds per batch; Stats may be called from any
// goroutine at any time.
type Counters struct {
	dev Device
	// A frame made whole for a device that does not gather: the one
	// writer's scratch.
	whole []byte
	one   [1][]byte

	rxFrames, rxBytes, txFrames, txBytes atomic.Uint64
	rxBatches, txBatches                 atomic.Uint64
	rxErrors, txErrors                   atomic.Uint64
}

// NewCounters wraps dev.
func NewCounters(dev Device) *Counters { return &Counters{dev: dev} }

// Stats returns the counts so far. Each field is read atomically; the
// snapshot as a whole is not (a batch may be half counted).
func (c *Counters) Stats() Stats {
	rx, tx := drops(c.dev)
	return Stats{
		RxFrames: c.rxFrames.Load(), RxBytes: c.rxBytes.Load(),
		TxFrames: c.txFrames.Load(), TxBytes: c.txBytes.Load(),
		RxBatches: c.rxBatches.Load(), TxBatches: c.txBatches.Load(),
		RxErrors: c.rxErrors.Load(), TxErrors: c.txErrors.Load(),
		RxDropped: rx, TxDropped: tx,
	}
}

// ReadBatch reads from the wrapped device and counts the frames.
func (c *Counters) ReadBatch(bufs [][]byte, sizes []int, offset int) (int, error) {
	n, err := c.dev.ReadBatch(bufs, sizes, offset)
	c.countRx(n, sizes, err)
	return n, err
}

func (c *Counters) countRx(n int, sizes []int, err error) {
	if n > 0 {
		var b uint64
		for _, s := range sizes[:n] {
			b += uint64(s)
		}
		c.rxFrames.Add(uint64(n))
		c.rxBytes.Add(b)
		c.rxBatches.Add(1)
	}
	if err != nil && !errors.Is(err, net.ErrClosed) {
		c.rxErrors.Add(1)
	}
}

// WriteBatch writes to the wrapped device and counts the frames it took.
func (c *Counters) WriteBatch(bufs [][]byte, offset int) (int, error) {
	n, err := c.dev.WriteBatch(bufs, offset)
	c.countTx(n, bufs, offset, err)
	return n, err
}

func (c *Counters) countTx(n int, bufs [][]byte, offset int, err error) {
	if n > 0 {
		var b uint64
		for _, f := range bufs[:n] {
			b += uint64(len(f) - offset)
		}
		c.txFrames.Add(uint64(n))
		c.txBytes.Add(b)
		c.txBatches.Add(1)
	}
	if err != nil && !errors.Is(err, net.ErrClosed) {
		c.txErrors.Add(1)
	}
}

// Drops is the wrapped device's, when it counts drops.
func (c *Counters) Drops() (rx, tx uint64) { return drops(c.dev) }

// BatchSize is the wrapped device's.
func (c *Counters) BatchSize() int { return c.dev.BatchSize() }

// MTU is the wrapped device's.
func (c *Counters) MTU() int { return c.dev.MTU() }

// LinkAddr is the wrapped device's.
func (c *Counters) LinkAddr() net.HardwareAddr { return c.dev.LinkAddr() }

// Close closes the wrapped device.
func (c *Counters) Close() error { return c.dev.Close() }

// Unwrap returns the wrapped device.
func (c *Counters) Unwrap() Device { return c.dev }
