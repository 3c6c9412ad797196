package tcp

import (
	"time"

	"github.com/tapstack/tapstack/mono"
	"github.com/tapstack/tapstack/tcp/seq"
)

// SYN cookies (RFC 4987 §3.6), in Linux's manner. When a listener's SYN
// queue is full it answers a SYN with a SYN,ACK whose ISS encodes what it
// must remember, and keeps no state; the ACK that completes the handshake
// brings it back. The ISS is
//
//	hash(secret, 4-tuple, IRS, counter, MSS index) [24 bits] | counter [5 bits] | MSS index [3 bits]
//
// where the counter ticks every 64 s and a cookie is good for two ticks.
//
// and, when the SYN carried timestamps, the low 6 bits of our TSval hold
// the peer's window scale and SACK-permitted, which TSecr echoes.
const cookiePeriod = 64 * time.Second

// cookieMSS are the MSS values a cookie can encode (Linux's msstab, plus
// the jumbo-frame sizes).
var cookieMSS = [8]int{536, 1300, 1440, 1460, 4312, 8960, 8960, 8960}

func cookieCount(now mono.Time) uint32 { return uint32(int64(now) / int64(cookiePeriod)) }

func (c *Conn) cookieHash(irs seq.Value, count uint32, mi uint32) uint32 {
	return uint32(tupleHash(&c.cfg.ISNKey, c.ep.Local, c.ep.Remote, uint64(irs)<<32|uint64(count&0xfffff)<<3|uint64(mi)|1<<31))
}

// sendCookieSYNACK answers a SYN in LISTEN statelessly.
func (c *Conn) sendCookieSYNACK(now mono.Time, s *Segment) {
	mi := 0
	for i, m := range cookieMSS {
		if m <= c.sndMSS+c.tsOverhead() {
			mi = i
		}
	}
	count := cookieCount(now)
	c.ISS = seq.Value(c.cookieHash(c.IRS, count, uint32(mi))<<8 | (count&0x1f)<<3 | uint32(mi))
	if !c.tsOK {
		// Without timestamps there is nowhere to keep them.
		c.wsOK, c.sackOK, c.SndScale, c.RcvScale = false, false, 0, 0
	}
	f := c.header(now, c.ISS, SYN|ACK)
	f.Options.HasMSS, f.Options.MSS = true, uint16(min(c.ep.mss, 0xffff))
	f.Options.HasWindowScale, f.Options.WindowScale = c.wsOK, c.RcvScale
	f.Options.SACKPermitted = c.sackOK
	if c.tsOK {
		bits := uint32(0xf)
		if c.wsOK {
			bits = uint32(c.SndScale)
		}
		if c.sackOK {
			bits |= 0x10
		}
		t := f.Options.TSVal
		v := t&^0x3f | bits
		if int32(v-t) > 0 {
			v -= 64
		}
		f.Options.TSVal = v
	}
	c.count(func(st *Stats) { st.CookiesSent++ })
	c.emit(now, f, [2][]byte{})
}

func (c *Conn) tsOverhead() int {
	if c.tsOK {
		return 12
	}
	return 0
}

// acceptCookie checks whether an ACK in LISTEN completes a SYN-cookie
// handshake and, if it does, builds the connection from the cookie and
// processes the segment in ESTABLISHED.
func (c *Conn) acceptCookie(in *Input) bool {
	s := in.seg
	iss, irs := s.Ack.Sub(1), s.Seq.Sub(1)
	v := uint32(iss)
	count := cookieCount(in.at)
	ok := false
	for _, cand := range [2]uint32{count, count - 1} {
		if v>>3&0x1f == cand&0x1f && v>>8 == c.cookieHash(irs, cand, v&7)&0xffffff {
			ok = true
			break
		}
	}
	if !ok {
		c.count(func(st *Stats) { st.CookiesRejected++ })
		return false
	}
	c.count(func(st *Stats) { st.CookiesAccepted++ })
	c.ISS, c.IRS, c.RcvNxt = iss, irs, s.Seq
	c.issSet = true
	o := Options{HasMSS: true, MSS: uint16(cookieMSS[v&7])}
	if s.Options.HasTimestamps && !c.cfg.NoTimestamps {
		o.HasTimestamps, o.TSVal = true, s.Options.TSVal
		if ws := s.Options.TSEcr & 0xf; ws != 0xf {
			o.HasWindowScale, o.WindowScale = true, uint8(min(ws, MaxWindowScale))
		}
		o.SACKPermitted = s.Options.TSEcr&0x10 != 0
	}
	c.negotiate(&o, true)
	c.initRecvOnSYN(in.at, s)
	c.initSend(in.at)
	c.rttTiming = false
	c.SndUna, c.SndNxt, c.sndCur = s.Ack, s.Ack, s.Ack
	c.SndWnd = seq.Size(s.Window) << c.SndScale
	c.maxSndWnd = c.SndWnd
	c.SndWl1, c.SndWl2 = s.Seq, s.Ack
	c.setState(SynReceived)
	c.setState(Established)
	_ = c.processText(in) && c.processFIN(in)
	c.finish(in.at)
	return true
}
