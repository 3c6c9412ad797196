package tcp

import (
	"time"

	"github.com/tapstack/tapstack/mono"
	"github.com/tapstack/tapstack/tcp/seq"
)

// Tail loss probes (RFC 8985 §7). When the last segments of a flight are
// lost no duplicate ACKs come, and without a probe the sender waits for the
// retransmission timeout (at least 200 ms, doubled each time). Instead, two
// smoothed RTTs after the last new data or the last ACK that acknowledged
// some, a segment goes out, new data if any may go, else the last segment
// again: its ACK either acknowledges the tail (the probe repaired it) or
// SACKs the probe, and the holes below it, sent before it, are lost, so
// fast recovery starts at once, as RACK would decide.
// The probe shares the retransmission timer: rtoAt holds the probe's
// instant while tlp is tlpArmed.
const (
	tlpNone  uint8 = iota
	tlpArmed       // rtoAt is when the probe goes
	tlpSent        // a probe is out; none again until an ACK acknowledges data
)

const (
	// tlpMin is the shortest probe timeout, as Linux's TCP_TIMEOUT_MIN
	// (2 jiffies) rounded up: on a link of microsecond RTTs a probe must
	// still wait out scheduling noise.
	tlpMin = 10 * time.Millisecond
	// tlpDelAck is added when one segment is in flight: its ACK may be a
	// delayed one (RFC 8985's WCDelAckT).
	tlpDelAck = 200 * time.Millisecond
)

// tlpAllowed says whether a probe may be armed now: SACK in use (the probe
// relies on it), an RTT measured, data in flight and not in recovery, no
// probe out, and no FIN sent (its retransmission is the timeout's).
func (c *Conn) tlpAllowed() bool {
	return !c.cfg.NoTLP && c.sackOK && c.srtt > 0 && !c.inRecov && c.tlp != tlpSent &&
		(c.state == Established || c.state == CloseWait) &&
		c.SndUna != c.SndNxt && !(c.finQueued && c.SndNxt == c.finSeq.Add(1))
}

// armLossTimer starts the probe timer when a probe is allowed, else the
// retransmission timer if it is not running (restart: restart it anyway,
// as after an ACK of new data).
func (c *Conn) armLossTimer(now mono.Time, restart bool) {
	if !c.tlpAllowed() {
		if restart || c.tlp == tlpArmed {
			c.setRTO(now.Add(c.rto))
		} else {
			c.armRTO(now)
		}
		return
	}
	pto := c.pto()
	if int(c.SndUna.Size(c.SndNxt)) <= c.sndMSS {
		pto += tlpDelAck
	}
	pto = max(pto, tlpMin)
	rtoAt := c.rtoAt
	if restart || c.tlp == tlpArmed || rtoAt == mono.Never {
		rtoAt = now.Add(c.rto)
	}
	c.rtoAt, c.tlp = mono.Min(now.Add(pto), rtoAt), tlpArmed
}

// pto is RFC 8985's probe timeout, 2*SRTT, but never less than SRTT +
// 4*RTTVAR (the RTO's formula without its floor): where ACKs come
// irregularly, as to a stack whose reader shares two CPUs with a thousand
// busy connections, 2*SRTT alone fired a probe on every late ACK (24,000
// needless retransmissions in the 1000-download interop check, 125-138
// MB/s against 177-200 without probes); with the variance term about
// 7,000 and 188 MB/s, while a steady path still probes at 2*SRTT.
func (c *Conn) pto() time.Duration { return max(2*c.srtt, c.srtt+4*c.rttvar) }

// lossProbe sends the probe: a new segment when data waits and the peer's
// window takes a whole one (congestion window or not, RFC 8985 §7.3, as
// Linux), else the last segment sent, again. The timer then runs as the
// retransmission timeout.
func (c *Conn) lossProbe(now mono.Time) {
	c.count(func(st *Stats) { st.LossProbes++ })
	off := c.sndSent()
	unsent := c.snd.Len() - off
	if n := min(unsent, c.effMSS()); c.sndCur == c.SndNxt && n > 0 && int(c.SndUna.Size(c.SndNxt))+n <= int(c.SndWnd) {
		c.sendAtCur(now, off, n, unsent, false)
	} else {
		n := min(c.effMSS(), int(c.SndUna.Size(c.SndNxt)))
		sq := c.SndNxt.Sub(seq.Size(n))
		c.rttTiming = false // Karn
		c.transmit(now, sq, int(c.sndBufSeq.Size(sq)), n, ACK|PSH)
	}
	c.rtoAt, c.tlp = now.Add(c.rto), tlpSent
}

// probeSACKed reports whether the peer SACKed data while a probe is out:
// the probe, or what came before it, arrived beyond a hole, and the hole,
// sent earlier, is lost.
func (c *Conn) probeSACKed() bool {
	return c.tlp == tlpSent && c.sb != nil && len(c.sb.blocks) > 0
}
