package netstack

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"io"
	"net/netip"
	"testing"
	"time"

	"github.com/tapstack/tapstack/checksum"
	"github.com/tapstack/tapstack/device"
	"github.com/tapstack/tapstack/ip"
)

// Over a device with TSO and checksum offload (a Pipe that passes virtio-net
// headers on, as a veth between two kernels), TCP sends super-segments with
// partial checksums and no software checksum, their payload written from
// the send buffer (device.OffloadGatherWriter) behind an Ethernet header;
// the receiving stack, reading with plain ReadBatch, gets them completed
// and whole, and the stream arrives intact in a few dozen frames per MiB
// instead of ~720.
func TestTCPOverOffloadDevice(t *testing.T) {
	const size = 8 << 20
	a, b := streamOver(t, device.PipeConfig{Offloads: device.OffloadAll}, size)
	st := a.Stats()
	t.Logf("%d frames sent", st.Link.FramesSent)
	if frames := st.Link.FramesSent; frames > size/1448/8 {
		t.Errorf("%d frames for %d bytes: no super-segments", frames, size)
	}
	if bad := b.Stats().TCP.BadChecksum; bad != 0 {
		t.Errorf("%d bad checksums at the receiver", bad)
	}
	if kept := b.Stats().TCP.SegmentsAdopted; kept == 0 {
		t.Error("the receiver copied every super-segment")
	}
	if min := uint64(size / 65536 / 2); st.Link.FramesGathered < min {
		t.Errorf("%d super-segments gathered, want at least %d", st.Link.FramesGathered, min)
	}
}

// A connection keeps a large in-order segment in the buffer the driver's
// reader filled (tcp.Segment.Buf) and the reader reads the next frame into
// another: the stream arrives intact, and no frame was copied twice.
func TestTCPKeepsReadersBuffers(t *testing.T) {
	const size = 8 << 20
	_, b := streamOver(t, device.PipeConfig{MTU: 65535}, size)
	st := b.Stats().TCP
	t.Logf("%d segments kept of %d received", st.SegmentsAdopted, st.Received)
	if min := uint64(size / 65536 / 2); st.SegmentsAdopted < min {
		t.Errorf("%d segments kept, want at least %d", st.SegmentsAdopted, min)
	}
}

// On a device that writes frames from parts (device.GatherWriter) a large
// segment's payload goes to the device from the send buffer, behind the IP
// header or an Ethernet one: the frames hold the send buffer's chunks until
// written, and the stream arrives intact although the chunks go back to the
// pool as data is acknowledged.
func TestTCPGatherWrite(t *testing.T) {
	for _, l3 := range []bool{true, false} {
		const size = 8 << 20
		a, _ := streamOver(t, device.PipeConfig{MTU: 65535, L3: l3}, size)
		st := a.Stats().Link
		t.Logf("L3 %v: %d of %d frames gathered", l3, st.FramesGathered, st.FramesSent)
		if min := uint64(size / 65536 / 2); st.FramesGathered < min {
			t.Errorf("L3 %v: %d frames gathered, want at least %d", l3, st.FramesGathered, min)
		}
	}
}

// A gathered frame whose next hop is not resolved yet waits for ARP made
// whole, holding no send buffer meanwhile, and leaves whole once the
// neighbour answers.
func TestGatheredFrameWaitsForARPWhole(t *testing.T) {
	n := newTestNet(t)
	a, b, na, nb := n.pair(1500)
	head := []byte("headers|")
	tail := [2][]byte{[]byte("payload part one|"), []byte("part two")}
	a.mu.Lock()
	buf := getBuf(na.ipOffset() + len(head))
	*buf = (*buf)[:na.ipOffset()+len(head)]
	copy((*buf)[na.ipOffset():], head)
	na.outputFrameLocked(n.now, addrB, txFrame{b: buf, tail: tail})
	a.endStepLocked()
	a.mu.Unlock()
	n.runUntil(n.now.Add(time.Second), a, b)
	want := string(head) + string(tail[0]) + string(tail[1])
	var got []string
	for _, f := range n.sent {
		if eth, err := ip.ParseEthernet(f.data); err == nil && f.from() == na && eth.EtherType() == ip.EtherTypeIPv4 {
			if eth.Dst() != ip.MAC(nb.mac) {
				t.Errorf("sent to %v, not B's %v", eth.Dst(), nb.mac)
			}
			got = append(got, string(eth.Payload()))
		}
	}
	if len(got) != 1 || got[0] != want {
		t.Fatalf("A sent %q, want the one frame %q", got, want)
	}
}

// streamOver sends size bytes from a stack at 10.0.0.1 to one at 10.0.0.2
// over a Pipe made with cfg, checks they arrived intact, and returns the
// closed stacks for their counters.
func streamOver(t *testing.T, cfg device.PipeConfig, size int) (a, b *Stack) {
	t.Helper()
	a, b, _, _ = pipeStacksOver(t, cfg)
	defer func() { a.Close(); b.Close() }() // final counters
	ln, err := b.Listen("tcp", "10.0.0.2:5001")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i*7 + i>>11)
	}
	got := make(chan [32]byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			t.Error(err)
			got <- [32]byte{}
			return
		}
		defer c.Close()
		h := sha256.New()
		if _, err := io.Copy(h, c); err != nil {
			t.Error(err)
		}
		var sum [32]byte
		copy(sum[:], h.Sum(nil))
		got <- sum
	}()
	c, err := a.DialContext(bounded(t), "tcp", "10.0.0.2:5001")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(c, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if sum := <-got; sum != sha256.Sum256(data) {
		t.Fatal("the stream arrived damaged")
	}
	return a, b
}

// With offloads the reader takes each frame's virtio-net header: a UDP or
// TCP checksum the kernel vouches for (DATA_VALID, or NEEDS_CSUM with the
// partial sum still in the field) is not verified again; a frame without
// the kernel's word is.
func TestOffloadTrustsKernelChecksums(t *testing.T) {
	da, db := device.Pipe(device.PipeConfig{Offloads: device.OffloadAll})
	defer da.Close()
	b := New(Config{})
	defer b.Close()
	if _, err := b.AttachDevice(db, NICConfig{Name: "b0", Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.2/24")}}); err != nil {
		t.Fatal(err)
	}
	c, err := b.ListenUDP(netip.AddrPortFrom(netip.Addr{}, 7000))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	src, dst := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	var mac ip.MAC
	copy(mac[:], db.LinkAddr())
	frame := func(payload string, sum uint16) []byte {
		const off = 14 + 20
		f := make([]byte, device.Headroom+off+8+len(payload))
		p := f[device.Headroom:]
		copy(p[off+8:], payload)
		if err := (ip.UDPFields{SrcPort: 9, DstPort: 7000}).Encode(p[off:], src, dst); err != nil {
			t.Fatal(err)
		}
		binary.BigEndian.PutUint16(p[off+6:], sum)
		h := ip.IPv4Fields{TotalLength: uint16(len(p) - 14), ID: 1, TTL: 64, Protocol: ip.ProtocolUDP, Src: src, Dst: dst}
		if err := h.Encode(p[14:]); err != nil {
			t.Fatal(err)
		}
		if err := (ip.EthernetFields{Dst: mac, Src: ip.MAC{2, 0, 0, 0, 0, 1}, EtherType: ip.EtherTypeIPv4}).Encode(p); err != nil {
			t.Fatal(err)
		}
		return f
	}
	send := func(f []byte, m device.VnetHdr) {
		t.Helper()
		if _, err := da.WriteBatchOffload([][]byte{f}, []device.VnetHdr{m}, device.Headroom); err != nil {
			t.Fatal(err)
		}
	}
	recv := func(want string) {
		t.Helper()
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 100)
		n, _, err := c.ReadFrom(buf)
		if err != nil || string(buf[:n]) != want {
			t.Fatalf("read %q, %v; want %q", buf[:n], err, want)
		}
	}
	// A wrong checksum without the kernel's word: dropped and counted.
	send(frame("unchecked", 0x1234), device.VnetHdr{})
	// The same wrong checksum marked verified by the kernel: delivered.
	send(frame("valid", 0x1234), device.VnetHdr{Flags: device.VnetDataValid})
	recv("valid")
	if bad := b.Stats().UDP.BadChecksum; bad != 1 {
		t.Fatalf("%d bad UDP checksums counted, want 1 (the unmarked frame)", bad)
	}
	// A partial checksum, as the kernel's own sockets leave it: the field
	// holds the pseudo-header sum, which is not a valid checksum.
	partial := checksum.PseudoHeaderV4(src.As4(), dst.As4(), uint8(ip.ProtocolUDP), uint16(8+len("partial")))
	send(frame("partial", uint16(partial)), device.VnetHdr{Flags: device.VnetNeedsCsum, CsumStart: 34, CsumOffset: 6})
	recv("partial")
	if bad := b.Stats().UDP.BadChecksum; bad != 1 {
		t.Fatalf("%d bad UDP checksums counted after the partial one, want 1", bad)
	}
}

// BenchmarkDriverTCPStream streams 64 KiB writes between two real-time
// stacks over an in-memory Pipe: at MTU 65535 segments are kept in the
// reader's buffers and gathered from send buffers, behind an IP or an
// Ethernet header; with offloads TSO super-segments are gathered the same
// way; at MTU 1500 on an Ethernet pipe segments are copied. Steady state
// allocates nothing.
func BenchmarkDriverTCPStream(b *testing.B) {
	for _, c := range []struct {
		name string
		cfg  device.PipeConfig
	}{
		{"l3-mtu65535", device.PipeConfig{MTU: 65535, L3: true, QueueLen: 1024}},
		{"eth-mtu65535", device.PipeConfig{MTU: 65535, QueueLen: 1024}},
		{"eth-mtu1500-offload", device.PipeConfig{Offloads: device.OffloadAll, QueueLen: 1024}},
		{"eth-mtu1500", device.PipeConfig{QueueLen: 4096}},
	} {
		b.Run(c.name, func(b *testing.B) { benchStream(b, c.cfg) })
	}
}

func benchStream(b *testing.B, cfg device.PipeConfig) {
	a, s, _, _ := pipeStacksOver(b, cfg)
	ln, err := s.Listen("tcp", "10.0.0.2:5001")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	done := make(chan int64, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- -1
			return
		}
		defer c.Close()
		buf := make([]byte, 64<<10)
		var got int64
		for {
			n, err := c.Read(buf)
			got += int64(n)
			if err != nil {
				done <- got
				return
			}
		}
	}()
	c, err := a.DialContext(bounded(b), "tcp", "10.0.0.2:5001")
	if err != nil {
		b.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	for range 64 { // warm the pools and the windows
		if _, err := c.Write(chunk); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(chunk)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Write(chunk); err != nil {
			b.Fatal(err)
		}
	}
	c.Close()
	if got := <-done; got != int64(b.N+64)*int64(len(chunk)) {
		b.Fatalf("the reader got %d bytes of %d", got, int64(b.N+64)*int64(len(chunk)))
	}
}
