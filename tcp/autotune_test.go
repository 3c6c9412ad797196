package tcp

import (
	"testing"
	"time"
)

// scaledPeer opens a connection whose peer scales its window by 7, so
// windows of megabytes can be offered and sent into.
func scaledPeer(t *testing.T, tweak func(*Config)) *harness {
	h := newHarness(t, tweak)
	opts := synOpts
	opts.WindowScale = 7
	h.open(opts)
	return h
}

// autotuned is scaledPeer with a 4 MiB receive limit.
func autotuned(t *testing.T) *harness {
	return scaledPeer(t, func(c *Config) { c.ReceiveBufferMax = 4 << 20 })
}

// sendTuned is scaledPeer with a 4 MiB send limit.
func sendTuned(t *testing.T) *harness {
	return scaledPeer(t, func(c *Config) { c.SendBufferMax = 4 << 20 })
}

// writeAll writes from data as a writer woken by each EventWritable does:
// until the connection takes no more (the send buffer, or the unsent bytes
// Config.NotsentLowat allows while the windows hold the rest back).
func writeAll(h *harness, data []byte) {
	for range 1000 {
		if n, _ := h.c.Write(h.now, data[:min(h.c.WriteSpace(), len(data))]); n == 0 {
			return
		}
	}
	h.t.Fatal("writes never filled the send buffer")
}

// fillWindow sends, as the peer, full segments up to the right edge we
// offer, starting at *at, and returns how many bytes it sent.
func fillWindow(h *harness, at *uint32) int {
	h.t.Helper()
	edge := uint32(h.c.RcvNxt) + uint32(h.c.RcvWnd)
	data := payload(1460)
	sent := 0
	for int32(edge-*at) > 0 {
		n := min(uint32(len(data)), edge-*at)
		h.Send(S{Flags: ACK, Seq: seqv(*at), Ack: ourISS + 1, Wnd: 1000, Data: data[:n]})
		*at += n
		sent += int(n)
	}
	return sent
}

// A reader that keeps up gets a window that grows each round trip, as a
// sender in slow start needs, up to the limit; nothing is cut off on the
// way (the edge never moves left).
func TestReceiveBufferGrowsWithReader(t *testing.T) {
	h := autotuned(t)
	if w := int(h.c.RcvWnd); w != bufInitial {
		t.Fatalf("first window %d, want the starting buffer %d", w, bufInitial)
	}
	const rtt = 10 * time.Millisecond
	at := uint32(peerISS + 1)
	prev := int(h.c.RcvWnd)
	var rounds int
	for rounds = 1; h.c.rcvBuf() < 4<<20; rounds++ {
		if rounds > 12 {
			t.Fatalf("after %d round trips the buffer is %d of %d", rounds, h.c.rcvBuf(), 4<<20)
		}
		h.Advance(rtt - time.Millisecond) // a round trip from the last ACK
		fillWindow(h, &at)
		for h.ReadAll() != "" {
		}
		h.Advance(time.Millisecond) // the delayed ACK carries the new window
		h.Took()
		if w := int(h.c.RcvWnd); w > 8*prev {
			t.Fatalf("round %d: window %d after %d: more than the reader can have shown", rounds, w, prev)
		}
		prev = int(h.c.RcvWnd)
	}
	if h.stats.TrimmedBeyondWindow != 0 {
		t.Fatalf("%d segments cut to the window", h.stats.TrimmedBeyondWindow)
	}
	if got := h.c.rt.rtt; got != rtt {
		t.Fatalf("receiver's round-trip estimate %v, want %v", got, rtt)
	}
	t.Logf("window reached %d in %d round trips", h.c.RcvWnd, rounds-1)
}

// A reader that falls behind does not grow the buffer, however much the
// peer has to send: the window stays what the starting buffer allows.
func TestReceiveBufferStaysForSlowReader(t *testing.T) {
	h := autotuned(t)
	at := uint32(peerISS + 1)
	buf := make([]byte, 8<<10)
	for range 30 {
		h.Advance(10 * time.Millisecond)
		fillWindow(h, &at)
		h.c.Read(h.now, buf)
		h.Took()
	}
	if h.c.rcvBuf() != bufInitial {
		t.Fatalf("buffer %d for a reader of 8 KiB per round trip; want it left at %d", h.c.rcvBuf(), bufInitial)
	}
}

// A buffer the user sets is not tuned (Linux's SO_RCVBUF lock), and offers
// its whole size from the start.
func TestReceiveBufferSetIsFixed(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.ReceiveBufferMax = 4 << 20 })
	h.c.SetBufferSizes(0, 1<<20)
	opts := synOpts
	opts.WindowScale = 7
	h.open(opts)
	at := uint32(peerISS + 1)
	for range 10 {
		h.Advance(10 * time.Millisecond)
		fillWindow(h, &at)
		h.ReadAll()
		h.Advance(time.Millisecond)
		h.Took()
		if h.c.RcvWnd != 1<<20 {
			t.Fatalf("window %d, want the 1 MiB set", h.c.RcvWnd)
		}
	}
	if h.c.rt != nil && h.c.rt.rcvOn {
		t.Fatal("a fixed buffer is measured")
	}
}

// The send buffer starts at 128 KiB and grows to twice what is in flight
// as the congestion window opens, up to its bound; one the user sets is
// taken whole at once.
func TestSendBufferGrowsWithFlight(t *testing.T) {
	h := sendTuned(t)
	data := make([]byte, 8<<20)
	n, _ := h.c.Write(h.now, data)
	if n != bufInitial {
		t.Fatalf("first write took %d, want the starting buffer %d", n, bufInitial)
	}
	for round := 0; h.c.sndBuf < 4<<20; round++ {
		if round > 30 {
			t.Fatalf("after %d round trips the send buffer is %d", round, h.c.sndBuf)
		}
		if flight := int(h.c.SndUna.Size(h.c.SndNxt)); int(h.c.sndBuf) < min(2*flight, 4<<20) {
			t.Fatalf("send buffer %d with %d in flight", h.c.sndBuf, flight)
		}
		h.Took()
		h.Advance(10 * time.Millisecond)
		h.Send(S{Flags: ACK, Seq: peerISS + 1, Ack: h.c.SndNxt, Wnd: 0xffff})
		writeAll(h, data)
	}

	fixed := newHarness(t, func(c *Config) { c.SendBufferMax = 4 << 20 })
	fixed.c.SetBufferSizes(1<<20, 0)
	opts := synOpts
	opts.WindowScale = 7
	fixed.open(opts)
	if n, _ := fixed.c.Write(fixed.now, data); n != 1<<20 {
		t.Fatalf("a set 1 MiB buffer took %d", n)
	}
}
