package tcp

import (
	"bytes"
	"encoding/binary"
	"io"
	"os"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/tapstack/tapstack/checksum"
	"github.com/tapstack/tapstack/tcp/seq"
)

// tcpPcap is a capture of one Linux-to-Linux connection: see
// testdata/pcap/README.md. Every segment in it was built by the kernel.
const tcpPcap = "../testdata/pcap/tcp.pcap"

// capturedSegment is a TCP segment from a capture, cut out of its Ethernet and
// IPv4 headers by hand so our side of the comparison does not lean on gopacket.
type capturedSegment struct {
	frame    []byte
	src, dst [4]byte
	seg      []byte
}

// readCapture returns every TCP segment in a pcap of Ethernet frames carrying
// IPv4. A missing or unreadable file fails the test.
func readCapture(t testing.TB, path string) []capturedSegment {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if r.LinkType() != layers.LinkTypeEthernet {
		t.Fatalf("%s: link type %v, want Ethernet", path, r.LinkType())
	}
	var out []capturedSegment
	for i := 1; ; i++ {
		frame, ci, err := r.ReadPacketData()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s frame %d: %v", path, i, err)
		}
		if ci.CaptureLength != ci.Length {
			t.Fatalf("%s frame %d: truncated capture", path, i)
		}
		if len(frame) < 14+20 || binary.BigEndian.Uint16(frame[12:]) != 0x0800 {
			continue
		}
		ip := frame[14:]
		ihl := int(ip[0]&0x0f) * 4
		total := int(binary.BigEndian.Uint16(ip[2:]))
		if ip[9] != 6 || total > len(ip) || ihl < 20 || ihl > total {
			continue
		}
		if binary.BigEndian.Uint16(ip[6:])&0x3fff != 0 {
			t.Fatalf("%s frame %d: fragmented TCP", path, i)
		}
		c := capturedSegment{frame: frame, seg: ip[ihl:total]}
		copy(c.src[:], ip[12:16])
		copy(c.dst[:], ip[16:20])
		out = append(out, c)
	}
	return out
}

func (c capturedSegment) pseudo() uint16 {
	return checksum.PseudoHeaderV4(c.src, c.dst, 6, uint16(len(c.seg)))
}

// gopacketOptions reads gopacket's decoded option list into an Options.
func gopacketOptions(t *testing.T, opts []layers.TCPOption) Options {
	t.Helper()
	var o Options
	for _, opt := range opts {
		d := opt.OptionData
		switch opt.OptionType {
		case layers.TCPOptionKindMSS:
			o.HasMSS, o.MSS = true, binary.BigEndian.Uint16(d)
		case layers.TCPOptionKindWindowScale:
			o.HasWindowScale, o.WindowScale = true, d[0]
		case layers.TCPOptionKindSACKPermitted:
			o.SACKPermitted = true
		case layers.TCPOptionKindTimestamps:
			o.HasTimestamps = true
			o.TSVal, o.TSEcr = binary.BigEndian.Uint32(d), binary.BigEndian.Uint32(d[4:])
		case layers.TCPOptionKindSACK:
			o.NumSACK = len(d) / 8
			for k := range o.NumSACK {
				o.SACKBlocks[k] = SACKBlock{seq.Value(binary.BigEndian.Uint32(d[8*k:])), seq.Value(binary.BigEndian.Uint32(d[8*k+4:]))}
			}
		case layers.TCPOptionKindNop, layers.TCPOptionKindEndList:
		default:
			t.Errorf("gopacket found option %v, which the capture should not hold", opt.OptionType)
		}
	}
	return o
}

// TestDifferentialGopacket decodes every segment of the capture with ours and
// with gopacket and compares every field.
func TestDifferentialGopacket(t *testing.T) {
	segs := readCapture(t, tcpPcap)
	var syn, synAck, data, fin int
	for i, c := range segs {
		h, err := ParseHeader(c.seg)
		if err != nil {
			t.Fatalf("segment %d: %v", i, err)
		}
		pkt := gopacket.NewPacket(c.frame, layers.LayerTypeEthernet, gopacket.Default)
		gt, ok := pkt.Layer(layers.LayerTypeTCP).(*layers.TCP)
		if !ok {
			t.Fatalf("segment %d: gopacket found no TCP: %v", i, pkt.ErrorLayer())
		}
		g := struct {
			src, dst uint16
			seq, ack seq.Value
			doff     uint8
			flags    Flags
			win, urg uint16
			csum     uint16
			payload  int
		}{uint16(gt.SrcPort), uint16(gt.DstPort), seq.Value(gt.Seq), seq.Value(gt.Ack), gt.DataOffset, 0, gt.Window, gt.Urgent, gt.Checksum, len(gt.Payload)}
		for _, b := range []struct {
			set bool
			f   Flags
		}{{gt.FIN, FIN}, {gt.SYN, SYN}, {gt.RST, RST}, {gt.PSH, PSH}, {gt.ACK, ACK}, {gt.URG, URG}, {gt.ECE, ECE}, {gt.CWR, CWR}} {
			if b.set {
				g.flags |= b.f
			}
		}
		ours := g
		ours.src, ours.dst, ours.seq, ours.ack = h.SrcPort(), h.DstPort(), h.SeqNum(), h.AckNum()
		ours.doff, ours.flags, ours.win, ours.urg = h.DataOffset(), h.Flags(), h.Window(), h.UrgentPtr()
		ours.csum, ours.payload = h.Checksum(), len(h.Payload())
		if ours != g {
			t.Errorf("segment %d (%v):\n ours     %+v\n gopacket %+v", i, h, ours, g)
		}
		if o, want := h.DecodeOptions(), gopacketOptions(t, gt.Options); o != want {
			t.Errorf("segment %d: options\n ours     %v\n gopacket %v", i, o, want)
		}
		if !bytes.Equal(h.Payload(), gt.Payload) {
			t.Errorf("segment %d: payloads differ", i)
		}
		if !h.ChecksumValid(c.pseudo()) {
			t.Errorf("segment %d: our checksum check fails", i)
		}
		ip4, _ := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		if err := gt.SetNetworkLayerForChecksum(ip4); err != nil {
			t.Fatal(err)
		}
		if err, res := gt.VerifyChecksum(); err != nil || !res.Valid {
			t.Errorf("segment %d: gopacket finds the checksum invalid (%v, %+v)", i, err, res)
		}

		switch f := h.Flags(); {
		case f == SYN:
			syn++
		case f == SYN|ACK:
			synAck++
		case f.Contains(FIN):
			fin++
		case len(h.Payload()) > 0:
			data++
		}
	}
	// The capture must hold what this test claims to cover.
	if syn != 1 || synAck != 1 || data == 0 || fin != 2 {
		t.Errorf("capture has %d SYN, %d SYN|ACK, %d data, %d FIN segments; want 1, 1, >0, 2", syn, synAck, data, fin)
	}
}

// TestReencodeCaptured rebuilds every captured segment with HeaderFields and
// Options.Encode: Linux's option layout is the one we mimic, so the header,
// options and checksum must come out byte for byte as the kernel sent them.
func TestReencodeCaptured(t *testing.T) {
	segs := readCapture(t, tcpPcap)
	if len(segs) == 0 {
		t.Fatal("no TCP segments in the capture")
	}
	layouts := map[string]bool{}
	for i, c := range segs {
		h, err := ParseHeader(c.seg)
		if err != nil {
			t.Fatalf("segment %d: %v", i, err)
		}
		o := h.DecodeOptions()
		opts := make([]byte, MaxOptionsLen)
		n, err := o.Encode(opts)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(opts[:n], h.Options()) {
			t.Errorf("segment %d (%v): options %v\n Linux % x\n ours  % x", i, h, o, h.Options(), opts[:n])
		}
		layouts[o.layout()] = true

		f := HeaderFields{
			SrcPort: h.SrcPort(), DstPort: h.DstPort(), SeqNum: h.SeqNum(), AckNum: h.AckNum(),
			Flags: h.Flags(), Window: h.Window(), UrgentPtr: h.UrgentPtr(), Options: o,
		}
		out := make([]byte, len(c.seg))
		hl := f.HeaderLen()
		copy(out[hl:], h.Payload())
		if _, err := f.Encode(out, c.pseudo(), checksum.Sum(h.Payload(), 0)); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, c.seg) {
			t.Errorf("segment %d (%v): re-encoded header\n Linux % x\n ours  % x", i, h, c.seg[:h.HeaderLen()], out[:hl])
		}
	}
	// SYN (MSS, SACKOK, TS, NOP, WS) and data segments (NOP, NOP, TS) at least.
	for _, want := range []string{"mss,sackOK,ts,ws", "ts"} {
		if !layouts[want] {
			t.Errorf("capture has no segment with options %s (has %v)", want, layouts)
		}
	}
}

// layout names which options are present.
func (o Options) layout() string {
	var s []byte
	add := func(has bool, name string) {
		if has {
			if len(s) > 0 {
				s = append(s, ',')
			}
			s = append(s, name...)
		}
	}
	add(o.HasMSS, "mss")
	add(o.SACKPermitted, "sackOK")
	add(o.HasTimestamps, "ts")
	add(o.HasWindowScale, "ws")
	add(o.NumSACK > 0, "sack")
	return string(s)
}
