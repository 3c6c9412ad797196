package netstack

import (
	"errors"
	"io"
	"math/rand/v2"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/tapstack/tapstack/mono"
	"github.com/tapstack/tapstack/tcp"
)

func TestTCPConnectEchoClose(t *testing.T) {
	n := newTestNet(t)
	a, b, _, _ := n.pair(1500)
	c, sv := n.tcpPair(a, b, 80)
	if _, err := c.TryWrite([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	var got int
	n.runUntilCond(func() bool {
		k, _ := sv.TryRead(buf[got:])
		got += k
		return got == 5
	}, time.Second, a, b)
	if string(buf[:got]) != "hello" {
		t.Fatalf("server read %q", buf[:got])
	}
	if c.RemoteAddrPort() != netip.AddrPortFrom(addrB, 80) || sv.LocalAddrPort() != netip.AddrPortFrom(addrB, 80) ||
		sv.RemoteAddrPort() != c.LocalAddrPort() {
		t.Fatalf("addresses: client %v->%v server %v->%v", c.LocalAddr(), c.RemoteAddr(), sv.LocalAddr(), sv.RemoteAddr())
	}
	n.runUntilCond(func() bool { return c.BytesAcked() == 5 }, time.Second, a, b)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	var eof bool
	n.runUntilCond(func() bool {
		_, err := sv.TryRead(buf)
		eof = err == io.EOF
		return eof
	}, time.Second, a, b)
	if !eof {
		t.Fatal("server saw no EOF")
	}
	if err := sv.Close(); err != nil {
		t.Fatal(err)
	}
	n.runUntilCond(func() bool { return false }, time.Second, a, b)
	a.mu.Lock()
	tw := a.tcp.conns.get(c.key())
	a.mu.Unlock()
	if tw == nil || tw.c.State() != tcp.TimeWait {
		t.Fatalf("client side not in TIME-WAIT")
	}
	if b.tcp.conns.len() != 0 {
		t.Fatalf("server side still holds %d connections", b.tcp.conns.len())
	}
	n.runUntilCond(func() bool { return false }, 61*time.Second, a, b)
	if a.tcp.conns.len() != 0 {
		t.Fatalf("after 2MSL: %d connections", a.tcp.conns.len())
	}
}

func TestTCPConnectionRefused(t *testing.T) {
	n := newTestNet(t)
	a, b, _, _ := n.pair(1500)
	c, err := a.StartDialTCP(netip.AddrPort{}, netip.AddrPortFrom(addrB, 81))
	if err != nil {
		t.Fatal(err)
	}
	n.runUntilCond(func() bool { return c.State() == tcp.Closed }, time.Second, a, b)
	_, err = c.TryRead(make([]byte, 1))
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("read error %v, want ECONNREFUSED", err)
	}
	if b.Stats().TCP.NoPort != 1 {
		t.Fatalf("NoPort %d", b.Stats().TCP.NoPort)
	}
}

func TestTCPBulkBothWays(t *testing.T) {
	size := int64(100 << 20)
	if testing.Short() {
		size = 8 << 20
	}
	n := newTestNet(t)
	a, b, _, _ := n.pair(1500)
	c, sv := n.tcpPair(a, b, 5001)
	start := time.Now()
	n.runTransfers(time.Hour, []*Stack{a, b}, newTransfer(c, sv, size, 1), newTransfer(sv, c, size, 2))
	t.Logf("%d MiB each way in %v of wall time, %v virtual", size>>20, time.Since(start), n.now)
}

// TestTCPBulkLossy drops frames deterministically in both directions
// (every 53rd frame from A, every 71st from B, handshake aside) and checks
// both streams arrive intact.
func TestTCPBulkLossy(t *testing.T) {
	for _, cc := range []struct {
		name string
		new  func(int) tcp.CongestionControl
	}{{"newreno", tcp.NewNewReno}, {"cubic", tcp.NewCubic}} {
		t.Run(cc.name, func(t *testing.T) { testBulkLossy(t, cc.new) })
	}
}

func testBulkLossy(t *testing.T, newCC func(int) tcp.CongestionControl) {
	size := int64(16 << 20)
	if testing.Short() {
		size = 2 << 20
	}
	n := newTestNet(t)
	a, b, na, _ := n.pair(1500)
	a.tcp.cfg.NewCongestionControl = newCC
	b.tcp.cfg.NewCongestionControl = newCC
	c, sv := n.tcpPair(a, b, 5002)
	var fromA, fromB int
	n.drop = func(from *NIC, frame []byte) bool {
		if from == na {
			fromA++
			return fromA%53 == 0
		}
		fromB++
		return fromB%71 == 0
	}
	n.runTransfers(time.Hour, []*Stack{a, b}, newTransfer(c, sv, size, 3), newTransfer(sv, c, size, 4))
	sa, sb := a.Stats().TCP, b.Stats().TCP
	t.Logf("virtual %v; A: retransmits %d fast %d timeouts %d; B: retransmits %d fast %d timeouts %d",
		n.now, sa.Retransmits, sa.FastRetransmits, sa.Timeouts, sb.Retransmits, sb.FastRetransmits, sb.Timeouts)
	if a.Stats().IPv4.TooLong != 0 || b.Stats().IPv4.TooLong != 0 {
		t.Errorf("segments over the MTU were dropped")
	}
	if sa.FastRetransmits == 0 || sb.FastRetransmits == 0 {
		t.Errorf("no fast retransmits: losses were only recovered by timeouts")
	}
}

// A SYN for a tuple in TIME-WAIT with a higher sequence number opens a new
// connection (RFC 9293 §3.6.1): the server closed first, the client
// redials from the same port.
func TestTCPTimeWaitReuse(t *testing.T) {
	n := newTestNet(t)
	a, b, _, _ := n.pair(1500)
	ln, err := b.ListenTCP(netip.AddrPortFrom(addrB, 80))
	if err != nil {
		t.Fatal(err)
	}
	local := netip.AddrPortFrom(addrA, 40000)
	for round := range 2 {
		c, err := a.StartDialTCP(local, netip.AddrPortFrom(addrB, 80))
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		var sv *TCPConn
		n.runUntilCond(func() bool {
			if sv == nil {
				sv, _ = ln.TryAccept()
			}
			return sv != nil && c.State() == tcp.Established
		}, 10*time.Second, a, b)
		if sv == nil {
			t.Fatalf("round %d: not accepted; client %v", round, c.State())
		}
		sv.Close()
		n.runUntilCond(func() bool { return c.State() == tcp.CloseWait }, time.Second, a, b)
		c.Close()
		n.runUntilCond(func() bool { return c.State() == tcp.Closed }, time.Second, a, b)
		b.mu.Lock()
		st := b.tcp.conns.get(tcpKey{local: netip.AddrPortFrom(addrB, 80), remote: local}).c.State()
		b.mu.Unlock()
		if st != tcp.TimeWait {
			t.Fatalf("round %d: server side %v, want TIME-WAIT", round, st)
		}
	}
}

// With the SYN queue full, a listener answers with SYN cookies and still
// completes the handshakes.
func TestTCPSYNCookiesWhenQueueFull(t *testing.T) {
	n := newTestNet(t)
	a, b, _, _ := n.pair(1500)
	ln, err := b.ListenTCP(netip.AddrPortFrom(addrB, 80))
	if err != nil {
		t.Fatal(err)
	}
	ln.SetBacklog(2)
	for range 5 {
		c, err := a.StartDialTCP(netip.AddrPort{}, netip.AddrPortFrom(addrB, 80))
		if err != nil {
			t.Fatal(err)
		}
		// Data queued now follows the handshake, and its retransmission
		// carries the cookie again if the accept queue was full.
		if _, err := c.TryWrite([]byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	accepted := 0
	n.runUntilCond(func() bool {
		for {
			sv, err := ln.TryAccept()
			if err != nil {
				break
			}
			accepted++
			sv.Close()
		}
		return accepted == 5
	}, time.Minute, a, b)
	st := b.Stats().TCP
	if accepted != 5 || st.CookiesSent == 0 || st.CookiesAccepted != st.CookiesSent {
		t.Fatalf("accepted %d; cookies sent %d accepted %d", accepted, st.CookiesSent, st.CookiesAccepted)
	}
}

// Config.TCP reaches the stack's connections: settings given apply, zero
// ones take the defaults, and two stacks may share one Config.
func TestConfigTCPSettings(t *testing.T) {
	n := newTestNet(t)
	cfg := tcp.Config{RTOMin: 300 * time.Millisecond, ReceiveBufferMax: 16 << 10, NoWindowScale: true}
	cfg.Defaults() // as a user may have: the stacks still get their own working space
	a := New(Config{Clock: func() mono.Time { return n.now }, Rand: rand.NewPCG(1, 1), TCP: cfg})
	b := New(Config{Clock: func() mono.Time { return n.now }, Rand: rand.NewPCG(2, 2)})
	n.join(a, b, 1500)
	client, server := n.tcpPair(a, b, 80)
	ci, si := client.Info(), server.Info()
	switch {
	case ci.RTO != 300*time.Millisecond:
		t.Errorf("client RTO %v, want its RTOMin 300ms", ci.RTO)
	case si.RTO != 200*time.Millisecond:
		t.Errorf("server RTO %v, want the default floor 200ms", si.RTO)
	case si.SndWnd > 16<<10:
		t.Errorf("server sees a window of %d from a client bounded at 16 KiB", si.SndWnd)
	case ci.SndWnd != 65535:
		t.Errorf("client sees a window of %d; without window scaling it is 65535", ci.SndWnd)
	}
}
