package tcp

import (
	"github.com/tapstack/tapstack/mono"
	"github.com/tapstack/tapstack/tcp/seq"
)

// onNewACK handles an ACK that advances SND.UNA: the RTT sample, the
// send buffer, the timers, and congestion control, with NewReno's partial
// and full ACKs in recovery (RFC 6582).
func (c *Conn) onNewACK(now mono.Time, a seq.Value) {
	acked := int(c.SndUna.Size(a))
	c.rttSampleAt(now, a)
	c.ackAdvance(now, a)
	c.dupAcks = 0
	if c.inRecov {
		if a.GreaterThanEq(c.recover) {
			// Full ACK: deflate the window (RFC 6582 §3.2 step 3, option 1).
			c.inRecov = false
			c.cwnd = min(c.ssthresh, max(int(c.SndUna.Size(c.SndNxt)), c.sndMSS)+c.sndMSS)
		} else {
			// Partial ACK: the next hole is lost too. Retransmit it, deflate
			// by what was acknowledged, add back one segment (step 4).
			c.retransmitFirst(now)
			c.cwnd = max(c.cwnd-acked+c.sndMSS, c.sndMSS)
		}
		return
	}
	c.cwnd = c.cc.OnAck(now, c.cwnd, c.ssthresh, acked, c.srtt)
}

// ackAdvance moves SND.UNA to a: frees acknowledged data and restarts or
// stops the retransmission timer (RFC 6298 §5.2-5.3).
func (c *Conn) ackAdvance(now mono.Time, a seq.Value) {
	c.SndUna = a
	end := c.sndBufSeq.Add(seq.Size(c.snd.Len()))
	if n := int(c.sndBufSeq.Size(seq.Min(a, end))); n > 0 && c.sndBufSeq.LessThan(a) {
		c.snd.discard(n)
		c.sndBufSeq = c.sndBufSeq.Add(seq.Size(n))
		c.bytesAcked += uint64(n)
		c.ev |= EventWritable
	}
	if c.snd.Len() == 0 {
		c.snd.release()
	}
	if c.sndCur.LessThan(a) {
		c.sndCur = a
	}
	c.sack.ackedTo(a)
	c.backoff, c.probes = 0, 0
	if c.SndUna == c.SndNxt {
		c.rtoAt = mono.Never
	} else {
		c.rtoAt = now.Add(c.rto)
	}
}

// onDupACK counts duplicate ACKs (RFC 5681 §2): the third starts fast
// retransmit and NewReno's fast recovery, further ones inflate the window.
func (c *Conn) onDupACK(now mono.Time) {
	c.dupAcks++
	c.count(func(st *Stats) { st.DupACKs++ })
	switch {
	case c.inRecov:
		c.cwnd += c.sndMSS
	case c.dupAcks == dupThresh || c.dupAcks > dupThresh && c.sack.lostAbove(c.SndUna, c.sndMSS):
		// RFC 6582 §3.2 step 2: only if this loss is not from before the
		// last recovery.
		if c.recoverValid && c.SndUna.LessThan(c.recover) {
			return
		}
		flight := int(c.SndUna.Size(c.SndNxt))
		c.ssthresh = c.cc.OnLoss(now, c.cwnd, flight)
		c.recover, c.recoverValid = c.SndNxt, true
		c.inRecov = true
		c.counts.fastRecoveries++
		c.count(func(st *Stats) { st.FastRetransmits++ })
		c.retransmitFirst(now)
		c.cwnd = c.ssthresh + dupThresh*c.sndMSS
	}
}

const dupThresh = 3

// retransmitFirst resends the first unacknowledged segment, or with SACK
// the first hole, at once.
func (c *Conn) retransmitFirst(now mono.Time) {
	sq := c.SndUna
	n := c.effMSS()
	if c.sackOK {
		if h, hn, ok := c.sack.firstHole(c.SndUna, c.SndNxt); ok {
			sq, n = h, min(n, hn)
		}
	}
	off := int(c.sndBufSeq.Size(sq))
	avail := c.snd.Len() - off
	if sq.LessThan(c.sndBufSeq) || avail < 0 {
		return
	}
	n = min(n, avail)
	flags := ACK
	if c.finQueued && sq.Add(seq.Size(n)) == c.finSeq && c.SndNxt == c.finSeq.Add(1) {
		flags |= FIN
	}
	if n == 0 && flags&FIN == 0 {
		return
	}
	c.rttTiming = false
	c.transmit(now, sq, off, n, flags)
	c.rtoAt = now.Add(c.rto)
}

// processSACK records the blocks of an arriving ACK in the scoreboard and
// counts D-SACK reports (RFC 2883: the first block below the cumulative
// ACK, or inside the second block).
func (c *Conn) processSACK(s *Segment, a seq.Value) {
	blocks := s.Options.SACK()
	for i, b := range blocks {
		if !b.Left.LessThan(b.Right) {
			continue
		}
		if i == 0 && (b.Right.LessThanEq(a) ||
			len(blocks) > 1 && blocks[1].Left.LessThanEq(b.Left) && b.Right.LessThanEq(blocks[1].Right)) {
			c.counts.dsacks++
			c.count(func(st *Stats) { st.DSACKsReceived++ })
			continue
		}
		// Only what we sent and is not yet cumulatively acknowledged.
		if b.Right.GreaterThan(c.SndNxt) || b.Left.LessThan(a) && b.Right.LessThanEq(a) {
			continue
		}
		c.sack.add(seq.Max(b.Left, a), b.Right)
	}
}

// noteSACK records the block just received out of order, to be reported
// first (RFC 2018 §4).
func (c *Conn) noteSACK(left, right seq.Value) {
	c.lastOOO = left
}

// fillSACK puts the SACK blocks for an ACK into o: a D-SACK block first if
// one is owed, then the block holding the latest out-of-order arrival, then
// the rest in order, as many as fit (Options.Encode drops what does not).
func (c *Conn) fillSACK(o *Options) {
	n := 0
	if c.dsackValid {
		o.SACKBlocks[n] = c.dsack
		n++
	}
	if c.ooo.len() == 0 {
		o.NumSACK = n
		return
	}
	var ranges [MaxSACKBlocks + 1]SACKBlock
	k := 0
	first := -1
	for i := range c.ooo.segs {
		sg := &c.ooo.segs[i]
		l, r := sg.seq, sg.seq.Add(seq.Size(sg.n))
		if k > 0 && l.LessThanEq(ranges[k-1].Right) {
			ranges[k-1].Right = seq.Max(ranges[k-1].Right, r)
		} else if k < len(ranges) {
			ranges[k] = SACKBlock{l, r}
			k++
		} else {
			break
		}
		if c.lastOOO.InRange(ranges[k-1].Left, ranges[k-1].Right) || c.lastOOO == ranges[k-1].Left {
			first = k - 1
		}
	}
	if first >= 0 && n < MaxSACKBlocks {
		o.SACKBlocks[n] = ranges[first]
		n++
	}
	for i := 0; i < k && n < MaxSACKBlocks; i++ {
		if i != first && ranges[i].Left != ranges[i].Right {
			o.SACKBlocks[n] = ranges[i]
			n++
		}
	}
	o.NumSACK = n
}

// sackScoreboard holds the blocks the peer has selectively acknowledged
// above SND.UNA, sorted and disjoint, at most sackScoreMax of them
// (a limit on what a peer can make us keep).
type sackScoreboard struct {
	blocks [sackScoreMax]SACKBlock
	n      int
}

const sackScoreMax = 16

func (b *sackScoreboard) clear() { b.n = 0 }

// add merges [l, r) into the board.
func (b *sackScoreboard) add(l, r seq.Value) {
	if !l.LessThan(r) {
		return
	}
	var out [sackScoreMax + 1]SACKBlock
	k := 0
	placed := false
	for _, x := range b.blocks[:b.n] {
		switch {
		case x.Right.LessThan(l):
			out[k] = x
			k++
		case r.LessThan(x.Left):
			if !placed {
				out[k] = SACKBlock{l, r}
				k++
				placed = true
			}
			out[k] = x
			k++
		default:
			l, r = seq.Min(l, x.Left), seq.Max(r, x.Right)
		}
	}
	if !placed {
		out[k] = SACKBlock{l, r}
		k++
	}
	b.n = min(k, sackScoreMax) // the highest blocks are forgotten first
	copy(b.blocks[:b.n], out[:b.n])
}

// ackedTo drops what the cumulative ACK now covers.
func (b *sackScoreboard) ackedTo(a seq.Value) {
	k := 0
	for _, x := range b.blocks[:b.n] {
		if x.Right.LessThanEq(a) {
			continue
		}
		if x.Left.LessThan(a) {
			x.Left = a
		}
		b.blocks[k] = x
		k++
	}
	b.n = k
}

// firstHole returns the first range above una not SACKed and below the
// highest SACKed byte: the segment RFC 6675's NextSeg() picks first.
func (b *sackScoreboard) firstHole(una, nxt seq.Value) (seq.Value, int, bool) {
	if b.n == 0 {
		return 0, 0, false
	}
	if una.LessThan(b.blocks[0].Left) {
		return una, int(una.Size(b.blocks[0].Left)), true
	}
	for i := 0; i+1 < b.n; i++ {
		return b.blocks[i].Right, int(b.blocks[i].Right.Size(b.blocks[i+1].Left)), true
	}
	return 0, 0, false
}

// lostAbove reports RFC 6675's IsLost(SND.UNA): more than three segments'
// worth of data SACKed above it.
func (b *sackScoreboard) lostAbove(una seq.Value, mss int) bool {
	total := 0
	for _, x := range b.blocks[:b.n] {
		if x.Left.GreaterThan(una) {
			total += int(x.Left.Size(x.Right))
		}
	}
	return total > (dupThresh-1)*mss
}
