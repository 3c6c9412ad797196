package sim

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/tapstack/tapstack/ip"
	"github.com/tapstack/tapstack/mono"
	"github.com/tapstack/tapstack/tcp"
	"github.com/tapstack/tapstack/tcp/seq"
)

// TCPTrace reads TCP connections off the wires, as tcptrace does with a
// capture: for each direction of each connection, the segments as their
// sender put them on the wire (and whether the wire dropped them), the
// acknowledgments as they reached that sender, and from those the
// retransmissions, round-trip times and the data in flight over time —
// what the congestion window allowed out, as far as the wire shows it.
// It needs nothing from the stacks, so it reads any TCP, ours or not.
type TCPTrace struct {
	flows  []*TCPFlow
	index  map[flowKey]*TCPFlow
	wscale map[netip.AddrPort]uint8 // window scale each endpoint announced in its SYN
}

type flowKey struct{ src, dst netip.AddrPort }

// TCPFlow is one direction of a TCP connection: data from Src to Dst.
// Sequence numbers are offsets from the sender's first byte of data (its
// ISN + 1), 64 bits wide, so they do not wrap.
type TCPFlow struct {
	Src, Dst netip.AddrPort
	Segments []TCPSegment // in the order sent: data, SYN or FIN
	Acks     []TCPAck     // acknowledgments of this flow's data, as they reached Src
	RTTs     []RTTSample
	Flight   []FlightSample // after every segment sent and every ACK received
	SACKs    []SACKRange    // blocks of SACK options, as they reached Src
	Stats    TCPFlowStats
	// Sender, when set, is the sending end's own state over time
	// (World.SampleTCP, matched by TCPTrace.Attach): WriteSVG draws its
	// congestion window under the sequence graph.
	Sender *TCPInfoSeries

	base     seq.Value // the sequence number of offset 0
	baseSet  bool
	last     int64 // the offset most recently converted, for unwrapping
	lastV    seq.Value
	nxt, una int64 // highest offset sent and acknowledged
	pending  []rttPending
}

// TCPSegment is a segment as its sender put it on the wire.
type TCPSegment struct {
	At         mono.Time
	Seq, End   int64 // the offsets it covers, [Seq, End)
	Flags      tcp.Flags
	Retransmit bool // it starts below the highest offset sent before
	Dropped    bool // the wire dropped it (on its first hop)
}

// TCPAck is an acknowledgment as it reached the data's sender.
type TCPAck struct {
	At     mono.Time
	Ack    int64 // the next offset expected
	Window int64 // the receive window it advertises, scaled if the scale was seen
}

// SACKRange is one block of a SACK option (RFC 2018) on an
// acknowledgment as it reached the data's sender: Dst holds [Start, End)
// beyond the cumulative ACK. A D-SACK (RFC 2883) reports data received
// twice instead: a first block below the ACK or inside the second block.
type SACKRange struct {
	At         mono.Time
	Start, End int64
	DSACK      bool
}

// RTTSample is the time from sending a segment, never retransmitted, to
// the first ACK covering it (Karn's rule).
type RTTSample struct {
	At  mono.Time
	RTT time.Duration
}

// FlightSample is the data sent and not yet acknowledged at an instant.
type FlightSample struct {
	At    mono.Time
	Bytes int64
}

// TCPFlowStats sums up a flow.
type TCPFlowStats struct {
	Segments           int   // segments carrying data, SYN or FIN
	Bytes              int64 // data sent: the highest offset reached
	Retransmits        int   // segments sent again
	RetransmittedBytes int64
	Dropped            int // segments the wire dropped
	SACKBlocks, DSACKs int // SACK blocks reported, D-SACKs among them
	RTT                RTTStats
	MaxFlight          int64
	First, Last        mono.Time // the first and last segment sent
}

type rttPending struct {
	end    int64
	sentAt mono.Time
	again  bool // retransmitted: no sample (Karn)
}

// TraceTCP starts tracing every TCP connection on the World's wires.
func (w *World) TraceTCP() *TCPTrace {
	t := &TCPTrace{index: make(map[flowKey]*TCPFlow), wscale: make(map[netip.AddrPort]uint8)}
	w.Observe(t.observe)
	return t
}

// Flows returns the flows that carried anything, in the order their first
// segment was sent.
func (t *TCPTrace) Flows() []*TCPFlow { return t.flows }

// Flow returns the flow from src to dst, or nil.
func (t *TCPTrace) Flow(src, dst netip.AddrPort) *TCPFlow { return t.index[flowKey{src, dst}] }

// Attach makes s the Sender of the flow its connection sends on: the
// first flow between its addresses whose first segment left once s began
// and that has no Sender yet. It returns that flow, or nil if none is.
func (t *TCPTrace) Attach(s *TCPInfoSeries) *TCPFlow {
	for _, f := range t.flows {
		if f.Src == s.Local && f.Dst == s.Remote && f.Sender == nil && f.Stats.First >= s.Start {
			f.Sender = s
			return f
		}
	}
	return nil
}

func (t *TCPTrace) flow(src, dst netip.AddrPort, create bool) *TCPFlow {
	k := flowKey{src, dst}
	f := t.index[k]
	if f == nil && create {
		f = &TCPFlow{Src: src, Dst: dst}
		t.index[k] = f
		t.flows = append(t.flows, f)
	}
	return f
}

// parseTCP returns the addresses and header of a TCP segment in an
// Ethernet frame, or ok false.
func parseTCP(frame []byte) (src, dst netip.AddrPort, h tcp.Header, ok bool) {
	eth, err := ip.ParseEthernet(frame)
	if err != nil || eth.EtherType() != ip.EtherTypeIPv4 {
		return
	}
	p, err := ip.ParseIPv4(eth.Payload())
	if err != nil || p.Protocol() != ip.ProtocolTCP || p.IsFragment() {
		return
	}
	h, err = tcp.ParseHeader(p.Payload())
	if err != nil {
		return
	}
	return netip.AddrPortFrom(p.Src(), h.SrcPort()), netip.AddrPortFrom(p.Dst(), h.DstPort()), h, true
}

func (t *TCPTrace) observe(e *WireEvent) {
	switch {
	case (e.Kind == Sent || e.Kind == Dropped) && e.Dir.fromHost:
		src, dst, h, ok := parseTCP(e.Frame)
		if ok {
			t.sent(e, src, dst, h)
		}
	case e.Kind == Delivered && !e.Corrupted && e.Dir.to.isHost():
		src, dst, h, ok := parseTCP(e.Frame)
		if ok && h.Flags().Contains(tcp.ACK) {
			if f := t.flow(dst, src, false); f != nil && f.baseSet {
				win := int64(h.Window())
				if sc, ok := t.wscale[src]; ok && !h.Flags().Contains(tcp.SYN) {
					win <<= sc // a SYN's window is never scaled
				}
				a := f.acked(e.At, h.AckNum(), win)
				if o := h.DecodeOptions(); o.NumSACK > 0 {
					f.sacked(e.At, a, o.SACK())
				}
			}
		}
	}
}

// offset converts a sequence number to an offset, unwrapping it around
// the one converted last.
func (f *TCPFlow) offset(v seq.Value) int64 {
	f.last += int64(int32(v - f.lastV))
	f.lastV = v
	return f.last
}

func (t *TCPTrace) sent(e *WireEvent, src, dst netip.AddrPort, h tcp.Header) {
	fl := h.Flags()
	n := int64(len(h.Payload()))
	if fl.Contains(tcp.SYN) {
		// The scale applies to the windows src advertises from now on
		// (both SYNs must carry the option; ours always do).
		if o := h.DecodeOptions(); o.HasWindowScale {
			t.wscale[src] = o.WindowScale
		}
	}
	if n == 0 && !fl.Contains(tcp.SYN) && !fl.Contains(tcp.FIN) {
		return // a bare ACK: it carries nothing of this flow
	}
	f := t.flow(src, dst, true)
	if fl.Contains(tcp.SYN) && f.baseSet && h.SeqNum() != f.base.Sub(1) {
		// A new connection on the same four-tuple (a redial that drew the
		// same port, or TIME-WAIT reuse): a new flow.
		f = &TCPFlow{Src: src, Dst: dst}
		t.index[flowKey{src, dst}] = f
		t.flows = append(t.flows, f)
	}
	if !f.baseSet {
		f.base, f.baseSet = h.SeqNum(), true
		if fl.Contains(tcp.SYN) {
			f.base = f.base.Add(1)
		}
		f.lastV = f.base
		f.nxt = f.offset(h.SeqNum()) // -1 for a SYN
		f.una = f.nxt
	}
	start := f.offset(h.SeqNum())
	end := start + n
	if fl.Contains(tcp.SYN) {
		end++ // the SYN occupies offset -1
	}
	if fl.Contains(tcp.FIN) {
		end++
	}
	s := TCPSegment{At: e.At, Seq: start, End: end, Flags: fl, Dropped: e.Kind == Dropped}
	st := &f.Stats
	if st.Segments == 0 {
		st.First = e.At
	}
	st.Segments++
	st.Last = e.At
	if n > 0 {
		st.Bytes = max(st.Bytes, start+n)
	}
	if start < f.nxt {
		s.Retransmit = true
		st.Retransmits++
		st.RetransmittedBytes += min(n, f.nxt-start)
		for i := range f.pending {
			if f.pending[i].end > start {
				f.pending[i].again = true
			}
		}
	}
	if end > f.nxt {
		f.pending = append(f.pending, rttPending{end: end, sentAt: e.At, again: s.Retransmit})
		f.nxt = end
	}
	if s.Dropped {
		st.Dropped++
	}
	f.Segments = append(f.Segments, s)
	f.sample(e.At)
}

// acked records an ACK and returns it as an offset.
func (f *TCPFlow) acked(at mono.Time, ack seq.Value, win int64) int64 {
	a := f.offset(ack)
	f.Acks = append(f.Acks, TCPAck{At: at, Ack: a, Window: win})
	if a <= f.una {
		return a
	}
	f.una = a
	k := 0
	for ; k < len(f.pending) && f.pending[k].end <= a; k++ {
		if p := f.pending[k]; !p.again {
			rtt := at.Sub(p.sentAt)
			f.RTTs = append(f.RTTs, RTTSample{At: at, RTT: rtt})
			f.Stats.RTT.add(rtt)
		}
	}
	f.pending = f.pending[:copy(f.pending, f.pending[k:])]
	f.sample(at)
	return a
}

func (f *TCPFlow) sacked(at mono.Time, ack int64, blocks []tcp.SACKBlock) {
	for i, b := range blocks {
		r := SACKRange{At: at, Start: f.offset(b.Left), End: f.offset(b.Right)}
		if r.End <= r.Start {
			continue // malformed: not a range
		}
		if i == 0 && len(blocks) > 1 {
			n := SACKRange{Start: f.offset(blocks[1].Left), End: f.offset(blocks[1].Right)}
			r.DSACK = n.Start <= r.Start && r.End <= n.End
		}
		r.DSACK = r.DSACK || i == 0 && r.End <= ack
		f.Stats.SACKBlocks++
		if r.DSACK {
			f.Stats.DSACKs++
		}
		f.SACKs = append(f.SACKs, r)
	}
}

func (f *TCPFlow) sample(at mono.Time) {
	b := max(f.nxt-f.una, 0)
	f.Flight = append(f.Flight, FlightSample{At: at, Bytes: b})
	f.Stats.MaxFlight = max(f.Stats.MaxFlight, b)
}

// String is a one-line summary of the flow.
func (f *TCPFlow) String() string {
	st := &f.Stats
	return fmt.Sprintf("%v>%v: %d bytes in %v, %d segments, %d retransmitted (%d bytes), %d dropped by the wire, max in flight %d bytes, RTT %v",
		f.Src, f.Dst, st.Bytes, st.Last.Sub(st.First), st.Segments, st.Retransmits, st.RetransmittedBytes, st.Dropped, st.MaxFlight, st.RTT)
}
