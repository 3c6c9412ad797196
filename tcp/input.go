package tcp

import (
	"github.com/tapstack/tapstack/mono"
	"github.com/tapstack/tapstack/tcp/seq"
)

// The cells for segments in the synchronized states are pipelines of the
// steps of RFC 9293 §3.10.7.4, each of which may end the pipeline by
// returning false: checkSeq (first), checkRST (second), checkSYN (fourth),
// checkACK (fifth), processText (seventh), processFIN (eighth). The third
// (security) and sixth (URG) checks have nothing to do: we keep no
// security compartments, and urgent data is delivered inline.

// establishedOnSeg: ESTABLISHED, FIN-WAIT-2 and CLOSE-WAIT, where an ACK
// changes no state and a FIN moves to CLOSE-WAIT or TIME-WAIT.
func (c *Conn) establishedOnSeg(in *Input) {
	_ = c.checkSeq(in) && c.checkACK(in) && c.processText(in) && c.processFIN(in)
	c.finish(in.at)
}

// synReceivedOnSeg: an acceptable ACK completes the handshake, then the
// segment is processed as in ESTABLISHED.
func (c *Conn) synReceivedOnSeg(in *Input) {
	_ = c.checkSeq(in) && c.acceptHandshakeACK(in) && c.checkACK(in) && c.processText(in) && c.processFIN(in)
	c.finish(in.at)
}

// finWait1OnSeg: once our FIN is acknowledged, FIN-WAIT-2; a FIN moves to
// CLOSING (ours unacknowledged) or TIME-WAIT.
func (c *Conn) finWait1OnSeg(in *Input) {
	_ = c.checkSeq(in) && c.checkACK(in) && c.finWait1Acked(in) && c.processText(in) && c.processFIN(in)
	c.finish(in.at)
}

// closingOnSeg: the ACK of our FIN moves to TIME-WAIT; text and FIN are
// already behind us.
func (c *Conn) closingOnSeg(in *Input) {
	_ = c.checkSeq(in) && c.checkACK(in) && c.closingAcked(in)
	c.finish(in.at)
}

// lastAckOnSeg: the ACK of our FIN closes the connection.
func (c *Conn) lastAckOnSeg(in *Input) {
	_ = c.checkSeq(in) && c.checkACK(in) && c.lastAckAcked(in)
	c.finish(in.at)
}

// timeWaitOnSeg: only a retransmitted FIN can arrive; checkSeq acknowledges
// it and restarts the 2MSL timer.
func (c *Conn) timeWaitOnSeg(in *Input) {
	_ = c.checkSeq(in) && c.checkACK(in) && c.processFIN(in)
	c.finish(in.at)
}

// onRST: the sequence check, then RFC 5961's RST check.
func (c *Conn) onRST(in *Input) {
	_ = c.checkSeq(in) && c.checkRST(in)
	c.finish(in.at)
}

// onSYN: a SYN in a synchronized state gets a challenge ACK (RFC 5961 §4).
func (c *Conn) onSYN(in *Input) {
	_ = c.checkSeq(in) && c.checkSYN(in)
	c.finish(in.at)
}

// onNoACK: a segment without ACK is dropped once it passes the sequence
// check (fifth check, "if the ACK bit is off, drop the segment").
func (c *Conn) onNoACK(in *Input) {
	if c.checkSeq(in) {
		c.drop(in)
	}
	c.finish(in.at)
}

// timeWaitOnSYN: a SYN whose sequence number is above RCV.NXT, or whose
// timestamp is newer than TS.Recent when the connection used timestamps,
// may start a new incarnation of the connection (RFC 9293 §3.6.1, RFC
// 6191). The owner reopens the tuple (EventReuse); anything else gets a
// challenge ACK.
func (c *Conn) timeWaitOnSYN(in *Input) {
	s := in.seg
	var newer bool
	if c.tsOK && s.Options.HasTimestamps {
		newer = int32(s.Options.TSVal-c.TSRecent) > 0
	} else {
		newer = s.Seq.GreaterThan(c.RcvNxt)
	}
	if newer {
		c.ev |= EventReuse
		c.setState(Closed)
		return
	}
	c.onSYN(in)
}

// ReuseISS returns an initial sequence number for a new incarnation of a
// connection that TIME-WAIT handed over: well above anything the old one
// sent, as Linux does (snd_nxt + 65535 + 2).
func (c *Conn) ReuseISS() seq.Value { return c.SndNxt.Add(65535 + 2) }

// SetISS fixes the ISS the next open uses instead of RFC 6528's.
func (c *Conn) SetISS(v seq.Value) { c.ISS, c.issSet = v, true }

// finish ends a segment's processing: send what the windows now allow and
// any ACK owed, and re-arm keepalive.
func (c *Conn) finish(now mono.Time) {
	if c.state == Closed {
		return
	}
	c.output(now)
	c.flushACK(now)
	c.armKeepalive(now)
}

// checkSeq is the first check: PAWS (RFC 7323 §5.3), then the
// acceptability test of §3.4. An unacceptable segment other than a RST is
// answered with <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK> and dropped.
func (c *Conn) checkSeq(in *Input) bool {
	s := in.seg
	isRST := in.ev == SegRST || in.ev == SegRSTACK
	if c.tsOK && s.Options.HasTimestamps && !isRST && c.tsRecentAt != 0 {
		// TS.Recent is invalid after 24 days of idleness (§5.5).
		if int32(s.Options.TSVal-c.TSRecent) < 0 && in.at.Sub(c.tsRecentAt) < pawsIdle {
			c.count(func(st *Stats) { st.PAWSRejected++ })
			c.oowACK(in)
			return false
		}
	}
	if !c.acceptable(s) {
		c.count(func(st *Stats) { st.OutOfWindow++ })
		if !isRST {
			c.oowACK(in)
			end := s.Seq.Add(seq.Size(len(s.Payload)))
			if len(s.Payload) > 0 && end.LessThanEq(c.RcvNxt) {
				// A duplicate: report it with a D-SACK block (RFC 2883).
				c.setDSACK(SACKBlock{s.Seq, end})
			}
			if c.state == TimeWait && in.ev == SegFIN {
				c.waitAt = in.at.Add(c.cfg.TimeWait)
			}
		}
		return false
	}
	// RFC 7323 §4.3: TS.Recent follows the segment that covers
	// Last.ACK.sent.
	if c.tsOK && s.Options.HasTimestamps && s.Seq.LessThanEq(c.lastAckSent) &&
		int32(s.Options.TSVal-c.TSRecent) >= 0 {
		c.TSRecent, c.tsRecentAt = s.Options.TSVal, in.at
	}
	c.probes, c.keepProbes = 0, 0
	return true
}

// pawsIdle is how long TS.Recent stays valid without update (24 days).
const pawsIdle = 24 * 24 * 3600 * 1e9

// acceptable is the segment acceptability test of RFC 9293 §3.4.
func (c *Conn) acceptable(s *Segment) bool {
	n, wnd := s.Len(), c.RcvWnd
	switch {
	case n == 0 && wnd == 0:
		return s.Seq == c.RcvNxt
	case n == 0:
		return s.Seq.InWindow(c.RcvNxt, wnd)
	case wnd == 0:
		return false
	}
	return s.Seq.InWindow(c.RcvNxt, wnd) || s.Seq.Add(n-1).InWindow(c.RcvNxt, wnd)
}

// checkRST is the second check as RFC 5961 §3.2 amends it: a RST exactly
// at RCV.NXT resets the connection; one elsewhere in the window gets a
// challenge ACK and is dropped.
func (c *Conn) checkRST(in *Input) bool {
	if in.seg.Seq != c.RcvNxt {
		c.challengeACK(in)
		return false
	}
	c.count(func(st *Stats) { st.ResetsReceived++ })
	switch c.state {
	case SynReceived:
		// From a passive open the owner discards the TCB (LISTEN goes on
		// in the listener); from simultaneous open, "connection refused".
		c.setErr(ErrConnRefused)
	case Established, FinWait1, FinWait2, CloseWait:
		c.setErr(ErrConnReset)
	}
	c.setState(Closed)
	return false
}

// checkSYN is the fourth check (RFC 5961 §4): a SYN in a synchronized
// state, whatever its sequence number, gets a challenge ACK.
func (c *Conn) checkSYN(in *Input) bool {
	c.challengeACK(in)
	return false
}

// challengeACK answers with an ACK at most once per
// Config.InvalidRateLimit, data or not (Linux's tcp_send_challenge_ack).
func (c *Conn) challengeACK(in *Input) {
	if c.answerACK(in, true) {
		c.count(func(st *Stats) { st.ChallengeACKs++ })
	}
}

// oowACK answers a segment outside the window with an ACK: see answerACK.
func (c *Conn) oowACK(in *Input) bool { return c.answerACK(in, false) }

// answerACK answers a segment outside the window, or a challenge, with an
// ACK, at most one per Config.InvalidRateLimit, as Linux's
// tcp_invalid_ratelimit (RFC 5961 §7's throttling): two stacks that
// disagree about the window must not ping-pong ACKs forever, and a spoofer
// must not turn us into an amplifier. A data segment outside the window
// always gets its duplicate ACK, as in Linux: the sender's loss recovery
// needs it; a challenge does not.
func (c *Conn) answerACK(in *Input, challenge bool) bool {
	s := in.seg
	if challenge || len(s.Payload) == 0 || s.Flags&SYN != 0 {
		if c.oowAt != 0 && in.at.Sub(c.oowAt) < c.cfg.InvalidRateLimit {
			c.count(func(st *Stats) { st.ACKsRateLimited++ })
			return false
		}
		c.oowAt = in.at
	}
	c.ackNow = true
	return true
}

// acceptHandshakeACK is the fifth check in SYN-RECEIVED: SND.UNA < SEG.ACK
// =< SND.NXT enters ESTABLISHED; any other ACK gets <SEQ=SEG.ACK><CTL=RST>.
func (c *Conn) acceptHandshakeACK(in *Input) bool {
	s := in.seg
	if !(c.SndUna.LessThan(s.Ack) && s.Ack.LessThanEq(c.SndNxt)) {
		c.count(func(st *Stats) { st.BadACK++ })
		c.emitRST(in.at, HeaderFields{SeqNum: s.Ack, Flags: RST})
		return false
	}
	c.SndWnd = seq.Size(s.Window) << c.SndScale
	c.maxSndWnd = c.SndWnd
	c.SndWl1, c.SndWl2 = s.Seq, s.Ack
	c.sndBufSeq = c.ISS.Add(1)
	c.rttSampleAt(in.at, s.Ack)
	c.ackAdvance(in.at, s.Ack)
	c.setState(Established)
	if c.finQueued {
		c.setState(FinWait1)
	}
	return true
}

// checkACK is the fifth check in the other synchronized states (RFC 9293
// with RFC 5961 §5.2's ACK validation).
func (c *Conn) checkACK(in *Input) bool {
	s := in.seg
	a := s.Ack
	if a.GreaterThan(c.SndNxt) || a.LessThan(c.SndUna.Sub(c.maxSndWnd)) {
		// Acknowledges what we never sent, or is older than any window:
		// answer with a challenge ACK and drop (RFC 5961 §5.2; Linux
		// rate-limits these as it does every challenge).
		c.count(func(st *Stats) { st.BadACK++ })
		c.challengeACK(in)
		return false
	}
	if c.state == TimeWait {
		return true
	}
	// With SACK, a duplicate ACK is evidence of loss only when it SACKs
	// data above the cumulative ACK (RFC 6675 §2); one that only reports a
	// duplicate (D-SACK) says nothing is missing, and Linux does not count
	// it either.
	dupEvidence := !c.sackOK
	if c.sackOK && s.Options.NumSACK > 0 {
		dupEvidence = c.processSACK(s, a)
	}
	wnd := seq.Size(s.Window) << c.SndScale
	// Window update (§3.10.7.4): from a newer segment, or the same one
	// acknowledging more.
	if c.SndUna.LessThanEq(a) && (c.SndWl1.LessThan(s.Seq) || (c.SndWl1 == s.Seq && c.SndWl2.LessThanEq(a))) {
		if wnd > c.SndWnd && c.persistAt != mono.Never {
			c.persistAt = mono.Never
		}
		dupCandidate := wnd == c.SndWnd
		c.SndWnd, c.SndWl1, c.SndWl2 = wnd, s.Seq, a
		c.maxSndWnd = max(c.maxSndWnd, wnd)
		if !dupCandidate {
			c.dupAcks = 0
		}
	}
	switch {
	case a.GreaterThan(c.SndUna):
		c.onNewACK(in.at, a, s)
	case a == c.SndUna && len(s.Payload) == 0 && in.ev == SegACK && c.SndUna != c.SndNxt && wnd == c.SndWnd && dupEvidence:
		c.onDupACK(in.at)
	}
	return true
}

// finWait1Acked: our FIN acknowledged, FIN-WAIT-2.
func (c *Conn) finWait1Acked(in *Input) bool {
	if c.finAcked() {
		c.setState(FinWait2)
		c.setRTO(mono.Never)
		c.persistAt = mono.Never
		if c.orphan {
			c.waitAt = in.at.Add(c.cfg.FinTimeout)
		}
	}
	return true
}

// closingAcked: our FIN acknowledged, TIME-WAIT.
func (c *Conn) closingAcked(in *Input) bool {
	if c.finAcked() {
		c.enterTimeWait(in.at)
	}
	return false
}

// lastAckAcked: our FIN acknowledged, CLOSED.
func (c *Conn) lastAckAcked(in *Input) bool {
	if c.finAcked() {
		c.setState(Closed)
	}
	return false
}

func (c *Conn) finAcked() bool { return c.finQueued && c.SndUna == c.finSeq.Add(1) }

func (c *Conn) enterTimeWait(now mono.Time) {
	c.setState(TimeWait)
	c.setRTO(mono.Never)
	c.persistAt, c.keepAt = mono.Never, mono.Never
	c.waitAt = now.Add(c.cfg.TimeWait)
	c.snd.release()
	c.releaseOOO()
}

// processText is the seventh check: in-order data goes to the receive
// buffer, data beyond a hole to the out-of-order queue. In states past the
// peer's FIN there is no more text and it is ignored.
func (c *Conn) processText(in *Input) bool {
	s := in.seg
	if len(s.Payload) == 0 && !in.fin() {
		return true
	}
	switch c.state {
	case Established, FinWait1, FinWait2:
	default:
		return true
	}
	if c.orphan && len(s.Payload) > 0 {
		// Nobody will read it: tell the peer (Linux, RFC 2525 §2.17).
		c.count(func(st *Stats) { st.ResetsSent++ })
		c.sendRST(in.at, c.SndNxt, 0, false)
		c.setErr(ErrConnAborted)
		c.setState(Closed)
		return false
	}
	p, at, fin := s.Payload, s.Seq, in.fin()
	// Trim to the window: what precedes RCV.NXT, then what lies past it.
	if at.LessThan(c.RcvNxt) {
		k := int(at.Size(c.RcvNxt))
		if len(p) > 0 {
			// Partly a duplicate: the next ACK reports that part with a
			// D-SACK block (RFC 2883 §4.1.1), as Linux does.
			c.setDSACK(SACKBlock{at, at.Add(seq.Size(min(k, len(p))))})
		}
		if k >= len(p) {
			p = nil
		} else {
			p = p[k:]
		}
		at = c.RcvNxt
	}
	if room := int(c.RcvNxt.Size(c.rcvAdv)) - int(c.RcvNxt.Size(at)); len(p) > room {
		p, fin = p[:max(room, 0)], false
		c.count(func(st *Stats) { st.TrimmedBeyondWindow++ })
	}
	in.finOK = fin
	if at != c.RcvNxt {
		switch kept, dup, overlap := c.takeOOO().insert(at, p, fin, c.cfg.OOOSegmentsMax, int(c.rcvBufMax)); {
		case kept:
			if overlap != (SACKBlock{}) {
				// Partly held already: that part is a duplicate (RFC 2883
				// §4.1.1), as Linux reports it.
				c.setDSACK(overlap)
			}
			c.noteSACK(at, at.Add(seq.Size(len(p))))
			c.count(func(st *Stats) { st.OutOfOrder++ })
		case dup:
			// Held already: a D-SACK block first, then the blocks as
			// before, the one holding it among them (RFC 2883 §4.1.2).
			c.setDSACK(SACKBlock{at, at.Add(seq.Size(len(p)))})
		default:
			c.count(func(st *Stats) { st.OutOfOrderDropped++ })
			if c.ooo.len() == 0 {
				c.releaseOOO()
			}
		}
		in.finOK = false
		c.ackNow = true // a duplicate ACK tells the sender of the hole
		return true
	}
	from := c.RcvNxt // where the data taken in order now begins
	if len(p) > 0 {
		// The window keeps the buffer from overflowing; should it not,
		// what does not fit is not acknowledged and comes again.
		var n int
		if c.adopt(s, p) {
			n = len(p)
		} else {
			n = c.rcv.write(p, int(c.rcvBufMax))
		}
		if n < len(p) {
			in.finOK = false
		}
		c.RcvNxt = c.RcvNxt.Add(seq.Size(n))
		c.rcvUnacked += int32(n)
		c.ev |= EventReadable
		c.rcvMeasureRTT(in.at)
	}
	if c.ooo.len() > 0 {
		if c.pullOOO(from) {
			in.finOK = true
		}
		c.ackNow = true // a hole filled: say so at once (RFC 5681 §4.2)
	}
	c.rcvAdvanced()
	c.ackPending = true
	switch {
	case int(c.rcvUnacked) >= 2*c.rcvMSS():
		c.ackNow = true // at least every second full-sized segment
	case c.quickAcks > 0:
		c.quickAcks--
		c.ackNow = true
	}
	return true
}

// adoptMin is the least in-order payload a connection keeps in the buffer
// it arrived in rather than copying: below it the copy costs little, and a
// receive buffer of many small buffers would be slow to read.
const adoptMin = 16 << 10

// adopt moves p, the in-order payload of s, to the receive buffer by
// taking the buffer it lies in, when s offers it and p fills at least half
// of it (so what the receive buffer holds stays within twice the window).
func (c *Conn) adopt(s *Segment, p []byte) bool {
	b := s.Buf
	if b == nil || len(p) < adoptMin || 2*len(p) < cap(*b) {
		return false
	}
	off := cap(*b) - cap(p)
	if off < 0 || off+len(p) > len(*b) || &(*b)[off] != &p[0] {
		return false // p is not in b
	}
	if !c.rcv.adopt(b, off, len(p), int(c.rcvBufMax)) {
		return false
	}
	s.Buf = nil
	c.count(func(st *Stats) { st.SegmentsAdopted++ })
	return true
}

// pullOOO moves what the out-of-order queue holds at RCV.NXT into the
// receive buffer and reports whether a queued FIN was reached; from is
// where the data just taken in order began. An emptied queue goes back to
// its pool.
func (c *Conn) pullOOO(from seq.Value) (fin bool) {
	fin = c.pullOOOSegs(from)
	if c.ooo.len() == 0 {
		c.releaseOOO()
	}
	return fin
}

func (c *Conn) pullOOOSegs(from seq.Value) (fin bool) {
	// Held data in [from, dupEdge) came again in the data just taken in
	// order: a duplicate, reported with a D-SACK block (RFC 2883 §4.1.1),
	// as Linux's tcp_ofo_queue reports it.
	dupEdge := c.RcvNxt
	for c.ooo.len() > 0 {
		o := &c.ooo.segs()[0]
		end := o.dataEnd()
		if o.seq.GreaterThan(c.RcvNxt) {
			return false
		}
		if lo, hi := seq.Max(o.seq, from), seq.Min(end, dupEdge); lo.LessThan(hi) {
			c.noteDSACK(SACKBlock{lo, hi})
		}
		if end.GreaterThan(c.RcvNxt) {
			d := (*o.b)[int(o.seq.Size(c.RcvNxt)):o.n]
			n := c.rcv.write(d, int(c.rcvBufMax))
			c.RcvNxt = c.RcvNxt.Add(seq.Size(n))
			c.rcvUnacked += int32(n)
			c.ev |= EventReadable
			if n < len(d) {
				return false // the rest stays queued
			}
		}
		f := o.fin && end == c.RcvNxt
		c.ooo.popFront()
		if f {
			return true
		}
	}
	return false
}

// processFIN is the eighth check.
func (c *Conn) processFIN(in *Input) bool {
	if !in.finOK {
		return true
	}
	if c.state == TimeWait {
		c.ackNow = true
		c.waitAt = in.at.Add(c.cfg.TimeWait)
		return true
	}
	if c.finRcvd {
		return true
	}
	c.finRcvd = true
	c.RcvNxt = c.RcvNxt.Add(1)
	c.rcvAdvanced()
	c.ev |= EventReadable
	c.ackNow = true
	switch c.state {
	case SynReceived, Established:
		c.setState(CloseWait)
	case FinWait1:
		c.setState(Closing)
	case FinWait2:
		c.enterTimeWait(in.at)
	}
	return true
}

// rcvAdvanced keeps RCV.WND in step after RCV.NXT moved.
func (c *Conn) rcvAdvanced() {
	if c.rcvAdv.LessThan(c.RcvNxt) {
		c.rcvAdv = c.RcvNxt
	}
	c.RcvWnd = c.RcvNxt.Size(c.rcvAdv)
}
