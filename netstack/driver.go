package netstack

import (
	"errors"
	"net"
	"sync"
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
	wg   sync.WaitGroup

	// Guarded by s.mu.
	armed mono.Time // the deadline the timer goroutine sleeps toward
	devs  []device.Device
}

func startDriver(s *Stack) *driver {
	d := &driver{s: s, kick: make(chan struct{}, 1), done: make(chan struct{}), armed: mono.Never}
	d.wg.Add(1)
	go d.timerLoop()
	return d
}

func (d *driver) timerLoop() {
	defer d.wg.Done()
	t := time.NewTimer(time.Hour)
	t.Stop()
	for {
		d.s.mu.Lock()
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

// stop ends every driver goroutine and closes the attached devices.
func (d *driver) stop() error {
	close(d.done)
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

// deviceLink writes a NIC's output to its device.
type deviceLink struct {
	dev device.Device
	s   *Stack
}

func (l *deviceLink) Transmit(frames [][]byte, offset int) {
	for len(frames) > 0 {
		n, err := l.dev.WriteBatch(frames, offset)
		if err != nil {
			l.s.stats.Link.TxErrors += uint64(len(frames) - n)
			return
		}
		frames = frames[n:]
	}
}

// AttachDevice adds an interface backed by dev and starts reading from it.
// A zero MTU or nil LinkAddr in cfg is taken from the device. The device is
// closed by Stack.Close.
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
	s.drv.devs = append(s.drv.devs, dev)
	s.drv.wg.Add(1)
	s.mu.Unlock()
	go s.drv.readLoop(dev, nic)
	return nic, nil
}

// readLoop feeds frames from dev into the core until the device closes.
func (d *driver) readLoop(dev device.Device, nic *NIC) {
	defer d.wg.Done()
	batch := max(dev.BatchSize(), 1)
	size := frameOffset + ethHeaderRoom + nic.mtu
	bufs := make([][]byte, batch)
	for i := range bufs {
		bufs[i] = make([]byte, size)
	}
	sizes := make([]int, batch)
	views := make([][]byte, batch)
	for {
		n, err := dev.ReadBatch(bufs, sizes, frameOffset)
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
		d.s.receiveNow(nic, views[:n])
	}
}

// ethHeaderRoom is the link header space a read buffer keeps beyond the MTU:
// an Ethernet header with one 802.1Q tag.
const ethHeaderRoom = 14 + 4
