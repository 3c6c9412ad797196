package netstack

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/tapstack/tapstack/device"
	"go.uber.org/goleak"
)

// Real-time tests of the TCP adapters: two stacks on the real clock over a
// device.Pipe, used through net.Conn and net.Listener by code that knows
// nothing of us (net/http). Waits are bounded by contexts and deadlines.

func tcpPipeStacks(t testing.TB) (a, b *Stack) {
	t.Helper()
	da, db := device.Pipe(device.PipeConfig{QueueLen: 1024})
	a, b = New(Config{}), New(Config{})
	t.Cleanup(func() { a.Close(); b.Close() })
	if _, err := a.AttachDevice(da, NICConfig{Name: "a0", Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.AttachDevice(db, NICConfig{Name: "b0", Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.2/24")}}); err != nil {
		t.Fatal(err)
	}
	return a, b
}

func tcpCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestTCPNetHTTP(t *testing.T) {
	base := goleak.IgnoreCurrent()
	a, b := tcpPipeStacks(t)
	ln, err := b.Listen("tcp", "10.0.0.2:80")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello, %s", r.RemoteAddr)
	})
	mux.HandleFunc("/sum", func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		fmt.Fprintf(w, "%d %x", n, h.Sum(nil))
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		w.Write(bytes.Repeat([]byte("0123456789abcdef"), 1<<16)) // 1 MiB
	})
	srv := &http.Server{Handler: mux}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	tr := &http.Transport{DialContext: a.DialContext}
	client := &http.Client{Transport: tr, Timeout: 20 * time.Second}
	for i := range 5 {
		resp, err := client.Get("http://10.0.0.2/hello")
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || !bytes.HasPrefix(body, []byte("hello, 10.0.0.1:")) {
			t.Fatalf("GET %d: %q, %v", i, body, err)
		}
	}
	payload := bytes.Repeat([]byte("tapstack"), 256<<10) // 2 MiB
	resp, err := client.Post("http://10.0.0.2/sum", "application/octet-stream", bytes.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := fmt.Sprintf("%d %x", len(payload), sha256.Sum256(payload)); string(body) != want {
		t.Fatalf("POST: %q, want %q", body, want)
	}
	resp, err = client.Get("http://10.0.0.2/big")
	if err != nil {
		t.Fatal(err)
	}
	body, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || len(body) != 1<<20 {
		t.Fatalf("GET /big: %d bytes, %v", len(body), err)
	}

	tr.CloseIdleConnections()
	ctx := tcpCtx(t)
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("Serve: %v", err)
	}
	a.Close()
	b.Close()
	goleak.VerifyNone(t, base)
}

func TestTCPAdapterErrors(t *testing.T) {
	a, b := tcpPipeStacks(t)
	ctx := tcpCtx(t)

	// Nobody listens: ECONNREFUSED.
	_, err := a.DialTCP(ctx, netip.AddrPort{}, netip.MustParseAddrPort("10.0.0.2:9"))
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial to a closed port: %v", err)
	}
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "dial" {
		t.Fatalf("dial error %T %v is not a *net.OpError", err, err)
	}

	ln, err := b.ListenTCP(netip.MustParseAddrPort("10.0.0.2:7"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.ListenTCP(netip.MustParseAddrPort("10.0.0.2:7")); !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("second listen: %v", err)
	}
	accepted := make(chan *TCPConn, 1)
	go func() {
		c, err := ln.AcceptTCP()
		if err != nil {
			t.Error(err)
		}
		accepted <- c
	}()
	c, err := a.DialTCP(ctx, netip.AddrPort{}, netip.MustParseAddrPort("10.0.0.2:7"))
	if err != nil {
		t.Fatal(err)
	}
	sv := <-accepted

	// A read deadline: os.ErrDeadlineExceeded, and the connection lives on.
	c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past deadline: %v", err)
	}
	c.SetReadDeadline(time.Time{})

	// Half-close: the server reads EOF, then still writes back.
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(sv)
	if err != nil || string(got) != "ping" {
		t.Fatalf("server read %q, %v", got, err)
	}
	if _, err := sv.Write([]byte("pong")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "pong" {
		t.Fatalf("client read %q, %v", buf, err)
	}

	// SetLinger(0): Close resets, and the peer reads ECONNRESET.
	if err := sv.SetLinger(0); err != nil {
		t.Fatal(err)
	}
	sv.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(buf); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read after peer's RST: %v", err)
	}
	if _, err := c.Read(buf); err == nil {
		t.Fatal("read on a reset connection succeeded")
	}
	c.Close()
	if _, err := c.Read(buf); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read after Close: %v", err)
	}
	if err := c.Close(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}

	// Close unblocks a blocked Accept with net.ErrClosed.
	done := make(chan error, 1)
	go func() { _, err := ln.Accept(); done <- err }()
	waitUntil(t, b, "Accept to block", func() bool { return ln.waiters.waitingLocked() })
	ln.Close()
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after Close: %v", err)
	}
}

// A read blocked on a connection returns net.ErrClosed when it is closed.
func TestTCPCloseUnblocksRead(t *testing.T) {
	a, b := tcpPipeStacks(t)
	ctx := tcpCtx(t)
	ln, err := b.ListenTCP(netip.MustParseAddrPort("10.0.0.2:8"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := a.DialTCP(ctx, netip.AddrPort{}, netip.MustParseAddrPort("10.0.0.2:8"))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := c.Read(make([]byte, 10)); done <- err }()
	waitUntil(t, a, "Read to block", func() bool { return c.waits != nil && c.waits.readers.waitingLocked() })
	c.Close()
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Read after Close: %v", err)
	}
}
