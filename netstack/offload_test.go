package netstack

import (
	"bytes"
	"crypto/sha256"
	"io"
	"net/netip"
	"testing"

	"github.com/tapstack/tapstack/device"
)

// Over a device with TSO and checksum offload (a Pipe that passes virtio-net
// headers on, as a veth between two kernels), TCP sends super-segments with
// partial checksums and no software checksum; the receiving stack, reading
// with plain ReadBatch, gets them completed and whole, and the stream
// arrives intact in a few dozen frames per MiB instead of ~720.
func TestTCPOverOffloadDevice(t *testing.T) {
	da, db := device.Pipe(device.PipeConfig{Offloads: device.OffloadAll})
	a, b := New(Config{}), New(Config{})
	defer func() { a.Close(); b.Close() }()
	if _, err := a.AttachDevice(da, NICConfig{Name: "a0", Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.AttachDevice(db, NICConfig{Name: "b0", Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.2/24")}}); err != nil {
		t.Fatal(err)
	}
	ln, err := b.Listen("tcp", "10.0.0.2:5001")
	if err != nil {
		t.Fatal(err)
	}
	const size = 8 << 20
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
	ln.Close()
	st := a.Stats()
	t.Logf("%d frames sent", st.Link.FramesSent)
	if frames := st.Link.FramesSent; frames > size/1448/8 {
		t.Errorf("%d frames for %d bytes: no super-segments", frames, size)
	}
	if bad := b.Stats().TCP.BadChecksum; bad != 0 {
		t.Errorf("%d bad checksums at the receiver", bad)
	}
}
