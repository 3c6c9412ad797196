package device

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
)

var (
	_ Device              = (*PipeEnd)(nil)
	_ GatherWriter        = (*PipeEnd)(nil)
	_ OffloadGatherWriter = (*PipeEnd)(nil)
)

func TestPipeRoundTrip(t *testing.T) {
	a, b := Pipe(PipeConfig{})
	defer a.Close()
	defer b.Close()
	if a.MTU() != 1500 || a.BatchSize() != DefaultBatchSize {
		t.Errorf("MTU, BatchSize = %d, %d", a.MTU(), a.BatchSize())
	}
	if a.LinkAddr().String() != "02:00:00:00:00:01" || b.LinkAddr().String() != "02:00:00:00:00:02" {
		t.Errorf("MACs %v %v", a.LinkAddr(), b.LinkAddr())
	}
	frames := [][]byte{frameBuf([]byte("first frame")), frameBuf([]byte("second")), frameBuf(bytes.Repeat([]byte{7}, 1514))}
	if n, err := a.WriteBatch(frames, Headroom); n != 3 || err != nil {
		t.Fatalf("WriteBatch = %d, %v", n, err)
	}
	// The writer may reuse its buffers at once.
	frames[0][Headroom] = 'X'
	if b.Queued() != 3 {
		t.Errorf("Queued = %d, want 3", b.Queued())
	}
	bufs, sizes := newBufs(4, 1514)
	n, err := b.ReadBatch(bufs, sizes, Headroom)
	if n != 3 || err != nil {
		t.Fatalf("ReadBatch = %d, %v", n, err)
	}
	want := []string{"first frame", "second", string(bytes.Repeat([]byte{7}, 1514))}
	for i := range n {
		if got := string(bufs[i][Headroom : Headroom+sizes[i]]); got != want[i] {
			t.Errorf("frame %d = %.20q, want %.20q", i, got, want[i])
		}
	}
	rx, tx := a.Drops()
	if rx != 0 || tx != 0 {
		t.Errorf("drops %d %d", rx, tx)
	}
}

// A frame written in parts arrives whole; one whose parts add up past the
// MTU is dropped and counted like any frame too long.
func TestPipeWriteBatchGather(t *testing.T) {
	a, b := Pipe(PipeConfig{MTU: 100, L3: true})
	defer a.Close()
	defer b.Close()
	heads := [][]byte{frameBuf([]byte("head|")), frameBuf([]byte("h2|")), frameBuf([]byte("only"))}
	tails := [][2][]byte{
		{[]byte("first part|"), []byte("second")},
		{bytes.Repeat([]byte{1}, 60), bytes.Repeat([]byte{2}, 40)}, // 103 bytes: too long
		{},
	}
	if _, err := a.WriteBatchGather(heads, tails[:2], Headroom); err == nil {
		t.Error("WriteBatchGather took 3 heads with 2 tails")
	}
	if n, err := a.WriteBatchGather(heads, tails, Headroom); n != 3 || err != nil {
		t.Fatalf("WriteBatchGather = %d, %v", n, err)
	}
	bufs, sizes := newBufs(4, 100)
	n, err := b.ReadBatch(bufs, sizes, Headroom)
	if n != 2 || err != nil {
		t.Fatalf("ReadBatch = %d, %v, want 2 frames", n, err)
	}
	for i, want := range []string{"head|first part|second", "only"} {
		if got := string(bufs[i][Headroom : Headroom+sizes[i]]); got != want {
			t.Errorf("frame %d = %q, want %q", i, got, want)
		}
	}
	if _, tx := a.Drops(); tx != 1 {
		t.Errorf("%d frames dropped on write, want 1", tx)
	}
}

func TestPipeDropsWhenFull(t *testing.T) {
	a, b := Pipe(PipeConfig{QueueLen: 4, MTU: 100})
	defer a.Close()
	defer b.Close()
	var frames [][]byte
	for i := range 6 {
		frames = append(frames, frameBuf([]byte{byte(i)}))
	}
	frames = append(frames, frameBuf(make([]byte, 115))) // > MTU+14
	frames = append(frames, frameBuf(nil))               // empty
	if n, err := a.WriteBatch(frames, Headroom); n != len(frames) || err != nil {
		t.Fatalf("WriteBatch = %d, %v", n, err)
	}
	if _, tx := a.Drops(); tx != 4 {
		t.Errorf("tx drops = %d, want 4 (2 over the queue, 1 too long, 1 empty)", tx)
	}
	bufs, sizes := newBufs(8, 114)
	n, err := b.ReadBatch(bufs, sizes, Headroom)
	if n != 4 || err != nil {
		t.Fatalf("ReadBatch = %d, %v", n, err)
	}
	for i := range n {
		if sizes[i] != 1 || bufs[i][Headroom] != byte(i) {
			t.Errorf("frame %d = %v", i, bufs[i][Headroom:Headroom+sizes[i]])
		}
	}
	// Space again: FIFO order holds across the ring's wrap.
	a.WriteBatch([][]byte{frameBuf([]byte{9}), frameBuf([]byte{10})}, Headroom)
	n, _ = b.ReadBatch(bufs, sizes, Headroom)
	if n != 2 || bufs[0][Headroom] != 9 || bufs[1][Headroom] != 10 {
		t.Errorf("after wrap: n=%d %v %v", n, bufs[0][Headroom], bufs[1][Headroom])
	}
}

func TestPipeReadBufferTooShort(t *testing.T) {
	a, b := Pipe(PipeConfig{})
	defer a.Close()
	defer b.Close()
	a.WriteBatch([][]byte{frameBuf(make([]byte, 100)), frameBuf(make([]byte, 10))}, Headroom)
	bufs, sizes := newBufs(2, 50)
	n, err := b.ReadBatch(bufs, sizes, Headroom)
	if n != 1 || err != nil || sizes[0] != 10 {
		t.Fatalf("ReadBatch = %d, %v, sizes %v; want the short frame only", n, err, sizes)
	}
	if rx, _ := b.Drops(); rx != 1 {
		t.Errorf("rx drops = %d, want 1", rx)
	}
}

func TestPipeBatchLimits(t *testing.T) {
	a, b := Pipe(PipeConfig{BatchSize: 2})
	defer a.Close()
	defer b.Close()
	a.WriteBatch([][]byte{frameBuf([]byte{1}), frameBuf([]byte{2}), frameBuf([]byte{3})}, Headroom)
	bufs, sizes := newBufs(8, 10)
	if n, _ := b.ReadBatch(bufs, sizes, Headroom); n != 2 {
		t.Errorf("first ReadBatch = %d, want BatchSize 2", n)
	}
	if n, _ := b.ReadBatch(bufs, sizes[:1], Headroom); n != 1 || bufs[0][Headroom] != 3 {
		t.Errorf("second ReadBatch = %d (len(sizes) 1)", n)
	}
	if n, err := b.ReadBatch(nil, nil, Headroom); n != 0 || err != nil {
		t.Errorf("empty ReadBatch = %d, %v", n, err)
	}
}

func TestPipeL3(t *testing.T) {
	a, b := Pipe(PipeConfig{L3: true, MTU: 20})
	defer a.Close()
	defer b.Close()
	if a.LinkAddr() != nil || MaxFrameSize(a) != 20 {
		t.Errorf("LinkAddr %v, MaxFrameSize %d", a.LinkAddr(), MaxFrameSize(a))
	}
	a.WriteBatch([][]byte{frameBuf(make([]byte, 21))}, Headroom)
	if _, tx := a.Drops(); tx != 1 {
		t.Errorf("frame over MTU not dropped on an L3 pipe")
	}
}

func TestPipeBadArguments(t *testing.T) {
	a, b := Pipe(PipeConfig{})
	defer a.Close()
	defer b.Close()
	bufs, sizes := newBufs(1, 10)
	if _, err := b.ReadBatch(bufs, sizes, 0); !errors.Is(err, ErrInvalid) {
		t.Errorf("offset 0: err = %v, want ErrInvalid", err)
	}
	if _, err := b.ReadBatch([][]byte{make([]byte, Headroom)}, sizes, Headroom); !errors.Is(err, ErrInvalid) {
		t.Errorf("no room after offset: err = %v, want ErrInvalid", err)
	}
	if _, err := a.WriteBatch([][]byte{make([]byte, 3)}, Headroom); !errors.Is(err, ErrInvalid) {
		t.Errorf("buffer shorter than offset: err = %v, want ErrInvalid", err)
	}
}

func TestPipeCloseUnblocksRead(t *testing.T) {
	a, b := Pipe(PipeConfig{})
	defer a.Close()
	errc := make(chan error, 1)
	go func() {
		bufs, sizes := newBufs(1, 1514)
		_, err := b.ReadBatch(bufs, sizes, Headroom)
		errc <- err
	}()
	waitBlocked(t, "(*PipeEnd).ReadBatch")
	b.Close()
	if err := <-errc; !errors.Is(err, net.ErrClosed) {
		t.Errorf("ReadBatch after Close: %v, want net.ErrClosed", err)
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := b.WriteBatch([][]byte{frameBuf([]byte{1})}, Headroom); !errors.Is(err, net.ErrClosed) {
		t.Errorf("WriteBatch after Close: %v", err)
	}
	// The peer's frames now vanish, counted.
	if n, err := a.WriteBatch([][]byte{frameBuf([]byte{1})}, Headroom); n != 1 || err != nil {
		t.Errorf("WriteBatch to a closed peer = %d, %v", n, err)
	}
	if _, tx := a.Drops(); tx != 1 {
		t.Errorf("tx drops = %d, want 1", tx)
	}
}

// Concurrent writers and a reader under -race: every frame arrives once, in
// order per writer, when the queue is large enough to drop nothing.
func TestPipeConcurrent(t *testing.T) {
	const writers, perWriter = 2, 500
	a, b := Pipe(PipeConfig{QueueLen: writers * perWriter})
	defer a.Close()
	defer b.Close()
	var wg sync.WaitGroup
	var mu sync.Mutex // WriteBatch: one goroutine at a time
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				mu.Lock()
				a.WriteBatch([][]byte{frameBuf(fmt.Appendf(nil, "%d:%d", w, i))}, Headroom)
				mu.Unlock()
			}
		}()
	}
	next := make([]int, writers)
	bufs, sizes := newBufs(16, 64)
	for got := 0; got < writers*perWriter; {
		n, err := b.ReadBatch(bufs, sizes, Headroom)
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			var w, k int
			fmt.Sscanf(string(bufs[i][Headroom:Headroom+sizes[i]]), "%d:%d", &w, &k)
			if k != next[w] {
				t.Fatalf("writer %d: got frame %d, want %d", w, k, next[w])
			}
			next[w]++
		}
		got += n
	}
	wg.Wait()
}

func BenchmarkPipeRoundTrip(b *testing.B) {
	x, y := Pipe(PipeConfig{})
	defer x.Close()
	defer y.Close()
	out := [][]byte{frameBuf(make([]byte, 1514))}
	bufs, sizes := newBufs(1, 1514)
	b.ReportAllocs()
	b.SetBytes(2 * 1514)
	for b.Loop() {
		x.WriteBatch(out, Headroom)
		y.ReadBatch(bufs, sizes, Headroom)
		y.WriteBatch(out, Headroom)
		x.ReadBatch(bufs, sizes, Headroom)
	}
}
