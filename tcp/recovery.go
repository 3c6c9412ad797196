package tcp

import (
	"sort"
	"sync"

	"github.com/tapstack/tapstack/mono"
	"github.com/tapstack/tapstack/tcp/seq"
)

// Loss recovery. Without SACK it is NewReno (RFC 6582): fast retransmit
// of SND.UNA, one retransmission per partial ACK, and go-back-N after a
// timeout. With SACK it is RFC 6675: a scoreboard of what the peer holds,
// pipe (the bytes estimated in flight) against cwnd, and NextSeg choosing
// lost holes first; after a timeout the scoreboard is kept (as Linux keeps
// it) and only holes are resent. Two additions from Linux: a retransmission
// is known lost when data sent after it is SACKed (so it goes again without
// waiting for a timeout), and a recovery whose every retransmission the
// peer reports as duplicate (D-SACK, RFC 2883), or whose ACK echoes a
// timestamp older than the first retransmission (Eifel, RFC 3522), is
// undone: the window returns to what it was.

// onNewACK handles an ACK that advances SND.UNA: the RTT sample, the
// send buffer, the timers, and congestion control in and out of recovery.
func (c *Conn) onNewACK(now mono.Time, a seq.Value, s *Segment) {
	acked := int(c.SndUna.Size(a))
	used := c.cwndUsed() // before SND.UNA moves
	if !c.rttSampleAt(now, a) {
		c.rttSampleTS(now, s)
	}
	c.ackAdvance(now, a)
	c.govOnAck(now)
	c.dupAcks = 0
	if !c.inRecov {
		if !used {
			acked = 0
		}
		c.cwnd = c.ccOnAck(now, acked)
		return
	}
	if a.GreaterThanEq(c.recover) {
		c.endRecovery(s)
		return
	}
	switch {
	case c.lossAll:
		// Loss recovery after a timeout slow-starts back up.
		c.cwnd = c.ccOnAck(now, acked)
	case c.sb == nil:
		// NewReno partial ACK: the next hole is lost too. Retransmit it,
		// deflate by what was acknowledged, add back one segment (step 4).
		c.retransmitFirst(now)
		c.cwnd = max(c.cwnd-acked+c.sndMSS, c.sndMSS)
	}
	// With SACK, output sends what pipe allows.
}

// endRecovery leaves recovery on the ACK that covers recover.
func (c *Conn) endRecovery(s *Segment) {
	fast := !c.lossAll
	c.inRecov, c.lossAll = false, false
	if c.spurious(s) {
		c.undoRecovery()
		return
	}
	if fast {
		if c.sb != nil {
			c.cwnd = c.ssthresh
		} else {
			// Deflate the window (RFC 6582 §3.2 step 3, option 1).
			c.cwnd = min(c.ssthresh, max(int(c.SndUna.Size(c.SndNxt)), c.sndMSS)+c.sndMSS)
		}
	}
	// The undo record stays: D-SACKs for the retransmissions usually
	// arrive after the ACK that ends the recovery.
	if c.SndUna == c.SndNxt {
		c.releaseScoreboard()
	}
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
	if c.sb != nil {
		c.sb.ackedTo(a)
	}
	c.backoff, c.probes = 0, 0
	if c.SndUna == c.SndNxt {
		c.setRTO(mono.Never)
		if !c.inRecov {
			c.releaseScoreboard()
		}
	} else {
		c.tlp = tlpNone // a new episode: a probe may go again
		c.armLossTimer(now, true)
	}
}

// onDupACK counts duplicate ACKs (RFC 5681 §2): the third, or with SACK
// enough SACKed data above SND.UNA (RFC 6675's IsLost), starts fast
// retransmit and recovery.
func (c *Conn) onDupACK(now mono.Time) {
	c.dupAcks++
	c.count(func(st *Stats) { st.DupACKs++ })
	switch {
	case c.inRecov:
		if c.sb == nil {
			c.cwnd += c.sndMSS // NewReno inflation; SACK recovery counts pipe
		}
	case c.dupAcks >= dupThresh || c.sb != nil && c.sb.lostAbove(c.SndUna, c.sndMSS) || c.probeSACKed():
		// RFC 6582 §3.2 step 2: only if this loss is not from before the
		// last recovery.
		if c.recoverValid && c.SndUna.LessThan(c.recover) {
			return
		}
		c.startUndo()
		flight := int(c.SndUna.Size(c.SndNxt))
		c.ssthresh = c.ccOnLoss(now, flight)
		c.recover, c.recoverValid = c.SndNxt, true
		c.inRecov = true
		c.counts().fastRecoveries++
		c.count(func(st *Stats) { st.FastRetransmits++ })
		if c.sackOK {
			// RFC 6675 §5 (4.2-4.4): cwnd = ssthresh and the first hole
			// goes now, lost by IsLost or not; output sends what pipe
			// allows after it.
			c.scoreboard()
			c.cwnd = c.ssthresh
			c.retransmitFirst(now)
			return
		}
		c.retransmitFirst(now)
		c.cwnd = c.ssthresh + dupThresh*c.sndMSS
	}
}

const dupThresh = 3

// enterLossRecovery is the timeout's part with SACK: every unSACKed byte
// below SND.NXT is lost and goes again, holes only, in slow start.
func (c *Conn) enterLossRecovery() {
	c.inRecov, c.lossAll = true, true
	sb := c.scoreboard()
	sb.rtx = sb.rtx[:0] // every retransmission is presumed lost too
	if c.backoff > 1 {
		// A second timeout without progress: the peer may have dropped
		// what it SACKed (reneging, RFC 2018 §8); start afresh.
		sb.blocks = sb.blocks[:0]
	}
}

// retransmitFirst resends the first unacknowledged segment, or with SACK
// the first hole, at once.
func (c *Conn) retransmitFirst(now mono.Time) {
	sq := c.SndUna
	n := c.effMSS()
	if c.sb != nil {
		if h, hn, ok := c.sb.firstHole(c.SndUna, c.SndNxt); ok {
			sq, n = h, min(n, hn)
		}
	}
	c.retransmitRange(now, sq, n)
	c.setRTO(now.Add(c.rto))
}

// retransmitRange resends up to n bytes from sq (and the FIN if it ends
// there), recording it on the scoreboard. It returns the sequence space
// sent, 0 if nothing could go.
func (c *Conn) retransmitRange(now mono.Time, sq seq.Value, n int) int {
	off := int(c.sndBufSeq.Size(sq))
	avail := c.snd.Len() - off
	if sq.LessThan(c.sndBufSeq) || avail < 0 || c.sb != nil && len(c.sb.rtx) == rtxMax {
		return 0 // with no room to record it, it would be chosen again: wait for ACKs
	}
	n = min(n, avail)
	flags := ACK
	if n > 0 && n == avail {
		flags |= PSH // as the original segment carried it
	}
	if c.finQueued && sq.Add(seq.Size(n)) == c.finSeq && c.SndNxt == c.finSeq.Add(1) {
		flags |= FIN
	}
	if n == 0 && flags&FIN == 0 {
		return 0
	}
	c.rttTiming = false
	c.transmit(now, sq, off, n, flags)
	used := n
	if flags&FIN != 0 {
		used++
	}
	if c.sb != nil {
		c.sb.addRtx(sq, sq.Add(seq.Size(used)), c.SndNxt)
	}
	if c.inRecov {
		u := &c.extra().undo
		u.retrans++
		if u.tsval == 0 && c.tsOK {
			u.tsval = c.tsVal(now) | 1 // 0 means unset
		}
	}
	c.armRTO(now)
	return used
}

// retransmitLost sends lost holes while pipe leaves room in cwnd (RFC 6675
// §5 step C, NextSeg rule 1), and returns the room cwnd leaves for new
// data.
func (c *Conn) retransmitLost(now mono.Time) (room int) {
	mss := c.effMSS()
	for {
		room = c.cwnd - c.pipe()
		if room < mss {
			return max(room, 0)
		}
		sq, n, ok := c.nextLost(mss)
		if !ok {
			return room
		}
		if c.retransmitRange(now, sq, min(n, room)) == 0 {
			return room
		}
	}
}

// pipe is RFC 6675's estimate of the bytes in flight: unSACKed bytes not
// deemed lost, plus every retransmission not yet SACKed or acknowledged.
func (c *Conn) pipe() int {
	sb := c.sb
	if sb == nil {
		return int(c.SndUna.Size(c.SndNxt))
	}
	lost := c.lostBelow()
	p := 0
	l := c.SndUna
	for i := 0; i <= len(sb.blocks); i++ {
		r := c.SndNxt
		if i < len(sb.blocks) {
			r = sb.blocks[i].Left
		}
		if l.LessThan(r) && lost.LessThan(r) {
			p += int(seq.Max(l, lost).Size(r)) // the part of the hole not lost
		}
		if i < len(sb.blocks) {
			l = seq.Max(l, sb.blocks[i].Right)
		}
	}
	for _, x := range sb.rtx {
		p += int(x.l.Size(x.r))
	}
	return p
}

// lostBelow returns the point below which every unSACKed byte counts as
// lost: RFC 6675's IsLost holds below it (more than DupThresh-1 segments'
// worth SACKed above), and after a timeout everything below recover is.
func (c *Conn) lostBelow() seq.Value {
	lost := c.sb.lostBelow((dupThresh-1)*c.sndMSS, c.SndUna)
	if c.lossAll && lost.LessThan(c.recover) {
		lost = c.recover
	}
	return lost
}

// nextLost is NextSeg's first rule: the lowest lost byte range not yet
// retransmitted, at most mss long.
func (c *Conn) nextLost(mss int) (seq.Value, int, bool) {
	sb := c.sb
	lost := c.lostBelow()
	l := c.SndUna
	k := 0 // sb.rtx before k end at or below l
	for i := 0; i <= len(sb.blocks) && l.LessThan(lost); i++ {
		r := c.SndNxt
		if i < len(sb.blocks) {
			r = sb.blocks[i].Left
		}
		r = seq.Min(r, lost)
		// Skip what was retransmitted already within [l, r).
		for l.LessThan(r) {
			for k < len(sb.rtx) && sb.rtx[k].r.LessThanEq(l) {
				k++
			}
			if k < len(sb.rtx) && sb.rtx[k].l.LessThanEq(l) {
				l = sb.rtx[k].r
				continue
			}
			end := r
			if k < len(sb.rtx) && sb.rtx[k].l.LessThan(end) {
				end = sb.rtx[k].l
			}
			return l, min(int(l.Size(end)), mss), true
		}
		if i < len(sb.blocks) {
			l = seq.Max(l, sb.blocks[i].Right)
		}
	}
	return 0, 0, false
}

// processSACK records the blocks of an arriving ACK in the scoreboard and
// counts D-SACK reports (RFC 2883: the first block below the cumulative
// ACK, or inside the second block). It reports whether a block told of
// data above the cumulative ACK, not only of a duplicate.
func (c *Conn) processSACK(s *Segment, a seq.Value) (above bool) {
	blocks := s.Options.SACK()
	for i, b := range blocks {
		if !b.Left.LessThan(b.Right) {
			continue
		}
		if i == 0 && (b.Right.LessThanEq(a) ||
			len(blocks) > 1 && blocks[1].Left.LessThanEq(b.Left) && b.Right.LessThanEq(blocks[1].Right)) {
			c.counts().dsacks++
			c.count(func(st *Stats) { st.DSACKsReceived++ })
			c.onDSACK(b)
			continue
		}
		// Only what we sent and is not yet cumulatively acknowledged.
		if b.Right.GreaterThan(c.SndNxt) || b.Left.LessThan(a) && b.Right.LessThanEq(a) {
			continue
		}
		c.scoreboard().add(seq.Max(b.Left, a), b.Right)
		above = true
	}
	if c.sb != nil && len(c.sb.rtx) > 0 {
		c.sb.dropLostRtx((dupThresh-1)*c.sndMSS, c.SndUna)
	}
	return above
}

// ---- Undo (RFC 2883 §5, RFC 3522) ----

// undoState remembers the window before a recovery, to put it back if the
// recovery turns out spurious.
type undoState struct {
	active   bool
	marker   seq.Value // SND.UNA when the recovery began
	end      seq.Value // ...and SND.NXT
	cwnd     int
	ssthresh int
	retrans  int    // retransmissions not yet reported duplicate
	tsval    uint32 // our timestamp on the first retransmission; 0 if none
}

// onDSACK counts a duplicate the peer reports against the retransmissions
// of the last recovery; when all are accounted for after it ended, the
// recovery was needless and is undone.
func (c *Conn) onDSACK(b SACKBlock) {
	u := &c.extra().undo
	if !u.active || u.retrans == 0 || b.Left.LessThan(u.marker) || u.end.LessThan(b.Right) {
		return
	}
	u.retrans--
	if u.retrans == 0 && !c.inRecov {
		c.undoRecovery()
	}
}

// startUndo records the window as a recovery begins; a timeout during a
// recovery keeps the first record.
func (c *Conn) startUndo() {
	x := c.extra()
	if c.inRecov && x.undo.active {
		return
	}
	x.undo = undoState{active: true, marker: c.SndUna, end: c.SndNxt, cwnd: c.cwnd, ssthresh: c.ssthresh}
}

// spurious reports whether the recovery just ended was needless: the peer
// reported every retransmission as a duplicate, or acknowledged with the
// timestamp of an original sent before the first retransmission.
func (c *Conn) spurious(s *Segment) bool {
	if c.x == nil {
		return false
	}
	u := &c.x.undo
	if !u.active || !c.sackOK && !c.tsOK {
		return false
	}
	if c.sackOK && u.retrans == 0 {
		return true
	}
	return c.tsOK && u.tsval != 0 && s != nil && s.Options.HasTimestamps &&
		s.Options.TSEcr != 0 && int32(s.Options.TSEcr-u.tsval) < 0
}

// undoRecovery puts the window back as it was before the recovery.
func (c *Conn) undoRecovery() {
	x := c.extra()
	c.cwnd = max(c.cwnd, x.undo.cwnd)
	c.ssthresh = max(c.ssthresh, x.undo.ssthresh)
	x.undo = undoState{}
	x.counts.undos++
	c.count(func(st *Stats) { st.Undos++ })
}

// ---- The scoreboard ----

// scoreboard holds what the peer has selectively acknowledged above
// SND.UNA, sorted and disjoint, and the ranges retransmitted in this
// recovery, sorted by start. Connections take one from a pool while data
// is outstanding and give it back when everything is acknowledged, so idle
// connections carry none. The bounds limit what a peer can make us keep;
// a window of 64 MiB at 1% loss needs about 460 of each.
type scoreboard struct {
	blocks []SACKBlock
	rtx    []rtxRange
}

// rtxRange is a retransmitted range and SND.NXT when it went: data sent
// after it that the peer SACKs shows the retransmission was lost.
type rtxRange struct{ l, r, nxt seq.Value }

const (
	sackScoreMax = 1024
	rtxMax       = 1024
)

var scoreboards = sync.Pool{New: func() any { return new(scoreboard) }}

// scoreboard returns c's scoreboard, taking one from the pool if needed.
func (c *Conn) scoreboard() *scoreboard {
	if c.sb == nil {
		c.sb = scoreboards.Get().(*scoreboard)
		c.sb.blocks, c.sb.rtx = c.sb.blocks[:0], c.sb.rtx[:0]
	}
	return c.sb
}

func (c *Conn) releaseScoreboard() {
	if c.sb != nil {
		scoreboards.Put(c.sb)
		c.sb = nil
	}
}

// add merges [l, r) into the board and forgets retransmissions it covers.
func (b *scoreboard) add(l, r seq.Value) {
	if !l.LessThan(r) {
		return
	}
	// i: the first block ending at or above l; blocks from i that start at
	// or below r merge with the new one.
	i, j := 0, len(b.blocks)
	for i < j {
		h := int(uint(i+j) >> 1)
		if b.blocks[h].Right.LessThan(l) {
			i = h + 1
		} else {
			j = h
		}
	}
	j = i
	for j < len(b.blocks) && b.blocks[j].Left.LessThanEq(r) {
		l, r = seq.Min(l, b.blocks[j].Left), seq.Max(r, b.blocks[j].Right)
		j++
	}
	switch {
	case j > i:
		b.blocks[i] = SACKBlock{l, r}
		b.blocks = append(b.blocks[:i+1], b.blocks[j:]...)
	case len(b.blocks) == sackScoreMax && i == len(b.blocks):
		// Full: the highest blocks are forgotten first.
	default:
		if len(b.blocks) == sackScoreMax {
			b.blocks = b.blocks[:len(b.blocks)-1]
		}
		b.blocks = append(b.blocks, SACKBlock{})
		copy(b.blocks[i+1:], b.blocks[i:])
		b.blocks[i] = SACKBlock{l, r}
	}
	k := 0
	for _, x := range b.rtx {
		if !(l.LessThanEq(x.l) && x.r.LessThanEq(r)) {
			b.rtx[k] = x
			k++
		}
	}
	b.rtx = b.rtx[:k]
}

// ackedTo drops what the cumulative ACK now covers.
func (b *scoreboard) ackedTo(a seq.Value) {
	k := 0
	for k < len(b.blocks) && b.blocks[k].Right.LessThanEq(a) {
		k++
	}
	b.blocks = append(b.blocks[:0], b.blocks[k:]...)
	if len(b.blocks) > 0 && b.blocks[0].Left.LessThan(a) {
		b.blocks[0].Left = a
	}
	k = 0
	for k < len(b.rtx) && b.rtx[k].r.LessThanEq(a) {
		k++
	}
	b.rtx = append(b.rtx[:0], b.rtx[k:]...)
	if len(b.rtx) > 0 && b.rtx[0].l.LessThan(a) {
		b.rtx[0].l = a
	}
}

// addRtx records a retransmission of [l, r) made when SND.NXT was nxt,
// keeping the list sorted (retransmitRange checks there is room).
func (b *scoreboard) addRtx(l, r, nxt seq.Value) {
	if len(b.rtx) == rtxMax {
		return
	}
	i := len(b.rtx)
	b.rtx = append(b.rtx, rtxRange{})
	for i > 0 && l.LessThan(b.rtx[i-1].l) {
		b.rtx[i] = b.rtx[i-1]
		i--
	}
	b.rtx[i] = rtxRange{l, r, nxt}
}

// dropLostRtx forgets retransmissions shown lost: data sent after them
// that the peer SACKed puts them below the lost boundary, the test IsLost
// applies to originals.
func (b *scoreboard) dropLostRtx(thresh int, una seq.Value) {
	lost := b.lostBelow(thresh, una)
	k := 0
	for _, x := range b.rtx {
		if !x.nxt.LessThan(lost) {
			b.rtx[k] = x
			k++
		}
	}
	b.rtx = b.rtx[:k]
}

// firstHole returns the first range above una not SACKed and below the
// highest SACKed byte: the segment RFC 6675's NextSeg() picks first.
func (b *scoreboard) firstHole(una, nxt seq.Value) (seq.Value, int, bool) {
	switch {
	case len(b.blocks) == 0:
		return 0, 0, false
	case una.LessThan(b.blocks[0].Left):
		return una, int(una.Size(b.blocks[0].Left)), true
	case len(b.blocks) > 1:
		return b.blocks[0].Right, int(b.blocks[0].Right.Size(b.blocks[1].Left)), true
	}
	return 0, 0, false
}

// lostBelow returns the highest point x with more than thresh bytes SACKed
// at or above it, or una if there is none: RFC 6675's IsLost holds for
// every byte below it. It walks down from the top until the threshold is
// crossed, which takes a few blocks.
func (b *scoreboard) lostBelow(thresh int, una seq.Value) seq.Value {
	acc := 0
	for i := len(b.blocks) - 1; i >= 0; i-- {
		blk := b.blocks[i]
		if n := int(blk.Left.Size(blk.Right)); acc+n > thresh {
			return blk.Right.Sub(seq.Size(thresh - acc))
		} else {
			acc += n
		}
	}
	return una
}

// lostAbove reports IsLost(x).
func (b *scoreboard) lostAbove(x seq.Value, mss int) bool {
	return x.LessThan(b.lostBelow((dupThresh-1)*mss, x))
}

// noteSACK records the arrival of [left, right) out of order: the block
// holding it becomes the first one reported, the others follow in the
// order they were last reported (RFC 2018 §4), as Linux's
// selective_acks. Reporting the lowest blocks instead would hide every
// block above the fourth from the sender.
func (c *Conn) noteSACK(left, right seq.Value) {
	// The contiguous run of queued data around the arrival, walking out
	// from it (the queue may hold thousands of segments).
	q := c.ooo
	l, r := left, right
	segs := q.segs()
	i := sort.Search(len(segs), func(k int) bool { return segs[k].seq.GreaterThan(left) })
	for j := i; j < len(segs) && segs[j].seq.LessThanEq(r); j++ {
		r = seq.Max(r, segs[j].end())
	}
	for j := i - 1; j >= 0 && l.LessThanEq(segs[j].end()); j-- {
		l, r = seq.Min(l, segs[j].seq), seq.Max(r, segs[j].end())
	}
	blk := SACKBlock{l, r}
	out := q.sackRecent
	n := 0
	q.sackRecent[n] = blk
	n++
	for _, x := range out[:q.nSackRecent] {
		if n == len(q.sackRecent) {
			break
		}
		if x.Right.LessThan(l) || r.LessThan(x.Left) {
			q.sackRecent[n] = x
			n++
		}
	}
	q.nSackRecent = n
}

// setDSACK owes the next ACK a D-SACK block for b (RFC 2883) in place of
// any owed before (Linux's tcp_dsack_set); without SACK, nothing.
func (c *Conn) setDSACK(b SACKBlock) {
	if c.sackOK {
		c.dsack, c.dsackValid = b, true
	}
}

// noteDSACK owes the next ACK a D-SACK block for b, or extends the one owed
// when b adjoins or overlaps it (Linux's tcp_dsack_extend); a block apart
// from the one owed waits for a later duplicate.
func (c *Conn) noteDSACK(b SACKBlock) {
	switch {
	case !c.sackOK:
	case !c.dsackValid:
		c.setDSACK(b)
	case b.Left.LessThanEq(c.dsack.Right) && c.dsack.Left.LessThanEq(b.Right):
		c.dsack = SACKBlock{seq.Min(b.Left, c.dsack.Left), seq.Max(b.Right, c.dsack.Right)}
	}
}

// fillSACK puts the SACK blocks for an ACK into o: a D-SACK block first if
// one is owed, then the recent blocks still above RCV.NXT, as many as fit
// (Options.Encode drops what does not).
func (c *Conn) fillSACK(o *Options) {
	n := 0
	if c.dsackValid {
		o.SACKBlocks[n] = c.dsack
		n++
	}
	q := c.ooo
	if q.len() == 0 {
		o.NumSACK = n
		return
	}
	k := 0
	for _, x := range q.sackRecent[:q.nSackRecent] {
		if x.Right.LessThanEq(c.RcvNxt) {
			continue // delivered in order since
		}
		if x.Left.LessThan(c.RcvNxt) {
			x.Left = c.RcvNxt
		}
		q.sackRecent[k] = x
		k++
		if n < MaxSACKBlocks {
			o.SACKBlocks[n] = x
			n++
		}
	}
	q.nSackRecent = k
	o.NumSACK = n
}
