package tcp

import (
	"time"

	"github.com/tapstack/tapstack/internal/bufpool"
	"github.com/tapstack/tapstack/mono"
	"github.com/tapstack/tapstack/tcp/seq"
)

// initSend chooses the ISS (RFC 6528, unless fixed by SetISS) and the
// timestamp offset, and starts the send sequence space.
func (c *Conn) initSend(now mono.Time) {
	if !c.issSet {
		c.ISS = ISN(&c.cfg.ISNKey, c.ep.Local, c.ep.Remote, now)
	}
	c.SndUna, c.SndNxt, c.sndCur = c.ISS, c.ISS, c.ISS
	c.sndBufSeq = c.ISS.Add(1)
	c.rttTiming, c.rttSeq, c.rttStart = true, c.ISS.Add(1), now
}

// rcvScaleWanted is the window shift for our receive buffer: the smallest
// that lets the largest buffer be advertised (as Linux chooses it).
func (c *Conn) rcvScaleWanted() uint8 {
	var s uint8
	for s < MaxWindowScale && c.rcvBufMax>>s > 0xffff {
		s++
	}
	return s
}

// negotiate records what the peer's SYN offers (RFC 9293 §3.7.1, RFC 7323,
// RFC 2018). We offer everything the Config allows on our SYN, so the
// options in effect are those the peer's SYN carries.
func (c *Conn) negotiate(o *Options, _ bool) {
	peerMSS := defaultMSS
	if o.HasMSS && o.MSS > 0 {
		peerMSS = int(o.MSS)
	}
	c.sndMSS = max(min(peerMSS, int(c.ep.mss)), 64)
	if o.HasWindowScale && !c.cfg.NoWindowScale {
		c.SndScale, c.RcvScale, c.wsOK = o.WindowScale, c.rcvScaleWanted(), true
	} else {
		c.SndScale, c.RcvScale = 0, 0
	}
	c.sackOK = o.SACKPermitted && !c.cfg.NoSACK
	c.tsOK = o.HasTimestamps && !c.cfg.NoTimestamps
	if c.tsOK {
		c.TSRecent = o.TSVal
		c.sndMSS -= 12 // the option rides on every segment
	}
	c.newCC()
}

func (c *Conn) newCC() {
	c.cc, c.renoAcc = nil, 0 // NewReno (ccOnAck)
	if c.cfg.NewCongestionControl != nil {
		c.cc = c.cfg.NewCongestionControl(c.sndMSS)
	}
	c.cwnd = InitialWindow(c.sndMSS)
	c.ssthresh = 1 << 30
}

// InitialWindow is RFC 6928's: min(10*MSS, max(2*MSS, 14600)).
func InitialWindow(mss int) int { return min(10*mss, max(2*mss, 14600)) }

// initRecvOnSYN starts the receive side once the peer's SYN is known.
func (c *Conn) initRecvOnSYN(now mono.Time, s *Segment) {
	if c.tsOK {
		c.tsRecentAt = now
	}
	c.lastAckSent = c.RcvNxt
	c.rcvAdv = c.RcvNxt
	c.quickAcks = quickAcksInitial
	c.updateWindow(true)
}

// quickAcksInitial: segments acknowledged at once at the start, so the
// sender's window grows (Linux's quickack mode, TCP_MAX_QUICKACKS).
const quickAcksInitial = 16

// rcvSpace is the receive buffer room left.
func (c *Conn) rcvSpace() int { return max(c.rcvBuf()-c.rcv.Len(), 0) }

// rcvMSS is the largest segment we advertised less the timestamp option
// every segment carries if they were negotiated.
func (c *Conn) rcvMSS() int { return int(c.ep.mss) - c.tsOverhead() }

// updateWindow recomputes the right edge we advertise and returns the
// Window field. The edge never moves left; it moves right only by at least
// min(buffer/2, MSS), the receiver's silly-window avoidance (RFC 9293
// §3.8.6.2.2). A SYN's window is not scaled (RFC 7323 §2.2).
func (c *Conn) updateWindow(syn bool) uint16 {
	right := c.RcvNxt.Add(seq.Size(c.rcvSpace()))
	if right.GreaterThan(c.rcvAdv) {
		step := min(c.rcvBuf()/2, c.rcvMSS())
		if int(c.rcvAdv.Size(right)) >= step || c.rcvAdv == c.RcvNxt && c.rcvSpace() >= c.rcvMSS() || c.rcvSpace() == c.rcvBuf() {
			c.rcvAdv = right
		}
	}
	wnd := int(c.RcvNxt.Size(c.rcvAdv))
	var field int
	if syn {
		field = min(wnd, 0xffff)
	} else {
		field = min(wnd>>c.RcvScale, 0xffff)
	}
	offered := field << c.RcvScale
	if syn {
		offered = field
	}
	if offered < wnd && (syn || field == 0xffff) {
		// What lies past the field's largest value is not offered. The low
		// bits that scaling drops (wnd%(1<<RcvScale)) stay offered: taking
		// them back at every segment would pull the edge left, a little
		// more each time, and cut what the peer sent in a window it saw.
		c.rcvAdv = seq.Max(c.RcvNxt.Add(seq.Size(offered)), c.RcvNxt)
	}
	c.RcvWnd = c.RcvNxt.Size(c.rcvAdv)
	return uint16(field)
}

// windowUpdate sends an ACK after a read when the window has opened by
// enough to matter, as Linux's tcp_cleanup_rbuf: only once what the peer
// may still send has fallen to half the buffer or less, and the read at
// least doubles it; a closed window reopens as soon as it grows. A reader
// keeping up needs no update (the ACKs of the data carry the window), and
// a read followed by a write, as in any echo or proxy, sends the window
// with the data instead of a pure ACK before it.
//
// An ACK the delayed-ACK timer holds goes at the read too once more than a
// full segment waits for it (tcp_cleanup_rbuf's "once-per-two-segments ACK
// was not sent"): a segment and a short one, as a sender without Nagle
// makes of writes that are not a multiple of the MSS, are less than the
// two segments that ACK at once, and a sender whose window holds no more
// would wait the whole timer, 40 ms per round trip.
func (c *Conn) windowUpdate(now mono.Time) {
	if c.ackPending && int(c.rcvUnacked) > c.rcvMSS() {
		c.ackNow = true
		c.flushACK(now)
		return
	}
	right := c.RcvNxt.Add(seq.Size(c.rcvSpace()))
	if !right.GreaterThan(c.rcvAdv) {
		return
	}
	left := int(c.RcvNxt.Size(c.rcvAdv)) // what the peer may still send
	grow := int(c.rcvAdv.Size(right))
	if left == 0 || 2*left <= c.rcvBuf() && grow >= left && grow >= min(2*c.rcvMSS(), c.rcvBuf()/2) {
		c.ackNow = true
		c.flushACK(now)
	}
}

// tsVal is our timestamp clock: milliseconds, as Linux's, plus a random
// per-connection offset (RFC 7323 §5.4).
func (c *Conn) tsVal(now mono.Time) uint32 {
	return uint32(int64(now)/int64(time.Millisecond)) + c.tsOffset
}

// header fills the scratch header with what every segment of c carries.
func (c *Conn) header(now mono.Time, sq seq.Value, flags Flags) *HeaderFields {
	f := &c.cfg.scratch.hdr
	syn := flags&SYN != 0
	*f = HeaderFields{SrcPort: c.ep.Local.Port(), DstPort: c.ep.Remote.Port(), SeqNum: sq, Flags: flags}
	if flags&ACK != 0 {
		f.AckNum = c.RcvNxt
	}
	f.Window = c.updateWindow(syn)
	if c.tsOK || syn && c.state == SynSent && !c.cfg.NoTimestamps {
		f.Options.HasTimestamps = true
		f.Options.TSVal = c.tsVal(now)
		f.Options.TSEcr = c.TSRecent
		if syn && c.state == SynSent {
			f.Options.TSEcr = 0
		}
	}
	if c.sackOK && !syn {
		c.fillSACK(&f.Options)
	}
	return f
}

// emit hands a segment to the output and does the bookkeeping every sent
// segment shares: it carries the ACK of everything received.
func (c *Conn) emit(now mono.Time, f *HeaderFields, payload [2][]byte) {
	if f.Flags&ACK != 0 {
		c.lastAckSent = c.RcvNxt
		c.ackPending, c.ackNow, c.rcvUnacked, c.dsackValid = false, false, 0, false
		c.delackAt = mono.Never
	}
	c.count(func(st *Stats) { st.SegmentsSent++ })
	c.cfg.Output.SendSegment(now, c, f, payload)
}

// sendSYN sends our SYN (SYN-SENT) or SYN,ACK (SYN-RECEIVED).
func (c *Conn) sendSYN(now mono.Time) {
	flags := SYN
	if c.state == SynReceived {
		flags |= ACK
	}
	f := c.header(now, c.ISS, flags)
	f.Options.HasMSS, f.Options.MSS = true, uint16(min(c.ep.mss, 0xffff))
	if c.state == SynSent {
		f.Options.HasWindowScale = !c.cfg.NoWindowScale
		f.Options.WindowScale = c.rcvScaleWanted()
		f.Options.SACKPermitted = !c.cfg.NoSACK
	} else {
		f.Options.HasWindowScale = c.wsOK
		f.Options.WindowScale = c.RcvScale
		f.Options.SACKPermitted = c.sackOK
	}
	if c.SndNxt == c.ISS {
		c.SndNxt = c.ISS.Add(1)
	}
	c.sndCur = c.ISS.Add(1)
	c.emit(now, f, [2][]byte{})
}

// sendACK sends <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>.
func (c *Conn) sendACK(now mono.Time) {
	c.emit(now, c.header(now, c.SndNxt, ACK), [2][]byte{})
}

// flushACK sends an ACK that must go now, or arms the delayed-ACK timer
// for one that may wait.
func (c *Conn) flushACK(now mono.Time) {
	if !c.state.synchronized() {
		return
	}
	switch {
	case c.ackNow:
		c.sendACK(now)
	case c.ackPending && c.delackAt == mono.Never:
		c.delackAt = now.Add(c.cfg.DelayedACK)
	}
}

// sendRST sends a RST from this connection.
func (c *Conn) sendRST(now mono.Time, sq, ack seq.Value, withACK bool) {
	f := HeaderFields{SeqNum: sq, Flags: RST}
	if withACK {
		f.AckNum, f.Flags = ack, RST|ACK
	}
	c.emitRST(now, f)
}

// emitRST sends a RST built by the caller, from our ports. RSTs carry no
// options (RFC 7323 §5.2 advises no timestamps on a RST, and Linux sends
// none).
func (c *Conn) emitRST(now mono.Time, f HeaderFields) {
	h := &c.cfg.scratch.hdr
	*h = f
	h.SrcPort, h.DstPort = c.ep.Local.Port(), c.ep.Remote.Port()
	c.count(func(st *Stats) { st.ResetsSent++; st.SegmentsSent++ })
	c.cfg.Output.SendSegment(now, c, h, [2][]byte{})
}

// output sends what the send buffer holds as far as the windows allow,
// then the FIN, applying Nagle's algorithm and the sender's silly-window
// avoidance (RFC 9293 §3.7.4, §3.8.6.2.1).
func (c *Conn) output(now mono.Time) { c.sendData(now, sendNormal) }

// sendMode says who runs sendData.
type sendMode uint8

const (
	sendNormal sendMode = iota
	// sendWrite: the application's write; its short last segment may wait
	// for the next write (corks).
	sendWrite
	// sendOverride: the persist timer, which sends what the window allows
	// even if it is less than silly-window avoidance waits for (RFC 9293
	// §3.8.6.2.1); without it a window smaller than a segment and than half
	// the largest one offered, with nothing in flight, would hold the data
	// for ever.
	sendOverride
)

// corkRTTMax is the largest smoothed RTT at which a write's short last
// segment waits (corks): the wait lasts until the next write or an ACK, at
// most about a round trip.
const corkRTTMax = time.Millisecond

// corks reports whether a write's short last segment waits for more data
// though Nagle's algorithm is off, as Linux's autocorking holds it while
// earlier segments are still leaving. A 64 KiB write at an MSS of 65,483
// bytes is a full segment and 53 bytes; sent at once, the short ones were
// nearly half the segments of a bulk transfer and a sixth of its CPU time.
// It waits only while two full segments are unacknowledged, so an ACK comes
// within a round trip (a receiver ACKs every second one, RFC 9293
// §3.8.6.3) and sends it, or the next write fills it, and only where a
// round trip is short: at most a millisecond later than at once. A peer
// that holds its ACKs longer meets the tail loss probe (which sends the
// tail as new data), so nothing corks without one armed.
func (c *Conn) corks(mss int) bool {
	return c.NoDelay && !c.cfg.NoAutocork && !c.finQueued && c.srtt > 0 && c.srtt <= corkRTTMax &&
		int(c.SndUna.Size(c.SndNxt)) >= 2*mss && c.tlpAllowed()
}

// sendData is output, run by mode.
func (c *Conn) sendData(now mono.Time, mode sendMode) {
	switch c.state {
	case Established, CloseWait, FinWait1, Closing, LastAck:
	default:
		return
	}
	mss := c.effMSS()
	room := -1 // what cwnd allows beyond pipe in SACK recovery; -1 outside
	if c.inRecov && c.sb != nil {
		room = c.retransmitLost(now)
	}
	capped := c.inflightCap() // the in-flight governor's cap, 0 for none
	for {
		off := int(c.sndBufSeq.Size(c.sndCur))
		if c.sndCur.LessThan(c.sndBufSeq) {
			off = 0 // cannot happen once the SYN is acknowledged
		}
		unsent := c.snd.Len() - off
		finNext := c.finQueued && c.sndCur == c.finSeq
		if unsent <= 0 && !finNext {
			c.govIdle()
			return
		}
		retx := c.sndCur.LessThan(c.SndNxt)
		wnd := min(int(c.SndWnd), c.cwnd)
		if capped > 0 {
			wnd = min(wnd, capped)
		}
		usable := wnd - int(c.SndUna.Size(c.sndCur))
		if room >= 0 {
			usable = min(int(c.SndWnd)-int(c.SndUna.Size(c.sndCur)), room)
		}
		n := min(unsent, mss, max(usable, 0))
		if retx {
			n = min(n, int(c.sndCur.Size(c.SndNxt)))
		} else if int(c.ep.gsoMax) > mss && n == mss {
			n = c.superSegment(min(unsent, max(usable, 0)), unsent, mss)
		}
		if unsent > 0 && !retx {
			switch {
			case n <= 0:
				c.armPersist(now)
				return
			case n >= mss:
			case n == unsent:
				// Nagle: a short segment waits while data is unacknowledged.
				if !c.NoDelay && !c.finQueued && c.SndUna != c.SndNxt {
					return
				}
				if mode == sendWrite && c.corks(mss) {
					return
				}
			default:
				// The window allows less than a segment and less than we
				// have: send only if it is a useful share of the largest
				// window the peer offered.
				if mode != sendOverride && (n < int(c.maxSndWnd/2) || c.SndUna != c.SndNxt && n < mss) {
					c.armPersist(now)
					return
				}
			}
		} else if unsent > 0 && n <= 0 {
			return
		}
		c.sendAtCur(now, off, n, unsent, retx)
		if !retx {
			c.growSndBuf()
			c.govSent()
			if lowat := c.notsentLowat(); lowat > 0 && unsent-n < lowat/2 && unsent >= lowat/2 {
				c.ev |= EventWritable // room for a blocked writer (sndLimit)
			}
		}
		if room >= 0 {
			room -= n
		}
		c.persistAt = mono.Never
		if retx {
			c.armRTO(now)
		} else {
			c.armLossTimer(now, false)
		}
	}
}

// sendAtCur sends n of the unsent bytes from sndCur (off in the send
// buffer), with the FIN if they reach it, and advances sndCur, and SND.NXT
// past new data; retx says sndCur is below SND.NXT.
func (c *Conn) sendAtCur(now mono.Time, off, n, unsent int, retx bool) {
	flags := ACK
	if n > 0 && n == unsent {
		flags |= PSH
	}
	fin := c.finQueued && c.sndCur.Add(seq.Size(n)) == c.finSeq
	if fin {
		flags |= FIN
	}
	c.transmit(now, c.sndCur, off, n, flags)
	c.sndCur = c.sndCur.Add(seq.Size(n))
	if fin {
		c.sndCur = c.sndCur.Add(1)
	}
	if c.sndCur.GreaterThan(c.SndNxt) {
		if !c.rttTiming && !retx {
			c.rttTiming, c.rttSeq, c.rttStart = true, c.sndCur, now
		}
		c.SndNxt = c.sndCur
	}
	if retx {
		c.rttTiming = false // Karn: no sample from a retransmission
	}
}

// superSegment returns how much of avail (what the windows allow, unsent
// the data queued) one TSO super-segment takes: whole segments up to
// GSOMax, and a short last one only when it ends the data and Nagle would
// let it go alone.
func (c *Conn) superSegment(avail, unsent, mss int) int {
	n := min(avail, min(int(c.ep.gsoMax), ringChunk)/mss*mss) // a ring hands out a segment in at most two parts
	if tail := n % mss; tail != 0 && (n != unsent || !c.NoDelay && !c.finQueued && c.SndUna != c.SndNxt) {
		n -= tail
	}
	return n
}

// HoldPayload holds the send buffer's chunks under the n payload bytes of
// the segment f that SendSegment is sending, so that an Output can hand
// them on without copying (a gather write); the Output releases each
// non-nil Ref once done with the bytes. Call it only from SendSegment.
func (c *Conn) HoldPayload(f *HeaderFields, n int) [2]*bufpool.Ref {
	return c.snd.hold(int(c.sndBufSeq.Size(f.SeqNum)), n)
}

// SegmentSize is the payload of each segment a super-segment is cut into:
// the MSS less the options the segments carry now.
func (c *Conn) SegmentSize() int { return c.effMSS() }

// effMSS is the payload that fits a segment now: the MSS less the SACK
// blocks our ACKs carry (the timestamps are already counted in sndMSS), as
// Linux's tcp_current_mss.
func (c *Conn) effMSS() int {
	if !c.sackOK || c.ooo.len() == 0 && !c.dsackValid {
		return c.sndMSS
	}
	var o Options
	o.HasTimestamps = c.tsOK
	c.fillSACK(&o)
	base := o.EncodedLen()
	o.NumSACK = 0
	return max(c.sndMSS-(base-o.EncodedLen()), 64)
}

// transmit sends n bytes of the send buffer from offset off as one segment
// starting at sq.
func (c *Conn) transmit(now mono.Time, sq seq.Value, off, n int, flags Flags) {
	f := c.header(now, sq, flags)
	var p [2][]byte
	if n > 0 {
		p = c.snd.peek(off, n)
	}
	if sq.LessThan(c.SndNxt) {
		c.counts().retransmits++
		c.count(func(st *Stats) { st.Retransmits++ })
	}
	c.emit(now, f, p)
}

// armPersist starts the persist timer when the peer's window keeps data
// from moving and nothing is in flight to bring a window update.
func (c *Conn) armPersist(now mono.Time) {
	if c.SndUna == c.SndNxt && c.persistAt == mono.Never && c.rtoAt == mono.Never {
		c.persistAt = now.Add(c.probeInterval())
	}
}

func (c *Conn) probeInterval() time.Duration {
	d := c.rto
	for i := int32(0); i < c.probes && d < c.cfg.RTOMax; i++ {
		d *= 2
	}
	return min(d, c.cfg.RTOMax)
}

// armRTO arms the retransmission timer if it is not running.
func (c *Conn) armRTO(now mono.Time) {
	if c.rtoAt == mono.Never {
		c.setRTO(now.Add(c.rto))
	}
}

// setRTO sets the retransmission timer to at (mono.Never stops it); a
// probe it held is forgotten.
func (c *Conn) setRTO(at mono.Time) { c.rtoAt, c.tlp = at, tlpNone }

// armKeepalive (re)starts the keepalive timer after activity.
func (c *Conn) armKeepalive(now mono.Time) {
	switch {
	case !c.KeepAlive:
		c.keepAt = mono.Never
	case c.state == Established || c.state == CloseWait || c.state == FinWait2:
		if c.keepProbes == 0 {
			c.keepAt = now.Add(c.keepIdle)
		}
	}
}

// ---- Timer cells ----

// retransmitSYN: our SYN or SYN,ACK went unanswered: send it again with the
// timeout doubled, up to the configured number of retries.
func (c *Conn) retransmitSYN(in *Input) {
	limit := c.cfg.SYNRetries
	if c.state == SynReceived {
		limit = c.cfg.SYNACKRetries
	}
	if int(c.backoff) >= limit {
		c.giveUp()
		return
	}
	c.backoff++
	c.synRetransmitted = true
	c.rttTiming = false
	c.rto = min(2*c.rto, c.cfg.RTOMax)
	n := c.counts()
	n.timeouts++
	n.retransmits++
	c.count(func(st *Stats) { st.Timeouts++; st.Retransmits++ })
	c.sendSYN(in.at)
	c.setRTO(in.at.Add(c.rto))
}

// giveUp closes the connection after too many timeouts: ETIMEDOUT, or the
// error an ICMP message reported, as Linux does.
func (c *Conn) giveUp() {
	x := c.extra()
	x.err = ErrTimeout
	if x.soft != nil {
		x.err = x.soft
	}
	c.setState(Closed)
}

// retransmit is the retransmission timeout (RFC 6298 §5.4-5.6): back the
// timer off, collapse the congestion window, and resend from SND.UNA.
func (c *Conn) retransmit(in *Input) {
	if c.SndUna == c.SndNxt {
		return
	}
	if c.tlp == tlpArmed {
		c.lossProbe(in.at)
		return
	}
	if int(c.backoff) >= c.cfg.Retries2 {
		c.giveUp()
		return
	}
	c.backoff++
	c.counts().timeouts++
	c.count(func(st *Stats) { st.Timeouts++ })
	c.startUndo()
	if c.backoff == 1 && !c.inRecov {
		// A timeout in loss recovery does not lower ssthresh again.
		flight := int(c.SndUna.Size(c.SndNxt))
		c.ssthresh = c.ccOnLoss(in.at, flight)
	}
	c.cwnd = c.sndMSS
	c.dupAcks = 0
	c.recover, c.recoverValid = c.SndNxt, true
	c.rttTiming = false
	c.rto = min(2*c.rto, c.cfg.RTOMax)
	c.setRTO(mono.Never)
	c.rtoTS = c.tsVal(in.at)
	if c.sackOK {
		c.enterLossRecovery()
	} else {
		c.inRecov = false
		c.sndCur = c.SndUna // go-back-N
	}
	c.output(in.at)
	c.armRTO(in.at)
}

// probeZeroWindow: the persist timer. Linux's probe is a segment the peer
// must acknowledge without taking data, <SEQ=SND.UNA-1><CTL=ACK>
// (RFC 9293 §3.8.6.1 allows one byte; the probe of Linux carries none).
// A window that is open but too small to use gets what fits in it, as
// Linux's tcp_write_wakeup sends.
func (c *Conn) probeZeroWindow(in *Input) {
	if c.SndWnd > 0 {
		c.sendData(in.at, sendOverride)
		return
	}
	if int(c.probes) >= c.cfg.Retries2 {
		c.giveUp()
		return
	}
	c.probes++
	c.count(func(st *Stats) { st.WindowProbes++ })
	c.emit(in.at, c.header(in.at, c.SndUna.Sub(1), ACK), [2][]byte{})
	c.persistAt = in.at.Add(c.probeInterval())
}

// delayedACK: the delayed-ACK timer sends the ACK owed.
func (c *Conn) delayedACK(in *Input) {
	if c.ackPending {
		c.count(func(st *Stats) { st.DelayedACKs++ })
		c.sendACK(in.at)
	}
}

// keepalive: after the idle time, probe <SEQ=SND.UNA-1> every interval;
// after KeepCount unanswered probes, give up.
func (c *Conn) keepalive(in *Input) {
	if !c.KeepAlive {
		return
	}
	if int(c.keepProbes) >= c.cfg.KeepCount {
		c.giveUp()
		return
	}
	c.keepProbes++
	c.count(func(st *Stats) { st.KeepaliveProbes++ })
	c.emit(in.at, c.header(in.at, c.SndUna.Sub(1), ACK), [2][]byte{})
	c.keepAt = in.at.Add(c.cfg.KeepIntvl)
}

// finWait2Timeout: a closed socket does not wait forever for the peer's
// FIN (Linux's tcp_fin_timeout).
func (c *Conn) finWait2Timeout(in *Input) {
	c.setState(Closed)
}

// ---- Round-trip time (RFC 6298) ----

// sampleSYNRTT takes the handshake's sample, if the SYN was not resent.
func (c *Conn) sampleSYNRTT(now mono.Time) {
	c.rttSampleAt(now, c.ISS.Add(1))
	if c.synRetransmitted && c.srtt == 0 {
		c.rto = 3 * time.Second // RFC 6298 §5.7
	}
}

// rttSampleAt takes a sample if ack covers the timed segment.
func (c *Conn) rttSampleAt(now mono.Time, ack seq.Value) bool {
	if c.rttTiming && c.rttSeq.LessThanEq(ack) {
		c.rttTiming = false
		c.rttSample(now.Sub(c.rttStart))
		return true
	}
	return false
}

// rttSampleTS takes a sample from the echoed timestamp of an ACK of new
// data (RFC 7323 §4.1) while the timer is backed off: timestamps tell which
// transmission is acknowledged, so Karn's ambiguity does not arise and the
// RTO need not stay doubled after a loss (Linux does the same). Timed
// segments remain the source otherwise: they measure finer than the
// millisecond timestamp clock.
func (c *Conn) rttSampleTS(now mono.Time, s *Segment) {
	if !c.tsOK || s == nil || !s.Options.HasTimestamps || s.Options.TSEcr == 0 ||
		c.srtt != 0 && c.rto == c.rtoEstimate() {
		return
	}
	if c.tsOK && int32(s.Options.TSEcr-c.rtoTS) < 0 {
		// An echo from before the last timeout: the peer had the data
		// and its ACK was lost, and its duplicate ACK repeats an old
		// TS.Recent (RFC 7323 §4.3 updates it only in sequence). Such
		// a sample measures the outage, not the path.
		return
	}
	ms := int32(c.tsVal(now) - s.Options.TSEcr)
	if ms < 0 || time.Duration(ms)*time.Millisecond > c.cfg.RTOMax {
		return // an echo of something we never sent, or from long ago
	}
	c.rttSample(time.Duration(ms) * time.Millisecond)
}

// rttSample updates SRTT, RTTVAR and RTO (RFC 6298 §2). The minimum RTO is
// configurable: Linux's 200 ms by default rather than the RFC's 1 s.
func (c *Conn) rttSample(r time.Duration) {
	r = max(r, 0)
	if c.srtt == 0 {
		c.srtt, c.rttvar = max(r, 1), r/2
	} else {
		d := c.srtt - r
		if d < 0 {
			d = -d
		}
		c.rttvar = (3*c.rttvar + d) / 4
		c.srtt = (7*c.srtt + r) / 8
	}
	c.rto = c.rtoEstimate()
}

// rtoEstimate is RFC 6298's RTO from SRTT and RTTVAR, within the bounds.
func (c *Conn) rtoEstimate() time.Duration {
	return min(max(c.srtt+max(4*c.rttvar, time.Millisecond), c.cfg.RTOMin), c.cfg.RTOMax)
}
