package device

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

var (
	_ Device      = (*Pcap)(nil)
	_ DropCounter = (*Pcap)(nil)
)

// fakeClock returns a virtual clock that advances 1.5ms per reading.
func fakeClock(start time.Time) func() time.Time {
	now := start
	return func() time.Time {
		t := now
		now = now.Add(1500 * time.Microsecond)
		return t
	}
}

func TestPcapWriterRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	pw, err := NewPcapWriter(&buf, LinkTypeEthernet, 0)
	if err != nil {
		t.Fatal(err)
	}
	base := time.Unix(1700000000, 123456789)
	frames := [][]byte{[]byte("0123456789abcdef"), bytes.Repeat([]byte{0xab}, 1514), {1}}
	for i, f := range frames {
		if err := pw.WriteFrame(base.Add(time.Duration(i)*time.Nanosecond), f); err != nil {
			t.Fatal(err)
		}
	}
	r, err := pcapgo.NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if r.LinkType() != layers.LinkTypeEthernet || r.Resolution().ToDuration() != time.Nanosecond || r.Snaplen() != DefaultSnapLen {
		t.Errorf("header: link %v, resolution %v, snaplen %d", r.LinkType(), r.Resolution(), r.Snaplen())
	}
	for i, f := range frames {
		data, ci, err := r.ReadPacketData()
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if !bytes.Equal(data, f) || ci.Length != len(f) || ci.CaptureLength != len(f) {
			t.Errorf("record %d: %d bytes (len %d cap %d), want %d", i, len(data), ci.Length, ci.CaptureLength, len(f))
		}
		if want := base.Add(time.Duration(i) * time.Nanosecond); !ci.Timestamp.Equal(want) {
			t.Errorf("record %d: timestamp %v, want %v", i, ci.Timestamp, want)
		}
	}
	if _, _, err := r.ReadPacketData(); err != io.EOF {
		t.Errorf("after the last record: %v, want EOF", err)
	}
}

func TestPcapWriterSnapLenAndClamp(t *testing.T) {
	var buf bytes.Buffer
	pw, _ := NewPcapWriter(&buf, LinkTypeRaw, 8)
	pw.WriteFrame(time.Unix(-5, 0), []byte("0123456789"))
	r, err := pcapgo.NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if r.LinkType() != layers.LinkTypeRaw {
		t.Errorf("link type %v, want raw (101)", r.LinkType())
	}
	data, ci, err := r.ReadPacketData()
	if err != nil || string(data) != "01234567" || ci.Length != 10 || ci.Timestamp.Unix() != 0 {
		t.Errorf("record: %q len %d ts %v err %v; want cut to 8, len 10, ts clamped to 0", data, ci.Length, ci.Timestamp, err)
	}
}

// The header and record bytes are fixed, whatever the host: the simulator
// digests traces.
func TestPcapWriterBytes(t *testing.T) {
	var buf bytes.Buffer
	pw, _ := NewPcapWriter(&buf, LinkTypeEthernet, 65535)
	pw.WriteFrame(time.Unix(2, 5), []byte{0xaa})
	want := []byte{
		0x4d, 0x3c, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0,
		2, 0, 0, 0, 5, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0xaa,
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("bytes\n% x\nwant\n% x", buf.Bytes(), want)
	}
}

func TestPcapWriterNoAllocs(t *testing.T) {
	pw, _ := NewPcapWriter(io.Discard, LinkTypeEthernet, 0)
	frame := make([]byte, 1514)
	ts := time.Unix(1, 0)
	if n := testing.AllocsPerRun(100, func() { pw.WriteFrame(ts, frame) }); n != 0 {
		t.Errorf("WriteFrame allocates %v times per frame", n)
	}
}

func TestPcapDevice(t *testing.T) {
	a, b := Pipe(PipeConfig{})
	var buf bytes.Buffer
	bw := bufio.NewWriter(&buf)
	base := time.Unix(100, 0)
	pa, err := NewPcap(a, bw, fakeClock(base))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	pa.WriteBatch([][]byte{frameBuf([]byte("out-1")), frameBuf([]byte("out-2"))}, Headroom)
	b.WriteBatch([][]byte{frameBuf([]byte("in-1"))}, Headroom)
	bufs, sizes := newBufs(4, 100)
	if n, err := pa.ReadBatch(bufs, sizes, Headroom); n != 1 || err != nil {
		t.Fatalf("ReadBatch = %d, %v", n, err)
	}
	if err := pa.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := pcapgo.NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		data string
		ts   time.Time
	}{{"out-1", base}, {"out-2", base}, {"in-1", base.Add(1500 * time.Microsecond)}}
	for i, w := range want {
		data, ci, err := r.ReadPacketData()
		if err != nil || string(data) != w.data || !ci.Timestamp.Equal(w.ts) {
			t.Errorf("record %d: %q at %v (%v); want %q at %v", i, data, ci.Timestamp, err, w.data, w.ts)
		}
	}
	if _, _, err := r.ReadPacketData(); err != io.EOF {
		t.Errorf("extra record: %v", err)
	}
}

func TestPcapDeviceL3LinkType(t *testing.T) {
	a, b := Pipe(PipeConfig{L3: true})
	defer b.Close()
	var buf bytes.Buffer
	p, _ := NewPcap(a, &buf, nil)
	defer p.Close()
	r, err := pcapgo.NewReader(&buf)
	if err != nil || r.LinkType() != layers.LinkTypeRaw {
		t.Errorf("link type %v, err %v; want raw", r.LinkType(), err)
	}
}

type failWriter struct{ n int }

func (w *failWriter) Write(p []byte) (int, error) {
	if w.n == 0 {
		return 0, errors.New("disk full")
	}
	w.n--
	return len(p), nil
}

// A capture that fails stops, and says why; the device goes on.
func TestPcapDeviceCaptureError(t *testing.T) {
	a, b := Pipe(PipeConfig{})
	defer b.Close()
	p, err := NewPcap(a, &failWriter{n: 1}, nil) // the file header only
	if err != nil {
		t.Fatal(err)
	}
	if n, err := p.WriteBatch([][]byte{frameBuf([]byte{1}), frameBuf([]byte{2})}, Headroom); n != 2 || err != nil {
		t.Fatalf("WriteBatch = %d, %v; the capture must not fail the device", n, err)
	}
	if b.Queued() != 2 {
		t.Errorf("peer got %d frames, want 2", b.Queued())
	}
	if p.Err() == nil || p.Close() == nil {
		t.Errorf("Err() = %v; want the capture's error, also from Close", p.Err())
	}
}

func BenchmarkPcapWriteFrame(b *testing.B) {
	pw, _ := NewPcapWriter(io.Discard, LinkTypeEthernet, 0)
	frame := make([]byte, 1514)
	ts := time.Unix(1, 0)
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		pw.WriteFrame(ts, frame)
	}
}

func BenchmarkPcapDeviceRoundTrip(b *testing.B) {
	x, y := Pipe(PipeConfig{})
	defer y.Close()
	bw := bufio.NewWriterSize(io.Discard, 1<<16)
	p, _ := NewPcap(x, bw, fakeClock(time.Unix(0, 0)))
	defer p.Close()
	out := [][]byte{frameBuf(make([]byte, 1514))}
	bufs, sizes := newBufs(1, 1514)
	b.ReportAllocs()
	b.SetBytes(2 * 1514)
	for b.Loop() {
		p.WriteBatch(out, Headroom)
		y.ReadBatch(bufs, sizes, Headroom)
		y.WriteBatch(out, Headroom)
		p.ReadBatch(bufs, sizes, Headroom)
	}
}
