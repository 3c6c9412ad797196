package main

// The kernel cases (case 7 of the performance issue): a stack in this
// process on one end of a TAP device or a veth pair (the raw backend), the
// Linux kernel on the other, in network namespaces of its own. The
// kernel's curl downloads from an HTTP server on the stack, a kernel socket
// uploads to a discard server on the stack, and a kernel socket sends to an
// echo server on the stack while reading the echo back. The servers and the
// kernel-side clients are the same code for every stack; kernel_linux.go
// builds the links and the stacks.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Service ports on the stack.
const (
	httpPort    = 80
	discardPort = 9
	echoPort    = 7
)

// transferLimit bounds one kernel-case transfer of n bytes: far below
// what any stack here does (5 MB/s), so reaching it means a stall.
func transferLimit(n int64) time.Duration {
	return 30*time.Second + time.Duration(float64(n)/5e6*float64(time.Second))
}

// writePat writes n bytes of the pattern from offset 0, appWrite at a time.
func writePat(w io.Writer, n int64) error {
	for sent := int64(0); sent < n; {
		o := sent % patPeriod
		k := min(int64(appWrite), n-sent, patPeriod-o)
		if _, err := w.Write(pattern[o : o+k]); err != nil {
			return fmt.Errorf("write at %d of %d: %w", sent, n, err)
		}
		sent += k
	}
	return nil
}

// readPat reads up to n bytes (to EOF when n < 0), checking each against
// the pattern from offset 0, and returns how many arrived.
func readPat(r io.Reader, n int64) (int64, error) {
	buf := make([]byte, patRead)
	var got int64
	for n < 0 || got < n {
		want := int64(len(buf))
		if n >= 0 {
			want = min(want, n-got)
		}
		k, err := r.Read(buf[:want])
		if k > 0 {
			o := got % patPeriod
			if !bytes.Equal(buf[:k], pattern[o:o+int64(k)]) {
				return got, fmt.Errorf("data mismatch in bytes %d..%d", got, got+int64(k))
			}
			got += int64(k)
		}
		if err == io.EOF && n < 0 {
			return got, nil
		}
		if err != nil {
			return got, fmt.Errorf("read after %d bytes: %w", got, err)
		}
	}
	return got, nil
}

// patternHandler answers any GET with n pattern bytes.
func patternHandler(n int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		if r.Method == http.MethodHead {
			return
		}
		_ = writePat(w, n)
	})
}

// serveWorkload starts the stack's side of workload w on ln and returns a
// channel that delivers the server's outcome: for upload, the bytes read
// (checked) before EOF; for echo, the bytes echoed; download serves until
// stop is called, and delivers nothing.
func serveWorkload(ln net.Listener, w string, n int64) (done <-chan serverResult, stop func()) {
	ch := make(chan serverResult, 1)
	switch w {
	case "download":
		srv := &http.Server{Handler: patternHandler(n), ReadHeaderTimeout: time.Minute}
		go func() { _ = srv.Serve(ln) }()
		return ch, func() { srv.Close() }
	case "upload", "echo":
		go func() {
			c, err := ln.Accept()
			if err != nil {
				ch <- serverResult{err: fmt.Errorf("accept: %w", err)}
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(transferLimit(2 * n)))
			var got int64
			if w == "upload" {
				got, err = readPat(c, -1)
			} else {
				// Plain reads and writes: no splice(2) for kernel sockets,
				// so every stack's server does the same work.
				got, err = io.CopyBuffer(struct{ io.Writer }{c}, struct{ io.Reader }{c}, make([]byte, patRead))
			}
			ch <- serverResult{n: got, at: time.Now(), err: err}
		}()
		return ch, func() { ln.Close() }
	}
	ch <- serverResult{err: fmt.Errorf("unknown kernel workload %q", w)}
	return ch, func() {}
}

type serverResult struct {
	n   int64
	at  time.Time // when the last byte was read or echoed
	err error
}

// closeWriter is a connection that can shut its sending side.
type closeWriter interface {
	CloseWrite() error
}

// upload sends n pattern bytes on c and shuts its sending side; the time is
// the server's: from the first write to its reading the last byte.
func upload(c net.Conn, n int64, srv <-chan serverResult) (time.Duration, error) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(transferLimit(n)))
	start := time.Now()
	if err := writePat(c, n); err != nil {
		return 0, err
	}
	if cw, ok := c.(closeWriter); ok {
		if err := cw.CloseWrite(); err != nil {
			return 0, err
		}
	} else {
		c.Close()
	}
	select {
	case r := <-srv:
		switch {
		case r.err != nil:
			return 0, fmt.Errorf("server: %w", r.err)
		case r.n != n:
			return 0, fmt.Errorf("server read %d bytes, sent %d", r.n, n)
		}
		return r.at.Sub(start), nil
	case <-time.After(transferLimit(n)):
		return 0, errors.New("the server did not finish reading")
	}
}

// echo sends n pattern bytes on c while reading them back; the time is
// until the last byte came back.
func echo(c net.Conn, n int64, srv <-chan serverResult) (time.Duration, error) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(transferLimit(2 * n)))
	start := time.Now()
	werr := make(chan error, 1)
	go func() {
		err := writePat(c, n)
		if cw, ok := c.(closeWriter); ok && err == nil {
			err = cw.CloseWrite()
		}
		werr <- err
	}()
	got, err := readPat(c, n)
	elapsed := time.Since(start)
	if err != nil {
		c.Close() // unblocks the writer
		<-werr
		return 0, fmt.Errorf("after %d bytes back: %w", got, err)
	}
	if err := <-werr; err != nil {
		return 0, err
	}
	r := <-srv
	if r.err != nil || r.n != n {
		return 0, fmt.Errorf("server echoed %d bytes of %d: %v", r.n, n, r.err)
	}
	return elapsed, nil
}

// parseCurl reads curl's -w "%{http_code} %{size_download} %{time_total}".
func parseCurl(out string, n int64) (float64, error) {
	f := strings.Fields(out)
	if len(f) < 3 {
		return 0, fmt.Errorf("curl printed %q", out)
	}
	code, size, secs := f[len(f)-3], f[len(f)-2], f[len(f)-1]
	got, err1 := strconv.ParseInt(size, 10, 64)
	t, err2 := strconv.ParseFloat(secs, 64)
	switch {
	case code != "200":
		return 0, fmt.Errorf("curl: HTTP status %s: %s", code, out)
	case err1 != nil || err2 != nil || t <= 0:
		return 0, fmt.Errorf("curl printed %q", out)
	case got != n:
		return 0, fmt.Errorf("curl downloaded %d bytes of %d", got, n)
	}
	return t, nil
}
