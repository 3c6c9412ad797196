package main

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
	gvchecksum "gvisor.dev/gvisor/pkg/tcpip/checksum"

	"github.com/tapstack/tapstack/checksum"
)

// runChecksum measures the ones'-complement sum of one buffer size: the
// function each stack uses for every checksum it computes or verifies.
func runChecksum(sp spec, stackName string) (measure, error) {
	var m measure
	var sum func([]byte, uint16) uint16
	switch stackName {
	case "tapstack":
		sum = checksum.Sum
	case "gvisor":
		sum = gvchecksum.Checksum
	default:
		return m, fmt.Errorf("unknown stack %q", stackName)
	}
	// Many buffers, walked in turn, so the data is not all in L1 for the
	// small sizes either; 8 MiB in all at most, a typical L3 slice.
	nbuf := max(1, min(1024, (8<<20)/sp.Size))
	bufs := make([][]byte, nbuf)
	r := rand.NewChaCha8([32]byte{1})
	for i := range bufs {
		bufs[i] = make([]byte, sp.Size)
		_, _ = r.Read(bufs[i])
	}
	// Agree with the other stack on a known buffer before timing anything.
	if got, want := sum(bufs[0], 0), referenceSum(bufs[0]); got != want {
		return m, fmt.Errorf("%s: checksum of %d bytes is %#04x, want %#04x", stackName, sp.Size, got, want)
	}
	batch := max(1, (1<<20)/sp.Size) // about 1 MiB between clock reads
	var acc uint16
	var bytes int64
	// Throughput is per second of this thread's CPU time, not of the wall
	// clock: on a shared machine the loop is preempted now and then, and
	// that is not the checksum's cost.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cpu0 := threadCPU()
	deadline := time.Now().Add(sp.Duration)
	i := 0
	for time.Now().Before(deadline) {
		for range batch {
			acc = sum(bufs[i], acc)
			i++
			if i == nbuf {
				i = 0
			}
		}
		bytes += int64(batch) * int64(sp.Size)
	}
	cpu := threadCPU() - cpu0
	m.info = map[string]any{"sum": acc, "cpu_s": cpu.Seconds()} // the sums are used, so they are computed
	if cpu <= 0 {
		return m, fmt.Errorf("no CPU time measured for %d bytes", bytes)
	}
	m.add("throughput", "GB/s", higher, float64(bytes)/cpu.Seconds()/1e9)
	return m, nil
}

// threadCPU is the CPU time of the calling OS thread, to the nanosecond
// (getrusage's thread times may tick in milliseconds).
func threadCPU() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

// referenceSum is RFC 1071's sum, one 16-bit word at a time.
func referenceSum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return uint16(s)
}
