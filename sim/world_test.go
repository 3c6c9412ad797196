package sim

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"go.uber.org/goleak"

	"github.com/tapstack/tapstack/mono"
	"github.com/tapstack/tapstack/sim/impair"
)

// mixedRun is a scenario with every kind of wire, application and
// impairment: a lossy, reordering, duplicating, corrupting, jittery link
// between a and b carrying a UDP flow, requests and pings, and a switch
// joining c, d and e with lossy ports.
type mixedRun struct {
	digest           string
	delivered, drops []byte
	steps            uint64
	flow             FlowStats
	requests, pings  int
	leak             error // goroutines found during the run
}

func runMixed(t *testing.T, seed uint64) mixedRun {
	t.Helper()
	bad := impair.Config{Loss: 3 * impair.Percent, Reorder: 5 * impair.Percent, Duplicate: impair.Percent,
		Corrupt: impair.Percent, Delay: 5 * time.Millisecond, Jitter: 2 * time.Millisecond}
	var r mixedRun
	before := goleak.IgnoreCurrent()
	p := newPair(t, seed, bad, bad)
	w := p.w
	var delivered, drops bytes.Buffer
	if err := w.Capture(CaptureConfig{Delivered: &delivered, Dropped: &drops, Switches: true}); err != nil {
		t.Fatal(err)
	}
	sw := must(w.AddSwitch("sw", SwitchConfig{}))(t)
	lossy := impair.Config{Loss: 2 * impair.Percent, Delay: time.Millisecond}
	var hosts []*Host
	for i, name := range []string{"c", "d", "e"} {
		h := must(w.AddHost(name))(t)
		must(w.Attach(sw, End{Host: h, Addr: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 1, 0, byte(i + 1)}), 24)}, lossy, lossy))(t)
		hosts = append(hosts, h)
	}

	sink := must(w.ListenUDPSink(p.b, 9))(t)
	flow := UDPFlow{ID: 1, Dst: netip.AddrPortFrom(addrB, 9), Size: 700, Count: 300, Interval: 2 * time.Millisecond}
	if err := sink.Expect(flow); err != nil {
		t.Fatal(err)
	}
	must(w.SendUDP(p.a, flow))(t)
	must(w.ListenUDPEcho(p.b, 7))(t)
	q1 := must(w.StartRequests(p.a, Requests{ID: 2, Dst: netip.AddrPortFrom(addrB, 7), Count: 50}))(t)
	must(w.ListenUDPEcho(hosts[1], 7))(t)
	q2 := must(w.StartRequests(hosts[0], Requests{ID: 3, Dst: netip.AddrPortFrom(hosts[1].Addr(), 7), Count: 50, Size: 1200}))(t)
	pg := must(w.StartPing(hosts[2], Ping{Dst: hosts[0].Addr(), Count: 5, Interval: 100 * time.Millisecond}))(t)
	w.At(mono.Time(time.Second), func() { r.leak = goleak.Find(before) })

	done := func() bool { return q1.Task().Done() && q2.Task().Done() && pg.Task().Done() }
	if err := w.RunUntil(done, mono.Time(120*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := w.RunFor(time.Second); err != nil { // the flow's stragglers
		t.Fatal(err)
	}
	if err := w.CaptureErr(); err != nil {
		t.Fatal(err)
	}
	r.digest, r.delivered, r.drops, r.steps = w.Digest(), delivered.Bytes(), drops.Bytes(), w.Steps()
	r.flow = sink.Flow(1)
	r.requests = q1.Completed() + q2.Completed()
	r.pings = pg.Received
	return r
}

func TestDeterminism(t *testing.T) {
	a, b, c := runMixed(t, 1), runMixed(t, 1), runMixed(t, 2)
	if a.digest != b.digest {
		t.Errorf("seed 1 twice: digests %s and %s", a.digest, b.digest)
	}
	if !bytes.Equal(a.delivered, b.delivered) || !bytes.Equal(a.drops, b.drops) {
		t.Errorf("seed 1 twice: pcaps differ (%d/%d and %d/%d bytes)", len(a.delivered), len(a.drops), len(b.delivered), len(b.drops))
	}
	if a.steps != b.steps || a.flow != b.flow {
		t.Errorf("seed 1 twice: %d steps, %+v; then %d steps, %+v", a.steps, a.flow, b.steps, b.flow)
	}
	if a.digest == c.digest || bytes.Equal(a.delivered, c.delivered) {
		t.Errorf("seeds 1 and 2 gave the same trace %s", a.digest)
	}
	// The run did what it says: impairments happened and were survived.
	if a.requests != 100 || a.pings < 4 {
		t.Errorf("%d requests answered, %d pings: want 100 and at least 4 of 5", a.requests, a.pings)
	}
	if a.flow.Unique < 250 || a.flow.Unique == 300 || a.flow.Duplicates == 0 || a.flow.Reordered == 0 {
		t.Errorf("flow of 300 datagrams with 3%% loss, 1%% dup, 5%% reorder: %+v", a.flow)
	}
	// The simulator starts no goroutine.
	if a.leak != nil {
		t.Errorf("goroutines during the run: %v", a.leak)
	}
	checkPcap(t, a.delivered, a.flow.Received)
	checkPcap(t, a.drops, 1)
}

// checkPcap reads a capture: at least min frames, Ethernet, virtual
// timestamps from DefaultEpoch that never go backwards.
func checkPcap(t *testing.T, b []byte, min uint64) {
	t.Helper()
	r, err := pcapgo.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if r.LinkType() != layers.LinkTypeEthernet {
		t.Errorf("link type %v", r.LinkType())
	}
	var n uint64
	last := DefaultEpoch
	for {
		data, ci, err := r.ReadPacketData()
		if err != nil {
			break
		}
		n++
		if ci.Timestamp.Before(last) || ci.Timestamp.After(DefaultEpoch.Add(time.Hour)) {
			t.Fatalf("frame %d at %v after one at %v", n, ci.Timestamp, last)
		}
		last = ci.Timestamp
		pkt := gopacket.NewPacket(data, layers.LayerTypeEthernet, gopacket.NoCopy)
		if pkt.Layer(layers.LayerTypeEthernet) == nil {
			t.Fatalf("frame %d is not Ethernet", n)
		}
	}
	if n < min {
		t.Errorf("%d frames captured, want at least %d", n, min)
	}
}

// An hour with nothing to do costs only the timers that are armed: the
// neighbour entries age out, and then the clock jumps to the end.
func TestIdleHourCostsNothing(t *testing.T) {
	p := newPair(t, 1, impair.Config{Delay: time.Millisecond}, impair.Config{Delay: time.Millisecond})
	pg := must(p.w.StartPing(p.a, Ping{Dst: addrB, Count: 1}))(t)
	if err := p.w.RunUntil(pg.Task().Done, mono.Time(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if pg.Received != 1 {
		t.Fatalf("ping: %d replies", pg.Received)
	}
	before := p.w.Steps()
	if err := p.w.Run(mono.Time(time.Hour)); err != nil {
		t.Fatal(err)
	}
	// Each neighbour entry goes stale, then is forgotten: a few timer
	// expiries per host.
	if n := p.w.Steps() - before; n > 20 {
		t.Errorf("an idle hour took %d steps", n)
	}
	for _, h := range p.w.Hosts() {
		if d := h.Stack().NextDeadline(); d != mono.Never {
			t.Errorf("%s: a timer is still armed for %v after an idle hour", h.Name(), d)
		}
	}
	if p.w.Now() != mono.Time(time.Hour) {
		t.Errorf("clock at %v after Run(1h)", p.w.Now())
	}
	before = p.w.Steps()
	if err := p.w.RunFor(24 * time.Hour); err != nil {
		t.Fatal(err)
	}
	if n := p.w.Steps() - before; n != 0 {
		t.Errorf("a day with no timer armed took %d steps", n)
	}
}

func TestTimers(t *testing.T) {
	w := New(Config{})
	var got []string
	add := func(s string) func() { return func() { got = append(got, s+"@"+w.Now().String()) } }
	w.At(mono.Time(2*time.Second), add("b"))
	w.At(mono.Time(time.Second), add("a"))
	w.At(mono.Time(2*time.Second), add("c")) // ties fire in arming order
	stopped := w.At(mono.Time(time.Second), add("stopped"))
	moved := w.At(mono.Time(time.Second), add("moved"))
	if !stopped.Stop() || stopped.Stop() {
		t.Error("Stop of an armed timer, then of a stopped one")
	}
	moved.Reset(mono.Time(3 * time.Second))
	if moved.When() != mono.Time(3*time.Second) || stopped.When() != mono.Never {
		t.Errorf("When: %v, %v", moved.When(), stopped.When())
	}
	w.At(mono.Time(500*time.Millisecond), func() {
		w.After(0, add("now")) // at the current instant, after the rest due now
	})
	if err := w.Run(mono.Time(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	want := []string{"now@500ms", "a@1s", "b@2s", "c@2s", "moved@3s"}
	if len(got) != len(want) {
		t.Fatalf("fired %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("fired %v, want %v", got, want)
		}
	}
	if w.Steps() != 6 {
		t.Errorf("%d steps for 6 timer expiries", w.Steps())
	}
}

func TestTasks(t *testing.T) {
	w := New(Config{})
	var order []string
	var a, b *Task
	a = w.Spawn("a", func(tk *Task) {
		order = append(order, "a")
		switch tk.Runs() {
		case 1:
			b.Wake() // b is ready already: it runs once, later in this round
			tk.WakeAfter(time.Second)
		case 3:
			tk.Exit(nil)
		}
	})
	b = w.Spawn("b", func(tk *Task) {
		order = append(order, "b")
		if tk.Runs() == 1 {
			a.Wake() // a ran in this round: it runs again in the next
		} else {
			tk.Exit(nil)
		}
	})
	// Woken in reverse order, run in spawn order.
	w.At(mono.Time(time.Second/2), func() { b.Wake(); a.Wake() })
	if err := w.RunUntil(w.TasksDone, mono.Time(time.Minute)); err != nil {
		t.Fatal(err)
	}
	want := "a b a a b"
	if got := join(order); got != want || w.Now() != mono.Time(time.Second/2) {
		t.Errorf("ran %q, ending at %v; want %q at 500ms", got, w.Now(), want)
	}
	if a.Runs() != 3 || b.Runs() != 2 {
		t.Errorf("runs: a %d, b %d", a.Runs(), b.Runs())
	}
	if w.timers.next() != mono.Never {
		t.Error("an exited task's timer is still armed")
	}
}

func join(s []string) string {
	var b bytes.Buffer
	for i, x := range s {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(x)
	}
	return b.String()
}

func TestRunUntilLimit(t *testing.T) {
	w := New(Config{})
	w.Spawn("sleeper", func(tk *Task) { tk.WakeAfter(time.Hour) })
	err := w.RunUntil(w.TasksDone, mono.Time(time.Minute))
	if !errors.Is(err, ErrLimit) || w.Now() != mono.Time(time.Minute) {
		t.Errorf("RunUntil: %v at %v; want ErrLimit at 1m", err, w.Now())
	}
}

func TestTaskFailureStopsRun(t *testing.T) {
	w := New(Config{})
	cause := errors.New("boom")
	w.Spawn("failing", func(tk *Task) {
		if tk.Now() >= mono.Time(time.Second) {
			tk.Exit(cause)
			return
		}
		tk.WakeAfter(time.Second)
	})
	ran := false
	w.At(mono.Time(2*time.Second), func() { ran = true })
	err := w.Run(mono.Time(time.Minute))
	var f *Failure
	if !errors.As(err, &f) || !errors.Is(err, cause) || f.Who != "failing" || f.At != mono.Time(time.Second) {
		t.Fatalf("Run: %v", err)
	}
	if ran || w.Now() != mono.Time(time.Second) {
		t.Errorf("the run went on after the failure, to %v", w.Now())
	}
	if w.Run(mono.Time(time.Hour)) != err {
		t.Error("a failed World runs again")
	}
}

func TestLivelockIsReported(t *testing.T) {
	w := New(Config{})
	w.Spawn("spinner", func(tk *Task) { tk.Wake() })
	if err := w.Run(mono.Time(time.Second)); err == nil {
		t.Fatal("a task waking itself forever went unnoticed")
	}
	w = New(Config{})
	var tick func()
	tick = func() { w.After(0, tick) }
	w.After(0, tick)
	if err := w.Run(mono.Time(time.Second)); err == nil {
		t.Fatal("timers re-arming at the same instant forever went unnoticed")
	}
}

func TestClosedWorld(t *testing.T) {
	p := newPair(t, 1, impair.Config{}, impair.Config{})
	if err := p.w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.w.Run(mono.Time(time.Second)); !errors.Is(err, ErrClosed) {
		t.Errorf("Run after Close: %v", err)
	}
	if _, err := p.w.AddHost("c"); !errors.Is(err, ErrClosed) {
		t.Errorf("AddHost after Close: %v", err)
	}
}

func TestBuildErrors(t *testing.T) {
	w := New(Config{})
	a := must(w.AddHost("a"))(t)
	b := must(w.AddHost("b"))(t)
	if _, err := w.AddHost("a"); err == nil {
		t.Error("two hosts named a")
	}
	if _, err := w.AddSwitch("b", SwitchConfig{}); err == nil {
		t.Error("a switch named like a host")
	}
	other := must(New(Config{}).AddHost("x"))(t)
	for _, c := range []struct {
		name   string
		a, b   End
		ab, ba impair.Config
	}{
		{"foreign host", End{Host: other, Addr: prefixA}, End{Host: b, Addr: prefixB}, impair.Config{}, impair.Config{}},
		{"no address", End{Host: a}, End{Host: b, Addr: prefixB}, impair.Config{}, impair.Config{}},
		{"IPv6", End{Host: a, Addr: netip.MustParsePrefix("fd00::1/64")}, End{Host: b, Addr: prefixB}, impair.Config{}, impair.Config{}},
		{"MTU", End{Host: a, Addr: prefixA, MTU: 40}, End{Host: b, Addr: prefixB}, impair.Config{}, impair.Config{}},
		{"impairment", End{Host: a, Addr: prefixA}, End{Host: b, Addr: prefixB}, impair.Config{}, impair.Config{Jitter: time.Second}},
	} {
		if _, err := w.Link(c.a, c.b, c.ab, c.ba); err == nil {
			t.Errorf("%s: Link succeeded", c.name)
		}
	}
	if len(a.NICs()) != 0 || len(b.NICs()) != 0 {
		t.Error("a failed Link left an interface behind")
	}
}
