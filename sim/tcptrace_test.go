package sim

import (
	"bytes"
	"encoding/binary"
	"encoding/xml"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/tapstack/tapstack/mono"
	"github.com/tapstack/tapstack/sim/impair"
)

// traced runs two lossy TCP transfers with a trace.
func traced(t *testing.T, seed uint64) (*pair, *TCPTrace) {
	t.Helper()
	cfg := impair.Config{Loss: 2 * impair.Percent, Delay: 10 * time.Millisecond, Rate: 20_000_000, Queue: 200_000}
	p := newPair(t, seed, cfg, cfg)
	tr := p.w.TraceTCP()
	run := must(p.w.StartTransfer(Transfer{Transport: TCP{}, Client: p.a, Server: p.b, Port: 80, Conns: 2, Bytes: 1 << 20, SampleInfo: true}))(t)
	if err := p.w.RunUntil(run.Done, mono.Time(time.Hour)); err != nil {
		t.Fatal(err)
	}
	for _, c := range run.Conns {
		if f := tr.Attach(c.ClientInfo); f == nil || f.Src != c.ClientInfo.Local || f.Sender != c.ClientInfo || tr.Attach(c.ClientInfo) != nil {
			t.Fatalf("connection %d: series %v>%v attached to %v", c.ID, c.ClientInfo.Local, c.ClientInfo.Remote, f)
		}
	}
	return p, tr
}

func TestTCPTrace(t *testing.T) {
	p, tr := traced(t, 1)
	if len(tr.Flows()) != 4 {
		t.Fatalf("%d flows, want 2 connections × 2 directions", len(tr.Flows()))
	}
	var again, dropped int
	for _, f := range tr.Flows() {
		st := &f.Stats
		again += st.Retransmits
		dropped += st.Dropped
		if f.Src.Addr() != addrB { // data
			if st.Bytes != 16+1<<20 || st.RTT.N < 100 || st.RTT.Min < 20*time.Millisecond || st.RTT.Max > time.Second {
				t.Errorf("data flow: %v", f)
			}
			if st.MaxFlight <= 0 || len(f.Flight) < st.Segments || len(f.RTTs) != st.RTT.N {
				t.Errorf("data flow's series: %d flight samples, %d RTTs: %v", len(f.Flight), len(f.RTTs), f)
			}
			// At 2% loss, receivers report holes, and what they hold
			// lies within the data.
			if st.SACKBlocks == 0 || len(f.SACKs) != st.SACKBlocks {
				t.Errorf("data flow: %d SACK blocks, %d ranges", st.SACKBlocks, len(f.SACKs))
			}
			for _, r := range f.SACKs {
				if r.Start >= r.End || r.Start < 0 || r.End > st.Bytes {
					t.Errorf("SACK range %+v in a flow of %d bytes", r, st.Bytes)
				}
			}
		} else if st.Bytes != 0 || st.Segments-st.Retransmits != 2 { // SYN-ACK and FIN
			t.Errorf("reverse flow: %v", f)
		}
	}
	// What the wire shows agrees with what the stacks counted.
	if sent := p.a.Stats().TCP.Retransmits + p.b.Stats().TCP.Retransmits; uint64(again) != sent || again == 0 {
		t.Errorf("%d segments sent again on the wire, %d counted by the stacks", again, sent)
	}
	var lost uint64
	for _, d := range p.w.Dirs() {
		st := d.Impair()
		lost += st.DroppedTotal()
	}
	if uint64(dropped) > lost || dropped == 0 {
		t.Errorf("%d TCP segments dropped by the wire, %d frames in all", dropped, lost)
	}
}

func TestWriteSVG(t *testing.T) {
	var a, b bytes.Buffer
	_, tr := traced(t, 1)
	if err := WriteSVG(&a, tr.Flows()); err != nil {
		t.Fatal(err)
	}
	_, tr = traced(t, 1)
	if err := WriteSVG(&b, tr.Flows()); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("one seed drew two different plots")
	}
	d := xml.NewDecoder(bytes.NewReader(a.Bytes()))
	flows, strokes := 0, map[string]int{}
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v", err)
		}
		se, ok := tok.(xml.StartElement)
		if ok && se.Name.Local == "g" && len(se.Attr) == 0 {
			flows++
		}
		for _, a := range se.Attr {
			if a.Name.Local == "stroke" {
				strokes[a.Value]++
			}
		}
	}
	// Four flows; under the two carrying data, the senders' windows.
	if flows != 4 || strokes[colourAgain] == 0 || strokes[colourDropped] == 0 || strokes[colourSACK] == 0 {
		t.Errorf("%d flows; retransmissions, drops or SACKs not drawn: %v", flows, strokes)
	}
	if strokes[colourCwnd] != 2 || strokes[colourSsth] != 2 || !strings.Contains(a.String(), "cwnd (client/1)") {
		t.Errorf("congestion windows not drawn under the two data flows: %v", strokes)
	}
}

// segment builds an Ethernet frame carrying a TCP segment from a:1000 to
// b:80 (or back, when reverse), with SACK blocks from pairs of edges.
func segment(t testing.TB, reverse bool, seqn, ack uint32, syn, fin bool, payload int, sack ...uint32) []byte {
	t.Helper()
	src, dst := net.IP{10, 0, 0, 1}, net.IP{10, 0, 0, 2}
	sp, dp := layers.TCPPort(1000), layers.TCPPort(80)
	if reverse {
		src, dst, sp, dp = dst, src, dp, sp
	}
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
	ip4 := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: src, DstIP: dst}
	tl := &layers.TCP{SrcPort: sp, DstPort: dp, Seq: seqn, Ack: ack, SYN: syn, FIN: fin, ACK: ack != 0, Window: 1000}
	if syn {
		tl.Options = []layers.TCPOption{{OptionType: layers.TCPOptionKindWindowScale, OptionLength: 3, OptionData: []byte{3}}}
	}
	if len(sack) > 0 {
		var d []byte
		for _, e := range sack {
			d = binary.BigEndian.AppendUint32(d, e)
		}
		tl.Options = append(tl.Options, layers.TCPOption{OptionType: layers.TCPOptionKindSACK, OptionLength: uint8(2 + len(d)), OptionData: d})
	}
	if err := tl.SetNetworkLayerForChecksum(ip4); err != nil {
		t.Fatal(err)
	}
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, eth, ip4, tl, gopacket.Payload(make([]byte, payload))); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestTCPTraceSegments(t *testing.T) {
	w := New(Config{})
	tr := w.TraceTCP()
	out := &Dir{w: w, fromHost: true, to: &nicPort{}}
	back := &Dir{w: w, fromHost: true, to: &nicPort{}}
	var isn, peer uint32 = 0xffffff00, 5000 // the sequence numbers wrap during the flow
	at := func(ms int) mono.Time { return mono.Time(time.Duration(ms) * time.Millisecond) }
	send := func(ms int, kind EventKind, seqn, ack uint32, syn, fin bool, n int) {
		tr.observe(&WireEvent{Kind: kind, At: at(ms), Dir: out, Frame: segment(t, false, seqn, ack, syn, fin, n)})
	}
	reply := func(ms int, seqn, ack uint32, syn bool, sack ...uint32) {
		f := segment(t, true, seqn, ack, syn, false, 0, sack...)
		tr.observe(&WireEvent{Kind: Sent, At: at(ms), Dir: back, Frame: f, Copies: 1})
		tr.observe(&WireEvent{Kind: Delivered, At: at(ms), Dir: back, Frame: f})
	}
	send(0, Sent, isn, 0, true, false, 0)
	reply(20, peer, isn+1, true) // SYN-ACK: RTT 20ms
	send(20, Sent, isn+1, peer+1, false, false, 1000)
	send(21, Dropped, isn+1001, peer+1, false, false, 1000) // wraps: 0xffffff00 + 1001 > 2^32
	send(22, Sent, isn+2001, peer+1, false, false, 1000)
	reply(45, peer+1, isn+1001, false, isn+2001, isn+3001)                      // RTT 25ms; SACK of the third segment
	send(300, Sent, isn+1001, peer+1, false, false, 1000)                       // sent again
	send(301, Sent, isn+1001, peer+1, false, false, 1000)                       // and again: the first copy was late
	reply(330, peer+1, isn+3001, false)                                         // covers a retransmitted segment: no sample
	reply(331, peer+1, isn+3001, false, isn+1001, isn+2001)                     // D-SACK: below the ACK
	reply(332, peer+1, isn+3001, false, isn+1500, isn+1600, isn+1001, isn+2001) // D-SACK: inside the second block
	send(331, Sent, isn+3001, peer+1, false, true, 0)
	reply(350, peer+1, isn+3002, false)
	send(400, Sent, 77, 0, true, false, 0) // a new connection on the same ports

	if n := len(tr.Flows()); n != 3 || tr.Flows()[2].Src != tr.Flows()[0].Src {
		t.Fatalf("%d flows, want the first connection both ways and the second", n)
	}
	f := tr.Flows()[0]
	st := f.Stats
	if st.Bytes != 3000 || st.Segments != 7 || st.Retransmits != 2 || st.RetransmittedBytes != 2000 || st.Dropped != 1 {
		t.Errorf("stats %+v", st)
	}
	wantSACK := []SACKRange{{At: at(45), Start: 2000, End: 3000}, {At: at(331), Start: 1000, End: 2000, DSACK: true},
		{At: at(332), Start: 1499, End: 1599, DSACK: true}, {At: at(332), Start: 1000, End: 2000}}
	if len(f.SACKs) != len(wantSACK) || st.SACKBlocks != 4 || st.DSACKs != 2 {
		t.Fatalf("SACKs %+v (%d blocks, %d D-SACKs), want %+v", f.SACKs, st.SACKBlocks, st.DSACKs, wantSACK)
	}
	for i, r := range f.SACKs {
		if r != wantSACK[i] {
			t.Errorf("SACK %d: %+v, want %+v", i, r, wantSACK[i])
		}
	}
	if st.RTT.N != 3 || st.RTT.Min != 19*time.Millisecond || st.RTT.Max != 25*time.Millisecond {
		t.Errorf("RTT %v, want samples of 20ms (SYN), 25ms and 19ms (FIN)", st.RTT)
	}
	wantSeg := []TCPSegment{{Seq: -1, End: 0}, {Seq: 0, End: 1000}, {Seq: 1000, End: 2000}, {Seq: 2000, End: 3000}, {Seq: 1000, End: 2000}, {Seq: 1000, End: 2000}, {Seq: 3000, End: 3001}}
	for i, s := range f.Segments {
		if s.Seq != wantSeg[i].Seq || s.End != wantSeg[i].End {
			t.Errorf("segment %d covers [%d, %d), want [%d, %d)", i, s.Seq, s.End, wantSeg[i].Seq, wantSeg[i].End)
		}
	}
	if !f.Segments[2].Dropped || !f.Segments[4].Retransmit || f.Segments[3].Retransmit {
		t.Errorf("segments %+v", f.Segments)
	}
	// The peer announced a window scale of 3 in its SYN: 1000 << 3.
	if a := f.Acks[1]; a.Ack != 1000 || a.Window != 8000 {
		t.Errorf("ACK %+v", a)
	}
	if f.Stats.MaxFlight != 3000 {
		t.Errorf("max flight %d", f.Stats.MaxFlight)
	}
}

// FuzzTCPTrace feeds arbitrary frames to a trace, as sent and as
// delivered, in both directions: it never panics, and its flows stay
// consistent.
func FuzzTCPTrace(f *testing.F) {
	f.Add(segment(f, false, 1, 0, true, false, 0), segment(f, true, 9, 2, true, false, 0), segment(f, false, 2, 10, false, true, 100))
	f.Add(segment(f, false, 0xfffffff0, 0, false, false, 1000), segment(f, true, 9, 0x10, false, false, 0), []byte{})
	f.Fuzz(func(t *testing.T, a, b, c []byte) {
		w := New(Config{})
		tr := w.TraceTCP()
		out := &Dir{w: w, fromHost: true, to: &nicPort{}}
		for i, fr := range [][]byte{a, b, c, a, c, b} {
			kind := []EventKind{Sent, Dropped, Delivered}[i%3]
			tr.observe(&WireEvent{Kind: kind, At: mono.Time(i), Dir: out, Frame: fr, Copies: 1})
		}
		for _, fl := range tr.Flows() {
			for _, s := range fl.Segments {
				if s.End < s.Seq {
					t.Fatalf("segment %+v ends before it starts", s)
				}
			}
			if fl.Stats.RTT.N != len(fl.RTTs) || fl.Stats.MaxFlight < 0 {
				t.Fatalf("stats %+v", fl.Stats)
			}
		}
	})
}
