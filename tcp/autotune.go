package tcp

import (
	"time"

	"github.com/tapstack/tapstack/mono"
	"github.com/tapstack/tapstack/tcp/seq"
)

// Buffer autotuning, as Linux's: both buffers start at 128 KiB and grow
// with the connection's needs up to their bounds (Config.SendBufferMax,
// ReceiveBufferMax), so that a connection that moves little holds little.
// Setting a buffer (SetBufferSizes) fixes it, as SO_SNDBUF and SO_RCVBUF
// do in Linux.
//
// Receive (tcp_rcv_space_adjust, "dynamic right-sizing"): the window is
// offered from rcvBuf(), which grows, at most once per round trip, to
// twice what the application read in a round trip plus a cushion. A slow
// or idle reader never grows it; a fast one on a long path gets the window
// it needs in a few round trips. The round trip is measured by the
// receiver alone (tcp_rcv_rtt_measure): the time for RCV.NXT to pass the
// right edge offered when the measurement began. That is at least a round
// trip, exactly one when the window limits the sender, so the estimate is
// the least sample seen.
//
// Send (tcp_sndbuf_expand): the buffer holds twice what the windows have
// let be in flight.

// tuning is the autotuning's measurements and the in-flight governor
// (inflight.go), made when a connection has received a quarter of its
// starting buffer or had its first sends acknowledged in bulk: most
// connections never need them.
type tuning struct {
	rcvOn  bool          // the receive side is measuring
	rtt    time.Duration // the receiver's round-trip estimate; 0 before a sample
	rttAt  mono.Time     // when the running measurement began
	rttSeq seq.Value     // ...and the edge RCV.NXT must pass to end it

	buf int32 // the buffer the window is offered from

	spaceAt  mono.Time // when the current reading interval began
	spaceSeq seq.Value // ...and the next byte the application read then
	space    int32     // the most the application read in one round trip

	gov inflightGov
}

// tune returns c's tuning, making it: the buffer the window is offered
// from starts where it is.
func (c *Conn) tune() *tuning {
	if c.rt == nil {
		c.rt = &tuning{buf: int32(c.rcvBuf())}
	}
	return c.rt
}

// bufInitial is where an autotuned buffer starts (Linux's tcp_rmem
// default); never below bufInitialSegs segments.
const (
	bufInitial     = 128 << 10
	bufInitialSegs = 4
)

// The cushion added to twice what was read in a round trip, for variations
// in the sender's pace: Linux's 16 segments, but no more than 256 KiB
// (16 segments of 64 KiB kept a megabyte more in flight per connection on
// an in-memory link, and each byte went out of the cache and back).
const (
	rcvCushionSegs = 16
	rcvCushionMax  = 256 << 10
)

// bufStart is where an autotuned buffer starts.
func (c *Conn) bufStart() int32 { return clamp32(max(bufInitial, bufInitialSegs*int(c.ep.mss))) }

// initBuffers sets the starting send buffer, unless the user fixed it.
func (c *Conn) initBuffers() {
	if c.sndLocked {
		c.sndBuf = c.sndBufMax
	} else {
		c.sndBuf = min(c.sndBufMax, c.bufStart())
	}
}

// rcvBuf is the receive buffer the window is offered from: the bound if
// the user set it, else where autotuning has brought it.
func (c *Conn) rcvBuf() int {
	switch {
	case c.rcvLocked:
		return int(c.rcvBufMax)
	case c.rt != nil:
		return int(c.rt.buf)
	}
	return int(min(c.rcvBufMax, c.bufStart()))
}

// growSndBuf runs after new data is sent: the send buffer holds twice what
// the windows let be in flight (Linux's tcp_sndbuf_expand sizes it from
// the congestion window alike), so the application can stay a round trip
// ahead of the sender.
func (c *Conn) growSndBuf() {
	if c.sndLocked || c.sndBuf >= c.sndBufMax {
		return
	}
	if flight := int64(c.SndUna.Size(c.SndNxt)); 2*flight > int64(c.sndBuf) {
		c.sndBuf = int32(min(2*flight, int64(c.sndBufMax)))
	}
}

// sndLimit is what writes may fill the send buffer to: what has been sent
// and Config.NotsentLowat more, and while the in-flight governor caps the
// flight, no more than twice the cap (what is in flight and as much again
// waiting), so that bytes do not wait in the buffer long enough to leave
// the cache. A buffer the user set is left whole.
func (c *Conn) sndLimit() int {
	n := int(c.sndBuf)
	if c.sndLocked {
		return n
	}
	if lowat := c.notsentLowat(); lowat > 0 {
		n = min(n, c.sndSent()+lowat)
	}
	if capped := c.inflightCap(); capped > 0 {
		n = min(n, max(2*capped, int(c.bufStart())))
	}
	return n
}

// notsentLowat is Config.NotsentLowat where it applies (not to a buffer
// the user set), else 0.
func (c *Conn) notsentLowat() int {
	if c.sndLocked {
		return 0
	}
	return max(c.cfg.NotsentLowat, 0)
}

// sndSent is how much of the send buffer has been sent at least once.
func (c *Conn) sndSent() int {
	if !c.sndBufSeq.LessThan(c.SndNxt) {
		return 0
	}
	return min(int(c.sndBufSeq.Size(c.SndNxt)), c.snd.Len())
}

// rcvMeasureRTT runs when in-order data has moved RCV.NXT.
func (c *Conn) rcvMeasureRTT(now mono.Time) {
	buf := c.rcvBuf()
	if c.rcvLocked || buf >= int(c.rcvBufMax) {
		return
	}
	t := c.rt
	if t == nil || !t.rcvOn {
		if int(c.IRS.Size(c.RcvNxt)) < buf/4 {
			return
		}
		t = c.tune()
		t.rcvOn = true
	} else if c.RcvNxt.LessThan(t.rttSeq) {
		return
	} else if d := max(now.Sub(t.rttAt), time.Microsecond); t.rtt == 0 || d < t.rtt {
		t.rtt = d
	}
	t.rttSeq, t.rttAt = c.RcvNxt.Add(max(c.RcvWnd, 1)), now
}

// tuneRcvBuf runs after the application read: once a round trip has passed
// since the last measurement, what it read in that time sets the buffer.
// A reader that read more than in any round trip before gets twice as much
// plus the cushion, doubled again if its pace rose by half or more (half
// again if by a quarter): the sender may be in slow start, doubling what
// it sends each round trip, and this window is for the next one. (Linux
// now grows in proportion to the rise; with a reader woken in bursts that
// took every buffer to its bound at once.)
func (c *Conn) tuneRcvBuf(now mono.Time) {
	t := c.rt
	if t == nil || !t.rcvOn || t.rtt == 0 || c.rcvLocked || t.buf >= c.rcvBufMax {
		return
	}
	read := c.RcvNxt.Sub(seq.Size(c.rcv.Len())) // the next byte the application reads
	if t.spaceAt == 0 {
		t.spaceSeq, t.spaceAt = read, now
		return
	}
	elapsed := now.Sub(t.spaceAt)
	if elapsed < t.rtt {
		return
	}
	// What was read in one round trip at the pace of this interval. Linux
	// takes all that was read since the last measurement, so a reader
	// that was kept from running for a while and then read its backlog
	// looks faster than it is.
	copied := int64(float64(t.spaceSeq.Size(read)) * float64(t.rtt) / float64(elapsed))
	if copied > int64(t.space) {
		want := 2*copied + int64(min(rcvCushionSegs*c.rcvMSS(), rcvCushionMax))
		switch sp := int64(t.space); {
		case sp == 0:
		case copied >= sp+sp/2:
			want *= 2
		case copied >= sp+sp/4:
			want += want / 2
		}
		t.buf = max(t.buf, int32(min(want, int64(c.rcvBufMax))))
		t.space = int32(min(copied, 1<<31-1))
	}
	t.spaceSeq, t.spaceAt = read, now
}
