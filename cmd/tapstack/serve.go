package main

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"sort"
	"sync"

	"github.com/tapstack/tapstack/netstack"
)

// service is one --serve entry.
type service struct {
	name string
	port uint16
}

// udpServices answer on UDP; the TCP variants and http come with TCP.
var udpServices = map[string]func(c *netstack.UDPConn){
	"echo":    serveUDPEcho,
	"discard": serveUDPDiscard,
	"chargen": serveUDPChargen,
}

func knownService(name string) bool {
	_, ok := udpServices[name]
	return ok
}

func serviceNames() []string {
	var names []string
	for n := range udpServices {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// running is the set of started services.
type running struct {
	closers []io.Closer
	wg      sync.WaitGroup
}

func startServices(st *netstack.Stack, svcs []service) (*running, error) {
	r := &running{}
	for _, sv := range svcs {
		c, err := st.ListenUDP(netip.AddrPortFrom(netip.Addr{}, sv.port))
		if err != nil {
			r.close()
			return nil, &setupError{err}
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

// close stops every service and waits for its goroutines.
func (r *running) close() {
	for _, c := range r.closers {
		c.Close()
	}
	r.wg.Wait()
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
