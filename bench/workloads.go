package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"runtime"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tapstack/tapstack/sim/impair"
)

// measure is what a workload reports: metrics for the table and info for
// the JSON record.
type measure struct {
	metrics []metric
	info    map[string]any
}

func (m *measure) add(name, unit, better string, v float64) {
	m.metrics = append(m.metrics, metric{Name: name, Unit: unit, Better: better, Value: v})
}

const (
	higher = "higher"
	lower  = "lower"
)

const benchPort = 5001

// stepTimeout bounds one connection's exchange in rr and crr, and one
// dial: far beyond any retransmission the in-memory wire can cause, so
// hitting it means the stack is stuck, and the error says where.
const stepTimeout = 30 * time.Second

// stallTimeout is how long a bulk transfer may go without a byte arriving.
const stallTimeout = time.Minute

// runWorkload runs sp on the named stack in this process.
func runWorkload(sp spec, stackName string) (measure, error) {
	if sp.AB != "" {
		return runAB(sp, stackName)
	}
	switch sp.Kind {
	case "checksum":
		return runChecksum(sp, stackName)
	case "bulk", "lossy":
		return withPair(sp, stackName, pairConfig{MTU: sp.MTU}, runBulk)
	case "rr":
		return withPair(sp, stackName, pairConfig{MTU: sp.MTU}, runRR)
	case "crr":
		return withPair(sp, stackName, pairConfig{MTU: sp.MTU}, runCRR)
	case "idle":
		return runIdle(sp, stackName)
	case "kernel":
		return runKernel(sp, stackName)
	}
	return measure{}, fmt.Errorf("unknown case kind %q", sp.Kind)
}

func withPair(sp spec, stackName string, cfg pairConfig, run func(Pair, spec) (measure, error)) (measure, error) {
	if sp.Loss != 0 || sp.Reorder != 0 {
		cfg.Impair = &impair.Config{Loss: sp.Loss, Reorder: sp.Reorder}
		cfg.Seed = sp.Seed
	}
	p, err := newPair(stackName, cfg)
	if err != nil {
		return measure{}, err
	}
	m, err := run(p, sp)
	if m.info == nil {
		m.info = map[string]any{}
	}
	ab, ba := p.Wire()
	m.info["wire_ab"], m.info["wire_ba"] = ab, ba
	m.info["tcp"] = p.Counters()
	return m, errors.Join(err, p.Close())
}

// The bulk data pattern: a pseudo-random block, read cyclically from a
// per-connection offset, so the receiver checks content with a memory
// compare against the same block instead of recomputing anything.
const (
	patPeriod = 1 << 20
	patRead   = 64 << 10 // the most one Read compares at once
)

var pattern = func() []byte {
	r := rand.NewChaCha8([32]byte{'t', 'a', 'p', 's', 't', 'a', 'c', 'k'})
	b := make([]byte, patPeriod+patRead)
	_, _ = r.Read(b[:patPeriod])
	copy(b[patPeriod:], b[:patRead])
	return b
}()

// patStart is connection idx's offset into the pattern.
func patStart(idx uint64) uint64 { return idx * 7919 * 64 % patPeriod }

// sendPattern writes a connection's stream: an 8-byte index, then n
// pattern bytes in writes of size w, then closes.
func sendPattern(c net.Conn, idx uint64, n int64, w int) (err error) {
	defer func() {
		if err != nil {
			c.Close() // the receiver sees the stream end short
		}
	}()
	var hdr [8]byte
	binary.BigEndian.PutUint64(hdr[:], idx)
	if _, err := c.Write(hdr[:]); err != nil {
		return fmt.Errorf("conn %d: write header: %w", idx, err)
	}
	off := patStart(idx)
	for sent := int64(0); sent < n; {
		k := int(min(int64(w), n-sent))
		// A write may span the period's end: write it in two pieces so
		// the pattern stays one cyclic sequence whatever w is.
		for k > 0 {
			o := off % patPeriod
			piece := min(k, patPeriod-int(o))
			if _, err := c.Write(pattern[o : o+uint64(piece)]); err != nil {
				return fmt.Errorf("conn %d: write at %d: %w", idx, sent, err)
			}
			off += uint64(piece)
			sent += int64(piece)
			k -= piece
		}
	}
	return c.Close()
}

// recvPattern reads a connection's stream to EOF, checking every byte
// against the pattern, and returns its index and the payload length.
func recvPattern(c net.Conn, buf []byte, progress *atomic.Int64) (uint64, int64, error) {
	defer c.Close()
	var hdr [8]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return 0, 0, fmt.Errorf("read header: %w", err)
	}
	idx := binary.BigEndian.Uint64(hdr[:])
	off := patStart(idx)
	var got int64
	for {
		n, err := c.Read(buf[:min(len(buf), patRead)])
		if n > 0 {
			o := off % patPeriod
			if !bytes.Equal(buf[:n], pattern[o:o+uint64(n)]) {
				return idx, got, fmt.Errorf("conn %d: data mismatch in bytes %d..%d", idx, got, got+int64(n))
			}
			off += uint64(n)
			got += int64(n)
			progress.Add(int64(n))
		}
		if err == io.EOF {
			return idx, got, nil
		}
		if err != nil {
			return idx, got, fmt.Errorf("conn %d: read after %d bytes: %w", idx, got, err)
		}
	}
}

// runBulk moves sp.Bytes on each of sp.Conns connections from A to B,
// verifying every byte at B.
func runBulk(p Pair, sp spec) (measure, error) {
	var m measure
	ln, err := p.Listen(benchPort)
	if err != nil {
		return m, err
	}
	defer ln.Close()
	conns := make([]net.Conn, sp.Conns)
	for i := range conns {
		if conns[i], err = p.Dial(0, benchPort); err != nil {
			closeAll(conns)
			return m, fmt.Errorf("dial %d: %w", i, err)
		}
	}
	type got struct {
		idx uint64
		n   int64
		err error
	}
	results := make(chan got, sp.Conns)
	accepted := make([]net.Conn, 0, sp.Conns)
	for range sp.Conns {
		c, err := ln.Accept()
		if err != nil {
			closeAll(conns)
			closeAll(accepted)
			return m, fmt.Errorf("accept: %w", err)
		}
		accepted = append(accepted, c)
	}

	cpu0 := cpuTime()
	start := time.Now()
	var progress atomic.Int64
	for _, c := range accepted {
		go func() {
			idx, n, err := recvPattern(c, make([]byte, patRead), &progress)
			results <- got{idx, n, err}
		}()
	}
	sendErrs := make(chan error, sp.Conns)
	for i, c := range conns {
		go func() { sendErrs <- sendPattern(c, uint64(i), sp.Bytes, sp.WriteSize) }()
	}
	var errs []error
	seen := make([]bool, sp.Conns)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	last, lastAt := int64(0), time.Now()
	for done := 0; done < sp.Conns; {
		var r got
		select {
		case r = <-results:
			done++
		case now := <-tick.C:
			// A transfer that stops moving is a failure, reported with
			// the counters that explain it, not a child killed later.
			if n := progress.Load(); n != last {
				last, lastAt = n, now
			} else if now.Sub(lastAt) > stallTimeout && lastAt != (time.Time{}) {
				errs = append(errs, fmt.Errorf("stalled: no data for %s after %d of %d bytes; tcp counters %v",
					stallTimeout, n, sp.Bytes*int64(sp.Conns), p.Counters()))
				lastAt = time.Time{}
				closeAll(conns)
				closeAll(accepted)
			}
			continue
		}
		switch {
		case r.err != nil:
			errs = append(errs, r.err)
		case r.idx >= uint64(sp.Conns) || seen[r.idx]:
			errs = append(errs, fmt.Errorf("stream index %d unexpected", r.idx))
		case r.n != sp.Bytes:
			errs = append(errs, fmt.Errorf("conn %d: received %d bytes, sent %d", r.idx, r.n, sp.Bytes))
		default:
			seen[r.idx] = true
		}
		if r.err != nil {
			// A failed receiver leaves its sender blocked; closing every
			// connection lets the run end with the error.
			closeAll(conns)
			closeAll(accepted)
		}
	}
	elapsed := time.Since(start)
	cpu := cpuTime() - cpu0
	for range sp.Conns {
		if err := <-sendErrs; err != nil && len(errs) == 0 {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return m, err
	}
	total := float64(sp.Bytes) * float64(sp.Conns)
	m.add("throughput", "Gbit/s", higher, total*8/elapsed.Seconds()/1e9)
	m.add("CPU per GiB", "s", lower, cpu.Seconds()/(total/(1<<30)))
	m.info = map[string]any{"elapsed_s": elapsed.Seconds(), "cpu_s": cpu.Seconds()}
	return m, nil
}

func closeAll(cs []net.Conn) {
	for _, c := range cs {
		if c != nil {
			c.Close()
		}
	}
}

// runRR measures 1-byte request/response round trips on one connection.
func runRR(p Pair, sp spec) (measure, error) {
	var m measure
	ln, err := p.Listen(benchPort)
	if err != nil {
		return m, err
	}
	defer ln.Close()
	srvErr := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			srvErr <- err
			return
		}
		defer c.Close()
		var b [1]byte
		for {
			if _, err := io.ReadFull(c, b[:]); err != nil {
				if err == io.EOF {
					err = nil
				}
				srvErr <- err
				return
			}
			if _, err := c.Write(b[:]); err != nil {
				srvErr <- err
				return
			}
		}
	}()
	c, err := p.Dial(0, benchPort)
	if err != nil {
		return m, err
	}
	// One deadline for the whole exchange: a stuck round trip becomes an
	// error naming it instead of a hung child.
	c.SetDeadline(time.Now().Add(stepTimeout + time.Duration(sp.Iters)*time.Millisecond))
	const warmup = 100
	lat := make([]time.Duration, 0, sp.Iters)
	var req, resp [1]byte
	for i := range warmup + sp.Iters {
		req[0] = byte(i)
		t0 := time.Now()
		if _, err := c.Write(req[:]); err != nil {
			c.Close()
			return m, fmt.Errorf("request %d: %w", i, err)
		}
		if _, err := io.ReadFull(c, resp[:]); err != nil {
			c.Close()
			return m, fmt.Errorf("response %d: %w", i, err)
		}
		d := time.Since(t0)
		if resp != req {
			c.Close()
			return m, fmt.Errorf("response %d: got %#x, sent %#x", i, resp[0], req[0])
		}
		if i >= warmup {
			lat = append(lat, d)
		}
	}
	if err := c.Close(); err != nil {
		return m, err
	}
	if err := <-srvErr; err != nil {
		return m, fmt.Errorf("server: %w", err)
	}
	var sum time.Duration
	for _, d := range lat {
		sum += d
	}
	slices.Sort(lat)
	us := func(d time.Duration) float64 { return float64(d) / 1e3 }
	m.add("latency mean", "µs", lower, us(sum)/float64(len(lat)))
	m.add("latency p50", "µs", lower, us(lat[len(lat)/2]))
	m.add("latency p99", "µs", lower, us(lat[len(lat)*99/100]))
	return m, nil
}

// runCRR repeats connect, 1-byte exchange, close.
func runCRR(p Pair, sp spec) (measure, error) {
	var m measure
	ln, err := p.Listen(benchPort)
	if err != nil {
		return m, err
	}
	defer ln.Close()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var srvErrs []error
	fail := func(err error) {
		mu.Lock()
		srvErrs = append(srvErrs, err)
		mu.Unlock()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range sp.Iters {
			c, err := ln.Accept()
			if err != nil {
				fail(fmt.Errorf("accept: %w", err))
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(stepTimeout))
				var b [1]byte
				if _, err := io.ReadFull(c, b[:]); err != nil {
					fail(fmt.Errorf("server read: %w", err))
					return
				}
				if _, err := c.Write(b[:]); err != nil {
					fail(fmt.Errorf("server write: %w", err))
					return
				}
				// Wait for the client's close, so the client ends first
				// and its side takes the TIME-WAIT, as with HTTP/1.1.
				if n, err := c.Read(b[:]); err != io.EOF {
					fail(fmt.Errorf("server: want EOF, got %d bytes, %v", n, err))
				}
			}()
		}
	}()
	start := time.Now()
	var b [1]byte
	for i := range sp.Iters {
		c, err := p.Dial(0, benchPort)
		if err != nil {
			return m, fmt.Errorf("connection %d: dial: %w", i, err)
		}
		c.SetDeadline(time.Now().Add(stepTimeout))
		b[0] = byte(i)
		if _, err := c.Write(b[:]); err != nil {
			c.Close()
			return m, fmt.Errorf("connection %d: write: %w", i, err)
		}
		if _, err := io.ReadFull(c, b[:]); err != nil || b[0] != byte(i) {
			c.Close()
			return m, fmt.Errorf("connection %d: read %#x: %v", i, b[0], err)
		}
		if err := c.Close(); err != nil {
			return m, fmt.Errorf("connection %d: close: %w", i, err)
		}
	}
	elapsed := time.Since(start)
	wg.Wait()
	if err := errors.Join(srvErrs...); err != nil {
		return m, err
	}
	m.add("rate", "conn/s", higher, float64(sp.Iters)/elapsed.Seconds())
	return m, nil
}

// Idle connections: how many an address's ephemeral ports give (tapstack's
// range, as Linux's, holds 28232; gVisor's more), and how many dialers run
// at once.
const (
	connsPerClientAddr = 20000
	idleDialers        = 8
)

// runIdle establishes sp.Pairs connection pairs with default buffer
// settings and measures what they cost while idle.
func runIdle(sp spec, stackName string) (measure, error) {
	var m measure
	cfg := pairConfig{MTU: sp.MTU, DefaultBuffers: true,
		ClientAddrs: (sp.Pairs + connsPerClientAddr - 1) / connsPerClientAddr}
	p, err := newPair(stackName, cfg)
	if err != nil {
		return m, err
	}
	// The pair is not closed: tearing down a million connections would
	// only measure that, and the process ends with the case.
	ln, err := p.Listen(benchPort)
	if err != nil {
		return m, err
	}
	heap0, rss0 := memNow()

	server := make([]net.Conn, 0, sp.Pairs)
	client := make([]net.Conn, sp.Pairs)
	acceptErr := make(chan error, 1)
	start := time.Now()
	go func() {
		for range sp.Pairs {
			c, err := ln.Accept()
			if err != nil {
				acceptErr <- err
				return
			}
			server = append(server, c)
		}
		acceptErr <- nil
	}()
	var wg sync.WaitGroup
	dialErrs := make([]error, idleDialers)
	for d := range idleDialers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := d; i < sp.Pairs; i += idleDialers {
				c, err := p.Dial(i/connsPerClientAddr, benchPort)
				if err != nil {
					dialErrs[d] = fmt.Errorf("dial %d: %w", i, err)
					return
				}
				client[i] = c
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(dialErrs...); err != nil {
		ln.Close()
		return m, err
	}
	if err := <-acceptErr; err != nil {
		return m, fmt.Errorf("accept: %w", err)
	}
	elapsed := time.Since(start)
	heap1, rss1 := memNow()
	n := float64(sp.Pairs)
	m.add("heap per pair", "B", lower, float64(int64(heap1)-int64(heap0))/n)
	m.add("RSS per pair", "B", lower, float64(int64(rss1)-int64(rss0))/n)
	m.add("establish all", "s", lower, elapsed.Seconds())
	m.info = map[string]any{"tcp": p.Counters()}
	runtime.KeepAlive(server)
	runtime.KeepAlive(client)
	return m, nil
}

// memNow collects garbage, returns freed memory to the OS, and returns the
// live heap and the resident set.
func memNow() (heap, rss uint64) {
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc, procStatus("VmRSS")
}
