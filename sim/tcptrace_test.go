package sim

import (
	"bytes"
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
	run := must(p.w.StartTransfer(Transfer{Transport: TCP{}, Client: p.a, Server: p.b, Port: 80, Conns: 2, Bytes: 1 << 20}))(t)
	if err := p.w.RunUntil(run.Done, mono.Time(time.Hour)); err != nil {
		t.Fatal(err)
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
		} else if st.Bytes != 0 || st.Segments != 2 { // SYN-ACK and FIN
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
	panels := 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "g" {
			panels++
		}
	}
	if panels != 4 || !strings.Contains(a.String(), `stroke="#d73027"`) || !strings.Contains(a.String(), `stroke="#999999"`) {
		t.Errorf("%d panels; retransmissions or drops not drawn", panels)
	}
}

// segment builds an Ethernet frame carrying a TCP segment from a:1000 to
// b:80 (or back, when reverse).
func segment(t testing.TB, reverse bool, seqn, ack uint32, syn, fin bool, payload int) []byte {
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
	reply := func(ms int, seqn, ack uint32, syn bool) {
		f := segment(t, true, seqn, ack, syn, false, 0)
		tr.observe(&WireEvent{Kind: Sent, At: at(ms), Dir: back, Frame: f, Copies: 1})
		tr.observe(&WireEvent{Kind: Delivered, At: at(ms), Dir: back, Frame: f})
	}
	send(0, Sent, isn, 0, true, false, 0)
	reply(20, peer, isn+1, true) // SYN-ACK: RTT 20ms
	send(20, Sent, isn+1, peer+1, false, false, 1000)
	send(21, Dropped, isn+1001, peer+1, false, false, 1000) // wraps: 0xffffff00 + 1001 > 2^32
	send(22, Sent, isn+2001, peer+1, false, false, 1000)
	reply(45, peer+1, isn+1001, false)                    // RTT 25ms
	send(300, Sent, isn+1001, peer+1, false, false, 1000) // sent again
	reply(330, peer+1, isn+3001, false)                   // covers a retransmitted segment: no sample
	send(331, Sent, isn+3001, peer+1, false, true, 0)
	reply(350, peer+1, isn+3002, false)
	send(400, Sent, 77, 0, true, false, 0) // a new connection on the same ports

	if n := len(tr.Flows()); n != 3 || tr.Flows()[2].Src != tr.Flows()[0].Src {
		t.Fatalf("%d flows, want the first connection both ways and the second", n)
	}
	f := tr.Flows()[0]
	st := f.Stats
	if st.Bytes != 3000 || st.Segments != 6 || st.Retransmits != 1 || st.RetransmittedBytes != 1000 || st.Dropped != 1 {
		t.Errorf("stats %+v", st)
	}
	if st.RTT.N != 3 || st.RTT.Min != 19*time.Millisecond || st.RTT.Max != 25*time.Millisecond {
		t.Errorf("RTT %v, want samples of 20ms (SYN), 25ms and 19ms (FIN)", st.RTT)
	}
	wantSeg := []TCPSegment{{Seq: -1, End: 0}, {Seq: 0, End: 1000}, {Seq: 1000, End: 2000}, {Seq: 2000, End: 3000}, {Seq: 1000, End: 2000}, {Seq: 3000, End: 3001}}
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
