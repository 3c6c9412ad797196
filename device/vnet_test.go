package device

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/tapstack/tapstack/checksum"
)

func TestVnetHdrEncodeDecode(t *testing.T) {
	h := VnetHdr{Flags: VnetNeedsCsum, GSOType: GSOTCPv6 | GSOECN, HdrLen: 86, GSOSize: 1440, CsumStart: 54, CsumOffset: 16}
	b := make([]byte, VnetHdrLen)
	h.Encode(b)
	// The kernel's layout: flags, gso_type, then four 16-bit fields in the
	// host's order.
	want := []byte{1, 0x84, 0, 0, 0, 0, 0, 0, 0, 0}
	binary.NativeEndian.PutUint16(want[2:], 86)
	binary.NativeEndian.PutUint16(want[4:], 1440)
	binary.NativeEndian.PutUint16(want[6:], 54)
	binary.NativeEndian.PutUint16(want[8:], 16)
	if !bytes.Equal(b, want) {
		t.Errorf("Encode = %x, want %x", b, want)
	}
	got, err := DecodeVnetHdr(b)
	if err != nil || got != h {
		t.Errorf("DecodeVnetHdr = %+v, %v", got, err)
	}
	if _, err := DecodeVnetHdr(b[:9]); !errors.Is(err, ErrInvalid) {
		t.Errorf("short header: %v", err)
	}
}

func TestVnetHdrCheck(t *testing.T) {
	frame := make([]byte, 100)
	for _, tc := range []struct {
		name string
		h    VnetHdr
		ok   bool
	}{
		{"zero", VnetHdr{}, true},
		{"data valid", VnetHdr{Flags: VnetDataValid}, true},
		{"partial TCP", VnetHdr{Flags: VnetNeedsCsum, CsumStart: 34, CsumOffset: 16}, true},
		{"partial at the very end", VnetHdr{Flags: VnetNeedsCsum, CsumStart: 90, CsumOffset: 8}, true},
		{"TSO4", VnetHdr{Flags: VnetNeedsCsum, GSOType: GSOTCPv4, GSOSize: 1448, HdrLen: 66, CsumStart: 34, CsumOffset: 16}, true},
		{"TSO6 ECN", VnetHdr{Flags: VnetNeedsCsum, GSOType: GSOTCPv6 | GSOECN, GSOSize: 1440, HdrLen: 74, CsumStart: 54, CsumOffset: 16}, true},
		{"USO", VnetHdr{Flags: VnetNeedsCsum, GSOType: GSOUDPL4, GSOSize: 1000, CsumStart: 34, CsumOffset: 6}, true},
		{"hdr_len is the frame", VnetHdr{HdrLen: 100}, true},
		{"unknown flag", VnetHdr{Flags: 4}, false},
		{"both flags", VnetHdr{Flags: VnetNeedsCsum | VnetDataValid, CsumStart: 34, CsumOffset: 16}, false},
		{"UFO", VnetHdr{GSOType: 3, GSOSize: 1000}, false},
		{"unknown GSO type", VnetHdr{GSOType: 2, GSOSize: 1000}, false},
		{"ECN on UDP", VnetHdr{GSOType: GSOUDPL4 | GSOECN, GSOSize: 1000}, false},
		{"ECN alone", VnetHdr{GSOType: GSOECN, GSOSize: 1000}, false},
		{"gso_size 0", VnetHdr{Flags: VnetNeedsCsum, GSOType: GSOTCPv4, CsumStart: 34, CsumOffset: 16}, false},
		{"hdr_len beyond", VnetHdr{HdrLen: 101}, false},
		{"checksum beyond", VnetHdr{Flags: VnetNeedsCsum, CsumStart: 90, CsumOffset: 9}, false},
		{"checksum start beyond", VnetHdr{Flags: VnetNeedsCsum, CsumStart: 0xffff, CsumOffset: 0xffff}, false},
		{"odd checksum offset", VnetHdr{Flags: VnetNeedsCsum, CsumStart: 34, CsumOffset: 15}, false},
	} {
		err := tc.h.Check(frame)
		if (err == nil) != tc.ok || err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Check(%+v) = %v, want ok %v", tc.name, tc.h, err, tc.ok)
		}
		b := make([]byte, VnetHdrLen)
		tc.h.Encode(b)
		if got, err2 := ParseVnetHdr(b, frame); got != tc.h || (err2 == nil) != tc.ok {
			t.Errorf("%s: ParseVnetHdr = %+v, %v", tc.name, got, err2)
		}
	}
	// Offsets past the frame never make CompleteChecksum touch it.
	h := VnetHdr{Flags: VnetNeedsCsum, CsumStart: 99, CsumOffset: 0}
	if err := h.CompleteChecksum(frame); err == nil {
		t.Errorf("CompleteChecksum with the field past the end: no error")
	}
}

// tcpFrame builds an Ethernet (l2) or bare IP frame of a TCP/IPv4 or
// TCP/IPv6 segment with a complete checksum.
func tcpFrame(t testing.TB, l2, v6 bool, payload int) []byte {
	tcp := &layers.TCP{SrcPort: 40000, DstPort: 80, Seq: 7, Ack: 9, ACK: true, PSH: true, Window: 1000}
	var ls []gopacket.SerializableLayer
	if l2 {
		et := layers.EthernetTypeIPv4
		if v6 {
			et = layers.EthernetTypeIPv6
		}
		ls = append(ls, &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: et})
	}
	if v6 {
		ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolTCP,
			SrcIP: net.ParseIP("fd00::1"), DstIP: net.ParseIP("fd00::2")}
		tcp.SetNetworkLayerForChecksum(ip)
		ls = append(ls, ip)
	} else {
		ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP,
			SrcIP: net.IP{10, 0, 0, 1}, DstIP: net.IP{10, 0, 0, 2}}
		tcp.SetNetworkLayerForChecksum(ip)
		ls = append(ls, ip)
	}
	p := make([]byte, payload)
	for i := range p {
		p[i] = byte(i*7 + i>>8)
	}
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, append(ls, tcp, gopacket.Payload(p))...); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// partialOf turns a complete frame into what the kernel hands over with
// NEEDS_CSUM: the checksum field holds the pseudo-header sum.
func partialOf(frame []byte, h VnetHdr, v6 bool) []byte {
	f := bytes.Clone(frame)
	seg := f[h.CsumStart:]
	var pseudo uint16
	if v6 {
		l3 := int(h.CsumStart) - 40
		pseudo = checksum.PseudoHeaderV6([16]byte(f[l3+8:l3+24]), [16]byte(f[l3+24:l3+40]), 6, uint32(len(seg)))
	} else {
		l3 := int(h.CsumStart) - 20
		pseudo = checksum.PseudoHeaderV4([4]byte(f[l3+12:l3+16]), [4]byte(f[l3+16:l3+20]), 6, uint16(len(seg)))
	}
	binary.BigEndian.PutUint16(seg[h.CsumOffset:], pseudo)
	return f
}

func TestCompleteChecksum(t *testing.T) {
	for _, tc := range []struct {
		name    string
		l2, v6  bool
		payload int
	}{
		{"TAP IPv4", true, false, 1000},
		{"TAP IPv4 odd", true, false, 1001},
		{"TAP IPv4 64KiB", true, false, 65000},
		{"TUN IPv4", false, false, 100},
		{"TAP IPv6", true, true, 1400},
		{"TUN IPv6 odd", false, true, 33},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := tcpFrame(t, tc.l2, tc.v6, tc.payload)
			l3, ipLen := 0, 20
			if tc.l2 {
				l3 = EthernetHeaderLen
			}
			if tc.v6 {
				ipLen = 40
			}
			h := TCPOffload(l3, ipLen, 20, tc.payload, 0, tc.v6)
			partial := partialOf(want, h, tc.v6)
			if bytes.Equal(partial, want) {
				t.Fatal("the partial frame equals the complete one")
			}
			if err := h.CompleteChecksum(partial); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(partial, want) {
				t.Errorf("completed checksum %x, want %x", partial[h.CsumStart+16:h.CsumStart+18], want[h.CsumStart+16:h.CsumStart+18])
			}
			// Frames without NEEDS_CSUM are left alone.
			plain := VnetHdr{Flags: VnetDataValid}
			if err := plain.CompleteChecksum(partial); err != nil || !bytes.Equal(partial, want) {
				t.Errorf("DATA_VALID frame changed: %v", err)
			}
		})
	}
}

func TestTCPOffload(t *testing.T) {
	if h := TCPOffload(14, 20, 32, 1000, 1448, false); h != (VnetHdr{Flags: VnetNeedsCsum, HdrLen: 66, CsumStart: 34, CsumOffset: 16}) {
		t.Errorf("one segment: %+v", h)
	}
	if h := TCPOffload(14, 20, 32, 60000, 1448, false); h != (VnetHdr{Flags: VnetNeedsCsum, GSOType: GSOTCPv4, GSOSize: 1448, HdrLen: 66, CsumStart: 34, CsumOffset: 16}) {
		t.Errorf("TSO4: %+v", h)
	}
	if h := TCPOffload(0, 40, 20, 3000, 1440, true); h != (VnetHdr{Flags: VnetNeedsCsum, GSOType: GSOTCPv6, GSOSize: 1440, HdrLen: 60, CsumStart: 40, CsumOffset: 16}) {
		t.Errorf("TSO6 on a TUN: %+v", h)
	}
	if h := TCPOffload(14, 20, 20, 3000, 0, false); h.IsGSO() {
		t.Errorf("mss 0: %+v", h)
	}
}

func TestOffloadsSet(t *testing.T) {
	if OffloadAll.String() != "csum+tso4+tso6" || Offloads(0).String() != "none" || (OffloadChecksum|0x40).String() != "csum+0x40" {
		t.Errorf("String: %q %q %q", OffloadAll, Offloads(0), OffloadChecksum|0x40)
	}
	for o, ok := range map[Offloads]bool{0: true, OffloadChecksum: true, OffloadAll: true, OffloadTSO4: false, 0x80: false} {
		if err := o.check(); (err == nil) != ok {
			t.Errorf("check(%v) = %v", o, err)
		}
	}
}

// plainDevice hides every method but Device's.
type plainDevice struct{ Device }

// A Pipe with offloads carries frames and metadata as a veth between two
// kernels does; the wrappers pass offloads on.
func TestPipeOffload(t *testing.T) {
	a, b := Pipe(PipeConfig{Offloads: OffloadAll})
	defer a.Close()
	defer b.Close()
	ca := NewCounters(a)
	var pcapBuf bytes.Buffer
	pb, err := NewPcap(b, &pcapBuf, nil)
	if err != nil {
		t.Fatal(err)
	}
	if OffloadsOf(ca) != OffloadAll || OffloadsOf(pb) != OffloadAll || OffloadsOf(plainDevice{a}) != 0 {
		t.Fatalf("OffloadsOf: %v %v %v", OffloadsOf(ca), OffloadsOf(pb), OffloadsOf(plainDevice{a}))
	}
	const mss = 1448
	full := tcpFrame(t, true, false, 40*mss)
	gso := TCPOffload(EthernetHeaderLen, 20, 20, 40*mss, mss, false)
	small := tcpFrame(t, true, false, 100)
	csum := TCPOffload(EthernetHeaderLen, 20, 20, 100, mss, false)
	tooBig := tcpFrame(t, true, false, 1600) // longer than the MTU, no GSO
	frames := [][]byte{frameBuf(partialOf(full, gso, false)), frameBuf(partialOf(small, csum, false)), frameBuf(small), frameBuf(tooBig)}
	meta := []VnetHdr{gso, csum, {}, {}}
	if n, err := ca.WriteBatchOffload(frames, meta, Headroom); n != 4 || err != nil {
		t.Fatalf("WriteBatchOffload = %d, %v", n, err)
	}
	if _, tx := a.Drops(); tx != 1 {
		t.Errorf("tx drops %d, want 1 (the frame over the MTU)", tx)
	}
	bufs, sizes := newBufs(4, MaxOffloadFrameSize)
	got := make([]VnetHdr, 4)
	n, err := pb.ReadBatchOffload(bufs, sizes, got, Headroom)
	if n != 3 || err != nil {
		t.Fatalf("ReadBatchOffload = %d, %v", n, err)
	}
	for i := range n {
		if got[i] != meta[i] || !bytes.Equal(bufs[i][Headroom:Headroom+sizes[i]], frames[i][Headroom:]) {
			t.Errorf("frame %d: meta %+v, want %+v; %d bytes, want %d", i, got[i], meta[i], sizes[i], len(frames[i])-Headroom)
		}
	}
	if st := ca.Stats(); st.TxFrames != 4 || st.TxBytes != uint64(len(full)+2*len(small)+len(tooBig)) {
		t.Errorf("counters %+v", st)
	}

	// A plain reader of the same pipe gets complete checksums.
	if n, err := a.WriteBatchOffload(frames[:2], meta[:2], Headroom); n != 2 || err != nil {
		t.Fatalf("WriteBatchOffload = %d, %v", n, err)
	}
	n, err = b.ReadBatch(bufs, sizes, Headroom)
	if n != 2 || err != nil || !bytes.Equal(bufs[0][Headroom:Headroom+sizes[0]], full) || !bytes.Equal(bufs[1][Headroom:Headroom+sizes[1]], small) {
		t.Errorf("plain ReadBatch = %d, %v; frames not completed", n, err)
	}

	// Metadata the device cannot honour is refused, nothing written.
	bad := [][]VnetHdr{
		{gso, {Flags: VnetNeedsCsum, CsumStart: 2000, CsumOffset: 16}},
		{gso},
		{{Flags: VnetNeedsCsum, GSOType: GSOUDPL4, GSOSize: 100, CsumStart: 34, CsumOffset: 6}, {}},
	}
	for _, m := range bad {
		if n, err := a.WriteBatchOffload(frames[:2], m, Headroom); n != 0 || !errors.Is(err, ErrInvalid) {
			t.Errorf("WriteBatchOffload with %+v = %d, %v; want ErrInvalid", m, n, err)
		}
	}
	if b.Queued() != 0 {
		t.Errorf("%d frames queued after refused writes", b.Queued())
	}
}

// Without offloads, the offload methods move plain frames and refuse any
// metadata, on a Pipe and through a wrapper over a device that has none.
func TestOffloadMethodsWithoutOffloads(t *testing.T) {
	a, b := Pipe(PipeConfig{})
	defer a.Close()
	defer b.Close()
	for _, w := range []Offloader{a, NewCounters(plainDevice{a})} {
		if w.Offloads() != 0 {
			t.Errorf("%T: Offloads %v", w, w.Offloads())
		}
		small := tcpFrame(t, true, false, 100)
		csum := TCPOffload(EthernetHeaderLen, 20, 20, 100, 0, false)
		if n, err := w.WriteBatchOffload([][]byte{frameBuf(small)}, []VnetHdr{csum}, Headroom); n != 0 || !errors.Is(err, ErrInvalid) {
			t.Errorf("%T: write with NEEDS_CSUM = %d, %v", w, n, err)
		}
		if n, err := w.WriteBatchOffload([][]byte{frameBuf(small)}, []VnetHdr{{}}, Headroom); n != 1 || err != nil {
			t.Errorf("%T: write of a plain frame = %d, %v", w, n, err)
		}
		bufs, sizes := newBufs(2, 1514)
		meta := []VnetHdr{{Flags: 1}, {Flags: 1}}
		r := Offloader(b)
		if _, ok := w.(*Counters); ok {
			r = NewCounters(plainDevice{b})
		}
		if n, err := r.ReadBatchOffload(bufs, sizes, meta, Headroom); n != 1 || err != nil || meta[0] != (VnetHdr{}) || !bytes.Equal(bufs[0][Headroom:Headroom+sizes[0]], small) {
			t.Errorf("%T: ReadBatchOffload = %d, %v, meta %+v", r, n, err, meta[0])
		}
	}
}

// FuzzParseVnetHdr: any header and frame give a header or an error matching
// ErrInvalid, never a panic; an accepted header encodes back to the same
// bytes and CompleteChecksum stays inside the frame.
func FuzzParseVnetHdr(f *testing.F) {
	hdr := func(h VnetHdr) []byte {
		b := make([]byte, VnetHdrLen)
		h.Encode(b)
		return b
	}
	frame := tcpFrame(f, true, false, 3000)
	f.Add(hdr(TCPOffload(14, 20, 20, 3000, 1448, false)), frame)
	f.Add(hdr(VnetHdr{Flags: VnetDataValid}), frame[:60])
	f.Add(hdr(VnetHdr{Flags: VnetNeedsCsum, CsumStart: 0xfff0, CsumOffset: 0x20}), frame[:100])
	f.Add([]byte{1, 2, 3}, []byte{})
	f.Fuzz(func(t *testing.T, b, frame []byte) {
		h, err := ParseVnetHdr(b, frame)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not match ErrInvalid", err)
			}
			return
		}
		if again := hdr(h); !bytes.Equal(again, b[:VnetHdrLen]) {
			t.Fatalf("Encode(%+v) = %x, decoded from %x", h, again, b[:VnetHdrLen])
		}
		c := bytes.Clone(frame)
		if err := h.CompleteChecksum(c); err != nil {
			t.Fatalf("CompleteChecksum of an accepted header: %v", err)
		}
		if h.Flags&VnetNeedsCsum == 0 && !bytes.Equal(c, frame) {
			t.Fatal("CompleteChecksum changed a frame without NEEDS_CSUM")
		}
	})
}
