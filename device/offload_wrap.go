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

// WriteBatchGather writes frames in parts through the wrapped device, or,
// when it does not take parts, one at a time made whole; it counts them.
func (c *Counters) WriteBatchGather(heads [][]byte, tails [][2][]byte, offset int) (int, error) {
	return c.writeGather(heads, tails, nil, offset)
}

// WriteBatchGatherOffload is WriteBatchGather with metadata.
func (c *Counters) WriteBatchGatherOffload(heads [][]byte, tails [][2][]byte, meta []VnetHdr, offset int) (int, error) {
	return c.writeGather(heads, tails, meta, offset)
}

// writeGather is both; meta is nil for frames without metadata.
func (c *Counters) writeGather(heads [][]byte, tails [][2][]byte, meta []VnetHdr, offset int) (n int, err error) {
	if err := checkTails(heads, tails); err != nil {
		return 0, err
	}
	og, okOffload := c.dev.(OffloadGatherWriter)
	g, ok := c.dev.(GatherWriter)
	switch {
	case meta != nil && okOffload:
		n, err = og.WriteBatchGatherOffload(heads, tails, meta, offset)
	case meta == nil && ok:
		n, err = g.WriteBatchGather(heads, tails, offset)
	default:
		for n < len(heads) {
			t := tails[n]
			c.whole = append(append(append(c.whole[:0], heads[n]...), t[0]...), t[1]...)
			c.one[0] = c.whole
			var k int
			if meta != nil {
				k, err = writeOffload(c.dev, c.one[:], meta[n:n+1], offset)
			} else {
				k, err = c.dev.WriteBatch(c.one[:], offset)
			}
			n += k
			if err != nil || k == 0 {
				break
			}
		}
		c.one[0] = nil
	}
	c.countTx(n, heads, offset, err)
	var b uint64
	for _, t := range tails[:n] {
		b += uint64(len(t[0]) + len(t[1]))
	}
	c.txBytes.Add(b)
	return n, err
}

var (
	_ GatherWriter        = (*Counters)(nil)
	_ OffloadGatherWriter = (*Counters)(nil)
	_ Offloader           = (*Counters)(nil)
	_ Offloader           = (*Pcap)(nil)
	_ Offloader           = (*PipeEnd)(nil)
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
