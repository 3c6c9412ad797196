package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// gvisorPair is two gVisor stacks joined by a wire.
type gvisorPair struct {
	a, b     *stack.Stack
	ab, ba   *lane
	epA, epB *gvEndpoint
}

const gvNIC tcpip.NICID = 1

// listenBacklog is the accept queue both stacks get: deep enough that the
// concurrent dialers of the idle and crr cases never overflow it.
const listenBacklog = 4096

func newGvisorPair(cfg pairConfig) (Pair, error) {
	ab, ba, err := newWire(wireConfig{MTU: cfg.MTU, Impair: cfg.Impair, Seed: cfg.Seed})
	if err != nil {
		return nil, err
	}
	p := &gvisorPair{ab: ab, ba: ba,
		epA: &gvEndpoint{mtu: uint32(cfg.MTU), tx: ab, rx: ba},
		epB: &gvEndpoint{mtu: uint32(cfg.MTU), tx: ba, rx: ab}}
	clients := make([]netip.Addr, cfg.ClientAddrs)
	for i := range clients {
		clients[i] = clientAddr(i)
	}
	if p.a, err = newGvisorStack(cfg, p.epA, clients); err != nil {
		return nil, err
	}
	if p.b, err = newGvisorStack(cfg, p.epB, []netip.Addr{serverAddr}); err != nil {
		p.a.Close()
		return nil, err
	}
	return p, nil
}

func newGvisorStack(cfg pairConfig, ep *gvEndpoint, addrs []netip.Addr) (*stack.Stack, error) {
	s := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol},
	})
	if err := gvisorTCPOptions(s, cfg.DefaultBuffers); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.CreateNIC(gvNIC, ep); err != nil {
		s.Close()
		return nil, fmt.Errorf("gvisor: CreateNIC: %s", err)
	}
	for _, a := range addrs {
		pa := tcpip.ProtocolAddress{
			Protocol:          ipv4.ProtocolNumber,
			AddressWithPrefix: tcpip.AddressWithPrefix{Address: tcpip.AddrFrom4(a.As4()), PrefixLen: pairPrefixLen},
		}
		if err := s.AddProtocolAddress(gvNIC, pa, stack.AddressProperties{}); err != nil {
			s.Close()
			return nil, fmt.Errorf("gvisor: AddProtocolAddress %v: %s", a, err)
		}
	}
	sub := tcpip.AddressWithPrefix{Address: tcpip.AddrFrom4(serverAddr.As4()), PrefixLen: pairPrefixLen}.Subnet()
	s.SetRouteTable([]tcpip.Route{{Destination: sub, NIC: gvNIC}})
	return s, nil
}

// gvisorTCPOptions sets the options every gVisor stack here shares: SACK
// on, Nagle off and, unless defaultBuffers, the common buffer limits.
func gvisorTCPOptions(s *stack.Stack, defaultBuffers bool) error {
	opts := []tcpip.SettableTransportProtocolOption{
		// SACK on, Nagle off; timestamps and window scaling are always
		// offered by gVisor.
		ptr(tcpip.TCPSACKEnabled(true)),
		ptr(tcpip.TCPDelayEnabled(false)),
	}
	if !defaultBuffers {
		opts = append(opts,
			&tcpip.TCPSendBufferSizeRangeOption{Min: bufMin, Default: sendBufMax, Max: sendBufMax},
			&tcpip.TCPReceiveBufferSizeRangeOption{Min: bufMin, Default: recvBufMax, Max: recvBufMax},
			ptr(tcpip.TCPModerateReceiveBufferOption(true)),
		)
	}
	for _, o := range opts {
		if err := s.SetTransportProtocolOption(tcp.ProtocolNumber, o); err != nil {
			return fmt.Errorf("gvisor: transport option %T: %s", o, err)
		}
	}
	return nil
}

func ptr[T any](v T) *T { return &v }

func (p *gvisorPair) Listen(port uint16) (net.Listener, error) {
	return gvisorListen(p.b, serverAddr, port)
}

// gvisorListen opens a listener on s at addr:port.
func gvisorListen(s *stack.Stack, addr netip.Addr, port uint16) (net.Listener, error) {
	var wq waiter.Queue
	ep, err := s.NewEndpoint(tcp.ProtocolNumber, ipv4.ProtocolNumber, &wq)
	if err != nil {
		return nil, fmt.Errorf("gvisor: listen: %s", err)
	}
	if err := ep.Bind(tcpip.FullAddress{Addr: tcpip.AddrFrom4(addr.As4()), Port: port}); err != nil {
		ep.Close()
		return nil, fmt.Errorf("gvisor: bind %d: %s", port, err)
	}
	if err := ep.Listen(listenBacklog); err != nil {
		ep.Close()
		return nil, fmt.Errorf("gvisor: listen %d: %s", port, err)
	}
	return gonet.NewTCPListener(s, &wq, ep), nil
}

func (p *gvisorPair) Dial(from int, port uint16) (net.Conn, error) {
	local := tcpip.FullAddress{NIC: gvNIC, Addr: tcpip.AddrFrom4(clientAddr(from).As4())}
	remote := tcpip.FullAddress{NIC: gvNIC, Addr: tcpip.AddrFrom4(serverAddr.As4()), Port: port}
	ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
	defer cancel()
	return gonet.DialTCPWithBind(ctx, p.a, local, remote, ipv4.ProtocolNumber)
}

func (p *gvisorPair) Wire() (ab, ba laneStats) { return p.ab.stats(), p.ba.stats() }

func (p *gvisorPair) Counters() map[string]uint64 {
	return gvisorCounters(p.a, p.b)
}

// gvisorCounters sums a few TCP counters of stacks ss.
func gvisorCounters(ss ...*stack.Stack) map[string]uint64 {
	sum := func(f func(tcpip.TCPStats) *tcpip.StatCounter) uint64 {
		var n uint64
		for _, s := range ss {
			n += f(s.Stats().TCP).Value()
		}
		return n
	}
	return map[string]uint64{
		"segments_sent":    sum(func(s tcpip.TCPStats) *tcpip.StatCounter { return s.SegmentsSent }),
		"retransmits":      sum(func(s tcpip.TCPStats) *tcpip.StatCounter { return s.Retransmits }),
		"fast_retransmits": sum(func(s tcpip.TCPStats) *tcpip.StatCounter { return s.FastRetransmit }),
		"timeouts":         sum(func(s tcpip.TCPStats) *tcpip.StatCounter { return s.Timeouts }),
		"listen_overflows": sum(func(s tcpip.TCPStats) *tcpip.StatCounter { return s.ListenOverflowSynDrop }) +
			sum(func(s tcpip.TCPStats) *tcpip.StatCounter { return s.ListenOverflowAckDrop }),
	}
}

// Close stops the wire's readers before the stacks: Stack.Wait holds the
// stack's lock while it waits for the link endpoint, and a reader in the
// middle of delivering a packet needs that lock to finish.
func (p *gvisorPair) Close() error {
	p.ab.close()
	p.ba.close()
	p.epA.wg.Wait()
	p.epB.wg.Wait()
	p.a.Close()
	p.b.Close()
	p.a.Wait()
	p.b.Wait()
	return nil
}

// gvEndpoint is a gVisor link endpoint over a wire: bare IP packets, no
// link header, no offloads (checksums are computed and verified in
// software).
type gvEndpoint struct {
	mtu    uint32
	tx, rx *lane

	mu         sync.Mutex
	dispatcher stack.NetworkDispatcher
	wg         sync.WaitGroup
}

var _ stack.LinkEndpoint = (*gvEndpoint)(nil)

// rxBatch is how many packets the reader takes from the wire at once,
// as tapstack's device readers do.
const rxBatch = 64

func (e *gvEndpoint) WritePackets(pkts stack.PacketBufferList) (int, tcpip.Error) {
	for _, pkt := range pkts.AsSlice() {
		e.tx.write(pkt.AsSlices()...)
	}
	return pkts.Len(), nil
}

func (e *gvEndpoint) Attach(d stack.NetworkDispatcher) {
	e.mu.Lock()
	start := e.dispatcher == nil && d != nil
	e.dispatcher = d
	e.mu.Unlock()
	if start {
		e.wg.Add(1)
		go e.readLoop(d)
	}
}

// readLoop delivers packets from the wire until it closes.
func (e *gvEndpoint) readLoop(d stack.NetworkDispatcher) {
	defer e.wg.Done()
	bufs := make([][]byte, rxBatch)
	for {
		n, err := e.rx.read(bufs)
		if err != nil {
			return
		}
		for _, b := range bufs[:n] {
			pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(b)})
			d.DeliverNetworkPacket(header.IPv4ProtocolNumber, pkt)
			pkt.DecRef()
		}
		e.rx.release(bufs[:n])
	}
}

func (e *gvEndpoint) IsAttached() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.dispatcher != nil
}

func (e *gvEndpoint) Wait()                                      { e.wg.Wait() }
func (e *gvEndpoint) MTU() uint32                                { return e.mtu }
func (e *gvEndpoint) SetMTU(mtu uint32)                          { e.mtu = mtu }
func (*gvEndpoint) MaxHeaderLength() uint16                      { return 0 }
func (*gvEndpoint) LinkAddress() tcpip.LinkAddress               { return "" }
func (*gvEndpoint) SetLinkAddress(tcpip.LinkAddress)             {}
func (*gvEndpoint) Capabilities() stack.LinkEndpointCapabilities { return 0 }
func (*gvEndpoint) ARPHardwareType() header.ARPHardwareType      { return header.ARPHardwareNone }
func (*gvEndpoint) AddHeader(*stack.PacketBuffer)                {}
func (*gvEndpoint) ParseHeader(*stack.PacketBuffer) bool         { return true }
func (e *gvEndpoint) Close()                                     { e.rx.close() }
func (*gvEndpoint) SetOnCloseAction(func())                      {}
