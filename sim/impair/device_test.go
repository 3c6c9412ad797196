package impair

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"net"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tapstack/tapstack/device"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// wait bounds every blocking step of these tests; nothing is timed by it.
const wait = 10 * time.Second

// fakeDev is a device.Device over channels: the test feeds frames to be
// read into in, and receives copies of the frames written from out.
type fakeDev struct {
	in      chan []byte
	out     chan []byte
	done    chan struct{}
	once    sync.Once
	batch   int
	entered chan struct{} // one value per ReadBatch call, if there is room
	writes  chan struct{} // one value per WriteBatch call, if there is room

	mu       sync.Mutex
	written  int
	lentSeen int // frames written whose bytes were the caller's own
	lent     map[*byte]bool
}

func newFake(batch int) *fakeDev {
	return &fakeDev{in: make(chan []byte, 1<<16), out: make(chan []byte, 1<<16),
		done: make(chan struct{}), batch: batch, lent: map[*byte]bool{}, entered: make(chan struct{}, 1<<16), writes: make(chan struct{}, 1<<16)}
}

var errFakeClosed = fmt.Errorf("fake: %w", net.ErrClosed)

func (f *fakeDev) ReadBatch(bufs [][]byte, sizes []int, offset int) (int, error) {
	select {
	case f.entered <- struct{}{}:
	default:
	}
	var fr []byte
	select {
	case fr = <-f.in:
	case <-f.done:
		return 0, errFakeClosed
	}
	n := 0
	for {
		if len(fr) <= len(bufs[n])-offset {
			sizes[n] = copy(bufs[n][offset:], fr)
			n++
		}
		if n == len(bufs) {
			return n, nil
		}
		select {
		case fr = <-f.in:
		default:
			return n, nil
		}
	}
}

func (f *fakeDev) WriteBatch(bufs [][]byte, offset int) (int, error) {
	select {
	case f.writes <- struct{}{}:
	default:
	}
	select {
	case <-f.done:
		return 0, errFakeClosed
	default:
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, b := range bufs {
		fr := b[offset:]
		f.written++
		if len(fr) > 0 && f.lent[&fr[0]] {
			f.lentSeen++
		}
		f.out <- append([]byte(nil), fr...)
	}
	return len(bufs), nil
}

// lend records the caller's frame buffers, so WriteBatch can tell whether
// it was handed them or a copy.
func (f *fakeDev) lend(bufs [][]byte, offset int) {
	f.mu.Lock()
	for _, b := range bufs {
		f.lent[&b[offset]] = true
	}
	f.mu.Unlock()
}

func (f *fakeDev) BatchSize() int             { return f.batch }
func (f *fakeDev) MTU() int                   { return 1500 }
func (f *fakeDev) LinkAddr() net.HardwareAddr { return net.HardwareAddr{2, 0, 0, 0, 0, 1} }
func (f *fakeDev) Close() error {
	f.once.Do(func() { close(f.done) })
	return nil
}

var _ device.Device = (*Device)(nil)

// testFrame is seq in bytes 0-3 (inside the 14 bytes corruption skips),
// then a pattern derived from seq.
func testFrame(seq uint32, size int) []byte {
	b := make([]byte, size)
	binary.BigEndian.PutUint32(b, seq)
	for i := 4; i < size; i++ {
		b[i] = byte(seq*7 + uint32(i))
	}
	return b
}

// flips returns seq and how many bits differ from the frame sent as seq.
func flips(t *testing.T, b []byte, size int) (uint32, int) {
	t.Helper()
	if len(b) != size {
		t.Fatalf("frame of %d bytes, sent %d", len(b), size)
	}
	seq := binary.BigEndian.Uint32(b)
	want := testFrame(seq, size)
	n := 0
	for i := range b {
		n += bits.OnesCount8(b[i] ^ want[i])
	}
	return seq, n
}

// withHeadroom lays frames out as the stack lends them: at offset Headroom.
func withHeadroom(frames ...[]byte) [][]byte {
	bufs := make([][]byte, len(frames))
	for i, f := range frames {
		bufs[i] = append(make([]byte, device.Headroom), f...)
	}
	return bufs
}

func wrap(t *testing.T, f *fakeDev, tx, rx Config, seed uint64) *Device {
	t.Helper()
	w, err := WrapDevice(f, tx, rx, seed)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

func recv(t *testing.T, f *fakeDev) []byte {
	t.Helper()
	select {
	case b := <-f.out:
		return b
	case <-time.After(wait):
		t.Fatal("no frame written within", wait)
		return nil
	}
}

// read runs one ReadBatch with a bound on how long it may block.
func read(t *testing.T, w *Device, bufs [][]byte, sizes []int) int {
	t.Helper()
	type result struct {
		n   int
		err error
	}
	ch := make(chan result, 1)
	go func() {
		n, err := w.ReadBatch(bufs, sizes, device.Headroom)
		ch <- result{n, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatal(r.err)
		}
		return r.n
	case <-time.After(wait):
		w.Close()
		t.Fatal("ReadBatch blocked for", wait)
		return 0
	}
}

func readBufs(n, size int) ([][]byte, []int) {
	bufs := make([][]byte, n)
	for i := range bufs {
		bufs[i] = make([]byte, device.Headroom+size)
	}
	return bufs, make([]int, n)
}

func TestWrapPassThrough(t *testing.T) {
	f := newFake(8)
	w := wrap(t, f, Config{}, Config{}, 1)
	const size = 100
	for batch := range 10 {
		var frames [][]byte
		for i := range 8 {
			frames = append(frames, testFrame(uint32(batch*8+i), size))
		}
		bufs := withHeadroom(frames...)
		f.lend(bufs, device.Headroom)
		if n, err := w.WriteBatch(bufs, device.Headroom); n != 8 || err != nil {
			t.Fatalf("WriteBatch = %d, %v", n, err)
		}
	}
	for i := range 80 {
		seq, diff := flips(t, recv(t, f), size)
		if seq != uint32(i) || diff != 0 {
			t.Fatalf("frame %d: got seq %d with %d bits flipped", i, seq, diff)
		}
	}
	f.mu.Lock()
	if f.lentSeen != 80 {
		t.Errorf("%d of 80 frames reached the device in the caller's buffer", f.lentSeen)
	}
	f.mu.Unlock()

	for i := range 20 {
		f.in <- testFrame(uint32(i), size)
	}
	bufs, sizes := readBufs(8, 1500)
	for got := 0; got < 20; {
		n := read(t, w, bufs, sizes)
		for i := range n {
			seq, diff := flips(t, bufs[i][device.Headroom:device.Headroom+sizes[i]], size)
			if seq != uint32(got) || diff != 0 {
				t.Fatalf("read %d: seq %d, %d bits flipped", got, seq, diff)
			}
			got++
		}
	}
	if w.MTU() != 1500 || w.BatchSize() != 8 || w.LinkAddr().String() != "02:00:00:00:00:01" {
		t.Error("MTU, BatchSize or LinkAddr not the wrapped device's")
	}
}

func TestWrapLoss(t *testing.T) {
	f := newFake(16)
	cfg := Config{Loss: 30 * Percent}
	w := wrap(t, f, cfg, cfg, 5)
	const n, size = 4000, 64

	for i := 0; i < n; i += 16 {
		var frames [][]byte
		for j := range 16 {
			frames = append(frames, testFrame(uint32(i+j), size))
		}
		bufs := withHeadroom(frames...)
		f.lend(bufs, device.Headroom)
		if m, err := w.WriteBatch(bufs, device.Headroom); m != 16 || err != nil {
			t.Fatalf("WriteBatch = %d, %v", m, err)
		}
	}
	s := w.Stats()
	if s.Tx.Frames != n || s.Tx.Delivered+s.Tx.Dropped[DropLoss] != n || len(f.out) != int(s.Tx.Delivered) {
		t.Fatalf("tx stats %+v, %d frames written", s.Tx, len(f.out))
	}
	near(t, "tx lost", s.Tx.Dropped[DropLoss], n, cfg.Loss)
	prev := -1
	for range s.Tx.Delivered {
		seq, diff := flips(t, recv(t, f), size)
		if int(seq) <= prev || diff != 0 {
			t.Fatalf("written seq %d after %d, %d bits flipped", seq, prev, diff)
		}
		prev = int(seq)
	}
	f.mu.Lock()
	if f.lentSeen != f.written {
		t.Errorf("%d of %d written frames were copies", f.written-f.lentSeen, f.written)
	}
	f.mu.Unlock()

	// Reading: the frames after a lost one are moved down in the batch.
	for i := range n {
		f.in <- testFrame(uint32(i), size)
	}
	bufs, sizes := readBufs(16, 1500)
	prev, got := -1, 0
	for {
		s := w.Stats()
		if s.Rx.Frames == n && uint64(got) == s.Rx.Delivered {
			break
		}
		m := read(t, w, bufs, sizes)
		for i := range m {
			seq, diff := flips(t, bufs[i][device.Headroom:device.Headroom+sizes[i]], size)
			if int(seq) <= prev || diff != 0 {
				t.Fatalf("read seq %d after %d, %d bits flipped", seq, prev, diff)
			}
			prev = int(seq)
			got++
		}
	}
	near(t, "rx lost", w.Stats().Rx.Dropped[DropLoss], n, cfg.Loss)
}

func TestWrapDelayWrite(t *testing.T) {
	f := newFake(8)
	const delay = 30 * time.Millisecond
	w := wrap(t, f, Config{Delay: delay, Jitter: 10 * time.Millisecond}, Config{}, 2)
	const n, size = 200, 80
	start := time.Now()
	for i := range n {
		bufs := withHeadroom(testFrame(uint32(i), size))
		if m, err := w.WriteBatch(bufs, device.Headroom); m != 1 || err != nil {
			t.Fatalf("WriteBatch = %d, %v", m, err)
		}
		clear(bufs[0]) // lent for the call only: the copy must not change
	}
	for i := range n {
		b := recv(t, f)
		if i == 0 && time.Since(start) < delay-10*time.Millisecond {
			t.Errorf("first frame out after %v, before Delay-Jitter", time.Since(start))
		}
		if seq, diff := flips(t, b, size); seq != uint32(i) || diff != 0 {
			t.Fatalf("frame %d: seq %d, %d bits flipped", i, seq, diff)
		}
	}
	if s := w.Stats(); s.TxHeld != 0 || s.Tx.Delivered != n {
		t.Errorf("stats %+v", s)
	}
}

// All the impairments at once, both ways: every frame sent comes out the
// number of times the Link decided, intact or with exactly one flipped bit,
// and only held frames come out of order.
func TestWrapEverything(t *testing.T) {
	cfg := Config{Loss: 5 * Percent, Duplicate: 10 * Percent, Corrupt: 10 * Percent,
		Reorder: 10 * Percent, ReorderDelay: 5 * time.Millisecond,
		Delay: 2 * time.Millisecond, Jitter: time.Millisecond}
	const n, size = 2000, 120

	check := func(t *testing.T, got [][]byte, s Stats) {
		t.Helper()
		count := map[uint32]int{}
		var corrupted, late uint64
		maxSeq := -1
		for _, b := range got {
			seq, diff := flips(t, b, size)
			switch diff {
			case 0:
			case 1:
				corrupted++
			default:
				t.Fatalf("seq %d: %d bits flipped", seq, diff)
			}
			count[seq]++
			if int(seq) < maxSeq {
				late++
			}
			maxSeq = max(maxSeq, int(seq))
		}
		var twice uint64
		for seq, c := range count {
			if seq >= n || c > 2 {
				t.Fatalf("seq %d delivered %d times", seq, c)
			}
			if c == 2 {
				twice++
			}
		}
		if uint64(len(got)) != s.Delivered || twice != s.Duplicated || corrupted != s.Corrupted {
			t.Errorf("delivered %d (%d twice, %d corrupted), stats %+v", len(got), twice, corrupted, s)
		}
		if late == 0 || late > s.Reordered+s.Duplicated {
			t.Errorf("%d frames late; %d held, %d duplicated", late, s.Reordered, s.Duplicated)
		}
		near(t, "lost", s.Dropped[DropLoss], n, cfg.Loss)
	}

	t.Run("write", func(t *testing.T) {
		f := newFake(4)
		w := wrap(t, f, cfg, Config{}, 3)
		for i := 0; i < n; i += 4 {
			bufs := withHeadroom(testFrame(uint32(i), size), testFrame(uint32(i+1), size),
				testFrame(uint32(i+2), size), testFrame(uint32(i+3), size))
			if m, err := w.WriteBatch(bufs, device.Headroom); m != 4 || err != nil {
				t.Fatalf("WriteBatch = %d, %v", m, err)
			}
		}
		s := w.Stats().Tx
		var got [][]byte
		for range s.Delivered {
			got = append(got, recv(t, f))
		}
		check(t, got, s)
	})

	t.Run("read", func(t *testing.T) {
		f := newFake(4)
		w := wrap(t, f, Config{}, cfg, 3)
		for i := range n {
			f.in <- testFrame(uint32(i), size)
		}
		bufs, sizes := readBufs(4, 1500)
		var got [][]byte
		for {
			s := w.Stats()
			if s.Rx.Frames == n && uint64(len(got)) == s.Rx.Delivered {
				break
			}
			m := read(t, w, bufs, sizes)
			for i := range m {
				got = append(got, append([]byte(nil), bufs[i][device.Headroom:device.Headroom+sizes[i]]...))
			}
		}
		check(t, got, w.Stats().Rx)
	})
}

func TestWrapDelayRead(t *testing.T) {
	f := newFake(8)
	const delay = 30 * time.Millisecond
	w := wrap(t, f, Config{}, Config{Delay: delay}, 4)
	bufs, sizes := readBufs(8, 1500)
	for round := range 3 {
		start := time.Now()
		f.in <- testFrame(uint32(round), 60)
		n := read(t, w, bufs, sizes)
		if n != 1 {
			t.Fatalf("read %d frames", n)
		}
		if el := time.Since(start); el < delay {
			t.Errorf("frame read after %v, before its delay", el)
		}
		if seq, diff := flips(t, bufs[0][device.Headroom:device.Headroom+sizes[0]], 60); seq != uint32(round) || diff != 0 {
			t.Fatalf("seq %d, %d bits flipped", seq, diff)
		}
	}
}

func TestWrapTooLong(t *testing.T) {
	f := newFake(4)
	w := wrap(t, f, Config{}, Config{Delay: time.Millisecond}, 4)
	f.in <- testFrame(1, 200)
	f.in <- testFrame(2, 50)
	bufs, sizes := readBufs(4, 100)
	bufs[0] = make([]byte, device.Headroom+1600) // the helper reads into buffers this large
	got := 0
	for got == 0 {
		got = read(t, w, bufs[1:], sizes[1:])
	}
	if seq, _ := flips(t, bufs[1][device.Headroom:device.Headroom+sizes[1]], 50); got != 1 || seq != 2 {
		t.Fatalf("read %d frames, first seq %d", got, seq)
	}
	if s := w.Stats(); s.RxTooLong > 1 {
		t.Errorf("RxTooLong %d", s.RxTooLong)
	}
}

// Close releases everything: a ReadBatch waiting for a held frame, one
// blocked in the device, the sender with frames held for an hour.
func TestWrapClose(t *testing.T) {
	defer goleak.VerifyNone(t)
	hour := Config{Delay: time.Hour}

	for _, tc := range []struct {
		name string
		rx   Config
		feed bool
	}{
		{"blocked in device", Config{}, false},
		{"waiting for a held frame", hour, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(4)
			w, err := WrapDevice(f, hour, tc.rx, 1)
			if err != nil {
				t.Fatal(err)
			}
			if n, err := w.WriteBatch(withHeadroom(testFrame(1, 60), testFrame(2, 60)), device.Headroom); n != 2 || err != nil {
				t.Fatalf("WriteBatch = %d, %v", n, err)
			}
			if tc.feed {
				f.in <- testFrame(3, 60)
			}
			errc := make(chan error, 1)
			go func() {
				bufs, sizes := readBufs(4, 1500)
				_, err := w.ReadBatch(bufs, sizes, device.Headroom)
				errc <- err
			}()
			// Let ReadBatch get to where it blocks: in the device, or (fed)
			// after a first read returned the frame it now holds, waiting
			// with the helper reader blocked in the device.
			entries := 1
			if tc.feed {
				entries = 2
			}
			for range entries {
				select {
				case <-f.entered:
				case <-time.After(wait):
					t.Fatal("ReadBatch never reached the device")
				}
			}
			if tc.feed && w.Stats().RxHeld != 1 {
				t.Fatal("frame not held")
			}
			if s := w.Stats(); s.TxHeld != 2 {
				t.Errorf("TxHeld %d, want 2", s.TxHeld)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-errc:
				if !errors.Is(err, net.ErrClosed) {
					t.Errorf("ReadBatch after Close: %v", err)
				}
			case <-time.After(wait):
				t.Fatal("ReadBatch still blocked after Close")
			}
			if _, err := w.WriteBatch(withHeadroom(testFrame(4, 60)), device.Headroom); !errors.Is(err, net.ErrClosed) {
				t.Errorf("WriteBatch after Close: %v", err)
			}
			if err := w.Close(); !errors.Is(err, net.ErrClosed) {
				t.Errorf("second Close: %v", err)
			}
			select {
			case <-f.done:
			default:
				t.Error("wrapped device not closed")
			}
			if len(f.out) != 0 {
				t.Errorf("%d held frames written after Close", len(f.out))
			}
		})
	}
}

// Held copies are bounded per direction; beyond MaxHeld they are dropped
// and counted, and nothing blocks.
func TestWrapLimits(t *testing.T) {
	const extra = 10
	hour := Config{Delay: time.Hour}
	f := newFake(4)
	w := wrap(t, f, hour, hour, 1)
	for i := range MaxHeld + extra {
		if n, err := w.WriteBatch(withHeadroom(testFrame(uint32(i), 60)), device.Headroom); n != 1 || err != nil {
			t.Fatalf("WriteBatch = %d, %v", n, err)
		}
	}
	if s := w.Stats(); s.TxHeld != MaxHeld || s.TxOverflow != extra {
		t.Errorf("TxHeld %d, TxOverflow %d", s.TxHeld, s.TxOverflow)
	}

	for i := range MaxHeld + extra {
		f.in <- testFrame(uint32(i), 60)
	}
	go func() {
		bufs, sizes := readBufs(4, 1500)
		w.ReadBatch(bufs, sizes, device.Headroom) // returns at Close
	}()
	for { // each call into the device follows the previous batch's decisions
		select {
		case <-f.entered:
		case <-time.After(wait):
			t.Fatalf("stats %+v", w.Stats())
		}
		if s := w.Stats(); s.RxHeld+int(s.RxOverflow) == MaxHeld+extra {
			if s.RxHeld != MaxHeld || s.RxOverflow != extra {
				t.Errorf("RxHeld %d, RxOverflow %d", s.RxHeld, s.RxOverflow)
			}
			break
		}
	}
}

// Errors of the wrapped device reach the caller for its own frames, and are
// counted for held ones.
func TestWrapWriteErrors(t *testing.T) {
	f := newFake(4)
	w := wrap(t, f, Config{Delay: time.Millisecond}, Config{}, 1)
	f.Close() // the device fails under the wrapper
	if n, err := w.WriteBatch(withHeadroom(testFrame(1, 60), testFrame(2, 60)), device.Headroom); n != 2 || err != nil {
		t.Fatalf("WriteBatch = %d, %v", n, err) // both held: the device is not called
	}
	select {
	case <-f.writes: // the sender's flush; Stats waits for it to finish
	case <-time.After(wait):
		t.Fatal("held frames never flushed")
	}
	if s := w.Stats(); s.TxWriteErrors != 2 || s.TxHeld != 0 {
		t.Errorf("TxWriteErrors %d, TxHeld %d", s.TxWriteErrors, s.TxHeld)
	}

	g := newFake(4)
	w = wrap(t, g, Config{}, Config{}, 1)
	g.Close()
	if n, err := w.WriteBatch(withHeadroom(testFrame(1, 60)), device.Headroom); n != 0 || !errors.Is(err, net.ErrClosed) {
		t.Errorf("pass-through onto a failed device: %d, %v", n, err)
	}
}

func TestWrapInvalid(t *testing.T) {
	f := newFake(1)
	w := wrap(t, f, Config{}, Config{}, 1)
	if _, err := w.WriteBatch([][]byte{make([]byte, 10)}, 11); !errors.Is(err, device.ErrInvalid) {
		t.Errorf("WriteBatch with offset past the buffer: %v", err)
	}
	if _, err := w.ReadBatch([][]byte{make([]byte, 10)}, []int{0}, -1); !errors.Is(err, device.ErrInvalid) {
		t.Errorf("ReadBatch with a negative offset: %v", err)
	}
	if _, err := w.ReadBatch([][]byte{make([]byte, 10)}, nil, 0); !errors.Is(err, device.ErrInvalid) {
		t.Errorf("ReadBatch without sizes: %v", err)
	}
	if _, err := WrapDevice(f, Config{Jitter: 1}, Config{}, 1); err == nil {
		t.Error("invalid tx config accepted")
	}
	var ce *ConfigError
	if _, err := WrapDevice(f, Config{}, Config{Loss: 2 * Always}, 1); !errors.As(err, &ce) || ce.Field != "Loss" {
		t.Errorf("invalid rx config: %v", err)
	}
}

// benchDev is a device that writes nowhere and always has a frame to read.
type benchDev struct{ frame []byte }

func (d *benchDev) ReadBatch(bufs [][]byte, sizes []int, offset int) (int, error) {
	for i := range bufs {
		sizes[i] = copy(bufs[i][offset:], d.frame)
	}
	return len(bufs), nil
}
func (d *benchDev) WriteBatch(bufs [][]byte, offset int) (int, error) { return len(bufs), nil }
func (d *benchDev) BatchSize() int                                    { return 32 }
func (d *benchDev) MTU() int                                          { return 1500 }
func (d *benchDev) LinkAddr() net.HardwareAddr                        { return nil }
func (d *benchDev) Close() error                                      { return nil }

func BenchmarkWrapPassThrough(b *testing.B) {
	const batch, size = 32, 1500
	for _, bc := range []struct {
		name string
		cfg  Config
	}{{"none", Config{}}, {"loss1%", Config{Loss: Percent}}} {
		w, err := WrapDevice(&benchDev{frame: testFrame(1, size)}, bc.cfg, bc.cfg, 1)
		if err != nil {
			b.Fatal(err)
		}
		bufs, sizes := readBufs(batch, size)
		b.Run("write/"+bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(batch * size)
			for b.Loop() {
				if _, err := w.WriteBatch(bufs, device.Headroom); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("read/"+bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(batch * size)
			for b.Loop() {
				if _, err := w.ReadBatch(bufs, sizes, device.Headroom); err != nil {
					b.Fatal(err)
				}
			}
		})
		w.Close()
	}
}

// The held path: copies into pooled buffers, sent by the sender goroutine or
// the next WriteBatch. After warm-up it allocates nothing either.
func BenchmarkWrapHeld(b *testing.B) {
	const batch, size = 32, 1500
	cfg := Config{Delay: 10 * time.Microsecond, Reorder: 5 * Percent, ReorderDelay: 20 * time.Microsecond,
		Duplicate: Percent, Corrupt: Percent}
	w, err := WrapDevice(&benchDev{frame: testFrame(1, size)}, cfg, cfg, 1)
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	bufs, sizes := readBufs(batch, size)
	b.Run("write", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(batch * size)
		for b.Loop() {
			if _, err := w.WriteBatch(bufs, device.Headroom); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("read", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(batch * size)
		for b.Loop() {
			if _, err := w.ReadBatch(bufs, sizes, device.Headroom); err != nil {
				b.Fatal(err)
			}
		}
	})
}
