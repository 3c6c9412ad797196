package netstack

import (
	"net"
	"net/netip"
	"testing"

	"golang.org/x/net/nettest"

	"github.com/tapstack/tapstack/device"
)

// TCPConn passes x/net's net.Conn conformance suite: basic I/O, concurrent
// reads and writes, deadlines past, present and future, closing with calls
// in flight.
func TestTCPConnConformance(t *testing.T) {
	nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
		da, db := device.Pipe(device.PipeConfig{})
		a, b := New(Config{}), New(Config{})
		stop = func() {
			if c1 != nil {
				c1.Close()
			}
			if c2 != nil {
				c2.Close()
			}
			a.Close()
			b.Close()
		}
		if _, err = a.AttachDevice(da, NICConfig{Name: "a0", Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")}}); err != nil {
			stop()
			return
		}
		if _, err = b.AttachDevice(db, NICConfig{Name: "b0", Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.2/24")}}); err != nil {
			stop()
			return
		}
		ln, err := b.Listen("tcp", "10.0.0.2:80")
		if err != nil {
			stop()
			return nil, nil, nil, err
		}
		defer ln.Close()
		accepted := make(chan net.Conn, 1)
		go func() {
			c, _ := ln.Accept()
			accepted <- c
		}()
		if c1, err = a.Dial("tcp", "10.0.0.2:80"); err != nil {
			ln.Close()
			<-accepted
			stop()
			return nil, nil, nil, err
		}
		c2 = <-accepted
		return c1, c2, stop, nil
	})
}
