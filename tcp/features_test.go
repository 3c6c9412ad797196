package tcp

import (
	"errors"
	"testing"
	"time"

	"github.com/tapstack/tapstack/mono"
)

// Delayed ACK (RFC 9293 §3.8.6.3, RFC 5681 §4.2): an ACK for at least every
// second full-sized segment, and none later than the timer (40 ms, Linux's
// minimum).
func TestDelayedACKEverySecondSegment(t *testing.T) {
	h := established(t)
	d := payload(1460)
	h.Send(S{Flags: ACK, Seq: 301, Ack: 101, Wnd: hWnd, Data: d})
	h.ExpectNothing()
	h.Send(S{Flags: ACK, Seq: 301 + 1460, Ack: 101, Wnd: hWnd, Data: d})
	h.Expect(S{Flags: ACK, Seq: 101, Ack: 301 + 2920, Wnd: hWnd - 2920})
	h.Send(S{Flags: ACK, Seq: 301 + 2920, Ack: 101, Wnd: hWnd, Data: d[:100]})
	h.ExpectNothing()
	if got := h.AdvanceToDeadline(); got != 40*time.Millisecond {
		t.Fatalf("delayed ACK after %v", got)
	}
	h.Expect(S{Flags: ACK, Seq: 101, Ack: 301 + 3020, Wnd: hWnd - 3020}) // the right edge stays until a read
}

// An ACK owed rides on outgoing data instead of its own segment.
func TestACKPiggybacked(t *testing.T) {
	h := established(t)
	h.Send(S{Flags: ACK | PSH, Seq: 301, Ack: 101, Wnd: hWnd, Data: []byte("req")})
	h.ExpectNothing()
	h.ReadAll()
	h.Write("resp")
	h.Expect(S{Flags: ACK | PSH, Seq: 101, Ack: 304, Wnd: hWnd, Data: []byte("resp")})
	if h.c.delackAt != mono.Never {
		t.Fatal("delayed-ACK timer still armed after the piggybacked ACK")
	}
	h.Advance(50 * time.Millisecond)
	h.ExpectNothing()
}

// Nagle's algorithm (RFC 9293 §3.7.4): a short segment waits while data is
// unacknowledged; NoDelay sends at once.
func TestNagle(t *testing.T) {
	h := established(t)
	h.Write("a")
	h.Expect(S{Flags: ACK | PSH, Seq: 101, Ack: 301, Wnd: hWnd, Data: []byte("a")})
	h.Write("b")
	h.Write("c")
	h.ExpectNothing()
	h.Send(S{Flags: ACK, Seq: 301, Ack: 102, Wnd: hWnd})
	h.Expect(S{Flags: ACK | PSH, Seq: 102, Ack: 301, Wnd: hWnd, Data: []byte("bc")})
	h.c.NoDelay = true
	h.Write("d")
	h.Expect(S{Flags: ACK | PSH, Seq: 104, Ack: 301, Wnd: hWnd, Data: []byte("d")})
}

// Writes queue at most Config.NotsentLowat beyond what has been sent
// (Linux's tcp_notsent_lowat), and a blocked writer hears as soon as the
// sender has taken all but less than half of it, though no ACK freed any of
// the buffer; a negative bound leaves the send buffer alone to limit them.
func TestNotsentLowat(t *testing.T) {
	const lowat = 16 << 10
	data := payload(256 << 10)
	closed := func(t *testing.T, bound int) *harness {
		h := established(t, func(c *Config) { c.NotsentLowat = bound })
		h.Send(S{Flags: ACK, Seq: 301, Ack: 101, Wnd: 0})
		h.c.TakeEvents()
		return h
	}
	t.Run("bounds what waits", func(t *testing.T) {
		h := closed(t, lowat)
		if n, _ := h.c.Write(h.now, data); n != lowat {
			t.Fatalf("a write with nothing sent took %d, want %d", n, lowat)
		}
		h.ExpectNothing()
		if ws := h.c.WriteSpace(); ws != 0 {
			t.Fatalf("write space %d with %d unsent", ws, lowat)
		}
		// The window opens and nothing is acknowledged: what goes out
		// makes room all the same.
		h.Send(S{Flags: ACK, Seq: 301, Ack: 101, Wnd: 12 << 10})
		sent := 0
		for _, sg := range h.Took() {
			sent += len(sg.Data)
		}
		if lowat-sent >= lowat/2 {
			t.Fatalf("sent %d of %d: the test wants less than half left", sent, lowat)
		}
		if ev := h.c.TakeEvents(); ev&EventWritable == 0 {
			t.Errorf("events %v: the writer is not told of the room", ev)
		}
		if ws := h.c.WriteSpace(); ws != sent {
			t.Errorf("write space %d after %d sent, want %d", ws, sent, sent)
		}
	})
	t.Run("not while more than half waits", func(t *testing.T) {
		h := closed(t, lowat)
		h.c.Write(h.now, data)
		h.Send(S{Flags: ACK, Seq: 301, Ack: 101, Wnd: 4 << 10})
		h.Took()
		if ev := h.c.TakeEvents(); ev&EventWritable != 0 {
			t.Errorf("events %v with more than half of the bound unsent", ev)
		}
	})
	t.Run("negative: the send buffer alone", func(t *testing.T) {
		h := closed(t, -1)
		if n, _ := h.c.Write(h.now, data); n != bufInitial {
			t.Fatalf("a write took %d, want the whole starting buffer %d", n, bufInitial)
		}
	})
	t.Run("default", func(t *testing.T) {
		if h := closed(t, 0); h.c.cfg.NotsentLowat != 128<<10 {
			t.Fatalf("default bound %d, want 128 KiB", h.c.cfg.NotsentLowat)
		}
	})
}

// Autocorking: with Nagle's algorithm off, a write's short last segment
// waits while two full segments are unacknowledged on a path of short round
// trips, with a tail loss probe to bound the wait, until the next write
// fills it or an ACK comes; otherwise it goes at once.
func TestAutocork(t *testing.T) {
	const mss = 1460
	full := func(sq int, data []byte) S {
		return S{Flags: ACK, Seq: seqv(uint32(sq)), Ack: 301, Wnd: hWnd, Data: data}
	}
	last := func(sq int, data []byte) S {
		s := full(sq, data)
		s.Flags |= PSH
		return s
	}
	setup := func(t *testing.T, tweak ...func(*Config)) (*harness, []byte) {
		h := established(t, append([]func(*Config){func(c *Config) { c.NoTLP = false }}, tweak...)...)
		h.c.NoDelay = true
		if h.c.srtt <= 0 || h.c.srtt > corkRTTMax {
			t.Fatalf("SRTT %v after the handshake: want a short path", h.c.srtt)
		}
		return h, payload(3*mss + 100)
	}
	t.Run("next write fills it", func(t *testing.T) {
		h, data := setup(t)
		h.Write(string(data[:2*mss+100]))
		h.Expect(full(101, data[:mss]), full(101+mss, data[mss:2*mss]))
		h.Write(string(data[2*mss+100 : 3*mss]))
		h.Expect(last(101+2*mss, data[2*mss:3*mss]))
		h.Write(string(data[3*mss:]))
		h.ExpectNothing()
		// An ACK sends it: output on input never corks.
		h.Send(S{Flags: ACK, Seq: 301, Ack: 101 + mss, Wnd: hWnd})
		h.Expect(last(101+3*mss, data[3*mss:]))
	})
	t.Run("close sends it with the FIN", func(t *testing.T) {
		h, data := setup(t)
		h.Write(string(data[:2*mss+100]))
		h.Took()
		if err := h.c.Close(h.now); err != nil {
			t.Fatal(err)
		}
		s := last(101+2*mss, data[2*mss:2*mss+100])
		s.Flags |= FIN
		h.Expect(s)
	})
	t.Run("the loss probe sends it when no ACK comes", func(t *testing.T) {
		h, data := setup(t)
		h.Write(string(data[:2*mss+100]))
		h.Took()
		if d := h.AdvanceToDeadline(); d != tlpMin {
			t.Fatalf("probe after %v, want %v", d, tlpMin)
		}
		h.Expect(last(101+2*mss, data[2*mss:2*mss+100]))
	})
	t.Run("less than two full segments in flight", func(t *testing.T) {
		h, data := setup(t)
		h.Write(string(data[:mss+100]))
		h.Expect(full(101, data[:mss]), last(101+mss, data[mss:mss+100]))
	})
	t.Run("turned off", func(t *testing.T) {
		h, data := setup(t, func(c *Config) { c.NoAutocork = true })
		h.Write(string(data[:2*mss+100]))
		h.Expect(full(101, data[:mss]), full(101+mss, data[mss:2*mss]), last(101+2*mss, data[2*mss:2*mss+100]))
	})
	t.Run("no loss probe", func(t *testing.T) {
		h, data := setup(t, func(c *Config) { c.NoTLP = true })
		h.Write(string(data[:2*mss+100]))
		h.Expect(full(101, data[:mss]), full(101+mss, data[mss:2*mss]), last(101+2*mss, data[2*mss:2*mss+100]))
	})
	t.Run("a long round trip", func(t *testing.T) {
		h, data := setup(t)
		h.c.srtt = 2 * corkRTTMax
		h.Write(string(data[:2*mss+100]))
		h.Expect(full(101, data[:mss]), full(101+mss, data[mss:2*mss]), last(101+2*mss, data[2*mss:2*mss+100]))
	})
}

// Zero window: the persist timer probes with Linux's probe (SEQ=SND.UNA-1,
// no data), backing off, until the window opens.
func TestZeroWindowProbe(t *testing.T) {
	h := established(t)
	h.Send(S{Flags: ACK, Seq: 301, Ack: 101, Wnd: 0})
	h.Write("hello")
	h.ExpectNothing()
	rto := h.c.RTO()
	if d := h.AdvanceToDeadline(); d != rto {
		t.Fatalf("first probe after %v, want %v", d, rto)
	}
	probe := S{Flags: ACK, Seq: 100, Ack: 301, Wnd: hWnd}
	h.Expect(probe)
	if d := h.AdvanceToDeadline(); d != 2*rto {
		t.Fatalf("second probe after %v, want %v", d, 2*rto)
	}
	h.Expect(probe)
	h.Send(S{Flags: ACK, Seq: 301, Ack: 101, Wnd: 0}) // still closed
	h.ExpectNothing()
	h.Send(S{Flags: ACK, Seq: 301, Ack: 101, Wnd: 1000}) // opens
	h.Expect(S{Flags: ACK | PSH, Seq: 101, Ack: 301, Wnd: hWnd, Data: []byte("hello")})
	if h.stats.WindowProbes != 2 {
		t.Fatalf("probes %d", h.stats.WindowProbes)
	}
}

// Sender silly-window avoidance: a window that opens by a sliver while
// data is in flight is not used for a tiny segment.
func TestSenderSWS(t *testing.T) {
	h := established(t)
	h.Write(string(payload(3000)))
	h.Took()
	// The peer acknowledges everything but offers only 10 bytes.
	h.Send(S{Flags: ACK, Seq: 301, Ack: 101 + 1460, Wnd: 10})
	h.ExpectNothing()
}

// A window smaller than a segment and than half the largest one offered,
// with nothing in flight, is used when the persist timer fires (the
// override timeout of RFC 9293 §3.8.6.2.1): otherwise nothing would ever
// move. A peer whose buffer shrank after it offered a large window leaves
// exactly this.
func TestSenderSWSOverride(t *testing.T) {
	h := established(t)
	h.Send(S{Flags: ACK, Seq: 301, Ack: 101, Wnd: 1000})
	data := payload(3000)
	h.Write(string(data))
	h.ExpectNothing()
	if d := h.AdvanceToDeadline(); d != h.c.RTO() {
		t.Fatalf("the override came after %v, want the RTO %v", d, h.c.RTO())
	}
	h.Expect(S{Flags: ACK, Seq: 101, Ack: 301, Wnd: hWnd, Data: data[:1000]})
	h.Send(S{Flags: ACK, Seq: 301, Ack: 1101, Wnd: 1000})
	h.ExpectNothing() // the same again waits for the timer
	h.AdvanceToDeadline()
	h.Expect(S{Flags: ACK, Seq: 1101, Ack: 301, Wnd: hWnd, Data: data[1000:2000]})
	if h.stats.WindowProbes != 0 {
		t.Fatalf("%d zero-window probes counted for an open window", h.stats.WindowProbes)
	}
}

// Receiver silly-window avoidance: the window opens only by a useful
// amount after the application reads a little.
func TestReceiverSWS(t *testing.T) {
	h := established(t)
	// Fill the buffer to 100 bytes short of full.
	for off := 0; off < hWnd-100; {
		n := min(1460, hWnd-100-off)
		h.Send(S{Flags: ACK, Seq: seqv(301 + uint32(off)), Ack: 101, Wnd: hWnd, Data: payload(n)})
		off += n
	}
	h.Took()
	if h.c.RcvWnd != 100 {
		t.Fatalf("window %d", h.c.RcvWnd)
	}
	// Reading 10 bytes must not advertise a 110-byte window.
	h.c.Read(h.now, make([]byte, 10))
	h.ExpectNothing()
	h.c.Read(h.now, make([]byte, 3000))
	got := h.Took()
	if len(got) != 1 || got[0].Wnd != 3110 {
		t.Fatalf("window update %v, want one ACK with window 3110", got)
	}
}

// Keepalive: after the idle time, a probe every interval; after KeepCount
// unanswered, ETIMEDOUT. An answer resets the count.
func TestKeepalive(t *testing.T) {
	h := established(t, func(c *Config) { c.KeepCount = 3 })
	h.c.SetKeepAlive(h.now, true, 10*time.Second)
	if d := h.AdvanceToDeadline(); d != 10*time.Second {
		t.Fatalf("first probe after %v", d)
	}
	probe := S{Flags: ACK, Seq: 100, Ack: 301, Wnd: hWnd}
	h.Expect(probe)
	h.Send(S{Flags: ACK, Seq: 301, Ack: 101, Wnd: hWnd}) // the answer
	if d := h.AdvanceToDeadline(); d != 10*time.Second {
		t.Fatalf("probe after an answer after %v", d)
	}
	h.Expect(probe)
	for range 2 {
		if d := h.AdvanceToDeadline(); d != 75*time.Second {
			t.Fatalf("probe interval %v", d)
		}
		h.Expect(probe)
	}
	h.AdvanceToDeadline()
	h.wantState(Closed)
	if !errors.Is(h.c.Err(), ErrTimeout) {
		t.Fatalf("err %v", h.c.Err())
	}
}

// TIME-WAIT: a SYN with a higher sequence number reopens the tuple; one
// with a lower one gets a challenge ACK. With timestamps, a newer
// timestamp decides.
func TestTimeWaitReuse(t *testing.T) {
	h := cellFixture(t, TimeWait)
	h.Send(S{Flags: SYN, Seq: 200, Wnd: hWnd, Opts: synOpts})
	h.Expect(S{Flags: ACK, Seq: 102, Ack: 302, Wnd: hWnd})
	h.wantState(TimeWait)
	h.Send(S{Flags: SYN, Seq: 5000, Wnd: hWnd, Opts: synOpts})
	h.ExpectNothing()
	h.wantState(Closed)
	if h.c.TakeEvents()&EventReuse == 0 {
		t.Fatal("no EventReuse")
	}
	if iss := h.c.ReuseISS(); iss != 102+65537 {
		t.Fatalf("reuse ISS %d", iss)
	}
}

func TestTimeWaitRestartsOnFIN(t *testing.T) {
	h := cellFixture(t, TimeWait)
	h.Advance(30 * time.Second)
	h.Send(S{Flags: FIN | ACK, Seq: 301, Ack: 102, Wnd: hWnd}) // the peer's FIN again
	h.Expect(S{Flags: ACK, Seq: 102, Ack: 302, Wnd: hWnd})
	if d := h.AdvanceToDeadline(); d != 60*time.Second {
		t.Fatalf("TIME-WAIT not restarted: ended after %v", d)
	}
	h.wantState(Closed)
}

// RFC 5961 §3: a RST in the window but not at RCV.NXT gets a challenge
// ACK and changes nothing; one outside the window is dropped silently; only
// the exact one resets.
func TestRFC5961BlindReset(t *testing.T) {
	h := established(t)
	h.Send(S{Flags: RST, Seq: 301 + 1000})
	h.Expect(S{Flags: ACK, Seq: 101, Ack: 301, Wnd: hWnd})
	h.wantState(Established)
	h.Send(S{Flags: RST, Seq: 301 + hWnd + 5})
	h.ExpectNothing()
	h.Send(S{Flags: RST | ACK, Seq: 301, Ack: 101})
	h.wantState(Closed)
	if h.stats.ChallengeACKs != 1 {
		t.Fatalf("challenge ACKs %d", h.stats.ChallengeACKs)
	}
}

// RFC 5961 §4: a SYN in a synchronized state, in the window or not, gets a
// challenge ACK; the connection stays.
func TestRFC5961BlindSYN(t *testing.T) {
	h := established(t)
	for _, sq := range []uint32{301, 301 + 100, 7} {
		h.Send(S{Flags: SYN, Seq: seqv(sq), Wnd: hWnd, Opts: synOpts})
		h.Expect(S{Flags: ACK, Seq: 101, Ack: 301, Wnd: hWnd})
		h.wantState(Established)
		h.Advance(h.cfg.InvalidRateLimit)
	}
}

// RFC 5961 §7: challenge ACKs, and ACKs for empty segments outside the
// window, go at most once per InvalidRateLimit (500 ms, as Linux); data
// outside the window always gets its duplicate ACK.
func TestChallengeACKRateLimit(t *testing.T) {
	h := established(t)
	challenge := S{Flags: ACK, Seq: 101, Ack: 301, Wnd: hWnd}
	h.Send(S{Flags: SYN, Seq: 401, Wnd: hWnd, Opts: synOpts})
	h.Expect(challenge)
	h.Send(S{Flags: RST, Seq: 301 + 1000})
	h.Send(S{Flags: ACK, Seq: 301 + 2*hWnd, Ack: 101, Wnd: hWnd})
	h.ExpectNothing()
	h.Send(S{Flags: ACK, Seq: 101, Ack: 101, Wnd: hWnd, Data: payload(100)}) // old data
	dsack := challenge
	dsack.Opts.NumSACK, dsack.Opts.SACKBlocks[0] = 1, SACKBlock{101, 201}
	h.Expect(dsack)
	h.Advance(h.cfg.InvalidRateLimit - time.Millisecond)
	h.Send(S{Flags: SYN, Seq: 7, Wnd: hWnd, Opts: synOpts})
	h.ExpectNothing()
	h.Advance(time.Millisecond)
	h.Send(S{Flags: RST, Seq: 301 + 1000})
	h.Expect(challenge)
	if h.stats.ChallengeACKs != 2 || h.stats.ACKsRateLimited != 3 {
		t.Fatalf("challenge ACKs %d, rate-limited %d", h.stats.ChallengeACKs, h.stats.ACKsRateLimited)
	}
	h.wantState(Established)
}

// RFC 5961 §5: data whose ACK acknowledges what was never sent, or is older
// than the largest window, is answered with an ACK and not accepted.
func TestRFC5961BlindDataInjection(t *testing.T) {
	h := established(t)
	h.Send(S{Flags: ACK | PSH, Seq: 301, Ack: 101 + 10, Wnd: hWnd, Data: []byte("evil")})
	h.Expect(S{Flags: ACK, Seq: 101, Ack: 301, Wnd: hWnd})
	// Challenge ACKs are rate-limited, data or not (as Linux's; the
	// kernel-reference test checks it against the kernel).
	h.Send(S{Flags: ACK | PSH, Seq: 301, Ack: 101 + 10, Wnd: hWnd, Data: []byte("evil")})
	h.ExpectNothing()
	h.Advance(time.Second)
	h.Send(S{Flags: ACK | PSH, Seq: 301, Ack: seqv(101).Sub(hWnd + 10), Wnd: hWnd, Data: []byte("evil")})
	h.Expect(S{Flags: ACK, Seq: 101, Ack: 301, Wnd: hWnd})
	if h.c.Readable() != 0 {
		t.Fatal("injected data accepted")
	}
	// An old but plausible ACK (within the window behind SND.UNA) is fine.
	h.Send(S{Flags: ACK | PSH, Seq: 301, Ack: 100, Wnd: hWnd, Data: []byte("ok")})
	if h.ReadAll() != "ok" {
		t.Fatal("valid data refused")
	}
}

// Window scaling and timestamps are negotiated from the SYNs (RFC 7323):
// the peer's window is scaled by its shift, ours by ours, and every segment
// carries timestamps echoing TS.Recent.
func TestWindowScaleAndTimestamps(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.NoTimestamps = false; c.ReceiveBufferMax = 1 << 20 })
	h.c.SetISS(100)
	h.c.Connect(h.now)
	syn := h.Took()[0]
	if !syn.Opts.HasWindowScale || syn.Opts.WindowScale != 5 || !syn.Opts.HasTimestamps || syn.Opts.TSEcr != 0 {
		t.Fatalf("SYN options %v, want wscale 5 and TS", syn.Opts)
	}
	peer := synOpts
	peer.WindowScale = 3
	peer.HasTimestamps, peer.TSVal, peer.TSEcr = true, 7777, syn.Opts.TSVal
	h.Send(S{Flags: SYN | ACK, Seq: 300, Ack: 101, Wnd: 1000, Opts: peer})
	ack := h.Took()[0]
	// The scale fits the largest buffer; the window offered is the
	// autotuned buffer's start.
	if ack.Opts.TSEcr != 7777 || ack.Wnd != uint16(bufInitial>>5) {
		t.Fatalf("ACK %v", ack)
	}
	if h.c.SndWnd != 1000 { // a SYN's window is not scaled
		t.Fatalf("SND.WND %d", h.c.SndWnd)
	}
	h.Send(S{Flags: ACK, Seq: 301, Ack: 101, Wnd: 1000, Opts: Options{HasTimestamps: true, TSVal: 7778, TSEcr: ack.Opts.TSVal}})
	if h.c.SndWnd != 8000 || h.c.TSRecent != 7778 {
		t.Fatalf("SND.WND %d TS.Recent %d", h.c.SndWnd, h.c.TSRecent)
	}
	if h.c.MSS() != 1460-12 {
		t.Fatalf("MSS %d, want 1448 with timestamps", h.c.MSS())
	}
	// PAWS: an older timestamp is rejected with an ACK.
	h.Send(S{Flags: ACK | PSH, Seq: 301, Ack: 101, Wnd: 1000, Data: []byte("old"), Opts: Options{HasTimestamps: true, TSVal: 7000}})
	got := h.Took()
	if len(got) != 1 || got[0].Ack != 301 || h.c.Readable() != 0 || h.stats.PAWSRejected != 1 {
		t.Fatalf("PAWS: sent %v, readable %d, rejected %d", got, h.c.Readable(), h.stats.PAWSRejected)
	}
}

// The MSS we send is the smaller of the peer's and our path's; a peer that
// offers none gets 536.
func TestMSSClamp(t *testing.T) {
	for _, tc := range []struct {
		peer Options
		want int
	}{
		{Options{HasMSS: true, MSS: 9000}, 1460},
		{Options{HasMSS: true, MSS: 1000}, 1000},
		{Options{}, 536},
	} {
		h := newHarness(t)
		h.c.SetISS(100)
		h.c.Connect(h.now)
		h.Send(S{Flags: SYN | ACK, Seq: 300, Ack: 101, Wnd: hWnd, Opts: tc.peer})
		if h.c.MSS() != tc.want {
			t.Errorf("peer %v: MSS %d, want %d", tc.peer, h.c.MSS(), tc.want)
		}
	}
}

// Out of order: data beyond a hole is queued and SACKed, the hole's arrival
// delivers everything, and the queue is bounded.
func TestOutOfOrderAndSACK(t *testing.T) {
	h := established(t)
	h.Send(S{Flags: ACK, Seq: 301 + 100, Ack: 101, Wnd: hWnd, Data: payload(100)})
	want := S{Flags: ACK, Seq: 101, Ack: 301, Wnd: hWnd}
	want.Opts.NumSACK = 1
	want.Opts.SACKBlocks[0] = SACKBlock{401, 501}
	h.Expect(want)
	h.Send(S{Flags: ACK, Seq: 301, Ack: 101, Wnd: hWnd, Data: payload(100)})
	h.Expect(S{Flags: ACK, Seq: 101, Ack: 501, Wnd: hWnd - 200})
	if h.c.Readable() != 200 {
		t.Fatalf("readable %d", h.c.Readable())
	}
	// A duplicate gets a D-SACK block (RFC 2883).
	h.Send(S{Flags: ACK, Seq: 301, Ack: 101, Wnd: hWnd, Data: payload(100)})
	d := S{Flags: ACK, Seq: 101, Ack: 501, Wnd: hWnd - 200}
	d.Opts.NumSACK = 1
	d.Opts.SACKBlocks[0] = SACKBlock{301, 401}
	h.Expect(d)

	q := established(t, func(c *Config) { c.OOOSegmentsMax = 2 })
	for i := 1; i <= 3; i++ {
		q.Send(S{Flags: ACK, Seq: seqv(301 + uint32(i)*200), Ack: 101, Wnd: hWnd, Data: payload(100)})
	}
	if q.c.ooo.len() != 2 || q.stats.OutOfOrderDropped != 1 {
		t.Fatalf("queue %d, dropped %d", q.c.ooo.len(), q.stats.OutOfOrderDropped)
	}
}

// D-SACK (RFC 2883 §4.1): a segment held out of order that comes again is
// reported first, then the block holding it; a segment partly below
// RCV.NXT has that part reported. (Linux does both; see the
// kernel-reference test.)
func TestDSACKForDuplicates(t *testing.T) {
	h := established(t)
	h.Send(S{Flags: ACK, Seq: 301, Ack: 101, Wnd: hWnd, Data: payload(100)})
	h.Advance(time.Second) // the delayed ACK
	h.Took()
	h.Send(S{Flags: ACK, Seq: 601, Ack: 101, Wnd: hWnd, Data: payload(100)})
	h.Took()
	h.Send(S{Flags: ACK, Seq: 601, Ack: 101, Wnd: hWnd, Data: payload(100)})
	got := h.Took()
	if len(got) != 1 || got[0].Opts.NumSACK != 2 || got[0].Opts.SACKBlocks[0] != (SACKBlock{601, 701}) ||
		got[0].Opts.SACKBlocks[1] != (SACKBlock{601, 701}) {
		t.Fatalf("out-of-order duplicate: %v, want D-SACK 601-701 then SACK 601-701", got)
	}
	h.Send(S{Flags: ACK, Seq: 351, Ack: 101, Wnd: hWnd, Data: payload(100)})
	got = h.Took()
	if len(got) != 1 || got[0].Ack != 451 || got[0].Opts.NumSACK != 2 || got[0].Opts.SACKBlocks[0] != (SACKBlock{351, 401}) {
		t.Fatalf("half-duplicate segment: %v, want ACK 451 with D-SACK 351-401 first", got)
	}
	// Held data that comes again inside a larger segment: out of order
	// (half of 601-701 again), and in order (the hole filled along with
	// all of 601-701 again).
	h.Send(S{Flags: ACK, Seq: 651, Ack: 101, Wnd: hWnd, Data: payload(100)})
	got = h.Took()
	if len(got) != 1 || got[0].Opts.NumSACK < 1 || got[0].Opts.SACKBlocks[0] != (SACKBlock{651, 701}) {
		t.Fatalf("segment half over held data: %v, want D-SACK 651-701 first", got)
	}
	h.Send(S{Flags: ACK, Seq: 451, Ack: 101, Wnd: hWnd, Data: payload(250)})
	got = h.Took()
	if len(got) != 1 || got[0].Ack != 751 || got[0].Opts.NumSACK != 1 || got[0].Opts.SACKBlocks[0] != (SACKBlock{601, 701}) {
		t.Fatalf("the hole filled by a segment over held data: %v, want ACK 751 with D-SACK 601-701", got)
	}
}

// The block reported for an arrival covers the whole run of data it joins,
// on both sides (it once missed what lay two segments or more to its left).
func TestSACKBlockCoversTheRun(t *testing.T) {
	h := established(t)
	for _, at := range []uint32{401, 501, 701, 601} {
		h.Send(S{Flags: ACK, Seq: seqv(at), Ack: 101, Wnd: hWnd, Data: payload(100)})
	}
	got := h.Took()
	last := got[len(got)-1]
	if last.Opts.NumSACK < 1 || last.Opts.SACKBlocks[0] != (SACKBlock{401, 801}) {
		t.Fatalf("after the run 401-801 closed: %v, want the first block 401-801", last)
	}
	h.Send(S{Flags: ACK, Seq: seqv(901), Ack: 101, Wnd: hWnd, Data: payload(100)})
	h.Send(S{Flags: ACK, Seq: seqv(801), Ack: 101, Wnd: hWnd, Data: payload(100)})
	got = h.Took()
	if last := got[len(got)-1]; last.Opts.SACKBlocks[0] != (SACKBlock{401, 1001}) {
		t.Fatalf("after 801 joined two runs: %v, want the first block 401-1001", last)
	}
}

// A window of thousands of segments that loses its first one is held
// whole until the retransmission arrives, arriving in order or not: the
// out-of-order queue is bounded by the receive buffer, not by a few
// hundred segments (it once was by 256, and a lossy path with a megabyte
// window lost the rest of every such window at the receiver).
func TestOutOfOrderHoldsAWindow(t *testing.T) {
	const segs = 3000
	h := established(t, func(c *Config) { c.ReceiveBufferMax = 6 << 20; c.SendBufferMax = 1 << 20 })
	h.c.SetBufferSizes(0, 6<<20)
	h.c.quickAcks = 0
	data := payload(1000)
	order := make([]int, 0, segs)
	for i := 1; i < segs; i++ {
		order = append(order, i)
	}
	// Mostly in order, some late: swap neighbours every 7th segment.
	for i := 0; i+1 < len(order); i += 7 {
		order[i], order[i+1] = order[i+1], order[i]
	}
	for _, i := range order {
		h.Send(S{Flags: ACK, Seq: seqv(301 + uint32(i)*1000), Ack: 101, Wnd: hWnd, Data: data})
	}
	h.Took()
	if h.stats.OutOfOrderDropped != 0 || h.c.ooo.len() != segs-1 {
		t.Fatalf("%d segments queued out of order, %d dropped; want all %d", h.c.ooo.len(), h.stats.OutOfOrderDropped, segs-1)
	}
	h.Send(S{Flags: ACK, Seq: 301, Ack: 101, Wnd: hWnd, Data: data})
	if got, want := h.c.RcvNxt, seqv(301+segs*1000); got != want || h.c.ooo != nil {
		t.Fatalf("RCV.NXT %d after the hole filled, want %d (queue %d)", got, want, h.c.ooo.len())
	}
	if n := h.c.Readable(); n != segs*1000 {
		t.Fatalf("readable %d, want %d", n, segs*1000)
	}
}

// SYN cookies: with the SYN queue full, a SYN is answered statelessly and
// the ACK that echoes the cookie builds the connection, options included.
func TestSYNCookies(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.NoTimestamps = false; c.ISNKey = [16]byte{1, 2, 3} })
	h.c.Listen(h.now, true)
	peer := synOpts
	peer.WindowScale = 2
	peer.HasTimestamps, peer.TSVal = true, 555
	h.Send(S{Flags: SYN, Seq: 1000, Wnd: 4000, Opts: peer})
	h.wantState(Listen)
	sa := h.Took()[0]
	if sa.Flags != SYN|ACK || sa.Ack != 1001 || !sa.Opts.HasWindowScale || !sa.Opts.SACKPermitted {
		t.Fatalf("cookie SYN,ACK %v", sa)
	}
	// A forged ACK with a wrong cookie is reset.
	l2 := newHarness(t, func(c *Config) { c.NoTimestamps = false; c.ISNKey = [16]byte{1, 2, 3} })
	l2.c.Listen(l2.now, true)
	l2.Send(S{Flags: ACK, Seq: 1001, Ack: sa.Seq + 2, Wnd: 4000})
	l2.wantState(Listen)
	if l2.stats.CookiesRejected != 1 || len(l2.Took()) != 1 {
		t.Fatal("forged cookie not rejected with a RST")
	}
	// The real ACK, a second later, on a fresh LISTEN TCB.
	h2 := newHarness(t, func(c *Config) { c.NoTimestamps = false; c.ISNKey = [16]byte{1, 2, 3} })
	h2.now = h.now.Add(time.Second)
	h2.c.Listen(h2.now, true)
	h2.Send(S{Flags: ACK, Seq: 1001, Ack: sa.Seq + 1, Wnd: 4000,
		Opts: Options{HasTimestamps: true, TSVal: 556, TSEcr: sa.Opts.TSVal}, Data: []byte("GET")})
	h2.wantState(Established)
	c := h2.c
	if c.SndScale != 2 || !c.sackOK || !c.tsOK || c.SndWnd != 16000 || c.Readable() != 3 || c.MSS() != 1460-12 {
		t.Fatalf("cookie connection: wscale %d sack %v ts %v wnd %d readable %d mss %d",
			c.SndScale, c.sackOK, c.tsOK, c.SndWnd, c.Readable(), c.MSS())
	}
}

// Simultaneous close and half-close keep data flowing the open way.
func TestHalfClose(t *testing.T) {
	h := established(t)
	h.Send(S{Flags: FIN | ACK, Seq: 301, Ack: 101, Wnd: hWnd})
	h.wantState(CloseWait)
	h.Took()
	h.Write("after your FIN")
	h.Expect(S{Flags: ACK | PSH, Seq: 101, Ack: 302, Wnd: hWnd, Data: []byte("after your FIN")})
}

// A closed socket that receives data resets the connection (Linux).
func TestOrphanDataResets(t *testing.T) {
	h := established(t)
	h.c.Close(h.now)
	h.c.SetOrphan(h.now)
	h.Took()
	h.Send(S{Flags: ACK | PSH, Seq: 301, Ack: 102, Wnd: hWnd, Data: []byte("late")})
	h.Expect(S{Flags: RST, Seq: 102})
	h.wantState(Closed)
}

// Window updates after a read follow Linux's tcp_cleanup_rbuf: none while
// the peer may still send more than half the buffer (the ACKs of its data
// carry the window); one once the window left is half or less and the read
// at least doubles it.
func TestWindowUpdateOnlyWhenItDoubles(t *testing.T) {
	h := established(t)
	h.Send(S{Flags: ACK, Seq: 301, Ack: 101, Wnd: hWnd, Data: payload(1460)})
	h.Send(S{Flags: ACK, Seq: 301 + 1460, Ack: 101, Wnd: hWnd, Data: payload(1460)})
	if got := h.Took(); len(got) != 1 || got[0].Ack != 301+2920 {
		t.Fatalf("after two segments %v, want one ACK of both", got)
	}
	// Most of the window is still open: reading sends nothing.
	h.c.Read(h.now, make([]byte, 2920))
	h.ExpectNothing()

	// Fill the buffer to past its half, so the window left is below half.
	off := 2920
	for ; off < hWnd*3/4; off += 1460 {
		h.Send(S{Flags: ACK, Seq: seqv(301 + uint32(off)), Ack: 101, Wnd: hWnd, Data: payload(1460)})
	}
	h.Took()
	left := h.c.RcvWnd
	if 2*int(left) > hWnd {
		t.Fatalf("window left %d of %d", left, hWnd)
	}
	// A read that frees less than the window left sends nothing...
	h.c.Read(h.now, make([]byte, int(left)/2))
	h.ExpectNothing()
	// ...one that at least doubles it sends one update.
	h.c.Read(h.now, make([]byte, hWnd))
	if got := h.Took(); len(got) != 1 || got[0].Flags != ACK || int(got[0].Wnd) < 2*int(left) {
		t.Fatalf("after reading everything %v, want one ACK with a window of at least %d", got, 2*left)
	}
}

// A buffer of less than four segments still gets its window update after
// a read: two full segments of growth, the usual bar, would never come.
func TestWindowUpdateWithSmallBuffer(t *testing.T) {
	h := newHarness(t)
	h.c.SetBufferSizes(0, 2500)
	h.open(synOpts)
	h.Send(S{Flags: ACK, Seq: 301, Ack: 101, Wnd: hWnd, Data: payload(1460)})
	h.AdvanceToDeadline() // the delayed ACK
	if got := h.Took(); len(got) != 1 || got[0].Wnd != 2500-1460 {
		t.Fatalf("after one segment %v, want one ACK offering %d", got, 2500-1460)
	}
	h.c.Read(h.now, make([]byte, 2500))
	h.Expect(S{Flags: ACK, Seq: 101, Ack: 301 + 1460, Wnd: 2500})
}

// With SACK, duplicate ACKs that only report a duplicate (D-SACK, RFC
// 2883) are no evidence of loss and do not start fast retransmit; ones
// that SACK data above the cumulative ACK do (RFC 6675 §2).
func TestDSACKOnlyDupACKsAreNotLoss(t *testing.T) {
	h := established(t)
	h.Write(string(payload(10 * 1460)))
	h.Took()
	_, r1 := seg(1)
	h.Send(S{Flags: ACK, Seq: 301, Ack: r1, Wnd: hWnd})
	h.Took()
	dsack := S{Flags: ACK, Seq: 301, Ack: r1, Wnd: hWnd, Opts: Options{NumSACK: 1, SACKBlocks: [4]SACKBlock{sackOf(0, 0)}}}
	for range 4 {
		h.Send(dsack)
	}
	if got := h.Took(); len(got) != 0 || h.stats.FastRetransmits != 0 || h.stats.DSACKsReceived != 4 {
		t.Fatalf("after four D-SACK-only duplicates: sent %v, fast recoveries %d, D-SACKs %d; want nothing, 0, 4",
			segNumbers(got), h.stats.FastRetransmits, h.stats.DSACKsReceived)
	}
	for i := 3; i <= 5; i++ {
		h.Send(S{Flags: ACK, Seq: 301, Ack: r1, Wnd: hWnd, Opts: Options{NumSACK: 1, SACKBlocks: [4]SACKBlock{sackOf(3, i)}}})
	}
	if got := segNumbers(h.Took()); h.stats.FastRetransmits != 1 || len(got) == 0 || got[0] != 2 {
		t.Fatalf("after three SACKing duplicates: sent %v, fast recoveries %d; want segment 2 first, 1", got, h.stats.FastRetransmits)
	}
}

// A segment and a short one are less than the two full segments that are
// ACKed at once, but when the application reads them the ACK goes without
// waiting for the delayed-ACK timer (Linux's tcp_cleanup_rbuf): a sender
// whose window holds no more would otherwise wait 40 ms. One segment read
// still waits.
func TestReadACKsMoreThanASegment(t *testing.T) {
	h := established(t)
	h.Send(S{Flags: ACK, Seq: 301, Ack: 101, Wnd: hWnd, Data: payload(1460)})
	h.ReadAll()
	if got := h.Took(); len(got) != 0 {
		t.Fatalf("one segment read: sent %v, want the ACK delayed", got)
	}
	h.Send(S{Flags: ACK | PSH, Seq: 301 + 1460, Ack: 101, Wnd: hWnd, Data: payload(100)})
	if got := h.Took(); len(got) != 0 {
		t.Fatalf("a segment and a short one: sent %v before the read", got)
	}
	h.ReadAll()
	h.Expect(S{Flags: ACK, Seq: 101, Ack: 301 + 1560, Wnd: hWnd})
}

// The congestion window grows only on ACKs of a flight that used it (RFC
// 7661; Linux's tcp_is_cwnd_limited): a sender the peer's window holds back
// keeps it under twice the window, one whose application sends little
// keeps the initial window, and one that fills it grows it as before.
func TestCwndGrowsOnlyWhenUsed(t *testing.T) {
	const peerWnd = 8 * 1460
	// rounds of: write what the send buffer takes, let everything sent be
	// acknowledged with a window of wnd.
	rounds := func(h *harness, n, wnd int, data []byte) {
		t.Helper()
		for range n {
			writeAll(h, data)
			for h.c.SndUna != h.c.SndNxt {
				h.Took()
				h.Advance(time.Millisecond)
				h.Send(S{Flags: ACK, Seq: peerISS + 1, Ack: h.c.SndNxt, Wnd: uint16(wnd)})
			}
		}
	}
	t.Run("peer's window", func(t *testing.T) {
		h := established(t)
		h.Send(S{Flags: ACK, Seq: peerISS + 1, Ack: ourISS + 1, Wnd: peerWnd})
		rounds(h, 200, peerWnd, make([]byte, 64<<10))
		if got := h.c.Cwnd(); got > 2*peerWnd+2*1460 {
			t.Errorf("cwnd %d after 200 rounds held to a %d-byte window, want at most about twice it", got, peerWnd)
		}
		// The window opens: cwnd limits again, and grows.
		before := h.c.Cwnd()
		rounds(h, 10, hWnd, make([]byte, 64<<10))
		if h.c.Cwnd() <= before {
			t.Errorf("cwnd %d did not grow from %d once it limited the flight", h.c.Cwnd(), before)
		}
	})
	t.Run("application", func(t *testing.T) {
		h := established(t)
		iw := h.c.Cwnd()
		for range 200 {
			h.Write("x")
			h.Took()
			h.Send(S{Flags: ACK, Seq: peerISS + 1, Ack: h.c.SndNxt, Wnd: hWnd})
		}
		if got := h.c.Cwnd(); got != iw {
			t.Errorf("cwnd %d after 200 one-byte exchanges, want the initial %d", got, iw)
		}
	})
}
