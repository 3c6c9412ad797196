package device

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// Link types of a pcap file (www.tcpdump.org/linktypes.html).
const (
	LinkTypeEthernet = 1   // Ethernet frames: L2 devices
	LinkTypeRaw      = 101 // bare IPv4 or IPv6 packets: L3 (TUN) devices
)

// DefaultSnapLen is the capture length of NewPcap and of NewPcapWriter given
// 0: larger than any frame a device here carries, so nothing is cut.
const DefaultSnapLen = 262144

// PcapWriter writes the classic libpcap file format with nanosecond
// timestamps (magic 0xa1b23c4d, little-endian: the same bytes on every host),
// readable by tcpdump, tshark, Wireshark and gopacket's pcapgo.
//
// It writes each record with two Write calls on w and allocates nothing per
// frame; give it a bufio.Writer for a file (and Flush that). It is not safe
// for concurrent use; the Pcap device wrapper serialises its calls.
type PcapWriter struct {
	w       io.Writer
	snapLen int
	rec     [16]byte
}

// NewPcapWriter writes the file header for linkType (LinkTypeEthernet or
// LinkTypeRaw) to w. Frames longer than snapLen are cut to it (their
// original length is recorded); snapLen 0 means DefaultSnapLen.
func NewPcapWriter(w io.Writer, linkType uint32, snapLen int) (*PcapWriter, error) {
	if snapLen <= 0 {
		snapLen = DefaultSnapLen
	}
	var h [24]byte
	binary.LittleEndian.PutUint32(h[0:], 0xa1b23c4d)
	binary.LittleEndian.PutUint16(h[4:], 2) // version 2.4
	binary.LittleEndian.PutUint16(h[6:], 4)
	// thiszone and sigfigs stay 0
	binary.LittleEndian.PutUint32(h[16:], uint32(snapLen))
	binary.LittleEndian.PutUint32(h[20:], linkType)
	if _, err := w.Write(h[:]); err != nil {
		return nil, err
	}
	return &PcapWriter{w: w, snapLen: snapLen}, nil
}

// WriteFrame appends one record: frame captured at ts. An instant before
// 1970 or after 2106 does not fit the format and is clamped.
func (p *PcapWriter) WriteFrame(ts time.Time, frame []byte) error {
	ns := ts.UnixNano()
	sec, nsec := ns/1e9, ns%1e9
	switch {
	case ns < 0:
		sec, nsec = 0, 0
	case sec > 1<<32-1:
		sec, nsec = 1<<32-1, 999999999
	}
	capLen := min(len(frame), p.snapLen)
	binary.LittleEndian.PutUint32(p.rec[0:], uint32(sec))
	binary.LittleEndian.PutUint32(p.rec[4:], uint32(nsec))
	binary.LittleEndian.PutUint32(p.rec[8:], uint32(capLen))
	binary.LittleEndian.PutUint32(p.rec[12:], uint32(len(frame)))
	if _, err := p.w.Write(p.rec[:]); err != nil {
		return err
	}
	_, err := p.w.Write(frame[:capLen])
	return err
}

// Pcap is a Device that records every frame read from and written to the
// device it wraps. A capture failure never fails the device's I/O: the first
// one stops the capture and is kept for Err.
type Pcap struct {
	dev   Device
	clock func() time.Time

	mu  sync.Mutex // guards pw and err: reads and writes may run at once
	pw  *PcapWriter
	w   io.Writer
	err error
}

// NewPcap wraps dev, writing a pcap stream to w: LinkTypeEthernet when dev
// has a LinkAddr, LinkTypeRaw otherwise. Each frame is stamped with clock()
// (time.Now when nil): the simulator passes its virtual clock. Frames read
// are stamped when ReadBatch returns, frames written when WriteBatch returns;
// frames a write took but dropped are recorded too.
func NewPcap(dev Device, w io.Writer, clock func() time.Time) (*Pcap, error) {
	lt := uint32(LinkTypeEthernet)
	if dev.LinkAddr() == nil {
		lt = LinkTypeRaw
	}
	pw, err := NewPcapWriter(w, lt, 0)
	if err != nil {
		return nil, err
	}
	if clock == nil {
		clock = time.Now
	}
	return &Pcap{dev: dev, clock: clock, pw: pw, w: w}, nil
}

// ReadBatch reads from the wrapped device and records the frames read.
func (p *Pcap) ReadBatch(bufs [][]byte, sizes []int, offset int) (int, error) {
	n, err := p.dev.ReadBatch(bufs, sizes, offset)
	p.recordRx(n, bufs, sizes, offset)
	return n, err
}

func (p *Pcap) recordRx(n int, bufs [][]byte, sizes []int, offset int) {
	if n > 0 {
		p.mu.Lock()
		ts := p.clock()
		for i := 0; i < n && p.err == nil; i++ {
			p.err = p.pw.WriteFrame(ts, bufs[i][offset:offset+sizes[i]])
		}
		p.mu.Unlock()
	}
}

// WriteBatch writes to the wrapped device and records the frames it took.
func (p *Pcap) WriteBatch(bufs [][]byte, offset int) (int, error) {
	n, err := p.dev.WriteBatch(bufs, offset)
	p.recordTx(n, bufs, offset)
	return n, err
}

func (p *Pcap) recordTx(n int, bufs [][]byte, offset int) {
	if n > 0 {
		p.mu.Lock()
		ts := p.clock()
		for i := 0; i < n && p.err == nil; i++ {
			p.err = p.pw.WriteFrame(ts, bufs[i][offset:])
		}
		p.mu.Unlock()
	}
}

// Err returns the error that stopped the capture, if any.
func (p *Pcap) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// Flush flushes the writer given to NewPcap if it has a Flush method (a
// bufio.Writer does), so a reader sees every frame recorded so far.
func (p *Pcap) Flush() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if f, ok := p.w.(interface{ Flush() error }); ok && p.err == nil {
		p.err = f.Flush()
	}
	return p.err
}

// Close closes the wrapped device and flushes the writer (see Flush); it
// does not close the writer. The error joins the device's and the
// capture's, if any.
func (p *Pcap) Close() error {
	err := p.dev.Close()
	return errors.Join(err, p.Flush())
}

// BatchSize is the wrapped device's.
func (p *Pcap) BatchSize() int { return p.dev.BatchSize() }

// MTU is the wrapped device's.
func (p *Pcap) MTU() int { return p.dev.MTU() }

// LinkAddr is the wrapped device's.
func (p *Pcap) LinkAddr() net.HardwareAddr { return p.dev.LinkAddr() }

// Drops is the wrapped device's, when it counts drops.
func (p *Pcap) Drops() (rx, tx uint64) { return drops(p.dev) }

// Unwrap returns the wrapped device.
func (p *Pcap) Unwrap() Device { return p.dev }
