package tcp

import (
	"errors"
	"io"
	"testing"
	"time"
)

// One test per figure of RFC 9293 §3.5-3.6, from each side where our
// connection can play it. Our connection is TCP Peer A unless the test says
// it plays B; sequence numbers are the figures'.

// Figure 6: the basic three-way handshake, then data.
func TestFigure6HandshakeActive(t *testing.T) {
	h := newHarness(t)
	h.c.SetISS(100)
	if err := h.c.Connect(h.now); err != nil {
		t.Fatal(err)
	}
	h.wantState(SynSent)
	h.Expect(S{Flags: SYN, Seq: 100, Wnd: hWnd, Opts: synOpts})
	h.Send(S{Flags: SYN | ACK, Seq: 300, Ack: 101, Wnd: hWnd, Opts: synOpts})
	h.wantState(Established)
	h.Expect(S{Flags: ACK, Seq: 101, Ack: 301, Wnd: hWnd})
	h.Write("data")
	h.Expect(S{Flags: ACK | PSH, Seq: 101, Ack: 301, Wnd: hWnd, Data: []byte("data")})
	if ev := h.c.TakeEvents(); ev&EventEstablished == 0 {
		t.Errorf("events %b: no EventEstablished", ev)
	}
}

func TestFigure6HandshakePassive(t *testing.T) {
	h := newHarness(t)
	h.c.SetISS(300)
	if err := h.c.Listen(h.now, false); err != nil {
		t.Fatal(err)
	}
	h.wantState(Listen)
	h.Send(S{Flags: SYN, Seq: 100, Wnd: 65535, Opts: synOpts})
	h.wantState(SynReceived)
	h.Expect(S{Flags: SYN | ACK, Seq: 300, Ack: 101, Wnd: hWnd, Opts: synOpts})
	h.Send(S{Flags: ACK, Seq: 101, Ack: 301, Wnd: 65535})
	h.wantState(Established)
	h.ExpectNothing()
	h.c.quickAcks = 0
	h.Send(S{Flags: ACK | PSH, Seq: 101, Ack: 301, Wnd: 65535, Data: []byte("data")})
	if got := h.ReadAll(); got != "data" {
		t.Fatalf("read %q", got)
	}
	// The ACK waits for the delayed-ACK timer.
	h.ExpectNothing()
	if d := h.AdvanceToDeadline(); d != 40*time.Millisecond {
		t.Errorf("delayed ACK after %v, want 40ms", d)
	}
	h.Expect(S{Flags: ACK, Seq: 301, Ack: 105, Wnd: hWnd})
}

// Figure 7: simultaneous open.
func TestFigure7SimultaneousOpen(t *testing.T) {
	h := newHarness(t)
	h.c.SetISS(100)
	h.c.Connect(h.now)
	h.Expect(S{Flags: SYN, Seq: 100, Wnd: hWnd, Opts: synOpts})
	h.Send(S{Flags: SYN, Seq: 300, Wnd: hWnd, Opts: synOpts}) // line 3
	h.wantState(SynReceived)
	h.Expect(S{Flags: SYN | ACK, Seq: 100, Ack: 301, Wnd: hWnd, Opts: synOpts}) // line 5
	h.Send(S{Flags: SYN | ACK, Seq: 300, Ack: 101, Wnd: hWnd, Opts: synOpts})   // line 6
	h.wantState(Established)
	h.ExpectNothing()
	if h.c.SndUna != 101 || h.c.RcvNxt != 301 {
		t.Fatalf("SND.UNA %d RCV.NXT %d, want 101 301", h.c.SndUna, h.c.RcvNxt)
	}
	// B's other segment of line 7, our SYN,ACK arriving there, needs no
	// answer; were B to send its ACK too, it is a plain ACK.
	h.Send(S{Flags: ACK, Seq: 301, Ack: 101, Wnd: hWnd})
	h.ExpectNothing()
}

// Figure 8: recovery from an old duplicate SYN, A's side: the SYN,ACK
// acknowledges the old SYN, A resets it, then the real SYN,ACK arrives.
func TestFigure8OldDuplicateSYNActive(t *testing.T) {
	h := newHarness(t)
	h.c.SetISS(100)
	h.c.Connect(h.now)
	h.Expect(S{Flags: SYN, Seq: 100, Wnd: hWnd, Opts: synOpts})
	h.Send(S{Flags: SYN | ACK, Seq: 300, Ack: 91, Wnd: hWnd, Opts: synOpts}) // line 4
	h.Expect(S{Flags: RST, Seq: 91})                                         // line 5
	h.wantState(SynSent)
	h.Send(S{Flags: SYN | ACK, Seq: 400, Ack: 101, Wnd: hWnd, Opts: synOpts}) // line 7
	h.wantState(Established)
	h.Expect(S{Flags: ACK, Seq: 101, Ack: 401, Wnd: hWnd}) // line 8
}

// Figure 8, B's side: the RST for the old SYN returns B to LISTEN (our
// SYN-RECEIVED connection closes; its listener keeps listening), and the
// real SYN starts a new one.
func TestFigure8OldDuplicateSYNPassive(t *testing.T) {
	h := newHarness(t)
	h.c.SetISS(300)
	h.c.Listen(h.now, false)
	h.Send(S{Flags: SYN, Seq: 90, Wnd: hWnd, Opts: synOpts}) // line 3
	h.Expect(S{Flags: SYN | ACK, Seq: 300, Ack: 91, Wnd: hWnd, Opts: synOpts})
	h.Send(S{Flags: RST, Seq: 91}) // line 5
	h.wantState(Closed)
	h.ExpectNothing()
	if h.c.prev != SynReceived {
		t.Fatalf("closed from %v", h.c.prev)
	}
	h.c = NewConn(&h.cfg, h.c.Endpoint())
	h.c.SetISS(400)
	h.c.Listen(h.now, false)
	h.Send(S{Flags: SYN, Seq: 100, Wnd: hWnd, Opts: synOpts}) // line 6
	h.Expect(S{Flags: SYN | ACK, Seq: 400, Ack: 101, Wnd: hWnd, Opts: synOpts})
	h.Send(S{Flags: ACK, Seq: 101, Ack: 401, Wnd: hWnd}) // line 8
	h.wantState(Established)
}

// Figure 9: half-open connection discovery. A crashed and reopens; B,
// still ESTABLISHED, answers A's SYN with an ACK, A resets, B aborts.
func TestFigure9HalfOpenDiscoveryA(t *testing.T) {
	h := newHarness(t)
	h.c.SetISS(400)
	h.c.Connect(h.now)
	h.Expect(S{Flags: SYN, Seq: 400, Wnd: hWnd, Opts: synOpts}) // line 3
	h.Send(S{Flags: ACK, Seq: 300, Ack: 100, Wnd: hWnd})        // line 4
	h.Expect(S{Flags: RST, Seq: 100})                           // line 5
	h.wantState(SynSent)
}

func TestFigure9HalfOpenDiscoveryB(t *testing.T) {
	h := establishedAt(t, 300, 100) // B: SND.NXT 300, RCV.NXT 100
	h.Send(S{Flags: SYN, Seq: 400, Wnd: hWnd, Opts: synOpts})
	h.Expect(S{Flags: ACK, Seq: 300, Ack: 100, Wnd: hWnd}) // line 4
	h.Send(S{Flags: RST, Seq: 100})                        // line 5
	h.wantState(Closed)
	if !errors.Is(h.c.Err(), ErrConnReset) {
		t.Fatalf("err %v, want reset", h.c.Err())
	}
	h.ExpectNothing()
}

// Figure 10: the active side causes half-open discovery: B sends data to A,
// which has no connection, and A's RST aborts B.
func TestFigure10ActiveSideCausesDiscovery(t *testing.T) {
	a := newHarness(t) // A crashed: CLOSED
	a.Send(S{Flags: ACK | PSH, Seq: 300, Ack: 100, Wnd: hWnd, Data: make([]byte, 10)})
	a.Expect(S{Flags: RST, Seq: 100}) // line 3

	b := establishedAt(t, 300, 100)
	b.Write("0123456789")
	b.Expect(S{Flags: ACK | PSH, Seq: 300, Ack: 100, Wnd: hWnd, Data: []byte("0123456789")})
	b.Send(S{Flags: RST, Seq: 100})
	b.wantState(Closed)
	if !errors.Is(b.c.Err(), ErrConnReset) {
		t.Fatalf("err %v", b.c.Err())
	}
}

// Figure 11: an old duplicate SYN initiates a reset on two passive sockets.
func TestFigure11OldSYNTwoPassive(t *testing.T) {
	b := newHarness(t)
	b.c.SetISS(100)
	b.c.Listen(b.now, false)
	b.Send(S{Flags: SYN, Seq: 200, Wnd: hWnd, Opts: synOpts}) // line 2: the old SYN (Z=200)
	b.Expect(S{Flags: SYN | ACK, Seq: 100, Ack: 201, Wnd: hWnd, Opts: synOpts})

	a := newHarness(t)
	a.c.Listen(a.now, false)
	a.Send(S{Flags: SYN | ACK, Seq: 100, Ack: 201, Wnd: hWnd, Opts: synOpts}) // line 3
	a.Expect(S{Flags: RST, Seq: 201})                                         // line 4
	a.wantState(Listen)

	b.Send(S{Flags: RST, Seq: 201}) // line 5: B returns to LISTEN
	b.wantState(Closed)
	if b.c.prev != SynReceived {
		t.Fatalf("closed from %v", b.c.prev)
	}
}

// Figure 12: normal close sequence, A closing first.
func TestFigure12NormalCloseA(t *testing.T) {
	h := established(t) // SND.NXT 101, RCV.NXT 301
	if err := h.c.Close(h.now); err != nil {
		t.Fatal(err)
	}
	h.wantState(FinWait1)
	h.Expect(S{Flags: FIN | ACK, Seq: 101, Ack: 301, Wnd: hWnd}) // line 2
	h.Send(S{Flags: ACK, Seq: 301, Ack: 102, Wnd: hWnd})         // line 3
	h.wantState(FinWait2)
	h.ExpectNothing()
	h.Send(S{Flags: FIN | ACK, Seq: 301, Ack: 102, Wnd: hWnd}) // line 4
	h.wantState(TimeWait)
	h.Expect(S{Flags: ACK, Seq: 102, Ack: 302, Wnd: hWnd}) // line 5
	if n, err := h.c.Read(h.now, make([]byte, 10)); n != 0 || err != io.EOF {
		t.Fatalf("Read after FIN: %d, %v", n, err)
	}
	// 2 MSL later, CLOSED.
	if d := h.AdvanceToDeadline(); d != 60*time.Second {
		t.Fatalf("TIME-WAIT lasted %v", d)
	}
	h.wantState(Closed)
	h.ExpectNothing()
}

// Figure 12, B's side.
func TestFigure12NormalCloseB(t *testing.T) {
	h := establishedAt(t, 300, 100)
	h.Send(S{Flags: FIN | ACK, Seq: 100, Ack: 300, Wnd: hWnd})
	h.wantState(CloseWait)
	h.Expect(S{Flags: ACK, Seq: 300, Ack: 101, Wnd: hWnd}) // line 3
	h.c.Close(h.now)
	h.wantState(LastAck)
	h.Expect(S{Flags: FIN | ACK, Seq: 300, Ack: 101, Wnd: hWnd}) // line 4
	h.Send(S{Flags: ACK, Seq: 101, Ack: 301, Wnd: hWnd})         // line 5
	h.wantState(Closed)
	if h.c.Err() != nil {
		t.Fatalf("clean close reported %v", h.c.Err())
	}
}

// Figure 13: simultaneous close.
func TestFigure13SimultaneousClose(t *testing.T) {
	h := established(t)
	h.c.Close(h.now)
	h.Expect(S{Flags: FIN | ACK, Seq: 101, Ack: 301, Wnd: hWnd}) // line 2
	h.Send(S{Flags: FIN | ACK, Seq: 301, Ack: 101, Wnd: hWnd})   // B's FIN crossed ours
	h.wantState(Closing)
	h.Expect(S{Flags: ACK, Seq: 102, Ack: 302, Wnd: hWnd}) // line 3
	h.Send(S{Flags: ACK, Seq: 302, Ack: 102, Wnd: hWnd})   // line 4
	h.wantState(TimeWait)
	h.ExpectNothing()
	h.Advance(60 * time.Second)
	h.wantState(Closed)
}

// establishedAt is an ESTABLISHED fixture made by setting the TCB directly:
// SND.UNA = SND.NXT = sndNxt, RCV.NXT = rcvNxt, windows of hWnd, MSS 1460.
func establishedAt(t testing.TB, sndNxt, rcvNxt uint32) *harness {
	h := newHarness(t)
	c := h.c
	c.ISS, c.IRS = seqv(sndNxt-1), seqv(rcvNxt-1)
	c.SndUna, c.SndNxt, c.sndCur, c.sndBufSeq = seqv(sndNxt), seqv(sndNxt), seqv(sndNxt), seqv(sndNxt)
	c.RcvNxt, c.rcvAdv, c.lastAckSent = seqv(rcvNxt), seqv(rcvNxt), seqv(rcvNxt)
	c.SndWnd, c.maxSndWnd = hWnd, hWnd
	c.SndWl1, c.SndWl2 = seqv(rcvNxt), seqv(sndNxt)
	c.sndMSS, c.sackOK, c.wsOK = 1460, true, true
	c.newCC()
	c.updateWindow(false)
	c.state = Established
	return h
}
