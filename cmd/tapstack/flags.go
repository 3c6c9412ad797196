package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/tapstack/tapstack/sim/impair"
	"github.com/tapstack/tapstack/tcp"
)

var errHelp = errors.New("help requested")

// parseArgs parses flags and positional arguments in any order, as users
// type them ("tapstack ping HOST --dev tap0"); the flag package alone stops
// at the first positional argument.
func parseArgs(fs *flag.FlagSet, args []string, stderr io.Writer) ([]string, error) {
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.SetOutput(stderr)
				fs.Usage()
				return nil, errHelp
			}
			return nil, usagef("%s: %v; run 'tapstack %s -h'", fs.Name(), err, fs.Name())
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// ifaceFlags are the flags that bring up an interface, shared by up, ping
// and get.
type ifaceFlags struct {
	dev     string
	addr    string
	gw      string
	mac     string
	mtu     int
	backend string
	pcap    string
	offload bool
	cc      string

	loss, reorder, dup, corrupt impair.Prob
	delay                       time.Duration
	seed                        uint64
}

func (f *ifaceFlags) register(fs *flag.FlagSet, impairments bool) {
	fs.StringVar(&f.dev, "dev", "", "TAP device (or, with --backend raw, network interface) to use")
	fs.StringVar(&f.addr, "addr", "", "the stack's address with prefix length, e.g. 10.0.0.2/24")
	fs.StringVar(&f.gw, "gw", "", "default gateway")
	fs.StringVar(&f.mac, "mac", "", "the stack's MAC address (default: derived from the device name)")
	fs.IntVar(&f.mtu, "mtu", 0, "MTU (default: the device's)")
	fs.StringVar(&f.backend, "backend", "tap", "tap (TAP device) or raw (AF_PACKET socket on an interface)")
	fs.StringVar(&f.pcap, "pcap", "", "write every frame sent and received to this pcap file")
	fs.BoolVar(&f.offload, "offload", false, "use virtio-net offloads: checksums and TSO done by the kernel, coalesced (GRO) frames received; not with impairments")
	fs.StringVar(&f.cc, "cc", "", ccUsage)
	if impairments {
		fs.Var(&f.loss, "loss", "drop this share of frames in each direction, e.g. 1% or 0.01")
		fs.Var(&f.reorder, "reorder", "hold back this share of frames so later ones overtake them")
		fs.Var(&f.dup, "dup", "duplicate this share of frames")
		fs.Var(&f.corrupt, "corrupt", "flip one bit in this share of frames")
		fs.DurationVar(&f.delay, "delay", 0, "delay every frame by this long, e.g. 20ms")
		fs.Uint64Var(&f.seed, "seed", 1, "seed of the impairments' random choices")
	}
}

// ifaceConfig is ifaceFlags checked and parsed.
type ifaceConfig struct {
	ifaceFlags
	prefix netip.Prefix
	gwAddr netip.Addr
	hw     net.HardwareAddr
	tcp    tcp.Config
}

const ccUsage = "congestion control of TCP connections: reno (NewReno, the default) or cubic"

// parseCC reads --cc.
func parseCC(name string) (func(mss int) tcp.CongestionControl, error) {
	cc, err := tcp.CongestionControlByName(name)
	if err != nil {
		return nil, usagef("--cc: %v", err)
	}
	return cc, nil
}

func (f *ifaceFlags) check() (ifaceConfig, error) {
	c := ifaceConfig{ifaceFlags: *f}
	if f.dev == "" {
		return c, usagef("--dev is required: the TAP device to attach to (create one with 'sudo ip tuntap add tap0 mode tap user $USER')")
	}
	if f.addr == "" {
		return c, usagef("--addr is required, e.g. --addr 10.0.0.2/24")
	}
	p, err := netip.ParsePrefix(f.addr)
	if err != nil || !p.Addr().Is4() {
		return c, usagef("--addr %q is not an IPv4 address with a prefix length, e.g. 10.0.0.2/24", f.addr)
	}
	c.prefix = p
	if c.tcp.NewCongestionControl, err = parseCC(f.cc); err != nil {
		return c, err
	}
	if f.gw != "" {
		g, err := netip.ParseAddr(f.gw)
		if err != nil || !g.Is4() {
			return c, usagef("--gw %q is not an IPv4 address", f.gw)
		}
		if !p.Contains(g) {
			return c, usagef("--gw %v is not on the network of --addr %v", g, p.Masked())
		}
		c.gwAddr = g
	}
	if f.mac != "" {
		hw, err := net.ParseMAC(f.mac)
		if err != nil || len(hw) != 6 || hw[0]&1 != 0 {
			return c, usagef("--mac %q is not a unicast Ethernet address, e.g. 02:00:00:00:00:02", f.mac)
		}
		c.hw = hw
	}
	if f.mtu != 0 && (f.mtu < 576 || f.mtu > 65535) {
		return c, usagef("--mtu %d is outside 576..65535", f.mtu)
	}
	if f.backend != "tap" && f.backend != "raw" {
		return c, usagef("--backend %q: use tap or raw", f.backend)
	}
	if f.delay < 0 || f.delay > impair.MaxDelay {
		return c, usagef("--delay %v is outside 0..%v", f.delay, impair.MaxDelay)
	}
	return c, nil
}

// parseServices parses "echo=7,discard=9,http=80".
func parseServices(s string) ([]service, error) {
	var out []service
	if s == "" {
		return nil, nil
	}
	seen := map[string]bool{}
	for _, item := range strings.Split(s, ",") {
		name, portStr, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok {
			return nil, usagef("--serve %q: each item is NAME=PORT, e.g. echo=7", item)
		}
		port, err := strconv.ParseUint(portStr, 10, 16)
		if err != nil || port == 0 {
			return nil, usagef("--serve %s: %q is not a port number", name, portStr)
		}
		if !knownService(name) {
			return nil, usagef("--serve: unknown service %q; known: %s", name, strings.Join(serviceNames(), ", "))
		}
		if seen[name] {
			return nil, usagef("--serve: %s given twice", name)
		}
		seen[name] = true
		out = append(out, service{name: name, port: uint16(port)})
	}
	return out, nil
}

func describeImpairments(f ifaceFlags) string {
	var parts []string
	add := func(name string, p impair.Prob) {
		if p != 0 {
			parts = append(parts, fmt.Sprintf("%s %v", name, p))
		}
	}
	add("loss", f.loss)
	add("reorder", f.reorder)
	add("dup", f.dup)
	add("corrupt", f.corrupt)
	if f.delay != 0 {
		parts = append(parts, "delay "+f.delay.String())
	}
	if len(parts) == 0 {
		return ""
	}
	return strings.Join(parts, ", ") + fmt.Sprintf(" (each direction, seed %d)", f.seed)
}
