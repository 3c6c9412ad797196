package sim

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"

	"github.com/tapstack/tapstack/netstack"
	"github.com/tapstack/tapstack/sim/impair"
)

// Host is one simulated machine: a netstack.Stack on the World's clock,
// with a random source derived from the master seed and the host's name.
type Host struct {
	w     *World
	name  string
	index int
	stack *netstack.Stack
	nics  []*netstack.NIC
	addrs []netip.Addr // of each NIC
	// touched: a frame or timer reached the stack since the World last
	// sampled its connections (World.SampleTCP).
	touched bool
}

// AddHost adds a host with no interfaces; Link and Attach give it some.
func (w *World) AddHost(name string) (*Host, error) {
	if err := w.claim(name); err != nil {
		return nil, err
	}
	h := &Host{w: w, name: name, index: len(w.hosts)}
	r := rand.NewPCG(w.seedFor("host", name), w.seedFor("host2", name))
	h.stack = netstack.New(netstack.Config{Clock: w.Now, Rand: r, TCP: w.cfg.TCP})
	w.hosts = append(w.hosts, h)
	return h, nil
}

// claim reserves a name for a host or switch.
func (w *World) claim(name string) error {
	if w.closed {
		return ErrClosed
	}
	if name == "" {
		return fmt.Errorf("sim: empty name")
	}
	if w.names[name] {
		return fmt.Errorf("sim: name %q already in use", name)
	}
	w.names[name] = true
	return nil
}

// Name returns the host's name.
func (h *Host) Name() string { return h.name }

// Stack returns the host's stack. Call it only from the World's goroutine,
// and only its non-blocking calls: a blocking call waits for a World that
// is not running.
func (h *Host) Stack() *netstack.Stack { return h.stack }

// NICs returns the host's interfaces in the order they were attached.
func (h *Host) NICs() []*netstack.NIC { return h.nics }

// Addr returns the address of the host's first interface, or the zero
// Addr if it has none.
func (h *Host) Addr() netip.Addr {
	if len(h.addrs) == 0 {
		return netip.Addr{}
	}
	return h.addrs[0]
}

// Stats returns the stack's counters.
func (h *Host) Stats() netstack.Stats { return h.stack.Stats() }

// End is one host's end of a link or its attachment to a switch: the
// interface to create on it.
type End struct {
	Host *Host
	// Addr is the interface's address and connected prefix.
	Addr netip.Prefix
	// MTU is the interface's MTU; 0 means 1500.
	MTU int
}

func (e End) String() string {
	if e.Host == nil {
		return "<nil host>"
	}
	return e.Host.name
}

// mac derives a locally administered unicast MAC from the host's index and
// the NIC's: stable for a scenario, unique in a World.
func (h *Host) mac(nic int) net.HardwareAddr {
	i := h.index
	return net.HardwareAddr{0x02, 0x00, byte(i >> 16), byte(i >> 8), byte(i), byte(nic)}
}

// nicName is the name of the host's next interface.
func (h *Host) nicName() string { return fmt.Sprintf("%s.eth%d", h.name, len(h.nics)) }

// addNIC creates the interface of e whose outbound frames go into out.
func (w *World) addNIC(e End, out *Dir) (*netstack.NIC, error) {
	h := e.Host
	if len(h.nics) >= 256 {
		return nil, fmt.Errorf("sim: host %s: 256 interfaces already", h.name)
	}
	nic, err := h.stack.AddNIC(netstack.NICConfig{
		Name: h.nicName(), LinkAddr: h.mac(len(h.nics)), MTU: e.MTU, Addrs: []netip.Prefix{e.Addr},
	}, out)
	if err != nil {
		return nil, fmt.Errorf("sim: host %s: %w", h.name, err)
	}
	h.nics = append(h.nics, nic)
	h.addrs = append(h.addrs, e.Addr.Addr())
	return nic, nil
}

func (w *World) checkEnd(e End) error {
	if w.closed {
		return ErrClosed
	}
	if e.Host == nil || e.Host.w != w {
		return fmt.Errorf("sim: end %v: host not of this world", e)
	}
	if !e.Addr.IsValid() || !e.Addr.Addr().Is4() {
		return fmt.Errorf("sim: end %v: address %v is not an IPv4 prefix", e, e.Addr)
	}
	if e.MTU != 0 && (e.MTU < 68 || e.MTU > 65535) {
		return fmt.Errorf("sim: end %v: MTU %d outside 68..65535", e, e.MTU)
	}
	return nil
}

// validate checks impairments before anything is built, so that a
// refused link or attachment leaves nothing behind.
func validate(cfgs ...impair.Config) error {
	for _, c := range cfgs {
		if err := c.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// Link is a point-to-point Ethernet link between two hosts' interfaces.
type Link struct {
	A, B   *netstack.NIC
	AB, BA *Dir // the two directions, each with its own impairments
}

// Link joins two hosts with a point-to-point link: a new interface on each,
// frames from a to b impaired by ab and from b to a by ba.
func (w *World) Link(a, b End, ab, ba impair.Config) (*Link, error) {
	if err := w.checkEnd(a); err != nil {
		return nil, err
	}
	if err := w.checkEnd(b); err != nil {
		return nil, err
	}
	if err := validate(ab, ba); err != nil {
		return nil, err
	}
	na, nb := a.Host.nicName(), b.Host.nicName()
	if a.Host == b.Host {
		nb = fmt.Sprintf("%s.eth%d", b.Host.name, len(b.Host.nics)+1)
	}
	dab, err := w.newDir(na+">"+nb, ab)
	if err != nil {
		return nil, err
	}
	dba, err := w.newDir(nb+">"+na, ba)
	if err != nil {
		return nil, err
	}
	dab.fromHost, dba.fromHost = true, true
	l := &Link{AB: dab, BA: dba}
	// The receiving ends are filled in before any frame can arrive: frames
	// a NIC sends while it is being added (its announcement) wait in the
	// queue until the World runs.
	if l.A, err = w.addNIC(a, dab); err != nil {
		return nil, err
	}
	if l.B, err = w.addNIC(b, dba); err != nil {
		return nil, err
	}
	dab.to = &nicPort{h: b.Host, nic: l.B}
	dba.to = &nicPort{h: a.Host, nic: l.A}
	return l, nil
}

// nicPort delivers frames to a host's interface.
type nicPort struct {
	h   *Host
	nic *netstack.NIC
}

func (p *nicPort) receive(w *World, frame []byte) {
	w.one[0] = frame
	p.h.stack.Receive(w.now, p.nic, w.one[:])
	p.h.touched = true
	w.one[0] = nil
}

func (p *nicPort) isHost() bool { return true }
