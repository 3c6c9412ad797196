package netstack

import (
	"net/netip"
	"testing"
	"time"
)

// Deadlines cost a connection nothing until one is set; clearing one that
// was never set makes none.
func TestTCPDeadlinesMadeOnFirstUse(t *testing.T) {
	n := newTestNet(t)
	a, b, _, _ := n.pair(1500)
	c, _ := n.tcpPair(a, b, 80)
	c.SetDeadline(time.Time{})
	c.SetReadDeadline(time.Time{})
	c.SetWriteDeadline(time.Time{})
	if c.deadlines.Load() != nil {
		t.Fatal("clearing deadlines never set made them")
	}
	if got := testing.AllocsPerRun(100, func() { c.SetReadDeadline(time.Time{}) }); got != 0 {
		t.Fatalf("clearing an unset deadline allocates %v times", got)
	}
	c.SetWriteDeadline(time.Now().Add(-time.Second))
	if c.deadlines.Load() == nil {
		t.Fatal("a deadline set but not kept")
	}
	if _, err := c.Write([]byte("x")); !isTimeout(err) {
		t.Fatalf("write past its deadline: %v", err)
	}
	if _, err := c.TryRead(make([]byte, 1)); err != ErrWouldBlock {
		t.Fatalf("read deadline affected by the write deadline: %v", err)
	}
}

// The first deadline of a connection ends a Read or Write already blocked
// without one (net.Conn: deadlines apply to pending calls).
func TestTCPFirstDeadlineEndsBlockedCalls(t *testing.T) {
	a, b, _, _ := pipeStacks(t)
	ln, err := b.ListenTCP(netip.AddrPortFrom(addrB, 80))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := a.DialTCP(bounded(t), netip.AddrPort{}, netip.AddrPortFrom(addrB, 80))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sv, err := ln.AcceptTCP()
	if err != nil {
		t.Fatal(err)
	}
	defer sv.Close()

	errc := make(chan error, 1)
	go func() { _, err := c.Read(make([]byte, 10)); errc <- err }()
	waitParked(t, "(*TCPConn).Read")
	c.SetReadDeadline(time.Now().Add(-time.Second))
	if err := waitErr(t, errc); !isTimeout(err) {
		t.Fatalf("blocked read after a past deadline: %v, want a timeout", err)
	}

	// Nobody reads at the server: the writer blocks once both buffers
	// and the window are full.
	if err := sv.SetReadBuffer(4096); err != nil {
		t.Fatal(err)
	}
	if err := c.SetWriteBuffer(4096); err != nil {
		t.Fatal(err)
	}
	go func() { _, err := c.Write(make([]byte, 1<<20)); errc <- err }()
	waitParked(t, "(*TCPConn).Write")
	c.SetWriteDeadline(time.Now().Add(-time.Second))
	if err := waitErr(t, errc); !isTimeout(err) {
		t.Fatalf("blocked write after a past deadline: %v, want a timeout", err)
	}
}

// waitErr returns the blocked call's result, failing if it never ends.
func waitErr(t *testing.T, errc <-chan error) error {
	t.Helper()
	select {
	case err := <-errc:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("the blocked call did not end")
		return nil
	}
}
