package tcp

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/tapstack/tapstack/internal/bufpool"
	"github.com/tapstack/tapstack/mono"
	"github.com/tapstack/tapstack/tcp/seq"
)

// The segment-level harness: one connection, segments fed in with Send,
// the connection's replies checked with Expect, time moved by Advance on a
// virtual clock. Nothing waits on the wall clock.

// S is a segment template: what to send, or what to expect.
type S struct {
	Flags Flags
	Seq   seq.Value
	Ack   seq.Value
	Wnd   uint16
	Opts  Options
	Data  []byte
	// AnyWnd and AnyOpts skip comparing those fields in Expect.
	AnyWnd, AnyOpts bool
	// Lend offers the connection the pooled buffer Data is sent in
	// (Segment.Buf), as the device reader does.
	Lend bool
}

func (s S) String() string {
	return fmt.Sprintf("<SEQ=%d><ACK=%d><CTL=%v><WND=%d><LEN=%d> opts %v", s.Seq, s.Ack, s.Flags, s.Wnd, len(s.Data), s.Opts)
}

type harness struct {
	t     testing.TB
	cfg   Config
	stats Stats
	c     *Conn
	now   mono.Time
	out   []S
}

var (
	hLocal  = netip.MustParseAddrPort("10.0.0.1:1000")
	hRemote = netip.MustParseAddrPort("10.0.0.2:2000")
)

// hWnd is the harness's receive buffer: window scale 0, so windows read as
// bytes.
const hWnd = 32768

func newHarness(t testing.TB, tweak ...func(*Config)) *harness {
	h := &harness{t: t, now: mono.Time(time.Second)}
	// Tail loss probes are off unless a test turns them on: most tests
	// pin the retransmission timeout's own behaviour.
	h.cfg = Config{Output: h, Stats: &h.stats, ReceiveBufferMax: hWnd, SendBufferMax: 1 << 20, NoTimestamps: true, NoTLP: true}
	for _, f := range tweak {
		f(&h.cfg)
	}
	h.cfg.Defaults()
	h.c = NewConn(&h.cfg, Endpoint{Local: hLocal, Remote: hRemote, MSS: 1460})
	return h
}

func (h *harness) SendSegment(now mono.Time, c *Conn, f *HeaderFields, payload [2][]byte) {
	if now != h.now {
		h.t.Fatalf("segment sent at %v, clock is %v", now, h.now)
	}
	if f.SrcPort != c.ep.Local.Port() || f.DstPort != c.ep.Remote.Port() {
		h.t.Fatalf("segment ports %d>%d, want %d>%d", f.SrcPort, f.DstPort, c.ep.Local.Port(), c.ep.Remote.Port())
	}
	limit := int(c.ep.mss)
	if int(c.ep.gsoMax) > limit {
		limit = int(c.ep.gsoMax) + MaxOptionsLen
	}
	if n := len(payload[0]) + len(payload[1]) + f.HeaderLen() - HeaderMinLen; n > limit {
		h.t.Fatalf("segment of %d bytes of options and data exceeds the path's %d", n, limit)
	}
	d := append(append([]byte(nil), payload[0]...), payload[1]...)
	if len(d) == 0 {
		d = nil
	}
	h.out = append(h.out, S{Flags: f.Flags, Seq: f.SeqNum, Ack: f.AckNum, Wnd: f.Window, Opts: f.Options, Data: d})
}

// Send delivers a segment to the connection.
func (h *harness) Send(s S) {
	h.t.Helper()
	seg := Segment{Seq: s.Seq, Ack: s.Ack, Flags: s.Flags, Window: s.Wnd, Options: s.Opts, Payload: s.Data}
	if s.Lend && len(s.Data) > 0 {
		seg.Buf = bufpool.Get(len(s.Data))
		seg.Payload = (*seg.Buf)[:copy(*seg.Buf, s.Data)]
	}
	h.c.Input(h.now, &seg)
	if seg.Buf != nil {
		bufpool.Put(seg.Buf) // not kept
	}
	h.checkInvariants()
}

// Expect checks that exactly want were sent since the last check.
func (h *harness) Expect(want ...S) {
	h.t.Helper()
	got := h.out
	h.out = nil
	if len(got) != len(want) {
		h.t.Fatalf("sent %d segments, want %d:\n got: %s\nwant: %s", len(got), len(want), segList(got), segList(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if w.AnyWnd {
			g.Wnd = w.Wnd
		}
		if w.AnyOpts {
			g.Opts = w.Opts
		}
		if g.Flags != w.Flags || g.Seq != w.Seq || g.Ack != w.Ack || g.Wnd != w.Wnd || g.Opts != w.Opts || !bytes.Equal(g.Data, w.Data) {
			h.t.Fatalf("segment %d:\n got: %v\nwant: %v", i, got[i], w)
		}
	}
}

// ExpectNothing checks that nothing was sent.
func (h *harness) ExpectNothing() {
	h.t.Helper()
	h.Expect()
}

// Took returns and clears what was sent.
func (h *harness) Took() []S { o := h.out; h.out = nil; return o }

func segList(ss []S) string {
	var b strings.Builder
	for _, s := range ss {
		b.WriteString("\n\t")
		b.WriteString(s.String())
	}
	return b.String()
}

// Advance moves the clock by d, firing timers as they fall due.
func (h *harness) Advance(d time.Duration) {
	h.t.Helper()
	end := h.now.Add(d)
	for {
		next := h.c.Deadline()
		if next > end {
			break
		}
		h.now = max(h.now, next)
		h.c.OnTimer(h.now)
		h.checkInvariants()
	}
	h.now = end
}

// AdvanceToDeadline moves the clock to the next deadline and fires it,
// returning how far it moved.
func (h *harness) AdvanceToDeadline() time.Duration {
	h.t.Helper()
	next := h.c.Deadline()
	if next == mono.Never {
		h.t.Fatal("no deadline armed")
	}
	d := next.Sub(h.now)
	h.Advance(d)
	return d
}

func (h *harness) Write(p string) {
	h.t.Helper()
	n, err := h.c.Write(h.now, []byte(p))
	if err != nil || n != len(p) {
		h.t.Fatalf("Write: %d, %v", n, err)
	}
	h.checkInvariants()
}

func (h *harness) ReadAll() string {
	h.t.Helper()
	b := make([]byte, 1<<20)
	n, _ := h.c.Read(h.now, b)
	h.checkInvariants()
	return string(b[:n])
}

func (h *harness) wantState(s State) {
	h.t.Helper()
	if h.c.state != s {
		h.t.Fatalf("state %v, want %v", h.c.state, s)
	}
}

func (h *harness) checkInvariants() {
	h.t.Helper()
	if err := h.c.invariants(); err != nil {
		h.t.Fatalf("TCB invariant: %v (state %v)", err, h.c.state)
	}
}

// Templates. Our ISS is 100 (A in RFC 9293's figures) unless a test says
// otherwise; the peer's is 300.
const (
	ourISS  = 100
	peerISS = 300
)

var synOpts = Options{HasMSS: true, MSS: 1460, HasWindowScale: true, WindowScale: 0, SACKPermitted: true}

// open puts the harness's connection through an active open to
// ESTABLISHED, the peer offering opts, and clears the output.
func (h *harness) open(peerOpts Options) {
	h.t.Helper()
	h.c.SetISS(ourISS)
	if err := h.c.Connect(h.now); err != nil {
		h.t.Fatal(err)
	}
	h.Took()
	h.Send(S{Flags: SYN | ACK, Seq: peerISS, Ack: ourISS + 1, Wnd: hWnd, Opts: peerOpts})
	h.wantState(Established)
	h.Took()
	h.c.quickAcks = 0
}

// established is the usual fixture: ESTABLISHED with SND.NXT=101 and
// RCV.NXT=301, MSS 1460, no options beyond SACK-permitted.
func established(t testing.TB, tweak ...func(*Config)) *harness {
	h := newHarness(t, tweak...)
	h.open(synOpts)
	return h
}

// invariants checks what must hold of a TCB after every event.
func (c *Conn) invariants() error {
	switch {
	case c.state >= numStates:
		return fmt.Errorf("bad state %d", c.state)
	case c.SndUna.GreaterThan(c.SndNxt):
		return fmt.Errorf("SND.UNA %d after SND.NXT %d", c.SndUna, c.SndNxt)
	case c.sndCur.LessThan(c.SndUna) && c.state != Listen && c.state != Closed:
		return fmt.Errorf("next to send %d before SND.UNA %d", c.sndCur, c.SndUna)
	case c.sndCur.GreaterThan(c.SndNxt):
		return fmt.Errorf("next to send %d after SND.NXT %d", c.sndCur, c.SndNxt)
	case c.snd.Len() > int(c.sndBufMax):
		return fmt.Errorf("send buffer %d over its bound", c.snd.Len())
	case c.rcv.Len() > int(c.rcvBufMax):
		return fmt.Errorf("receive buffer %d over its bound", c.rcv.Len())
	case c.ooo.len() > c.cfg.OOOSegmentsMax || c.ooo.size() > int(c.rcvBufMax):
		return fmt.Errorf("out-of-order queue %d segments %d bytes over its bounds", c.ooo.len(), c.ooo.size())
	case c.ooo != nil && c.ooo.len() == 0:
		return fmt.Errorf("an empty out-of-order queue not given back")
	case c.state == Closed && (c.ooo != nil || c.sb != nil):
		return fmt.Errorf("CLOSED holding an out-of-order queue (%v) or a scoreboard (%v)", c.ooo != nil, c.sb != nil)
	case c.state.synchronized() && c.rcvAdv.LessThan(c.RcvNxt):
		return fmt.Errorf("advertised edge %d before RCV.NXT %d", c.rcvAdv, c.RcvNxt)
	case c.state.synchronized() && c.RcvWnd != c.RcvNxt.Size(c.rcvAdv):
		return fmt.Errorf("RCV.WND %d does not match the advertised edge", c.RcvWnd)
	case c.state == Closed && c.Deadline() != mono.Never:
		return fmt.Errorf("CLOSED with a timer armed at %v", c.Deadline())
	case c.state == TimeWait && c.waitAt == mono.Never:
		return fmt.Errorf("TIME-WAIT without its timer")
	case c.state.synchronized() && c.state != SynReceived && c.sndBufSeq.GreaterThan(c.SndNxt):
		return fmt.Errorf("send buffer starts at %d past SND.NXT %d", c.sndBufSeq, c.SndNxt)
	case c.finQueued && c.state.synchronized() && c.state != SynReceived && c.sndBufSeq.Add(seq.Size(c.snd.Len())) != c.finSeq:
		return fmt.Errorf("FIN at %d but data ends at %d", c.finSeq, c.sndBufSeq.Add(seq.Size(c.snd.Len())))
	case c.cwnd < 0 || c.rto <= 0:
		return fmt.Errorf("cwnd %d rto %v", c.cwnd, c.rto)
	}
	if sb := c.sb; sb != nil {
		prev := c.SndUna
		for _, b := range sb.blocks {
			if b.Left.LessThan(prev) || !b.Left.LessThan(b.Right) || b.Right.GreaterThan(c.SndNxt) {
				return fmt.Errorf("scoreboard %v not sorted, disjoint and within [%d, %d]", sb.blocks, c.SndUna, c.SndNxt)
			}
			prev = b.Right
		}
		prev = c.SndUna
		for _, x := range sb.rtx {
			if x.l.LessThan(prev) || !x.l.LessThan(x.r) || x.r.GreaterThan(c.SndNxt) {
				return fmt.Errorf("retransmissions %v not sorted and within [%d, %d]", sb.rtx, c.SndUna, c.SndNxt)
			}
			prev = x.l
		}
	}
	return nil
}

func seqv(v uint32) seq.Value { return seq.Value(v) }
