package sim

import (
	"net/netip"
	"testing"
	"time"

	"github.com/tapstack/tapstack/mono"
	"github.com/tapstack/tapstack/sim/impair"
)

// star is hosts h0..h(n-1) at 10.1.0.1.. on one switch.
type star struct {
	w     *World
	sw    *Switch
	hosts []*Host
	ports []*Port
	rx    []int // frames delivered to each host
}

func newStar(t *testing.T, n int, cfg SwitchConfig) *star {
	t.Helper()
	w := New(Config{Seed: 1})
	t.Cleanup(func() { w.Close() })
	s := &star{w: w, sw: must(w.AddSwitch("sw", cfg))(t), rx: make([]int, n)}
	link := impair.Config{Delay: 100 * time.Microsecond}
	for i := range n {
		h := must(w.AddHost(string(rune('a' + i))))(t)
		addr := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 1, 0, byte(i + 1)}), 24)
		s.ports = append(s.ports, must(w.Attach(s.sw, End{Host: h, Addr: addr}, link, link))(t))
		s.hosts = append(s.hosts, h)
	}
	w.Observe(func(e *WireEvent) {
		if e.Kind != Delivered {
			return
		}
		for i, p := range s.ports {
			if e.Dir == p.Down {
				s.rx[i]++
			}
		}
	})
	return s
}

func (s *star) mac(i int) [6]byte {
	var m [6]byte
	copy(m[:], s.hosts[i].mac(0))
	return m
}

func (s *star) resetRx() {
	for i := range s.rx {
		s.rx[i] = 0
	}
}

func TestSwitchLearnsAndFloods(t *testing.T) {
	s := newStar(t, 4, SwitchConfig{})
	// The hosts' announcements (broadcast) flood: each reaches the three
	// others, and the switch learns every address.
	if err := s.w.RunFor(time.Second); err != nil {
		t.Fatal(err)
	}
	for i := range s.hosts {
		if s.rx[i] != 3 {
			t.Errorf("host %d received %d announcements, want 3", i, s.rx[i])
		}
		if p, ok := s.sw.Lookup(s.mac(i)); !ok || p != s.ports[i] {
			t.Errorf("host %d's address not learned on its port", i)
		}
	}
	st := s.sw.Stats()
	if st.Learned != 4 || st.Flooded != 4 || st.Forwarded != 0 {
		t.Errorf("after announcements: %+v", st)
	}
	// Known unicast goes to one port only: of a ping from a to b, c and d
	// see only a's ARP request (a broadcast); the reply, the echo requests
	// and replies go to a's or b's port alone.
	s.resetRx()
	pg := must(s.w.StartPing(s.hosts[0], Ping{Dst: s.hosts[1].Addr(), Count: 3, Interval: 10 * time.Millisecond}))(t)
	if err := s.w.RunUntil(pg.Task().Done, mono.Time(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if pg.Received != 3 {
		t.Fatalf("ping through the switch: %d replies", pg.Received)
	}
	if s.rx[2] != 1 || s.rx[3] != 1 || s.rx[0] < 4 || s.rx[1] < 4 {
		t.Errorf("frames per host during a unicast ping: %v", s.rx)
	}
	if st := s.sw.Stats(); st.Forwarded < 7 || st.Flooded != 5 {
		t.Errorf("after ping: %+v", st)
	}
}

// inject puts a frame from src to dst on port in's uplink.
func (s *star) inject(in int, dst, src [6]byte) {
	f := make([]byte, 60)
	copy(f[0:], dst[:])
	copy(f[6:], src[:])
	f[12], f[13] = 0x88, 0xb5 // local experimental EtherType: ignored by the stacks
	s.ports[in].Up.Transmit([][]byte{f}, 0)
}

func TestSwitchUnknownAndFiltered(t *testing.T) {
	s := newStar(t, 3, SwitchConfig{})
	if err := s.w.RunFor(time.Second); err != nil {
		t.Fatal(err)
	}
	s.resetRx()
	stranger := [6]byte{0x02, 0xee, 0, 0, 0, 1}
	// An unknown destination floods; its source is learned on port 0.
	s.inject(0, [6]byte{0x02, 0xee, 0, 0, 0, 2}, stranger)
	// A multicast destination floods.
	s.inject(1, [6]byte{0x01, 0x00, 0x5e, 0, 0, 1}, s.mac(1))
	if err := s.w.RunFor(time.Second); err != nil {
		t.Fatal(err)
	}
	if s.rx[0] != 1 || s.rx[1] != 1 || s.rx[2] != 2 {
		t.Errorf("frames per host after two floods: %v", s.rx)
	}
	if p, ok := s.sw.Lookup(stranger); !ok || p.Index != 0 {
		t.Error("the stranger's address was not learned on port 0")
	}
	// A frame for an address on the port it came in on goes nowhere.
	s.resetRx()
	before := s.sw.Stats()
	s.inject(0, stranger, s.mac(0))
	// The stranger moves to port 2.
	s.inject(2, s.mac(1), stranger)
	if err := s.w.RunFor(time.Second); err != nil {
		t.Fatal(err)
	}
	st := s.sw.Stats()
	if st.Filtered != before.Filtered+1 || st.Moved != before.Moved+1 || s.rx[0]+s.rx[2] != 0 || s.rx[1] != 1 {
		t.Errorf("filter and move: %+v, frames per host %v", st, s.rx)
	}
	if p, _ := s.sw.Lookup(stranger); p == nil || p.Index != 2 {
		t.Error("the stranger's move was not learned")
	}
	// The stacks saw frames not meant for them and dropped them.
	if ns := s.hosts[2].Stats().Link; ns.UnknownEtherType+ns.NotForUs == 0 {
		t.Errorf("host c's link stats %+v", ns)
	}
}

func TestSwitchTableBound(t *testing.T) {
	s := newStar(t, 4, SwitchConfig{MaxEntries: 2})
	if err := s.w.RunFor(time.Second); err != nil {
		t.Fatal(err)
	}
	st := s.sw.Stats()
	if st.Learned != 2 || st.TableFull != 2 {
		t.Errorf("4 addresses into a table of 2: %+v", st)
	}
	// Traffic to an address the table could not hold still arrives:
	// flooded.
	pg := must(s.w.StartPing(s.hosts[0], Ping{Dst: s.hosts[3].Addr(), Count: 3, Interval: 10 * time.Millisecond}))(t)
	if err := s.w.RunUntil(pg.Task().Done, mono.Time(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if pg.Received != 3 || s.sw.Stats().Flooded <= st.Flooded {
		t.Errorf("ping to an unlearned host: %d replies, %+v", pg.Received, s.sw.Stats())
	}
}

func TestSwitchAging(t *testing.T) {
	s := newStar(t, 3, SwitchConfig{MaxEntries: 3, AgeTime: 10 * time.Second})
	if err := s.w.RunFor(time.Second); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.sw.Lookup(s.mac(1)); !ok {
		t.Fatal("not learned")
	}
	if err := s.w.RunFor(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.sw.Lookup(s.mac(1)); ok {
		t.Fatal("still known after twice the age time")
	}
	// A full table makes room by forgetting aged entries.
	s.inject(0, s.mac(1), [6]byte{0x02, 0xee, 0, 0, 0, 9})
	if err := s.w.RunFor(time.Second); err != nil {
		t.Fatal(err)
	}
	if st := s.sw.Stats(); st.Aged != 3 || st.TableFull != 0 || st.Learned != 4 {
		t.Errorf("after ageing: %+v", st)
	}
}

func TestSwitchRunt(t *testing.T) {
	s := newStar(t, 2, SwitchConfig{})
	s.ports[0].Up.Transmit([][]byte{make([]byte, 13)}, 0)
	if err := s.w.RunFor(time.Second); err != nil {
		t.Fatal(err)
	}
	if s.sw.Stats().Runts != 1 {
		t.Errorf("%+v", s.sw.Stats())
	}
}
