package device

import (
	"bytes"
	"errors"
	"net"
	"testing"
)

var (
	_ Device      = (*Counters)(nil)
	_ DropCounter = (*Counters)(nil)
)

func TestCounters(t *testing.T) {
	a, b := Pipe(PipeConfig{QueueLen: 2})
	ca, cb := NewCounters(a), NewCounters(b)
	ca.WriteBatch([][]byte{frameBuf(make([]byte, 60)), frameBuf(make([]byte, 100)), frameBuf(make([]byte, 70))}, Headroom)
	bufs, sizes := newBufs(4, 1514)
	if n, err := cb.ReadBatch(bufs, sizes, Headroom); n != 2 || err != nil {
		t.Fatalf("ReadBatch = %d, %v", n, err)
	}
	if _, err := cb.ReadBatch(bufs, sizes, 0); err == nil {
		t.Fatal("offset 0 accepted")
	}
	got, want := ca.Stats(), Stats{TxFrames: 3, TxBytes: 230, TxBatches: 1, TxDropped: 1}
	if got != want {
		t.Errorf("writer stats %+v\nwant %+v", got, want)
	}
	got, want = cb.Stats(), Stats{RxFrames: 2, RxBytes: 160, RxBatches: 1, RxErrors: 1}
	if got != want {
		t.Errorf("reader stats %+v\nwant %+v", got, want)
	}
	ca.Close()
	cb.Close()
	if _, err := cb.ReadBatch(bufs, sizes, Headroom); !errors.Is(err, net.ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
	if s := cb.Stats(); s.RxErrors != 1 {
		t.Errorf("a read after Close counted as an error: %+v", s)
	}
	if ca.MTU() != 1500 || ca.BatchSize() != DefaultBatchSize || ca.LinkAddr().String() != "02:00:00:00:00:01" || ca.Unwrap() != a {
		t.Errorf("Counters does not pass the device's properties through")
	}
}

func TestCountersOverPcapNoAllocs(t *testing.T) {
	a, b := Pipe(PipeConfig{})
	defer a.Close()
	defer b.Close()
	p, _ := NewPcap(a, discard{}, nil)
	c := NewCounters(p)
	out := [][]byte{frameBuf(make([]byte, 1514))}
	bufs, sizes := newBufs(1, 1514)
	n := testing.AllocsPerRun(100, func() {
		c.WriteBatch(out, Headroom)
		b.ReadBatch(bufs, sizes, Headroom)
	})
	if n != 0 {
		t.Errorf("%v allocations per frame", n)
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// Counters writes frames in parts through a device that takes them, and
// one by one made whole through one that does not (a capture): either way
// the peer reads the frames whole, the capture records them whole, and the
// bytes counted include the tails; a warm path allocates nothing.
func TestCountersGather(t *testing.T) {
	for _, capture := range []bool{false, true} {
		a, b := Pipe(PipeConfig{Offloads: OffloadAll})
		var pcap bytes.Buffer
		var inner Device = a
		if capture {
			p, _ := NewPcap(a, &pcap, nil)
			inner = p
		}
		c := NewCounters(inner)
		heads := [][]byte{frameBuf([]byte("head one|")), frameBuf([]byte("two"))}
		tails := [][2][]byte{{[]byte("tail a|"), []byte("tail b")}, {}}
		meta := []VnetHdr{{}, {}}
		if n, err := c.WriteBatchGather(heads, tails, Headroom); n != 2 || err != nil {
			t.Fatalf("capture %v: WriteBatchGather = %d, %v", capture, n, err)
		}
		if n, err := c.WriteBatchGatherOffload(heads, tails, meta, Headroom); n != 2 || err != nil {
			t.Fatalf("capture %v: WriteBatchGatherOffload = %d, %v", capture, n, err)
		}
		bufs, sizes := newBufs(4, 100)
		n, err := b.ReadBatch(bufs, sizes, Headroom)
		if n != 4 || err != nil {
			t.Fatalf("capture %v: ReadBatch = %d, %v", capture, n, err)
		}
		for i, want := range []string{"head one|tail a|tail b", "two", "head one|tail a|tail b", "two"} {
			if got := string(bufs[i][Headroom : Headroom+sizes[i]]); got != want {
				t.Errorf("capture %v: frame %d = %q, want %q", capture, i, got, want)
			}
		}
		if s := c.Stats(); s.TxFrames != 4 || s.TxBytes != 2*(22+3) {
			t.Errorf("capture %v: counted %d frames, %d bytes; want 4 and %d", capture, s.TxFrames, s.TxBytes, 2*(22+3))
		}
		if capture && !bytes.Contains(pcap.Bytes(), []byte("head one|tail a|tail b")) {
			t.Errorf("the capture lacks the whole frame")
		}
		allocs := testing.AllocsPerRun(50, func() {
			c.WriteBatchGatherOffload(heads, tails, meta, Headroom)
			b.ReadBatch(bufs, sizes, Headroom)
		})
		if allocs != 0 {
			t.Errorf("capture %v: %v allocations per gathered write", capture, allocs)
		}
		a.Close()
		b.Close()
	}
}
