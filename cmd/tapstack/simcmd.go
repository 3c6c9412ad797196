package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/tapstack/tapstack/sim"
)

// cmdSim runs a transfer between two stacks on the simulated wire. It needs
// no privileges: nothing touches the host's network.
func cmdSim(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	var f ifaceFlags
	fs.Var(&f.loss, "loss", "drop this share of frames in each direction, e.g. 1% or 0.01")
	fs.Var(&f.reorder, "reorder", "hold back this share of frames so later ones overtake them")
	fs.Var(&f.dup, "dup", "duplicate this share of frames")
	fs.Var(&f.corrupt, "corrupt", "flip one bit in this share of frames (checksums must catch it)")
	fs.DurationVar(&f.delay, "delay", 0, "one-way delay, e.g. 20ms")
	fs.Uint64Var(&f.seed, "seed", 1, "master seed: the same seed replays the run byte for byte")
	bytesPer := fs.Int64("bytes", 1<<20, "bytes to transfer on each connection")
	conns := fs.Int("conns", 1, "connections")
	udp := fs.Bool("udp", false, "send sequenced UDP flows instead of TCP connections")
	pcap := fs.String("pcap", "", "write every frame delivered to this pcap (virtual timestamps)")
	plot := fs.String("plot", "", "draw a time-sequence graph of the TCP connections to this SVG file")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: tapstack sim [--seed N] [--loss P] [--reorder P] [--dup P] [--corrupt P] [--delay DUR] [--bytes N] [--conns N] [--pcap FILE] [--plot FILE.svg]")
		fs.PrintDefaults()
	}
	pos, err := parseArgs(fs, args, stderr)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("sim takes no arguments, only flags (got %q)", pos[0])
	}
	if *bytesPer <= 0 || *conns <= 0 || *conns > 1000 {
		return usagef("sim: --bytes must be > 0 and --conns within 1..1000")
	}
	if *plot != "" && *udp {
		return usagef("sim: --plot draws TCP connections; drop --udp")
	}
	opts := sim.TransferOptions{Seed: f.seed, Loss: f.loss, Reorder: f.reorder, Dup: f.dup, Corrupt: f.corrupt,
		Delay: f.delay, Bytes: *bytesPer, Conns: *conns, UDP: *udp}
	var capture bytes.Buffer
	if *pcap != "" {
		opts.Pcap = &capture
	}
	res, runErr := sim.RunTransfer(opts)
	fmt.Fprint(stdout, res.String())
	if *pcap != "" {
		if err := os.WriteFile(*pcap, capture.Bytes(), 0o644); err != nil {
			return &setupError{fmt.Errorf("--pcap: %w", err)}
		}
	}
	if *plot != "" {
		var svg bytes.Buffer
		if err := sim.WriteSVG(&svg, res.Flows); err != nil {
			return err
		}
		if err := os.WriteFile(*plot, svg.Bytes(), 0o644); err != nil {
			return &setupError{fmt.Errorf("--plot: %w", err)}
		}
	}
	if runErr != nil {
		return fmt.Errorf("sim: %w (replay: %s)", runErr, res.Command())
	}
	return nil
}
