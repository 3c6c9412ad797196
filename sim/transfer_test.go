package sim

import (
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tapstack/tapstack/sim/impair"
)

var transferOpts = TransferOptions{Seed: 9, Loss: 2 * impair.Percent, Reorder: impair.Percent, Dup: impair.Percent,
	Corrupt: impair.Percent, Delay: 10 * time.Millisecond, Bytes: 1 << 20, Conns: 3}

// RunTransfer over TCP: everything arrives, and the digest is a function
// of the options.
func TestTransferDeterminism(t *testing.T) {
	opts := transferOpts
	a := must(RunTransfer(opts))(t)
	b := must(RunTransfer(opts))(t)
	opts.Seed++
	c := must(RunTransfer(opts))(t)
	if a.Digest != b.Digest || a.Steps != b.Steps || a.Retransmits != b.Retransmits {
		t.Errorf("one seed, two runs:\n%v\n%v", a.String(), b.String())
	}
	if a.Digest == c.Digest {
		t.Errorf("seeds 9 and 10 gave the same digest %s", a.Digest)
	}
	if a.Transport != "tcp" || a.Delivered != 3<<20 || a.Sent != 3<<20 || a.Retransmits == 0 || a.Wire.Corrupted == 0 || a.BadChecksums == 0 {
		t.Errorf("2%% loss, 1%% corruption:\n%v", a.String())
	}
	for _, line := range []string{"transfer: 3 × 1048576 bytes over tcp: 3145728 sent, 3145728 delivered", "retransmissions: ", "\ntrace: " + a.Digest + "\n"} {
		if !strings.Contains(a.String(), line) {
			t.Errorf("summary lacks %q:\n%v", line, a.String())
		}
	}
	want := "tapstack sim --seed 9 --loss 2% --reorder 1% --dup 1% --corrupt 1% --delay 10ms --bytes 1048576 --conns 3"
	if got := a.Command(); got != want {
		t.Errorf("Command() = %q, want %q", got, want)
	}
}

func TestTransferUDP(t *testing.T) {
	opts := transferOpts
	opts.UDP = true
	a := must(RunTransfer(opts))(t)
	b := must(RunTransfer(opts))(t)
	if a.Digest != b.Digest {
		t.Errorf("one seed, two runs: %s and %s", a.Digest, b.Digest)
	}
	if a.Transport != "udp" || a.Delivered == 0 || a.Delivered >= a.Sent || a.Duplicates == 0 || !strings.Contains(a.String(), "datagrams: ") {
		t.Errorf("UDP flows at 2%% loss:\n%v", a.String())
	}
	if !strings.HasSuffix(a.Command(), " --udp") {
		t.Errorf("Command() = %q", a.Command())
	}
}

func TestTransferFailures(t *testing.T) {
	// A cut link: ARP goes unanswered, each dial fails with EHOSTUNREACH
	// after three requests a second apart, and after three redials the
	// transfer fails.
	opts := transferOpts
	opts.Partitions = []impair.Interval{{Start: 0, End: 1 << 62}}
	r, err := RunTransfer(opts)
	if !errors.Is(err, syscall.EHOSTUNREACH) || r.Delivered != 0 || r.SimTime != 12*time.Second {
		t.Errorf("a transfer through a cut link: %v\n%v", err, r.String())
	}
	// A run that needs more virtual time than it is given.
	opts = transferOpts
	opts.UDP, opts.Limit = true, 100*time.Millisecond
	if r, err = RunTransfer(opts); !errors.Is(err, ErrLimit) || r.SimTime != 100*time.Millisecond {
		t.Errorf("UDP flows of 720ms in 100ms: %v\n%v", err, r.String())
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
