package netstack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tapstack/tapstack/device"
	"github.com/tapstack/tapstack/ip"
	"github.com/tapstack/tapstack/mono"
	"go.uber.org/goleak"
)

// Tests of the real-time driver: stacks on the real clock, attached with
// AttachDevice to the two ends of an in-memory device.Pipe, used through the
// blocking net.Conn and net.PacketConn adapters. Waits are bounded by
// contexts and read deadlines; none sleeps to synchronise.

// pipeStacks makes two real-time stacks, A at 10.0.0.1 and B at 10.0.0.2,
// on the two ends of a Pipe. Both are closed at cleanup.
func pipeStacks(t testing.TB) (a, b *Stack, da, db *device.PipeEnd) {
	t.Helper()
	return pipeStacksOver(t, device.PipeConfig{})
}

// pipeStacksOver is pipeStacks on a Pipe made with cfg.
func pipeStacksOver(t testing.TB, cfg device.PipeConfig) (a, b *Stack, da, db *device.PipeEnd) {
	t.Helper()
	da, db = device.Pipe(cfg)
	a, b = New(Config{}), New(Config{})
	t.Cleanup(func() { a.Close(); b.Close() })
	if _, err := a.AttachDevice(da, NICConfig{Name: "a0", Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.AttachDevice(db, NICConfig{Name: "b0", Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.2/24")}}); err != nil {
		t.Fatal(err)
	}
	return a, b, da, db
}

func bounded(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// udpEcho serves an echo on c until c is closed; the returned function
// closes c and waits for the server to end.
func udpEcho(t testing.TB, c net.PacketConn) (stop func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				if !errors.Is(err, net.ErrClosed) {
					t.Errorf("echo server: %v", err)
				}
				return
			}
			if _, err := c.WriteTo(buf[:n], from); err != nil {
				t.Errorf("echo server: %v", err)
				return
			}
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			c.Close()
			<-done
		})
	}
	t.Cleanup(stop)
	return stop
}

// waitUntil polls cond, read under the loop lock, for at most 10 s. It is
// how a test learns that a goroutine has blocked inside the stack.
// isTimeout says whether err is a deadline's error as net.Conn reports it.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) && errors.As(err, &ne) && ne.Timeout()
}

// waitParked waits until a goroutine with fn on its stack is parked in a
// select or a channel operation: a test that must act on a blocked call,
// not on one about to block, waits for this.
func waitParked(t testing.TB, fn string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		for _, g := range strings.Split(string(buf[:n]), "\n\n") {
			head, _, _ := strings.Cut(g, "\n")
			if strings.Contains(g, fn) && (strings.Contains(head, "[select") || strings.Contains(head, "[chan receive")) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s to park", fn)
		}
		time.Sleep(time.Millisecond)
	}
}

func waitUntil(t testing.TB, s *Stack, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.mu.Lock()
		ok := cond()
		s.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestDriverPing(t *testing.T) {
	a, b, _, _ := pipeStacks(t)
	for i := range 3 {
		rtt, err := a.Ping(bounded(t), addrB, 56)
		if err != nil {
			t.Fatalf("ping %d: %v", i, err)
		}
		if rtt <= 0 {
			t.Errorf("ping %d: round trip %v, want > 0", i, rtt)
		}
	}
	if got := b.Stats().ICMP.EchoRequests; got != 3 {
		t.Errorf("B answered %d echo requests, want 3", got)
	}
	// And the other way, where A's address is already known to B (learnt
	// from A's request).
	if _, err := b.Ping(bounded(t), addrA, 0); err != nil {
		t.Fatalf("ping from B: %v", err)
	}
}

func TestDriverFragmentedPing(t *testing.T) {
	a, b, _, _ := pipeStacks(t)
	p, err := a.DialPing(addrB)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for seq := uint16(1); seq <= 3; seq++ {
		if err := p.SendEcho(seq, 4000); err != nil {
			t.Fatal(err)
		}
		e, err := p.RecvEcho(bounded(t))
		if err != nil {
			t.Fatalf("seq %d: %v", seq, err)
		}
		if e.Seq != seq || e.Len != 4000 || e.From != addrB {
			t.Fatalf("reply %+v, want seq %d, 4000 bytes from %v", e, seq, addrB)
		}
	}
	sa, sb := a.Stats().IPv4, b.Stats().IPv4
	// 4008 bytes of ICMP in 1480-byte pieces: three fragments per datagram.
	if sa.FragmentsSent != 9 || sb.FragmentsSent != 9 || sa.Reassembled != 3 || sb.Reassembled != 3 {
		t.Fatalf("A sent %d fragments and reassembled %d, B %d and %d; want 9 and 3 each",
			sa.FragmentsSent, sa.Reassembled, sb.FragmentsSent, sb.Reassembled)
	}
}

func TestDriverUDPPacketConnAndConn(t *testing.T) {
	a, b, _, _ := pipeStacks(t)
	srv, err := b.ListenUDP(netip.AddrPortFrom(netip.Addr{}, 9000))
	if err != nil {
		t.Fatal(err)
	}
	udpEcho(t, srv)

	// net.Conn: a connected socket, Write and Read.
	var conn net.Conn
	conn, err = a.DialUDP(netip.AddrPort{}, netip.AddrPortFrom(addrB, 9000))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if got := conn.RemoteAddr().String(); got != "10.0.0.2:9000" {
		t.Errorf("RemoteAddr %s, want 10.0.0.2:9000", got)
	}
	buf := make([]byte, 70000)
	for _, size := range []int{0, 1, 100, 1472, 1473, 4000, 65507} {
		msg := make([]byte, size)
		for i := range msg {
			msg[i] = byte(i*7 + size)
		}
		if n, err := conn.Write(msg); err != nil || n != size {
			t.Fatalf("write %d bytes: %d, %v", size, n, err)
		}
		if err := conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
			t.Fatal(err)
		}
		n, err := conn.Read(buf)
		if err != nil || !bytes.Equal(buf[:n], msg) {
			t.Fatalf("echo of %d bytes: read %d, %v", size, n, err)
		}
	}

	// net.PacketConn: an unconnected socket, WriteTo and ReadFrom.
	var pc net.PacketConn
	pc, err = a.ListenUDP(netip.AddrPortFrom(addrA, 0))
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	to := &net.UDPAddr{IP: net.IPv4(10, 0, 0, 2), Port: 9000}
	for i := range 50 {
		msg := []byte(fmt.Sprintf("datagram %d", i))
		if _, err := pc.WriteTo(msg, to); err != nil {
			t.Fatal(err)
		}
		if err := pc.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
			t.Fatal(err)
		}
		n, from, err := pc.ReadFrom(buf)
		if err != nil || !bytes.Equal(buf[:n], msg) {
			t.Fatalf("echo %d: %q, %v", i, buf[:n], err)
		}
		if from.String() != to.String() {
			t.Fatalf("echo from %v, want %v", from, to)
		}
	}
}

func TestDriverReadDeadlines(t *testing.T) {
	a, b, _, _ := pipeStacks(t)
	c, err := a.ListenUDP(netip.AddrPortFrom(netip.Addr{}, 5000))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 100)
	// A deadline in the past fails at once, even with a datagram queued.
	c.SetReadDeadline(time.Now().Add(-time.Second))
	if _, _, err := c.ReadFrom(buf); !isTimeout(err) {
		t.Fatalf("read past the deadline: %v, want a timeout wrapping os.ErrDeadlineExceeded", err)
	}

	// A deadline in the future ends a blocked read no earlier.
	const wait = 50 * time.Millisecond
	start := time.Now()
	c.SetReadDeadline(start.Add(wait))
	if _, _, err := c.ReadFrom(buf); !isTimeout(err) {
		t.Fatalf("read with a %v deadline: %v, want a timeout", wait, err)
	}
	if el := time.Since(start); el < wait {
		t.Fatalf("read returned after %v, before its %v deadline", el, wait)
	}

	// A past deadline set after one expired fails at once too.
	c.SetReadDeadline(time.Now().Add(-time.Second))
	if _, _, err := c.ReadFrom(buf); !isTimeout(err) {
		t.Fatalf("read past a deadline set after one expired: %v, want a timeout", err)
	}

	// Moving the deadline into the past unblocks a read in progress.
	c.SetReadDeadline(time.Time{})
	errc := make(chan error, 1)
	go func() { _, _, err := c.ReadFrom(buf); errc <- err }()
	waitUntil(t, a, "the reader to block", func() bool { return c.readers.waitingLocked() })
	waitParked(t, "(*UDPConn).ReadFromUDPAddrPort")
	c.SetReadDeadline(time.Now())
	if err := <-errc; !isTimeout(err) {
		t.Fatalf("read when the deadline moved to now: %v, want a timeout", err)
	}

	// Clearing the deadline lets reads succeed again.
	c.SetReadDeadline(time.Time{})
	sender, err := b.DialUDP(netip.AddrPort{}, netip.AddrPortFrom(addrA, 5000))
	if err != nil {
		t.Fatal(err)
	}
	defer sender.Close()
	if _, err := sender.Write([]byte("after")); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, _, err := c.ReadFrom(buf); err != nil || string(buf[:n]) != "after" {
		t.Fatalf("read after clearing the deadline: %q, %v", buf[:n], err)
	}
}

func TestDriverCloseUnblocksReadFrom(t *testing.T) {
	a, _, _, _ := pipeStacks(t)
	c, err := a.ListenUDP(netip.AddrPortFrom(netip.Addr{}, 5001))
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { _, _, err := c.ReadFrom(make([]byte, 10)); errc <- err }()
	waitUntil(t, a, "the reader to block", func() bool { return c.readers.waitingLocked() })
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("blocked ReadFrom after Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not unblock ReadFrom")
	}
	if _, err := c.WriteTo([]byte("x"), &net.UDPAddr{IP: net.IPv4(10, 0, 0, 2), Port: 1}); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("WriteTo after Close: %v, want net.ErrClosed", err)
	}
	if err := c.Close(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("second Close: %v, want net.ErrClosed", err)
	}
	// The port is free again.
	c2, err := a.ListenUDP(netip.AddrPortFrom(netip.Addr{}, 5001))
	if err != nil {
		t.Fatalf("port not released by Close: %v", err)
	}
	c2.Close()
}

func TestDriverSoftErrorConnRefused(t *testing.T) {
	a, b, _, _ := pipeStacks(t)
	c, err := a.DialUDP(netip.AddrPort{}, netip.AddrPortFrom(addrB, 9999))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("anyone?")); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 10)); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("read after port unreachable: %v, want ECONNREFUSED", err)
	}
	// Reported once: the next read waits, and times out.
	c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if _, err := c.Read(make([]byte, 10)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("second read: %v, want a timeout", err)
	}
	if got := b.Stats().UDP.NoPort; got != 1 {
		t.Errorf("B counted %d datagrams to no port, want 1", got)
	}
	// An unconnected socket sending to the same closed port hears nothing
	// (Linux without IP_RECVERR).
	u, err := a.ListenUDP(netip.AddrPort{})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	if err := u.TryWriteTo([]byte("x"), netip.AddrPortFrom(addrB, 9999)); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, a, "the second port unreachable", func() bool { return a.stats.ICMP.ErrorsReceived == 2 })
	if _, _, err := u.TryReadFrom(make([]byte, 10)); err != ErrWouldBlock {
		t.Fatalf("unconnected socket read: %v, want ErrWouldBlock", err)
	}
}

// Close ends every goroutine the stacks started, closes their devices,
// unblocks calls in progress, and makes every later call fail with an
// error wrapping net.ErrClosed.
func TestDriverCloseReleasesEverything(t *testing.T) {
	base := goleak.IgnoreCurrent()
	da, db := device.Pipe(device.PipeConfig{})
	a, b := New(Config{}), New(Config{})
	if _, err := a.AttachDevice(da, NICConfig{Name: "a0", Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.AttachDevice(db, NICConfig{Name: "b0", Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.2/24")}}); err != nil {
		t.Fatal(err)
	}
	// Some state to release: resolved neighbours, a socket with data queued,
	// a deadline armed, a blocked reader, a ping waiting for a reply.
	if _, err := a.Ping(bounded(t), addrB, 56); err != nil {
		t.Fatal(err)
	}
	c, err := a.ListenUDP(netip.AddrPortFrom(netip.Addr{}, 7000))
	if err != nil {
		t.Fatal(err)
	}
	queued, err := a.DialUDP(netip.AddrPort{}, netip.AddrPortFrom(addrB, 7001))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := b.ListenUDP(netip.AddrPortFrom(netip.Addr{}, 7001))
	if err != nil {
		t.Fatal(err)
	}
	if err := queued.TryWriteTo([]byte("stays queued"), netip.AddrPort{}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, b, "the datagram to arrive", func() bool { return srv.rqBytes > 0 })
	srv.SetReadDeadline(time.Now().Add(time.Hour))
	p, err := a.DialPing(netip.MustParseAddr("10.0.0.9")) // nobody
	if err != nil {
		t.Fatal(err)
	}
	readErr := make(chan error, 1)
	go func() { _, _, err := c.ReadFrom(make([]byte, 10)); readErr <- err }()
	pingErr := make(chan error, 1)
	go func() { _, err := p.RecvEcho(context.Background()); pingErr <- err }()
	waitUntil(t, a, "the reader and the pinger to block", func() bool { return c.readers.waitingLocked() && p.readers.waitingLocked() })

	if err := a.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for what, ch := range map[string]chan error{"ReadFrom": readErr, "RecvEcho": pingErr} {
		select {
		case err := <-ch:
			if !errors.Is(err, net.ErrClosed) {
				t.Errorf("%s blocked across Stack.Close: %v, want net.ErrClosed", what, err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("%s still blocked 10 s after Stack.Close", what)
		}
	}
	goleak.VerifyNone(t, base)

	// The devices are closed.
	frame := make([]byte, device.Headroom+60)
	for i, d := range []*device.PipeEnd{da, db} {
		if _, err := d.WriteBatch([][]byte{frame}, device.Headroom); !errors.Is(err, net.ErrClosed) {
			t.Errorf("device %d after Stack.Close: write %v, want net.ErrClosed", i, err)
		}
	}
	// Every call fails with net.ErrClosed.
	closed := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("%s on a closed stack: %v, want an error wrapping net.ErrClosed", what, err)
		}
	}
	_, err = a.ListenUDP(netip.AddrPort{})
	closed("ListenUDP", err)
	_, err = a.DialUDP(netip.AddrPort{}, netip.AddrPortFrom(addrB, 1))
	closed("DialUDP", err)
	_, err = a.DialPing(addrB)
	closed("DialPing", err)
	_, err = a.Ping(bounded(t), addrB, 1)
	closed("Ping", err)
	d1, _ := device.Pipe(device.PipeConfig{})
	_, err = a.AttachDevice(d1, NICConfig{Name: "late"})
	closed("AttachDevice", err)
	_, err = a.AddNIC(NICConfig{Name: "late"}, nil)
	closed("AddNIC", err)
	// Deadlines turn a read that would block forever into a failure.
	c.SetReadDeadline(time.Now().Add(time.Second))
	srv.SetReadDeadline(time.Now().Add(time.Second))
	_, _, err = c.ReadFrom(make([]byte, 10))
	closed("ReadFrom", err)
	_, err = c.WriteTo([]byte("x"), &net.UDPAddr{IP: net.IPv4(10, 0, 0, 2), Port: 1})
	closed("WriteTo", err)
	closed("TryWriteTo", queued.TryWriteTo([]byte("x"), netip.AddrPort{}))
	_, err = queued.Write([]byte("x"))
	closed("Write", err)
	_, _, err = srv.TryReadFrom(make([]byte, 100))
	closed("TryReadFrom with data queued", err)
	_, err = srv.Read(make([]byte, 100))
	closed("Read", err)
	closed("SendEcho", p.SendEcho(2, 10))
	_, err = p.RecvEcho(bounded(t))
	closed("RecvEcho", err)
	// Closing again, and closing the sockets, is harmless.
	if err := a.Close(); err != nil {
		t.Errorf("second Stack.Close: %v", err)
	}
	c.Close()
	queued.Close()
	srv.Close()
	p.Close()
	goleak.VerifyNone(t, base)
}

// Two pairs of stacks in one process, with the same addresses, ports and
// MACs, run at once without seeing each other's packets: no global state.
func TestDriverIndependentStacks(t *testing.T) {
	const pairs, msgs = 2, 200
	type pair struct{ a, b *Stack }
	ps := make([]pair, pairs)
	for i := range ps {
		ps[i].a, ps[i].b, _, _ = pipeStacks(t)
	}
	var wg sync.WaitGroup
	errs := make(chan error, pairs)
	for i, p := range ps {
		srv, err := p.b.ListenUDP(netip.AddrPortFrom(netip.Addr{}, 9000))
		if err != nil {
			t.Fatal(err)
		}
		udpEcho(t, srv)
		cli, err := p.a.DialUDP(netip.AddrPortFrom(netip.Addr{}, 40000), netip.AddrPortFrom(addrB, 9000))
		if err != nil {
			t.Fatal(err)
		}
		defer cli.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- func() error {
				buf := make([]byte, 5000)
				for j := range msgs {
					if j%50 == 0 {
						if _, err := p.a.Ping(bounded(t), addrB, 3000); err != nil {
							return fmt.Errorf("pair %d: ping: %w", i, err)
						}
					}
					msg := []byte(fmt.Sprintf("pair %d message %d", i, j))
					if _, err := cli.Write(msg); err != nil {
						return err
					}
					cli.SetReadDeadline(time.Now().Add(10 * time.Second))
					n, err := cli.Read(buf)
					if err != nil {
						return fmt.Errorf("pair %d message %d: %w", i, j, err)
					}
					if !bytes.Equal(buf[:n], msg) {
						return fmt.Errorf("pair %d: got %q, want %q", i, buf[:n], msg)
					}
				}
				return nil
			}()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	for i, p := range ps {
		sa, sb := p.a.Stats(), p.b.Stats()
		if sa.UDP.Sent != msgs || sb.UDP.Delivered != msgs || sb.UDP.Sent != msgs || sa.UDP.Delivered != msgs {
			t.Errorf("pair %d: A sent %d and received %d datagrams, B %d and %d; want %d each",
				i, sa.UDP.Sent, sa.UDP.Delivered, sb.UDP.Sent, sb.UDP.Delivered, msgs)
		}
		if sb.ICMP.EchoRequests != msgs/50 || sb.IPv4.Reassembled != msgs/50 {
			t.Errorf("pair %d: B answered %d pings and reassembled %d datagrams; want %d",
				i, sb.ICMP.EchoRequests, sb.IPv4.Reassembled, msgs/50)
		}
	}
}

// slowDevice is a device whose writes, while held, block until released:
// a device slower than the stack. It delivers the frames sent on in and
// keeps a copy of every frame written.
type slowDevice struct {
	mac       net.HardwareAddr // nil: an L3 device
	in        chan []byte
	blocked   chan struct{} // a write waits at the gate
	done      chan struct{}
	closeOnce sync.Once

	mu      sync.Mutex
	gate    chan struct{} // nil unless held
	written [][]byte
	closed  bool
}

func newSlowDevice(mac net.HardwareAddr) *slowDevice {
	return &slowDevice{mac: mac, in: make(chan []byte), blocked: make(chan struct{}, 1), done: make(chan struct{})}
}

func (d *slowDevice) ReadBatch(bufs [][]byte, sizes []int, offset int) (int, error) {
	select {
	case f := <-d.in:
		sizes[0] = copy(bufs[0][offset:], f)
		return 1, nil
	case <-d.done:
		return 0, net.ErrClosed
	}
}

func (d *slowDevice) WriteBatch(bufs [][]byte, offset int) (int, error) {
	d.mu.Lock()
	gate := d.gate
	d.mu.Unlock()
	if gate != nil {
		select {
		case d.blocked <- struct{}{}:
		default:
		}
		<-gate
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return 0, net.ErrClosed
	}
	for _, b := range bufs {
		d.written = append(d.written, bytes.Clone(b[offset:]))
	}
	return len(bufs), nil
}

func (d *slowDevice) hold() {
	d.mu.Lock()
	d.gate = make(chan struct{})
	d.mu.Unlock()
}

func (d *slowDevice) release() {
	d.mu.Lock()
	if d.gate != nil {
		close(d.gate)
		d.gate = nil
	}
	d.mu.Unlock()
}

// waitBlocked waits for a write to block at the gate.
func (d *slowDevice) waitBlocked(t *testing.T) {
	t.Helper()
	select {
	case <-d.blocked:
	case <-time.After(10 * time.Second):
		t.Fatal("no write reached the device in 10 s")
	}
}

func (d *slowDevice) frames() [][]byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.written)
}

func (d *slowDevice) BatchSize() int             { return 64 }
func (d *slowDevice) MTU() int                   { return 1500 }
func (d *slowDevice) LinkAddr() net.HardwareAddr { return d.mac }
func (d *slowDevice) Close() error {
	d.closeOnce.Do(func() {
		d.mu.Lock()
		d.closed = true
		d.mu.Unlock()
		close(d.done)
	})
	return nil
}

// A device write that blocks holds up neither the device reader nor other
// calls: the stack writes outside its loop lock.
func TestDriverWritesOutsideLoopLock(t *testing.T) {
	base := goleak.IgnoreCurrent()
	dev := newSlowDevice(net.HardwareAddr(macB[:]))
	s := New(Config{})
	defer s.Close()
	defer dev.release()
	if _, err := s.AttachDevice(dev, NICConfig{Name: "b0", Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.2/24")}}); err != nil {
		t.Fatal(err)
	}
	srv, err := s.ListenUDP(netip.AddrPortFrom(netip.Addr{}, 9000))
	if err != nil {
		t.Fatal(err)
	}
	cli, err := s.ListenUDP(netip.AddrPort{})
	if err != nil {
		t.Fatal(err)
	}

	// A is not resolved: sending to it writes an ARP request, which blocks.
	dev.hold()
	sent := make(chan error, 1)
	go func() { sent <- cli.TryWriteTo([]byte("out"), netip.AddrPortFrom(addrA, 9)) }()
	dev.waitBlocked(t)

	// Meanwhile the device reader delivers a datagram, and a socket call
	// runs.
	got := make(chan error, 1)
	go func() {
		buf := make([]byte, 10)
		srv.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, _, err := srv.ReadFrom(buf)
		if err == nil && string(buf[:n]) != "in" {
			err = fmt.Errorf("read %q, want \"in\"", buf[:n])
		}
		got <- err
	}()
	dev.in <- udpFrame(t, macA, macB, addrA, addrB, 40000, 9000, []byte("in"))
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("datagram received while a write blocked: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a blocked device write held up the device reader for 10 s")
	}
	if st := s.Stats(); st.UDP.Delivered != 1 {
		t.Errorf("%d datagrams delivered, want 1", st.UDP.Delivered)
	}

	dev.release()
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	goleak.VerifyNone(t, base)
	// The gratuitous ARP of the attach, then the request for A.
	fs := dev.frames()
	if len(fs) < 2 {
		t.Fatalf("%d frames written, want the announcement and a request", len(fs))
	}
	if arp, err := ip.ParseARP(fs[len(fs)-1][ip.EthernetHeaderLen:]); err != nil || arp.Op() != ip.ARPRequest || arp.TargetProtocolAddr() != addrA {
		t.Errorf("last frame written is not an ARP request for %v: %x", addrA, fs[len(fs)-1])
	}
}

// Frames leave in the order the steps that made them ran, also when the
// writer changes hands while the device is slow, and Close writes what was
// queued before it.
func TestDriverOutputInOrderThroughSlowDevice(t *testing.T) {
	base := goleak.IgnoreCurrent()
	dev := newSlowDevice(nil) // L3: no ARP
	s := New(Config{})
	defer s.Close()
	defer dev.release()
	if _, err := s.AttachDevice(dev, NICConfig{Name: "t0", Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.2/24")}}); err != nil {
		t.Fatal(err)
	}
	c, err := s.ListenUDP(netip.AddrPortFrom(netip.Addr{}, 9000))
	if err != nil {
		t.Fatal(err)
	}
	to := netip.AddrPortFrom(addrA, 9)
	send := func(i int) error { return c.TryWriteTo(fmt.Appendf(nil, "%04d", i), to) }

	// The first sender blocks writing its datagram; the rest queue behind
	// it, more than it writes before handing over to the writer goroutine.
	const n = 5 * txChunk
	dev.hold()
	first := make(chan error, 1)
	go func() { first <- send(0) }()
	dev.waitBlocked(t)
	queued := make(chan error, 1)
	go func() {
		for i := 1; i < n; i++ {
			if err := send(i); err != nil {
				queued <- err
				return
			}
		}
		queued <- nil
	}()
	select {
	case err := <-queued:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("sends held up for 10 s by a blocked device write")
	}
	dev.release()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	goleak.VerifyNone(t, base)

	fs := dev.frames()
	if len(fs) != n {
		t.Fatalf("%d frames written, want %d", len(fs), n)
	}
	const payload = ip.IPv4MinHeaderLen + ip.UDPHeaderLen
	for i, f := range fs {
		if want := fmt.Sprintf("%04d", i); len(f) < payload || string(f[payload:]) != want {
			t.Fatalf("frame %d carries %q, want %q", i, f[min(payload, len(f)):], want)
		}
	}
	if st := s.Stats().Link; st.FramesSent != n || st.TxErrors != 0 {
		t.Errorf("%d frames sent, %d errors; want %d and 0", st.FramesSent, st.TxErrors, n)
	}
}

// An application's call that finds a device's queue over its bound waits
// for room before it makes more output, while the device reader goes on;
// nothing is lost or reordered.
func TestDriverQueueBoundHoldsApplicationNotReader(t *testing.T) {
	base := goleak.IgnoreCurrent()
	dev := newSlowDevice(nil)
	s := New(Config{})
	defer s.Close()
	defer dev.release()
	nic, err := s.AttachDevice(dev, NICConfig{Name: "t0", Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.2/24")}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.ListenUDP(netip.AddrPortFrom(netip.Addr{}, 9000))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := s.ListenUDP(netip.AddrPortFrom(netip.Addr{}, 9001))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	to := netip.AddrPortFrom(addrA, 9)
	payload := make([]byte, 1400)
	send := func(i int) error {
		copy(payload, fmt.Sprintf("%06d", i))
		return c.TryWriteTo(payload, to)
	}
	// The first datagram's sender blocks in the device; enough more to
	// fill the queue follow, then one more, which must wait.
	dev.hold()
	first := make(chan error, 1)
	go func() { first <- send(0) }()
	dev.waitBlocked(t)
	filled := make(chan int, 1)
	go func() {
		n := 1
		for ; !nic.tx.over.Load() && n <= 2*txQueueMax/len(payload); n++ {
			if err := send(n); err != nil {
				t.Error(err)
				break
			}
		}
		filled <- n
	}()
	var n int
	select {
	case n = <-filled:
	case <-time.After(10 * time.Second):
		t.Fatal("sends held up for 10 s by a blocked device write")
	}
	if !nic.tx.over.Load() {
		t.Fatalf("%d datagrams queued, and the queue is not over its bound", n)
	}
	last := make(chan error, 1)
	go func() { last <- send(n) }()
	deadline := time.Now().Add(10 * time.Second)
	for waiting := 0; waiting == 0; {
		nic.tx.mu.Lock()
		waiting = nic.tx.waiters
		nic.tx.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatal("a send over the bound did not wait for room")
		}
		time.Sleep(time.Millisecond)
	}
	// The device reader is not held up: an inbound datagram arrives. (The
	// test looks with the driver's lock: application calls wait too.)
	dev.in <- udpFrame(t, macA, macB, addrA, addrB, 40000, 9001, []byte("in"))[ip.EthernetHeaderLen:]
	for delivered := uint64(0); delivered == 0; {
		s.mu.lockDriver()
		delivered = s.stats.UDP.Delivered
		s.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatal("the device reader was held up by a full queue")
		}
		time.Sleep(time.Millisecond)
	}
	select {
	case err := <-last:
		t.Fatalf("a send over the bound went ahead (%v)", err)
	default:
	}
	dev.release()
	for _, ch := range []chan error{first, last} {
		if err := <-ch; err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	goleak.VerifyNone(t, base)
	fs := dev.frames()
	if len(fs) != n+1 {
		t.Fatalf("%d frames written, want %d", len(fs), n+1)
	}
	const at = ip.IPv4MinHeaderLen + ip.UDPHeaderLen
	for i, f := range fs {
		if want := fmt.Sprintf("%06d", i); string(f[at:at+6]) != want {
			t.Fatalf("frame %d carries %q, want %q", i, f[at:at+6], want)
		}
	}
}

// discardLink is a Link that drops every frame, counting them.
type discardLink struct{ frames int }

func (l *discardLink) Transmit(frames [][]byte, offset int) { l.frames += len(frames) }

// benchStack is a stack at 10.0.0.2 on a virtual clock whose output is
// discarded, with A (10.0.0.1, 02:00:00:00:00:01) in its neighbour cache.
func benchStack(b *testing.B) (*Stack, *NIC, *discardLink) {
	b.Helper()
	now := mono.Time(1)
	s := New(Config{Clock: func() mono.Time { return now }, Rand: rand.NewPCG(1, 2)})
	b.Cleanup(func() { s.Close() })
	link := &discardLink{}
	nic, err := s.AddNIC(NICConfig{Name: "b0", LinkAddr: net.HardwareAddr(macB[:]),
		Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.2/24")}}, link)
	if err != nil {
		b.Fatal(err)
	}
	// A asks for B: B answers and learns A (RFC 826: it was the target).
	s.Receive(now, nic, [][]byte{arpFrame(b, ip.ARPRequest, macA, addrA, addrB)})
	s.mu.Lock()
	e := nic.neigh.index[addrA]
	s.mu.Unlock()
	if e == nil || e.state != neighReachable {
		b.Fatal("A not resolved")
	}
	return s, nic, link
}

// The receive path: one UDP datagram in a frame, through Stack.Receive
// into a socket's queue, and read back out.
func BenchmarkReceiveUDP(b *testing.B) {
	for _, size := range []int{64, 1472} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			s, nic, _ := benchStack(b)
			c, err := s.ListenUDP(netip.AddrPortFrom(netip.Addr{}, 9000))
			if err != nil {
				b.Fatal(err)
			}
			frames := [][]byte{udpFrame(b, macA, macB, addrA, addrB, 40000, 9000, make([]byte, size))}
			buf := make([]byte, 2048)
			now := s.Now()
			b.ReportAllocs()
			b.SetBytes(int64(size))
			for b.Loop() {
				s.Receive(now, nic, frames)
				if n, _, err := c.TryReadFrom(buf); err != nil || n != size {
					b.Fatalf("read %d bytes, %v", n, err)
				}
			}
			if st := s.Stats().UDP; st.Delivered != st.Received {
				b.Fatalf("%d datagrams received, %d delivered", st.Received, st.Delivered)
			}
		})
	}
}

// The send path: TryWriteTo to a resolved neighbour, to the Link.
func BenchmarkSendUDP(b *testing.B) {
	for _, size := range []int{64, 1472} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			s, _, link := benchStack(b)
			c, err := s.ListenUDP(netip.AddrPortFrom(netip.Addr{}, 9000))
			if err != nil {
				b.Fatal(err)
			}
			to := netip.AddrPortFrom(addrA, 40000)
			payload := make([]byte, size)
			b.ReportAllocs()
			b.SetBytes(int64(size))
			sent := link.frames
			for b.Loop() {
				if err := c.TryWriteTo(payload, to); err != nil {
					b.Fatal(err)
				}
			}
			if link.frames-sent != b.N {
				b.Fatalf("%d frames out for %d datagrams", link.frames-sent, b.N)
			}
		})
	}
}

// A UDP round trip between two real-time stacks over a Pipe, through the
// blocking calls: the driver's goroutines, the loop lock and the wake-ups.
func BenchmarkDriverUDPRoundTrip(b *testing.B) {
	a, bs, _, _ := pipeStacks(b)
	srv, err := bs.ListenUDP(netip.AddrPortFrom(netip.Addr{}, 9000))
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			n, from, err := srv.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			srv.WriteToUDPAddrPort(buf[:n], from)
		}
	}()
	defer func() { srv.Close(); <-done }()
	c, err := a.ListenUDP(netip.AddrPort{})
	if err != nil {
		b.Fatal(err)
	}
	to := netip.AddrPortFrom(addrB, 9000)
	msg, buf := make([]byte, 64), make([]byte, 2048)
	roundTrip := func() {
		if _, err := c.WriteToUDPAddrPort(msg, to); err != nil {
			b.Fatal(err)
		}
		if n, _, err := c.ReadFromUDPAddrPort(buf); err != nil || n != len(msg) {
			b.Fatalf("echo: %d bytes, %v", n, err)
		}
	}
	roundTrip() // resolves ARP
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		roundTrip()
	}
}

// A deadline set while Accept is blocked, after an earlier one was cleared,
// ends the Accept.
func TestDriverListenerDeadlineWhileBlocked(t *testing.T) {
	a, _, _, _ := pipeStacks(t)
	ln, err := a.ListenTCP(netip.AddrPortFrom(netip.Addr{}, 5002))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ln.SetDeadline(time.Now().Add(-time.Second))
	if _, err := ln.Accept(); !isTimeout(err) {
		t.Fatalf("accept past the deadline: %v, want a timeout", err)
	}
	ln.SetDeadline(time.Time{})
	errc := make(chan error, 1)
	go func() { _, err := ln.Accept(); errc <- err }()
	waitParked(t, "(*TCPListener).AcceptTCP")
	ln.SetDeadline(time.Now())
	if err := <-errc; !isTimeout(err) {
		t.Fatalf("accept when the deadline moved to now: %v, want a timeout", err)
	}
}

// A 1-byte TCP request and response between two real-time stacks over a
// Pipe (the bench's rr case): no allocation per exchange, so no collector
// pauses in its latency.
func BenchmarkDriverTCPRoundTrip(b *testing.B) {
	a, bs, _, _ := pipeStacks(b)
	ln, err := bs.ListenTCP(netip.AddrPortFrom(netip.Addr{}, 9001))
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.AcceptTCP()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetNoDelay(true)
		buf := make([]byte, 1)
		for {
			if _, err := c.Read(buf); err != nil {
				return
			}
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	}()
	c, err := a.DialTCP(bounded(b), netip.AddrPort{}, netip.AddrPortFrom(addrB, 9001))
	if err != nil {
		b.Fatal(err)
	}
	defer func() { c.Close(); ln.Close(); <-done }()
	c.SetNoDelay(true)
	msg := []byte{1}
	roundTrip := func() {
		if _, err := c.Write(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, msg); err != nil {
			b.Fatal(err)
		}
	}
	for range 100 {
		roundTrip()
	}
	b.ReportAllocs()
	for b.Loop() {
		roundTrip()
	}
}
