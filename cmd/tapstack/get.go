package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func cmdGet(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("get", flag.ContinueOnError)
	var f ifaceFlags
	f.register(fs, false)
	outPath := fs.String("o", "", "write the body to this file (- for standard output)")
	timeout := fs.Duration("timeout", 0, "give up after this long (default: never)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: tapstack get URL -o FILE --dev DEV --addr A.B.C.D/N [--gw G]")
		fs.PrintDefaults()
	}
	pos, err := parseArgs(fs, args, stderr)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("get needs one URL, e.g. tapstack get http://10.0.0.1/file -o file --dev tap0 --addr 10.0.0.2/24")
	}
	u, err := url.Parse(pos[0])
	if err != nil || u.Scheme != "http" {
		return usagef("get: %q is not an http:// URL (https is not supported)", pos[0])
	}
	if a, err := netip.ParseAddr(u.Hostname()); err != nil || !a.Is4() {
		return usagef("get: host %q is not an IPv4 address (names are not resolved)", u.Hostname())
	}
	if *outPath == "" {
		return usagef("get: -o FILE is required (- for standard output)")
	}
	c, err := f.check()
	if err != nil {
		return err
	}
	var out io.Writer = stdout
	var file *os.File
	if *outPath != "-" {
		if file, err = os.Create(*outPath); err != nil {
			return &setupError{fmt.Errorf("-o: %w", err)}
		}
		defer file.Close()
		out = file
	}
	ifc, err := openIface(c)
	if err != nil {
		return err
	}
	defer ifc.close()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *timeout)
		defer cancel()
	}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return ifc.stack.DialContext(ctx, network, addr)
		},
		DisableCompression: true, // the file is wanted as the server has it
	}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return usagef("get: %v", err)
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return fmt.Errorf("get %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("get %s: %s", u, resp.Status)
	}
	var progress *progressBar
	if isTerminal(stderr) {
		progress = &progressBar{w: stderr, total: resp.ContentLength, start: time.Now()}
		out = io.MultiWriter(out, progress)
	}
	n, err := io.Copy(out, resp.Body)
	if progress != nil {
		progress.finish()
	}
	if err != nil {
		return fmt.Errorf("get %s: after %d bytes: %w", u, n, err)
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return fmt.Errorf("get %s: got %d of %d bytes", u, n, resp.ContentLength)
	}
	if file != nil {
		if err := file.Close(); err != nil {
			return err
		}
	}
	fmt.Fprintf(stderr, "tapstack: %d bytes from %s\n", n, u)
	return nil
}

// progressBar draws bytes, rate and ETA on one terminal line.
type progressBar struct {
	w     io.Writer
	total int64 // -1 when unknown
	n     int64
	start time.Time
	drawn time.Time
}

func (p *progressBar) Write(b []byte) (int, error) {
	p.n += int64(len(b))
	if now := time.Now(); now.Sub(p.drawn) >= 200*time.Millisecond {
		p.drawn = now
		p.draw(now)
	}
	return len(b), nil
}

func (p *progressBar) draw(now time.Time) {
	secs := max(now.Sub(p.start).Seconds(), 1e-3)
	r := float64(p.n) / secs
	if p.total > 0 {
		const width = 30
		done := int(width * p.n / p.total)
		eta := time.Duration(float64(p.total-p.n) / max(r, 1) * float64(time.Second)).Round(time.Second)
		fmt.Fprintf(p.w, "\r\x1b[K[%-*s] %3d%% %s %s/s ETA %v", width, bar(done), 100*p.n/p.total, size(p.n), rate(uint64(p.n), secs), eta)
		return
	}
	fmt.Fprintf(p.w, "\r\x1b[K%s %s/s", size(p.n), rate(uint64(p.n), secs))
}

func (p *progressBar) finish() {
	p.draw(time.Now())
	fmt.Fprintln(p.w)
}

func bar(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = '='
	}
	return string(b)
}

func size(n int64) string { return rate(uint64(n), 1) }
