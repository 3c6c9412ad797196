package sim

import (
	"fmt"
	"time"

	"github.com/tapstack/tapstack/mono"
	"github.com/tapstack/tapstack/netstack"
	"github.com/tapstack/tapstack/sim/impair"
)

// Switch defaults, as IEEE 802.1D bridges and small real switches have.
const (
	DefaultSwitchEntries = 1024
	DefaultSwitchAgeTime = 300 * time.Second
)

// SwitchConfig configures a learning switch.
type SwitchConfig struct {
	// MaxEntries bounds the MAC table; 0 means DefaultSwitchEntries. When it
	// is full an address is not learned (its frames keep being flooded).
	MaxEntries int
	// AgeTime forgets an address not seen as a source for this long; 0
	// means DefaultSwitchAgeTime. Ageing is lazy: an idle switch arms no
	// timer.
	AgeTime time.Duration
}

// Switch is a learning Ethernet switch joining hosts' interfaces: it
// learns each source address's port, forwards a frame to the port its
// destination was learned on, and floods broadcast, multicast and unknown
// destinations to every other port. Forwarding takes no time; each port's
// two directions carry their own impairments.
type Switch struct {
	w       *World
	name    string
	max     int
	age     time.Duration
	ports   []*Port
	table   map[[6]byte]int // address -> index in entries
	entries []macEntry      // a slice, so scans run in a fixed order
	stats   SwitchStats
}

type macEntry struct {
	mac  [6]byte
	port int
	seen mono.Time
}

// SwitchStats counts a switch's work.
type SwitchStats struct {
	Frames    uint64 // frames received
	Forwarded uint64 // sent to the one port their destination is on
	Flooded   uint64 // sent to every other port
	Filtered  uint64 // destination on the port they came from: not sent
	Runts     uint64 // shorter than an Ethernet header: dropped
	Learned   uint64 // addresses learned
	Moved     uint64 // addresses seen on a new port
	Aged      uint64 // addresses forgotten after AgeTime
	TableFull uint64 // addresses not learned: the table was full
}

// Port is one host interface attached to a switch.
type Port struct {
	Switch *Switch
	Index  int
	Host   *Host
	NIC    *netstack.NIC
	Up     *Dir // host -> switch
	Down   *Dir // switch -> host
}

// AddSwitch adds a switch with no ports.
func (w *World) AddSwitch(name string, cfg SwitchConfig) (*Switch, error) {
	if cfg.MaxEntries < 0 || cfg.AgeTime < 0 {
		return nil, fmt.Errorf("sim: switch %s: negative MaxEntries or AgeTime", name)
	}
	if err := w.claim(name); err != nil {
		return nil, err
	}
	if cfg.MaxEntries == 0 {
		cfg.MaxEntries = DefaultSwitchEntries
	}
	if cfg.AgeTime == 0 {
		cfg.AgeTime = DefaultSwitchAgeTime
	}
	sw := &Switch{w: w, name: name, max: cfg.MaxEntries, age: cfg.AgeTime, table: make(map[[6]byte]int)}
	w.switches = append(w.switches, sw)
	return sw, nil
}

// Name returns the switch's name.
func (sw *Switch) Name() string { return sw.name }

// Ports returns the switch's ports in the order they were attached.
func (sw *Switch) Ports() []*Port { return sw.ports }

// Stats returns the switch's counters.
func (sw *Switch) Stats() SwitchStats { return sw.stats }

// Lookup returns the port an address was learned on, if it is in the
// table and not aged out.
func (sw *Switch) Lookup(mac [6]byte) (*Port, bool) {
	i, ok := sw.table[mac]
	if !ok || sw.w.now.Sub(sw.entries[i].seen) >= sw.age {
		return nil, false
	}
	return sw.ports[sw.entries[i].port], true
}

// Attach gives e's host a new interface plugged into sw: frames from the
// host to the switch are impaired by up, from the switch to the host by
// down.
func (w *World) Attach(sw *Switch, e End, up, down impair.Config) (*Port, error) {
	if err := w.checkEnd(e); err != nil {
		return nil, err
	}
	if sw == nil || sw.w != w {
		return nil, fmt.Errorf("sim: end %v: switch not of this world", e)
	}
	if err := validate(up, down); err != nil {
		return nil, err
	}
	p := &Port{Switch: sw, Index: len(sw.ports), Host: e.Host}
	hn, pn := e.Host.nicName(), fmt.Sprintf("%s.p%d", sw.name, p.Index)
	var err error
	if p.Up, err = w.newDir(hn+">"+pn, up); err != nil {
		return nil, err
	}
	if p.Down, err = w.newDir(pn+">"+hn, down); err != nil {
		return nil, err
	}
	p.Up.to = &switchPort{sw: sw, index: p.Index}
	p.Up.fromHost = true
	sw.ports = append(sw.ports, p)
	if p.NIC, err = w.addNIC(e, p.Up); err != nil {
		return nil, err
	}
	p.Down.to = &nicPort{h: e.Host, nic: p.NIC}
	return p, nil
}

// switchPort delivers frames to a switch's port.
type switchPort struct {
	sw    *Switch
	index int
}

func (p *switchPort) receive(w *World, frame []byte) { p.sw.input(p.index, frame) }
func (p *switchPort) isHost() bool                   { return false }

// input switches one frame that arrived on port in.
func (sw *Switch) input(in int, frame []byte) {
	sw.stats.Frames++
	if len(frame) < 14 {
		sw.stats.Runts++
		return
	}
	var dst, src [6]byte
	copy(dst[:], frame[0:6])
	copy(src[:], frame[6:12])
	if src[0]&1 == 0 { // a group address is never a source
		sw.learn(src, in)
	}
	if dst[0]&1 == 0 { // unicast
		if p, ok := sw.Lookup(dst); ok {
			if p.Index == in {
				sw.stats.Filtered++
				return
			}
			sw.stats.Forwarded++
			sw.w.send(p.Down, frame)
			return
		}
	}
	sw.stats.Flooded++
	for _, p := range sw.ports {
		if p.Index != in {
			sw.w.send(p.Down, frame)
		}
	}
}

// learn records that mac was seen on port at now.
func (sw *Switch) learn(mac [6]byte, port int) {
	now := sw.w.now
	if i, ok := sw.table[mac]; ok {
		e := &sw.entries[i]
		if e.port != port {
			sw.stats.Moved++
			e.port = port
		}
		e.seen = now
		return
	}
	if len(sw.entries) >= sw.max {
		sw.expire()
		if len(sw.entries) >= sw.max {
			sw.stats.TableFull++
			return
		}
	}
	sw.table[mac] = len(sw.entries)
	sw.entries = append(sw.entries, macEntry{mac: mac, port: port, seen: now})
	sw.stats.Learned++
}

// expire forgets every entry older than the age time.
func (sw *Switch) expire() {
	now := sw.w.now
	for i := 0; i < len(sw.entries); {
		if now.Sub(sw.entries[i].seen) < sw.age {
			i++
			continue
		}
		sw.stats.Aged++
		delete(sw.table, sw.entries[i].mac)
		last := len(sw.entries) - 1
		if i != last {
			sw.entries[i] = sw.entries[last]
			sw.table[sw.entries[i].mac] = i
		}
		sw.entries = sw.entries[:last]
	}
}
