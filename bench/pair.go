package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/tapstack/tapstack/sim/impair"
	"github.com/tapstack/tapstack/tcp"
)

// Pair is two stacks in one process joined by a wire: stack A dials, stack
// B listens. Every TCP workload is written once against it.
type Pair interface {
	// Listen opens a listener on B at port.
	Listen(port uint16) (net.Listener, error)
	// Dial connects from A, from its client address number from (0 ..
	// pairConfig.ClientAddrs-1) and an ephemeral port, to B at port. The
	// connection has Nagle's algorithm off.
	Dial(from int, port uint16) (net.Conn, error)
	// Wire reports the counters of both lanes.
	Wire() (ab, ba laneStats)
	// Counters reports a few TCP counters of both stacks, summed, for the
	// JSON record: they explain a slow run (retransmissions, timeouts).
	Counters() map[string]uint64
	// Close closes both stacks and the wire.
	Close() error
}

// pairConfig describes the pair a case needs.
type pairConfig struct {
	MTU    int
	Impair *impair.Config // nil: a perfect wire
	Seed   uint64
	// ClientAddrs is how many addresses A has, so that more connections
	// than one address has ephemeral ports can be opened (idle).
	ClientAddrs int
	// DefaultBuffers leaves gVisor's socket buffer sizes at its own
	// defaults instead of the common limits below (idle); tapstack's
	// defaults are those limits.
	DefaultBuffers bool
	// TCP is tapstack's TCP settings (netstack.Config.TCP); gVisor
	// ignores it.
	TCP tcp.Config
}

// Buffer limits both stacks use unless a case asks for defaults:
// tapstack's bounds (tcp.Config: Linux's tcp_wmem and tcp_rmem maxima),
// which it autotunes up to, given to gVisor as both its default and its
// maximum.
const (
	sendBufMax = 4 << 20
	recvBufMax = 6 << 20
	bufMin     = 4 << 10 // gVisor's floor, for SO_SNDBUF/SO_RCVBUF calls
)

// Addresses: the benchmarking range of RFC 2544 (198.18.0.0/15), never
// routed. Only the two in-process stacks ever see them.
var (
	pairPrefixLen = 15
	serverAddr    = netip.MustParseAddr("198.19.0.1")
)

// clientAddr returns A's address number i.
func clientAddr(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{198, 18, byte(i / 250), byte(i%250 + 1)})
}

// errUnavailable marks a workload a stack cannot run yet; the table shows
// it as "not available", not as a number.
var errUnavailable = errors.New("not available")

type unavailableError struct{ reason string }

func (e *unavailableError) Error() string { return "not available: " + e.reason }
func (e *unavailableError) Is(target error) bool {
	return target == errUnavailable
}

// stacks are the stacks the pair cases compare, in table order.
var stacks = []string{"tapstack", "gvisor"}

// kernelStacks are the columns of the kernel cases (kernel.go): tapstack
// and gVisor on the link, each also with virtio-net offloads (GSO), and
// the kernel itself over a veth as the ceiling.
var kernelStacks = []string{"tapstack", "tapstack-gso", "gvisor", "gvisor-gso", "kernel"}

// allStacks is every stack any case runs on.
var allStacks = []string{"tapstack", "tapstack-gso", "gvisor", "gvisor-gso", "kernel"}

// newPair builds a pair on the named stack.
func newPair(stack string, cfg pairConfig) (Pair, error) {
	if cfg.ClientAddrs == 0 {
		cfg.ClientAddrs = 1
	}
	if cfg.ClientAddrs > 250*250 {
		return nil, fmt.Errorf("bench: %d client addresses: at most %d", cfg.ClientAddrs, 250*250)
	}
	switch stack {
	case "tapstack":
		return newTapstackPair(cfg)
	case "gvisor":
		return newGvisorPair(cfg)
	}
	return nil, fmt.Errorf("bench: unknown stack %q", stack)
}
