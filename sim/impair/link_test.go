package impair

import (
	"errors"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/tapstack/tapstack/mono"
)

const ms = mono.Time(time.Millisecond)

func mustNew(t testing.TB, cfg Config, seed uint64) *Link {
	t.Helper()
	l, err := New(cfg, seed)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// near fails unless got is within 5 standard deviations of n draws of
// probability p. Runs are deterministic, so this is a bound on the model,
// not a flaky statistical test: a seed that misses it is a bug report.
func near(t *testing.T, what string, got, n uint64, p Prob) {
	t.Helper()
	q := float64(p) / float64(Always)
	mean := float64(n) * q
	sd := math.Sqrt(float64(n) * q * (1 - q))
	if math.Abs(float64(got)-mean) > 5*sd+1 {
		t.Errorf("%s: %d of %d, want %.0f ± %.0f (p=%v)", what, got, n, mean, 5*sd, p)
	}
}

func checkInvariant(t *testing.T, s Stats) {
	t.Helper()
	if s.Frames != s.DroppedTotal()+s.Delivered-s.Duplicated || s.Dropped[Kept] != 0 {
		t.Fatalf("stats do not add up: %+v", s)
	}
}

func TestRates(t *testing.T) {
	const n = 100_000
	cfg := Config{
		Loss:      2 * Percent,
		Duplicate: 1 * Percent,
		Corrupt:   3 * Percent,
		Reorder:   5 * Percent,
	}
	for _, seed := range []uint64{1, 2, 0xdeadbeef} {
		l := mustNew(t, cfg, seed)
		var lost, dup, corrupt, held, copies uint64
		for i := range n {
			d := l.Decide(mono.Time(i)*ms, 1000)
			if d.Drop != Kept {
				if d.Drop != DropLoss || d.Copies != 0 {
					t.Fatalf("frame %d: %+v", i, d)
				}
				lost++
				continue
			}
			if d.Copies == 2 {
				dup++
			}
			for _, c := range d.Copy[:d.Copies] {
				copies++
				if c.Corrupted() {
					corrupt++
				}
				if c.Held {
					held++
				}
			}
		}
		near(t, "lost", lost, n, cfg.Loss)
		near(t, "duplicated", dup, n-lost, cfg.Duplicate)
		near(t, "corrupted", corrupt, copies, cfg.Corrupt)
		near(t, "held", held, copies, cfg.Reorder)
		s := l.Stats()
		checkInvariant(t, s)
		if s.Dropped[DropLoss] != lost || s.Duplicated != dup || s.Corrupted != corrupt || s.Reordered != held || s.Delivered != copies {
			t.Errorf("stats %+v disagree with decisions", s)
		}
	}
}

type arrival struct {
	at   mono.Time
	seq  int
	held bool
}

// deliverOrder sorts copies the way a caller delivers them: by instant,
// then by the order decided.
func deliverOrder(a []arrival) {
	slices.SortStableFunc(a, func(x, y arrival) int {
		switch {
		case x.at < y.at:
			return -1
		case x.at > y.at:
			return 1
		}
		return 0
	})
}

// TestReorder checks that held frames really are overtaken, by about
// ReorderDelay's worth of frames, and that nothing else is reordered even
// with jitter far larger than the gap between frames.
func TestReorder(t *testing.T) {
	const n = 100_000
	cfg := Config{Reorder: 2 * Percent, ReorderDelay: 5 * time.Millisecond,
		Delay: 20 * time.Millisecond, Jitter: 10 * time.Millisecond}
	l := mustNew(t, cfg, 7)
	var a []arrival
	for i := range n {
		d := l.Decide(mono.Time(i)*ms, 100) // one frame per ms
		for _, c := range d.Copy[:d.Copies] {
			if c.At < mono.Time(i)*ms+10*ms {
				t.Fatalf("frame %d delivered at %v, before now+Delay-Jitter", i, c.At)
			}
			a = append(a, arrival{c.At, i, c.Held})
		}
	}
	deliverOrder(a)
	var late, heldCount uint64
	maxSeqSeen := -1
	lastInOrder := -1
	var displacement int
	for _, x := range a {
		if x.held {
			heldCount++
		} else {
			if x.seq < lastInOrder {
				t.Fatalf("frame %d, not held, delivered after frame %d", x.seq, lastInOrder)
			}
			lastInOrder = x.seq
		}
		if x.seq < maxSeqSeen {
			late++
			displacement += maxSeqSeen - x.seq
		}
		maxSeqSeen = max(maxSeqSeen, x.seq)
	}
	near(t, "held", heldCount, n, cfg.Reorder)
	// A 5 ms hold at one frame per ms is overtaken unless jitter clamping
	// has already bunched the following frames behind it; almost all are.
	if late < heldCount*9/10 || late > heldCount {
		t.Errorf("%d of %d held frames arrived late", late, heldCount)
	}
	if avg := float64(displacement) / float64(late); avg < 3 || avg > 7 {
		t.Errorf("mean displacement %.1f frames, want about 5", avg)
	}
}

func TestJitterSpread(t *testing.T) {
	cfg := Config{Delay: 10 * time.Millisecond, Jitter: 5 * time.Millisecond}
	l := mustNew(t, cfg, 3)
	var sum, lo, hi time.Duration = 0, time.Hour, 0
	const n = 10_000
	for i := range n {
		now := mono.Time(i) * 100 * ms // sparse: clamping never applies
		d := l.Decide(now, 60)
		delay := d.Copy[0].At.Sub(now)
		sum += delay
		lo, hi = min(lo, delay), max(hi, delay)
	}
	if lo < 5*time.Millisecond || hi > 15*time.Millisecond ||
		lo > 5*time.Millisecond+10*time.Microsecond || hi < 15*time.Millisecond-10*time.Microsecond {
		t.Errorf("delays span [%v, %v], want [5ms, 15ms]", lo, hi)
	}
	if mean := sum / n; mean < 9900*time.Microsecond || mean > 10100*time.Microsecond {
		t.Errorf("mean delay %v, want 10ms", mean)
	}
}

func TestDefaultReorderDelay(t *testing.T) {
	for _, tc := range []struct{ delay, want time.Duration }{
		{0, MinReorderDelay}, {100 * time.Microsecond, MinReorderDelay}, {10 * time.Millisecond, 20 * time.Millisecond},
	} {
		l := mustNew(t, Config{Reorder: Always, Delay: tc.delay}, 1)
		if got := l.Config().ReorderDelay; got != tc.want {
			t.Errorf("Delay %v: ReorderDelay %v, want %v", tc.delay, got, tc.want)
		}
		d := l.Decide(ms, 10)
		if !d.Copy[0].Held || d.Copy[0].At != ms.Add(tc.delay+tc.want) {
			t.Errorf("Delay %v: %+v", tc.delay, d)
		}
	}
}

func TestGilbertElliott(t *testing.T) {
	const n = 400_000
	ge := GilbertElliott{P: 1 * Percent, R: 25 * Percent, LossBad: Always}
	for _, seed := range []uint64{11, 12} {
		l := mustNew(t, Config{Burst: ge}, seed)
		var lost, bursts, run uint64
		for i := range n {
			d := l.Decide(mono.Time(i), 100)
			if d.Drop == DropBurst {
				lost++
				run++
				continue
			}
			if d.Drop != Kept {
				t.Fatalf("unexpected %v", d.Drop)
			}
			if run > 0 {
				bursts++
				run = 0
			}
		}
		if mean := float64(lost) / float64(bursts); mean < 3.7 || mean > 4.3 {
			t.Errorf("seed %d: mean burst %.2f frames over %d bursts, want 1/R = 4", seed, mean, bursts)
		}
		// Stationary loss P/(P+R) = 1/26.
		if frac := float64(lost) / n; frac < 0.0385*0.9 || frac > 0.0385*1.1 {
			t.Errorf("seed %d: loss %.4f, want 0.0385", seed, frac)
		}
		checkInvariant(t, l.Stats())
	}

	// Loss in the good state alone is uniform loss.
	l := mustNew(t, Config{Burst: GilbertElliott{LossGood: 3 * Percent}}, 5)
	var lost uint64
	for i := range n {
		if l.Decide(mono.Time(i), 100).Drop == DropBurst {
			lost++
		}
	}
	near(t, "good-state loss", lost, n, 3*Percent)
}

func TestRateLimit(t *testing.T) {
	// 1 Mbit/s: a 125-byte frame takes exactly 1 ms. A 500-byte queue holds
	// the frame on the wire and three behind it.
	l := mustNew(t, Config{Rate: 1_000_000, Queue: 500, Delay: 10 * time.Millisecond}, 1)
	for i := range 6 {
		d := l.Decide(0, 125)
		if i < 4 {
			if want := mono.Time(i+1)*ms + 10*ms; d.Drop != Kept || d.Copy[0].At != want {
				t.Errorf("frame %d: %+v, want delivery at %v", i, d, want)
			}
		} else if d.Drop != DropQueue {
			t.Errorf("frame %d: %+v, want DropQueue", i, d)
		}
	}
	// At 2.5 ms the backlog is 1.5 ms (187.5 bytes): two more fit, the
	// third would make it 4.5 ms > 4 ms.
	for i, want := range []mono.Time{15 * ms, 16 * ms, -1} {
		d := l.Decide(ms*5/2, 125)
		if want < 0 {
			if d.Drop != DropQueue {
				t.Errorf("frame %d at 2.5ms: %+v, want DropQueue", i, d)
			}
		} else if d.Drop != Kept || d.Copy[0].At != want {
			t.Errorf("frame %d at 2.5ms: %+v, want delivery at %v", i, d, want)
		}
	}
	// Idle again: serialization starts at now.
	if d := l.Decide(100*ms, 250); d.Drop != Kept || d.Copy[0].At != 112*ms {
		t.Errorf("frame on an idle link: %+v, want delivery at 112ms", d)
	}
	// A frame larger than the queue still goes on an idle link.
	if d := l.Decide(200*ms, 1000); d.Drop != Kept || d.Copy[0].At != 218*ms {
		t.Errorf("big frame on an idle link: %+v, want delivery at 218ms", d)
	}
	if s := l.Stats(); s.Dropped[DropQueue] != 3 {
		t.Errorf("queue drops %d, want 3", s.Dropped[DropQueue])
	}

	// The sub-nanosecond remainder is carried: 3 Mbit/s, 1-byte frames take
	// 2666.67 ns each, and frame k leaves at floor(k*8000/3) ns exactly.
	l = mustNew(t, Config{Rate: 3_000_000, Queue: MaxQueue}, 1)
	for k := int64(1); k <= 1000; k++ {
		d := l.Decide(0, 1)
		if want := mono.Time(k * 8000 / 3); d.Copy[0].At != want {
			t.Fatalf("frame %d leaves at %d, want %d", k, d.Copy[0].At, want)
		}
	}

	// Default queue.
	if got := mustNew(t, Config{Rate: 1e9}, 1).Config().Queue; got != DefaultQueue {
		t.Errorf("default queue %d", got)
	}
}

func TestThroughputUnderRate(t *testing.T) {
	// Offered twice the rate, a rate-limited link delivers at the rate and
	// drops the rest at the queue.
	const rate = 10_000_000 // 10 Mbit/s: a 1250-byte frame every 1 ms
	l := mustNew(t, Config{Rate: rate, Queue: 12_500}, 1)
	var lastAt mono.Time
	var kept int
	for i := range 10_000 {
		d := l.Decide(mono.Time(i)*ms/2, 1250)
		if d.Drop == Kept {
			kept++
			lastAt = d.Copy[0].At
		}
	}
	if kept < 5_000 || kept > 5_011 {
		t.Errorf("kept %d of 10000 at twice the rate, want about 5000 (+ queue)", kept)
	}
	if lastAt > 5001*ms+10*ms {
		t.Errorf("last delivery at %v: faster than the rate", lastAt)
	}
}

func TestPartitions(t *testing.T) {
	parts := []Interval{{10 * ms, 20 * ms}, {30 * ms, 31 * ms}, {50 * ms, mono.Never}}
	in := func(t mono.Time) bool {
		for _, p := range parts {
			if p.Start <= t && t < p.End {
				return true
			}
		}
		return false
	}
	for _, delay := range []time.Duration{0, 5 * time.Millisecond} {
		l := mustNew(t, Config{Partitions: parts, Delay: delay}, 1)
		var dropped uint64
		for now := mono.Time(0); now < 60*ms; now += ms / 4 {
			d := l.Decide(now, 100)
			want := in(now) || in(now.Add(delay))
			if got := d.Drop == DropPartition; got != want {
				t.Errorf("delay %v, frame at %v: dropped %v, want %v", delay, now, got, want)
			}
			if d.Drop == DropPartition {
				dropped++
			}
		}
		if s := l.Stats(); s.Dropped[DropPartition] != dropped {
			t.Errorf("stats %d, counted %d", s.Dropped[DropPartition], dropped)
		}
	}

	// A duplicate that would arrive in a partition is lost alone.
	l := mustNew(t, Config{Partitions: []Interval{{10 * ms, 20 * ms}}, Duplicate: Always,
		Reorder: Always, ReorderDelay: 5 * time.Millisecond, Delay: time.Millisecond, Jitter: time.Millisecond}, 1)
	var single int
	for now := mono.Time(0); now < 8*ms; now += ms / 8 {
		d := l.Decide(now, 100)
		for _, c := range d.Copy[:d.Copies] {
			if c.At >= 10*ms && c.At < 20*ms {
				t.Fatalf("copy delivered in the partition: %+v", d)
			}
		}
		if d.Copies == 1 {
			single++
		}
	}
	if single == 0 {
		t.Error("no duplicate was lost to the partition")
	}
	checkInvariant(t, l.Stats())
}

func TestMTU(t *testing.T) {
	l := mustNew(t, Config{MTU: 1514}, 1)
	for _, tc := range []struct {
		n    int
		drop bool
	}{{0, false}, {-5, false}, {1514, false}, {1515, true}, {MaxFrameLen + 1, true}} {
		if got := l.Decide(0, tc.n).Drop == DropMTU; got != tc.drop {
			t.Errorf("len %d: dropped %v, want %v", tc.n, got, tc.drop)
		}
	}
	// Without an MTU only MaxFrameLen applies.
	l = mustNew(t, Config{}, 1)
	if l.Decide(0, MaxFrameLen).Drop != Kept || l.Decide(0, MaxFrameLen+1).Drop != DropMTU {
		t.Error("MaxFrameLen not enforced")
	}
}

func TestCorruptBits(t *testing.T) {
	for _, tc := range []struct {
		offset, from int
	}{{0, 14}, {20, 20}, {CorruptAnywhere, 0}} {
		l := mustNew(t, Config{Corrupt: Always, CorruptOffset: tc.offset}, 9)
		const n = 64
		hit := make([]bool, n*8)
		for range 20_000 {
			d := l.Decide(0, n)
			b := d.Copy[0].Bit
			if b < tc.from*8 || b >= n*8 {
				t.Fatalf("offset %d: bit %d outside [%d, %d)", tc.offset, b, tc.from*8, n*8)
			}
			hit[b] = true
		}
		for b := tc.from * 8; b < n*8; b++ {
			if !hit[b] {
				t.Errorf("offset %d: bit %d never chosen", tc.offset, b)
			}
		}
		// A frame no longer than the offset is left alone and not counted.
		before := l.Stats().Corrupted
		if d := l.Decide(0, tc.from); d.Copy[0].Corrupted() || l.Stats().Corrupted != before {
			t.Errorf("offset %d: frame of %d bytes corrupted: %+v", tc.offset, tc.from, d)
		}
	}
}

func TestCorruptHelper(t *testing.T) {
	f := []byte{0, 0, 0}
	Corrupt(f, 0)
	Corrupt(f, 15)
	Corrupt(f, 20)
	if f[0] != 0x80 || f[1] != 0x01 || f[2] != 0x08 {
		t.Fatalf("%x", f)
	}
	Corrupt(f, 20)
	Corrupt(f, -1)
	Corrupt(f, 24)
	Corrupt(nil, 0)
	if f[0] != 0x80 || f[1] != 0x01 || f[2] != 0 {
		t.Fatalf("%x", f)
	}
}

var everything = Config{
	Loss: 1 * Percent, Burst: GilbertElliott{P: Percent, R: 30 * Percent, LossBad: 50 * Percent, LossGood: 100 * PPM},
	Duplicate: 2 * Percent, Corrupt: 2 * Percent, Delay: 3 * time.Millisecond, Jitter: time.Millisecond,
	Reorder: 3 * Percent, Rate: 100_000_000, Queue: 30_000, MTU: 1500,
	Partitions: []Interval{{400 * ms, 450 * ms}},
}

// inputs is a fixed, irregular sequence of (now, length).
func inputs(n int) (nows []mono.Time, lens []int) {
	var s source
	s.seed(42, 0)
	now := mono.Time(0)
	for range n {
		now += mono.Time(s.below(uint64(200 * time.Microsecond)))
		nows = append(nows, now)
		lens = append(lens, 40+int(s.below(1500)))
	}
	return nows, lens
}

func decisions(t *testing.T, cfg Config, seed uint64, nows []mono.Time, lens []int) []Decision {
	l := mustNew(t, cfg, seed)
	out := make([]Decision, len(nows))
	for i := range nows {
		out[i] = l.Decide(nows[i], lens[i])
	}
	checkInvariant(t, l.Stats())
	return out
}

func TestDeterminism(t *testing.T) {
	nows, lens := inputs(20_000)
	a := decisions(t, everything, 1234, nows, lens)
	b := decisions(t, everything, 1234, nows, lens)
	if !slices.Equal(a, b) {
		t.Fatal("same seed, same inputs, different decisions")
	}
	for _, seed := range []uint64{1235, 0, DeriveSeed(1234, 0)} {
		c := decisions(t, everything, seed, nows, lens)
		var diff int
		for i := range a {
			if a[i] != c[i] {
				diff++
			}
		}
		if diff < len(a)/20 {
			t.Errorf("seed %d differs from seed 1234 in only %d of %d decisions", seed, diff, len(a))
		}
	}
}

// Switching on duplication does not change which frames are lost.
func TestStreamsIndependent(t *testing.T) {
	nows, lens := inputs(20_000)
	base := Config{Loss: 5 * Percent}
	more := base
	more.Duplicate, more.Corrupt, more.Reorder = 10*Percent, 10*Percent, 10*Percent
	a := decisions(t, base, 99, nows, lens)
	b := decisions(t, more, 99, nows, lens)
	for i := range a {
		if a[i].Drop != b[i].Drop {
			t.Fatalf("frame %d: %v without duplication, %v with", i, a[i].Drop, b[i].Drop)
		}
	}
}

func TestDeriveSeed(t *testing.T) {
	seen := map[uint64]bool{}
	for m := range uint64(100) {
		for s := range uint64(100) {
			seen[DeriveSeed(m, s)] = true
		}
	}
	if len(seen) != 100*100 {
		t.Errorf("%d distinct seeds of 10000", len(seen))
	}
	// SplitMix64's published first output for seed 0 (state advanced once).
	if got := DeriveSeed(0, 0); got != 0xe220a8397b1dcdaf {
		t.Errorf("DeriveSeed(0, 0) = %#x", got)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		field string
		cfg   Config
	}{
		{"Loss", Config{Loss: Always + 1}},
		{"Burst.LossGood", Config{Burst: GilbertElliott{LossGood: 2 * Always}}},
		{"Burst.R", Config{Burst: GilbertElliott{P: Percent, LossBad: Always}}},
		{"Burst.LossBad", Config{Burst: GilbertElliott{P: Percent, R: Percent}}},
		{"Delay", Config{Delay: -1}},
		{"Delay", Config{Delay: MaxDelay + 1}},
		{"Jitter", Config{Delay: time.Millisecond, Jitter: 2 * time.Millisecond}},
		{"ReorderDelay", Config{ReorderDelay: -time.Second}},
		{"CorruptOffset", Config{CorruptOffset: -2}},
		{"Rate", Config{Rate: MaxRate + 1}},
		{"Queue", Config{Rate: 1, Queue: -1}},
		{"Queue", Config{Rate: 1, Queue: MaxQueue + 1}},
		{"Queue", Config{Queue: 100}},
		{"MTU", Config{MTU: -1}},
		{"Partitions[0]", Config{Partitions: []Interval{{5, 5}}}},
		{"Partitions[1]", Config{Partitions: []Interval{{5, 10}, {9, 12}}}},
	} {
		err := tc.cfg.Validate()
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Field != tc.field {
			t.Errorf("%+v: error %v, want one naming %s", tc.cfg, err, tc.field)
			continue
		}
		if _, err := New(tc.cfg, 1); err == nil {
			t.Errorf("New accepted %+v", tc.cfg)
		}
	}
	if err := everything.Validate(); err != nil {
		t.Errorf("valid config refused: %v", err)
	}
}

func TestConfigString(t *testing.T) {
	if s := (Config{}).String(); s != "none" {
		t.Errorf("zero Config: %q", s)
	}
	got := Config{Loss: Percent, Delay: 10 * time.Millisecond, Jitter: 2 * time.Millisecond, Rate: 1e6, Queue: 500}.String()
	if want := "loss=1% delay=10ms±2ms rate=1000000bit/s queue=500B"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if s := Reason(200).String(); s != "Reason(200)" || DropQueue.String() != "queue" {
		t.Errorf("Reason strings: %q %q", s, DropQueue)
	}
}

// FuzzDecide drives a Link built from fuzzed settings with fuzzed inputs and
// checks what every decision promises.
func FuzzDecide(f *testing.F) {
	f.Add(uint64(1), uint32(10_000), uint32(0), uint32(0), uint64(0), uint16(0), []byte{1, 2, 3, 200, 100})
	f.Add(uint64(7), uint32(0), uint32(500_000), uint32(300_000), uint64(1e6), uint16(500), []byte{0, 0, 0, 255, 255, 9})
	f.Fuzz(func(t *testing.T, seed uint64, loss, dup, reorder uint32, rate uint64, queue uint16, in []byte) {
		cfg := Config{
			Loss: Prob(loss % 1_000_001), Duplicate: Prob(dup % 1_000_001), Reorder: Prob(reorder % 1_000_001),
			Corrupt: Prob((loss ^ dup) % 1_000_001), Rate: rate % (MaxRate + 1), Delay: time.Millisecond,
			Jitter: time.Duration(seed % uint64(time.Millisecond)), MTU: int(queue),
			Partitions: []Interval{{10 * ms, 20 * ms}},
		}
		if cfg.Rate != 0 {
			cfg.Queue = int(queue)
		}
		l, err := New(cfg, seed)
		if err != nil {
			t.Fatal(err)
		}
		now := mono.Time(0)
		for i := 0; i+1 < len(in); i += 2 {
			now += mono.Time(in[i]) * mono.Time(time.Microsecond) * 50
			n := int(in[i+1]) * 8
			d := l.Decide(now, n)
			if (d.Drop == Kept) != (d.Copies > 0) || d.Copies > 2 {
				t.Fatalf("inconsistent decision %+v", d)
			}
			for _, c := range d.Copy[:d.Copies] {
				if c.At < now || c.Bit >= 8*n || (c.At >= 10*ms && c.At < 20*ms) {
					t.Fatalf("bad copy %+v at now=%v n=%d", c, now, n)
				}
			}
		}
		checkInvariant(t, l.Stats())
	})
}

func BenchmarkDecide(b *testing.B) {
	for _, bc := range []struct {
		name string
		cfg  Config
	}{{"none", Config{}}, {"everything", everything}} {
		b.Run(bc.name, func(b *testing.B) {
			l := mustNew(b, bc.cfg, 1)
			b.ReportAllocs()
			var now mono.Time
			for b.Loop() {
				now += mono.Time(10 * time.Microsecond)
				d := l.Decide(now, 1000)
				if d.Copies > 2 {
					b.Fatal(d)
				}
			}
		})
	}
}
