package device

import (
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
