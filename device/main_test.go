package device

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// Every test leaves no goroutine behind: readers end when devices close.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// newBufs returns n receive buffers with Headroom in front of size bytes.
func newBufs(n, size int) ([][]byte, []int) {
	bufs := make([][]byte, n)
	for i := range bufs {
		bufs[i] = make([]byte, Headroom+size)
	}
	return bufs, make([]int, n)
}

// frameBuf returns frame behind Headroom bytes, ready for WriteBatch.
func frameBuf(frame []byte) []byte {
	return append(make([]byte, Headroom, Headroom+len(frame)), frame...)
}

// waitBlocked waits until some goroutine's stack shows it parked inside fn
// (a function name such as "(*PipeEnd).ReadBatch"), so that a test closing a
// device knows it interrupts a read in progress rather than racing one.
func waitBlocked(t *testing.T, fn string) {
	t.Helper()
	buf := make([]byte, 1<<20)
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := runtime.Stack(buf, true)
		for _, g := range strings.Split(string(buf[:n]), "\n\n") {
			parked := strings.Contains(g, "[select") || strings.Contains(g, "[IO wait") || strings.Contains(g, "[chan receive")
			if parked && strings.Contains(g, fn) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no goroutine blocked in %s after 5s", fn)
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
}
