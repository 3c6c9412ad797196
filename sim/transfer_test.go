package sim

import (
	"strings"
	"testing"
	"time"

	"github.com/tapstack/tapstack/sim/impair"
)

// TestTransferDeterminism: RunTransfer's digest is a function of its
// options.
func TestTransferDeterminism(t *testing.T) {
	opts := TransferOptions{Seed: 9, Loss: 2 * impair.Percent, Reorder: impair.Percent, Dup: impair.Percent,
		Corrupt: impair.Percent, Delay: 10 * time.Millisecond, Bytes: 200_000, Conns: 3}
	a := must(RunTransfer(opts))(t)
	b := must(RunTransfer(opts))(t)
	opts.Seed++
	c := must(RunTransfer(opts))(t)
	if a.Digest != b.Digest || a.Delivered != b.Delivered || a.Steps != b.Steps {
		t.Errorf("one seed, two runs:\n%v\n%v", a.String(), b.String())
	}
	if a.Digest == c.Digest {
		t.Errorf("seeds 9 and 10 gave the same digest %s", a.Digest)
	}
	if a.Delivered == 0 || a.Delivered >= a.Sent || a.Wire.Corrupted == 0 {
		t.Errorf("2%% loss, 1%% corruption:\n%v", a.String())
	}
	want := "tapstack sim --seed 9 --loss 2% --reorder 1% --dup 1% --corrupt 1% --delay 10ms --bytes 200000 --conns 3"
	if got := a.Command(); got != want {
		t.Errorf("Command() = %q, want %q", got, want)
	}
}

func TestRunTransferStreams(t *testing.T) {
	r, err := RunTransfer(TransferOptions{Seed: 5, Bytes: 1 << 20, Conns: 2, Transport: newMemTransport()})
	if err != nil {
		t.Fatal(err)
	}
	if r.Delivered != 2<<20 || r.Sent != 2<<20 || r.Elapsed <= 0 || !strings.Contains(r.String(), "over sim.memTransport") {
		t.Errorf("result:\n%v", r.String())
	}
}
