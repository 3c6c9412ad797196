package sim

import (
	"flag"
	"fmt"
	"net/netip"
	"testing"

	"go.uber.org/goleak"

	"github.com/tapstack/tapstack/sim/impair"
)

// -seed N runs the seeded tests with that seed only: the replay of a
// failure they reported. -seeds N runs N seeds instead of each test's
// default: a longer search.
var (
	flagSeed  = flag.Uint64("seed", 0, "run seeded tests with this seed only")
	flagSeeds = flag.Int("seeds", 0, "run this many seeds in seeded tests")
	seedSet   bool
)

// The simulator starts no goroutine, so no test may leave one behind.
func TestMain(m *testing.M) {
	flag.Parse()
	flag.Visit(func(f *flag.Flag) { seedSet = seedSet || f.Name == "seed" })
	goleak.VerifyTestMain(m)
}

// reproduce is the command that replays one seed of a test.
func reproduce(test string, seed uint64) string {
	return fmt.Sprintf("go test ./sim -run '^%s$' -seed %d -v", test, seed)
}

// forSeeds runs f as a subtest for seeds first..first+n-1 (n is -seeds
// if given), or for -seed alone. A failing seed is reported with the command that replays it.
func forSeeds(t *testing.T, first uint64, n int, f func(t *testing.T, seed uint64)) {
	t.Helper()
	if *flagSeeds > 0 {
		n = *flagSeeds
	}
	seeds := make([]uint64, 0, n)
	if seedSet {
		seeds = append(seeds, *flagSeed)
	} else {
		for i := range n {
			seeds = append(seeds, first+uint64(i))
		}
	}
	name := t.Name()
	for _, seed := range seeds {
		ok := t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) { f(t, seed) })
		if !ok {
			t.Errorf("seed %d failed; replay it with:\n\t%s", seed, reproduce(name, seed))
		}
	}
}

var (
	prefixA = netip.MustParsePrefix("10.0.0.1/24")
	prefixB = netip.MustParsePrefix("10.0.0.2/24")
	addrB   = prefixB.Addr()
)

// pair is a World with hosts a (10.0.0.1) and b (10.0.0.2) on one link.
type pair struct {
	w    *World
	a, b *Host
	l    *Link
}

func newPair(t testing.TB, seed uint64, ab, ba impair.Config) *pair {
	t.Helper()
	w := New(Config{Seed: seed})
	t.Cleanup(func() { w.Close() })
	a := must(w.AddHost("a"))(t)
	b := must(w.AddHost("b"))(t)
	l := must(w.Link(End{Host: a, Addr: prefixA}, End{Host: b, Addr: prefixB}, ab, ba))(t)
	return &pair{w: w, a: a, b: b, l: l}
}

// must turns (v, err) into v, failing the test on err.
func must[T any](v T, err error) func(testing.TB) T {
	return func(t testing.TB) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}
