package sim

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/tapstack/tapstack/mono"
	"github.com/tapstack/tapstack/sim/impair"
)

func TestPattern(t *testing.T) {
	p, q := NewPattern(1, 1), NewPattern(1, 2)
	whole := make([]byte, 4096)
	p.Fill(whole, 1000)
	other := make([]byte, 4096)
	q.Fill(other, 1000)
	if bytes.Equal(whole, other) {
		t.Fatal("two flows' patterns are equal")
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 1000 {
		off := r.IntN(4000)
		n := r.IntN(4096 - off)
		b := make([]byte, n)
		p.Fill(b, uint64(1000+off))
		if !bytes.Equal(b, whole[off:off+n]) {
			t.Fatalf("Fill at %d of %d bytes differs from the whole", 1000+off, n)
		}
		if i := p.Check(b, uint64(1000+off)); i != -1 {
			t.Fatalf("Check of a good slice at %d: %d", 1000+off, i)
		}
		if n == 0 {
			continue
		}
		bad := r.IntN(n)
		b[bad] ^= 1 << r.IntN(8)
		if i := p.Check(b, uint64(1000+off)); i != bad {
			t.Fatalf("Check found byte %d, the flipped one is %d", i, bad)
		}
		b[bad] ^= 0xff
		if i := p.Check(b[bad:], uint64(1000+off+bad)); i != 0 {
			t.Fatalf("Check of a slice starting at a bad byte: %d", i)
		}
	}
}

func TestRequestsUnderLoss(t *testing.T) {
	cfg := impair.Config{Loss: 20 * impair.Percent, Delay: 5 * time.Millisecond}
	p := newPair(t, 3, cfg, cfg)
	echo := must(p.w.ListenUDPEcho(p.b, 7))(t)
	q := must(p.w.StartRequests(p.a, Requests{ID: 1, Dst: netip.AddrPortFrom(addrB, 7), Count: 200, Size: 1000}))(t)
	if err := p.w.RunUntil(q.Task().Done, mono.Time(10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if q.Completed() != 200 || q.Retransmits == 0 || echo.Echoed() < 200 {
		t.Errorf("%d completed, %d retransmits, %d echoed", q.Completed(), q.Retransmits, echo.Echoed())
	}
	// Each try is lost with 1-0.8² = 36%: about 64% of requests succeed
	// on the first try, and those give RTT samples of exactly 10ms.
	if q.RTT.Min != 10*time.Millisecond || q.RTT.N < 100 || q.RTT.N > 160 {
		t.Errorf("RTT %v", q.RTT)
	}
}

func TestRequestsGiveUp(t *testing.T) {
	cfg := impair.Config{Delay: time.Millisecond}
	p := newPair(t, 1, cfg, cfg)
	// No server: every request is answered by port unreachable, and given
	// up after MaxTries.
	q := must(p.w.StartRequests(p.a, Requests{ID: 1, Dst: netip.AddrPortFrom(addrB, 7), Count: 1, MaxTries: 3}))(t)
	err := p.w.RunUntil(q.Task().Done, mono.Time(time.Minute))
	var f *Failure
	if !errors.As(err, &f) || !strings.Contains(err.Error(), "unanswered after 3 tries") {
		t.Fatalf("RunUntil: %v", err)
	}
}

func TestSinkRejects(t *testing.T) {
	p := newPair(t, 1, impair.Config{}, impair.Config{})
	sink := must(p.w.ListenUDPSink(p.b, 9))(t)
	if err := sink.Expect(UDPFlow{ID: 1, Count: 10, Size: 100}); err != nil {
		t.Fatal(err)
	}
	// A flow the sink does not expect fails the run as an integrity error.
	s := must(p.w.SendUDP(p.a, UDPFlow{ID: 2, Dst: netip.AddrPortFrom(addrB, 9), Count: 1, Size: 100}))(t)
	err := p.w.RunUntil(s.Task().Done, mono.Time(time.Minute))
	if err == nil {
		err = p.w.RunFor(time.Second)
	}
	if !errors.Is(err, ErrIntegrity) {
		t.Fatalf("run: %v", err)
	}
}

// FuzzSinkCheck feeds arbitrary datagrams to a sink's check: it never
// panics, and accepts only the exact datagram of an expected flow.
func FuzzSinkCheck(f *testing.F) {
	flow := UDPFlow{ID: 3, Count: 4, Size: 40}
	good := make([]byte, 40)
	putAppHeader(good, magicFlow, 3, 2)
	NewPattern(7, 3).Fill(good[appHeaderLen:], 2*24)
	f.Add(good)
	f.Add(good[:appHeaderLen])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		k := &UDPSink{flows: map[uint32]*sinkFlow{3: {flow: flow, pat: NewPattern(7, 3), seen: make([]uint64, 1)}}}
		if err := k.check(0, b); err == nil {
			_, _, seq := appHeader(b)
			want := make([]byte, 40)
			putAppHeader(want, magicFlow, 3, seq)
			NewPattern(7, 3).Fill(want[appHeaderLen:], seq*24)
			if !bytes.Equal(b, want) {
				t.Fatalf("accepted %x", b)
			}
		} else if !errors.Is(err, ErrIntegrity) {
			t.Fatalf("error %v does not wrap ErrIntegrity", err)
		}
	})
}
