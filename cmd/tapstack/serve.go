package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sort"
	"sync"
	"time"

	"github.com/tapstack/tapstack/netstack"
)

// service is one --serve entry.
type service struct {
	name string
	port uint16
}

// udpServices answer on UDP, tcpServices on TCP; echo, discard and
// chargen do both, http only TCP.
var (
	udpServices = map[string]func(c *netstack.UDPConn){
		"echo":    serveUDPEcho,
		"discard": serveUDPDiscard,
		"chargen": serveUDPChargen,
	}
	tcpServices = map[string]func(c net.Conn){
		"echo":    serveTCPEcho,
		"discard": serveTCPDiscard,
		"chargen": serveTCPChargen,
	}
)

func knownService(name string) bool {
	_, udp := udpServices[name]
	return udp || name == "http"
}

func serviceNames() []string {
	names := []string{"http"}
	for n := range udpServices {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// protocols says where a service listens, for the start-up message.
func (sv service) protocols() string {
	if sv.name == "http" {
		return fmt.Sprintf("tcp/%d", sv.port)
	}
	return fmt.Sprintf("tcp/%d and udp/%d", sv.port, sv.port)
}

// running is the set of started services.
type running struct {
	closers []io.Closer
	https   []*http.Server
	wg      sync.WaitGroup

	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	closing bool
}

func startServices(st *netstack.Stack, svcs []service, httpRoot string) (*running, error) {
	r := &running{conns: map[net.Conn]struct{}{}}
	for _, sv := range svcs {
		addr := netip.AddrPortFrom(netip.Addr{}, sv.port)
		ln, err := st.ListenTCP(addr)
		if err != nil {
			r.close()
			return nil, &setupError{fmt.Errorf("%s on tcp/%d: %w", sv.name, sv.port, err)}
		}
		r.closers = append(r.closers, ln)
		if sv.name == "http" {
			srv := &http.Server{Handler: http.FileServer(http.Dir(httpRoot)), ReadHeaderTimeout: 30 * time.Second}
			r.https = append(r.https, srv)
			r.wg.Add(1)
			go func() {
				defer r.wg.Done()
				srv.Serve(ln)
			}()
			continue
		}
		r.wg.Add(1)
		go r.acceptLoop(ln, tcpServices[sv.name])
		c, err := st.ListenUDP(addr)
		if err != nil {
			r.close()
			return nil, &setupError{fmt.Errorf("%s on udp/%d: %w", sv.name, sv.port, err)}
		}
		r.closers = append(r.closers, c)
		r.wg.Add(1)
		go func(f func(*netstack.UDPConn)) {
			defer r.wg.Done()
			f(c)
		}(udpServices[sv.name])
	}
	return r, nil
}

// acceptLoop serves each connection of ln on its own goroutine.
func (r *running) acceptLoop(ln net.Listener, serve func(net.Conn)) {
	defer r.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		r.mu.Lock()
		if r.closing {
			r.mu.Unlock()
			c.Close()
			return
		}
		r.conns[c] = struct{}{}
		r.wg.Add(1)
		r.mu.Unlock()
		go func() {
			defer r.wg.Done()
			serve(c)
			c.Close()
			r.mu.Lock()
			delete(r.conns, c)
			r.mu.Unlock()
		}()
	}
}

// active returns the number of open service connections.
func (r *running) active() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.conns)
}

// close stops every service: listeners and sockets close, open connections
// are closed (a FIN, not a reset), HTTP servers shut down, and close waits
// for every goroutine, at most grace for HTTP requests in flight.
func (r *running) close() {
	r.mu.Lock()
	r.closing = true
	r.mu.Unlock()
	for _, c := range r.closers {
		c.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, srv := range r.https {
		if srv.Shutdown(ctx) != nil {
			srv.Close()
		}
	}
	r.mu.Lock()
	for c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
}

// serveTCPEcho sends back everything it reads (RFC 862).
func serveTCPEcho(c net.Conn) { io.Copy(c, c) }

// serveTCPDiscard reads and drops everything (RFC 863).
func serveTCPDiscard(c net.Conn) { io.Copy(io.Discard, c) }

// serveTCPChargen sends the rotating pattern until the peer closes (RFC
// 864), ignoring what it sends.
func serveTCPChargen(c net.Conn) {
	go io.Copy(io.Discard, c) // ends when c closes
	const linesPerWrite = 64
	buf := make([]byte, 0, 74*linesPerWrite)
	for line := 0; ; line += linesPerWrite {
		buf = chargenLines(buf[:0], line, linesPerWrite)
		if _, err := c.Write(buf); err != nil {
			return
		}
	}
}

// serveUDPEcho sends every datagram back (RFC 862).
func serveUDPEcho(c *netstack.UDPConn) {
	buf := make([]byte, 65536)
	for {
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		c.WriteToUDPAddrPort(buf[:n], from)
	}
}

// serveUDPDiscard drops every datagram (RFC 863).
func serveUDPDiscard(c *netstack.UDPConn) {
	buf := make([]byte, 65536)
	for {
		if _, _, err := c.ReadFromUDPAddrPort(buf); errors.Is(err, net.ErrClosed) {
			return
		}
	}
}

// serveUDPChargen answers every datagram with one of 0 to 512 characters of
// the rotating pattern (RFC 864); the length follows the request's.
func serveUDPChargen(c *netstack.UDPConn) {
	buf := make([]byte, 65536)
	line := 0
	for {
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		out := chargenLines(buf[:0], line, 512/74+1)
		line += 512/74 + 1
		c.WriteToUDPAddrPort(out[:min(len(out), 512, max(n, 74))], from)
	}
}

// chargenLines appends count lines of RFC 864's pattern starting at line.
func chargenLines(dst []byte, line, count int) []byte {
	const first, last = ' ' + 1, '~' // the 94 printing characters, as commonly served
	const span = last - first + 1
	for i := range count {
		start := (line + i) % span
		for j := range 72 {
			dst = append(dst, byte(first+(start+j)%span))
		}
		dst = append(dst, '\r', '\n')
	}
	return dst
}
