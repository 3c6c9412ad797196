package device

// The wrappers pass their device's offloads on, so that wrapping a device
// does not hide them from the stack.

// Offloads is the wrapped device's (see OffloadsOf).
func (c *Counters) Offloads() Offloads { return OffloadsOf(c.dev) }

// ReadBatchOffload reads from the wrapped device with metadata and counts
// the frames.
func (c *Counters) ReadBatchOffload(bufs [][]byte, sizes []int, meta []VnetHdr, offset int) (int, error) {
	n, err := readOffload(c.dev, bufs, sizes, meta, offset)
	c.countRx(n, sizes, err)
	return n, err
}

// WriteBatchOffload writes to the wrapped device with metadata and counts
// the frames it took.
func (c *Counters) WriteBatchOffload(bufs [][]byte, meta []VnetHdr, offset int) (int, error) {
	n, err := writeOffload(c.dev, bufs, meta, offset)
	c.countTx(n, bufs, offset, err)
	return n, err
}

// Offloads is the wrapped device's (see OffloadsOf).
func (p *Pcap) Offloads() Offloads { return OffloadsOf(p.dev) }

// ReadBatchOffload reads from the wrapped device with metadata and records
// the frames as they came: a GSO frame as one record, a partial checksum as
// it is (capture tools call it bad, as they do on the kernel's side).
func (p *Pcap) ReadBatchOffload(bufs [][]byte, sizes []int, meta []VnetHdr, offset int) (int, error) {
	n, err := readOffload(p.dev, bufs, sizes, meta, offset)
	p.recordRx(n, bufs, sizes, offset)
	return n, err
}

// WriteBatchOffload writes to the wrapped device with metadata and records
// the frames it took, as ReadBatchOffload does.
func (p *Pcap) WriteBatchOffload(bufs [][]byte, meta []VnetHdr, offset int) (int, error) {
	n, err := writeOffload(p.dev, bufs, meta, offset)
	p.recordTx(n, bufs, offset)
	return n, err
}

var (
	_ Offloader = (*Counters)(nil)
	_ Offloader = (*Pcap)(nil)
	_ Offloader = (*PipeEnd)(nil)
)

// readOffload is d's ReadBatchOffload, or for a device without one its
// ReadBatch with zero metadata.
func readOffload(d Device, bufs [][]byte, sizes []int, meta []VnetHdr, offset int) (int, error) {
	if o, ok := d.(Offloader); ok {
		return o.ReadBatchOffload(bufs, sizes, meta, offset)
	}
	n, err := d.ReadBatch(bufs[:min(len(bufs), len(meta))], sizes, offset)
	clear(meta[:n])
	return n, err
}

// writeOffload is d's WriteBatchOffload, or for a device without one its
// WriteBatch, provided every frame's metadata is zero.
func writeOffload(d Device, bufs [][]byte, meta []VnetHdr, offset int) (int, error) {
	if o, ok := d.(Offloader); ok {
		return o.WriteBatchOffload(bufs, meta, offset)
	}
	if err := checkBatch(bufs, offset, false); err != nil {
		return 0, err
	}
	if err := checkMeta(bufs, meta, offset, 0); err != nil {
		return 0, err
	}
	return d.WriteBatch(bufs, offset)
}
