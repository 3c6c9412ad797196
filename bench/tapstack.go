package main

import (
	"context"
	"errors"
	"net"
	"net/netip"

	"github.com/tapstack/tapstack/device"
	"github.com/tapstack/tapstack/netstack"
)

// tapstackPair is two real-time tapstack stacks joined by a wire.
type tapstackPair struct {
	a, b   *netstack.Stack
	ab, ba *lane
}

func newTapstackPair(cfg pairConfig) (Pair, error) {
	ab, ba, err := newWire(wireConfig{MTU: cfg.MTU, Impair: cfg.Impair, Seed: cfg.Seed})
	if err != nil {
		return nil, err
	}
	p := &tapstackPair{ab: ab, ba: ba}
	p.a = netstack.New(netstack.Config{TCP: cfg.TCP})
	p.b = netstack.New(netstack.Config{TCP: cfg.TCP})
	clients := make([]netip.Prefix, cfg.ClientAddrs)
	for i := range clients {
		clients[i] = netip.PrefixFrom(clientAddr(i), pairPrefixLen)
	}
	_, errA := p.a.AttachDevice(&wireDevice{mtu: cfg.MTU, tx: ab, rx: ba},
		netstack.NICConfig{Name: "a", MTU: cfg.MTU, Addrs: clients})
	_, errB := p.b.AttachDevice(&wireDevice{mtu: cfg.MTU, tx: ba, rx: ab},
		netstack.NICConfig{Name: "b", MTU: cfg.MTU, Addrs: []netip.Prefix{netip.PrefixFrom(serverAddr, pairPrefixLen)}})
	if err := errors.Join(errA, errB); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

func (p *tapstackPair) Listen(port uint16) (net.Listener, error) {
	ln, err := p.b.ListenTCP(netip.AddrPortFrom(serverAddr, port))
	if err != nil {
		return nil, err
	}
	ln.SetBacklog(listenBacklog)
	return &tapstackListener{ln}, nil
}

func (p *tapstackPair) Dial(from int, port uint16) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
	defer cancel()
	c, err := p.a.DialTCP(ctx, netip.AddrPortFrom(clientAddr(from), 0), netip.AddrPortFrom(serverAddr, port))
	if err != nil {
		return nil, err
	}
	if err := tapstackConnOptions(c); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// tapstackListener sets the common options on accepted connections.
type tapstackListener struct {
	*netstack.TCPListener
}

func (l *tapstackListener) Accept() (net.Conn, error) {
	c, err := l.AcceptTCP()
	if err != nil {
		return nil, err
	}
	if err := tapstackConnOptions(c); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// tapstackConnOptions sets Nagle off. tapstack's SACK, timestamps and
// window scaling are on by default (tcp.Config's No* switches are false),
// and its default buffer bounds are the common limits: it autotunes both
// buffers up to them, from 128 KiB, as Linux does. Setting a buffer would
// fix its size (SO_SNDBUF/SO_RCVBUF) and turn the autotuning off.
func tapstackConnOptions(c *netstack.TCPConn) error {
	return c.SetNoDelay(true)
}

func (p *tapstackPair) Wire() (ab, ba laneStats) { return p.ab.stats(), p.ba.stats() }

func (p *tapstackPair) Counters() map[string]uint64 { return tapstackCounters(p.a, p.b) }

// tapstackCounters sums a few TCP counters of stacks ss.
func tapstackCounters(ss ...*netstack.Stack) map[string]uint64 {
	m := map[string]uint64{}
	for _, s := range ss {
		t := s.Stats().TCP
		m["segments_sent"] += t.SegmentsSent
		m["retransmits"] += t.Retransmits
		m["fast_retransmits"] += t.FastRetransmits
		m["timeouts"] += t.Timeouts
		m["delayed_acks"] += t.DelayedACKs
		m["window_probes"] += t.WindowProbes
		m["segments_adopted"] += t.SegmentsAdopted
		m["listen_overflows"] += t.ListenOverflows
	}
	return m
}

func (p *tapstackPair) Close() error {
	return errors.Join(p.a.Close(), p.b.Close())
}

// wireDevice is a device.Device over a wire: an L3 device carrying bare IP
// packets, as a TUN device does.
type wireDevice struct {
	mtu    int
	tx, rx *lane
	bufs   [][]byte // ReadBatch's scratch; one reader at a time
}

var _ device.Device = (*wireDevice)(nil)

func (d *wireDevice) ReadBatch(bufs [][]byte, sizes []int, offset int) (int, error) {
	want := min(len(bufs), len(sizes), rxBatch)
	if cap(d.bufs) < want {
		d.bufs = make([][]byte, want)
	}
	got := d.bufs[:want]
	n, err := d.rx.read(got)
	if err != nil {
		return 0, err
	}
	k := 0
	for _, b := range got[:n] {
		if len(bufs[k])-offset < len(b) {
			continue // too long for the reader's buffer: dropped
		}
		sizes[k] = copy(bufs[k][offset:], b)
		k++
	}
	d.rx.release(got[:n])
	return k, nil
}

func (d *wireDevice) WriteBatch(bufs [][]byte, offset int) (int, error) {
	for _, b := range bufs {
		d.tx.write(b[offset:])
	}
	return len(bufs), nil
}

// WriteBatchGather implements device.GatherWriter: the wire copies each
// frame in from its parts, as it does gVisor's.
func (d *wireDevice) WriteBatchGather(heads [][]byte, tails [][2][]byte, offset int) (int, error) {
	for i, h := range heads {
		d.tx.write(h[offset:], tails[i][0], tails[i][1])
	}
	return len(heads), nil
}

func (d *wireDevice) BatchSize() int             { return rxBatch }
func (d *wireDevice) MTU() int                   { return d.mtu }
func (d *wireDevice) LinkAddr() net.HardwareAddr { return nil }
func (d *wireDevice) Close() error               { d.rx.close(); return nil }
