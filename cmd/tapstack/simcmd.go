package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/tapstack/tapstack/sim"
	"github.com/tapstack/tapstack/sim/impair"
)

const simUsage = "usage: tapstack sim [--seed N] [--loss P] [--reorder P] [--dup P] [--corrupt P] [--delay DUR] [--cc reno|cubic] [--bytes N] [--conns N] [--pcap FILE] [--plot FILE.svg]\n" +
	"                    [--burst P,R] [--jitter DUR] [--rate BITS] [--queue BYTES] [--partition START+DUR]... [--udp [--interval DUR]] [--limit DUR]"

// cmdSim runs a transfer between two stacks on the simulated wire. It needs
// no privileges: nothing touches the host's network.
func cmdSim(args []string, stdout, stderr io.Writer) error {
	opts, files, err := parseSimArgs(args, stderr)
	if err != nil {
		return err
	}
	var capture bytes.Buffer
	if files.pcap != "" {
		opts.Pcap = &capture
	}
	res, runErr := sim.RunTransfer(opts)
	fmt.Fprint(stdout, res.String())
	if files.pcap != "" {
		if err := os.WriteFile(files.pcap, capture.Bytes(), 0o644); err != nil {
			return &setupError{fmt.Errorf("--pcap: %w", err)}
		}
	}
	if files.plot != "" {
		var svg bytes.Buffer
		if err := sim.WriteSVG(&svg, res.Flows); err != nil {
			return err
		}
		if err := os.WriteFile(files.plot, svg.Bytes(), 0o644); err != nil {
			return &setupError{fmt.Errorf("--plot: %w", err)}
		}
	}
	if runErr != nil {
		return fmt.Errorf("sim: %w (replay: %s)", runErr, res.Command())
	}
	return nil
}

type simFiles struct{ pcap, plot string }

// parseSimArgs reads sim's flags into the options Result.Command writes
// back: the two are each other's inverse.
func parseSimArgs(args []string, stderr io.Writer) (sim.TransferOptions, simFiles, error) {
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	var o sim.TransferOptions
	var files simFiles
	fs.Var(&o.Loss, "loss", "drop this share of frames in each direction, e.g. 1% or 0.01")
	fs.Var(&o.Reorder, "reorder", "hold back this share of frames so later ones overtake them")
	fs.Var(&o.Dup, "dup", "duplicate this share of frames")
	fs.Var(&o.Corrupt, "corrupt", "flip one bit in this share of frames (checksums must catch it)")
	fs.Func("burst", "burst loss, Gilbert-Elliott: P,R enters a burst with P and leaves it with R per frame, e.g. 1%,30%", func(s string) (err error) {
		o.Burst, err = sim.ParseBurst(s)
		return err
	})
	fs.DurationVar(&o.Delay, "delay", 0, "one-way delay, e.g. 20ms")
	fs.DurationVar(&o.Jitter, "jitter", 0, "spread the delay over ±this (at most --delay)")
	fs.Func("rate", "limit each direction to this many bits/s, e.g. 50M (suffixes k, M, G)", func(s string) (err error) {
		o.Rate, err = parseRate(s)
		return err
	})
	fs.IntVar(&o.Queue, "queue", 0, "bytes queued behind --rate before frames are dropped (default 64 KiB)")
	fs.Func("partition", "cut the link for DUR from START of simulated time, e.g. 2s+3s (repeatable, in order)", func(s string) error {
		iv, err := sim.ParseInterval(s)
		if err == nil {
			o.Partitions = append(o.Partitions, iv)
		}
		return err
	})
	fs.Uint64Var(&o.Seed, "seed", 1, "master seed: the same seed replays the run byte for byte")
	fs.StringVar(&o.CC, "cc", "", ccUsage)
	fs.Int64Var(&o.Bytes, "bytes", 1<<20, "bytes to transfer on each connection")
	fs.IntVar(&o.Conns, "conns", 1, "connections")
	fs.BoolVar(&o.UDP, "udp", false, "send sequenced UDP flows instead of TCP connections")
	fs.DurationVar(&o.UDPInterval, "interval", 0, "with --udp, one datagram per flow every DUR (default 1ms)")
	fs.DurationVar(&o.Limit, "limit", 0, "give up after this much simulated time (default 1h, or the UDP flows' time plus 10s)")
	fs.StringVar(&files.pcap, "pcap", "", "write every frame delivered to this pcap (virtual timestamps)")
	fs.StringVar(&files.plot, "plot", "", "draw a time-sequence graph of the TCP connections to this SVG file")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), simUsage)
		fs.PrintDefaults()
	}
	pos, err := parseArgs(fs, args, stderr)
	if err != nil {
		return o, files, err
	}
	if len(pos) > 0 {
		return o, files, usagef("sim takes no arguments, only flags (got %q)", pos[0])
	}
	if _, err := parseCC(o.CC); err != nil {
		return o, files, err
	}
	if o.Bytes <= 0 || o.Conns <= 0 || o.Conns > 1000 {
		return o, files, usagef("sim: --bytes must be > 0 and --conns within 1..1000")
	}
	if files.plot != "" && o.UDP {
		return o, files, usagef("sim: --plot draws TCP connections; drop --udp")
	}
	if o.UDPInterval < 0 || o.Limit < 0 || (o.UDPInterval != 0 && !o.UDP) {
		return o, files, usagef("sim: --interval (with --udp only) and --limit must be positive")
	}
	if err := o.Impairments().Validate(); err != nil {
		return o, files, usagef("sim: %v", strings.TrimPrefix(err.Error(), "impair: "))
	}
	return o, files, nil
}

// parseRate reads bits per second: a number with an optional k, M or G
// (powers of 1000), and an optional "bit/s" or "bps".
func parseRate(s string) (uint64, error) {
	t := strings.TrimSuffix(strings.TrimSuffix(s, "bit/s"), "bps")
	mult := uint64(1)
	if n := len(t); n > 0 {
		switch t[n-1] {
		case 'k', 'K':
			mult, t = 1e3, t[:n-1]
		case 'M':
			mult, t = 1e6, t[:n-1]
		case 'G':
			mult, t = 1e9, t[:n-1]
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v <= 0 || v*float64(mult) > impair.MaxRate {
		return 0, fmt.Errorf("rate %q: want bits/s above 0, e.g. 10M or 250000", s)
	}
	return uint64(v * float64(mult)), nil
}
