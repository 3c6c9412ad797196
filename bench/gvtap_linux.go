package main

import (
	"os"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// vnetTapEndpoint is a gVisor link endpoint over a TAP opened with
// IFF_VNET_HDR and TSO offloads, for "gVisor GSO" over a TAP: gVisor's
// fdbased endpoint turns host GSO on only for sockets (AF_PACKET), so a TAP
// needs this. It writes what fdbased writes on a packet socket with GSO (a
// virtio-net header built from the packet's GSO options, then the frame)
// and reads one frame per readv(2) as fdbased's readv dispatcher does,
// skipping the header and trusting the checksums (RXChecksumOffload: the
// frames come from the local kernel), delivering inline.
type vnetTapEndpoint struct {
	file *os.File
	rc   syscall.RawConn
	mtu  uint32
	addr tcpip.LinkAddress

	mu         sync.Mutex
	dispatcher stack.NetworkDispatcher
	wg         sync.WaitGroup
}

var (
	_ stack.LinkEndpoint = (*vnetTapEndpoint)(nil)
	_ stack.GSOEndpoint  = (*vnetTapEndpoint)(nil)
)

const (
	vnetHdrLen    = 10
	gvGSOMaxSize  = 65536
	vnetNeedsCsum = 1
	vnetGSOTCPv4  = 1
	vnetGSOTCPv6  = 4
	vnetSmallView = 2048  // most frames (ACKs) fit here
	vnetLargeView = 65536 // the rest of a super-segment
)

// newVnetTapEndpoint takes ownership of fd, a TAP attached with
// IFF_VNET_HDR whose header size is vnetHdrLen.
func newVnetTapEndpoint(fd int, mtu uint32, addr tcpip.LinkAddress) (*vnetTapEndpoint, error) {
	if err := unix.SetNonblock(fd, true); err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "tap")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &vnetTapEndpoint{file: f, rc: rc, mtu: mtu, addr: addr}, nil
}

// Attach starts the reader; Attach(nil), the NIC going away, stops it by
// closing the TAP. It does not wait for the reader: the stack calls it,
// and Wait, holding its own lock, which a frame the reader is delivering
// may need (a RST to a packet for a closed connection). waitReader waits,
// once the stack is done.
func (e *vnetTapEndpoint) Attach(d stack.NetworkDispatcher) {
	e.mu.Lock()
	start := e.dispatcher == nil && d != nil
	stop := e.dispatcher != nil && d == nil
	e.dispatcher = d
	e.mu.Unlock()
	if start {
		e.wg.Add(1)
		go e.readLoop(d)
	}
	if stop {
		e.file.Close()
	}
}

func (e *vnetTapEndpoint) readLoop(d stack.NetworkDispatcher) {
	defer e.wg.Done()
	var hdr [vnetHdrLen]byte
	var small, large *buffer.View
	var iov [3]unix.Iovec
	for {
		if small == nil {
			small = buffer.NewViewSize(vnetSmallView)
		}
		if large == nil {
			large = buffer.NewViewSize(vnetLargeView)
		}
		iov[0].Base, iov[1].Base, iov[2].Base = &hdr[0], small.BasePtr(), large.BasePtr()
		iov[0].SetLen(vnetHdrLen)
		iov[1].SetLen(vnetSmallView)
		iov[2].SetLen(vnetLargeView)
		var n int
		err := e.rc.Read(func(fd uintptr) bool {
			for {
				r, _, errno := unix.Syscall(unix.SYS_READV, fd, uintptr(unsafe.Pointer(&iov[0])), 3)
				switch errno {
				case 0:
					n = int(r)
					return true
				case unix.EINTR:
					continue
				case unix.EAGAIN:
					return false
				default:
					n = -1
					return true
				}
			}
		})
		if err != nil || n < 0 {
			small.Release()
			large.Release()
			return
		}
		size := n - vnetHdrLen
		if size < header.EthernetMinimumSize {
			continue
		}
		var payload buffer.Buffer
		if size <= vnetSmallView {
			small.CapLength(size)
			payload = buffer.MakeWithView(small)
			small = nil
		} else {
			large.CapLength(size - vnetSmallView)
			payload = buffer.MakeWithView(small)
			_ = payload.Append(large)
			small, large = nil, nil
		}
		pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: payload})
		hdrBytes, ok := pkt.LinkHeader().Consume(header.EthernetMinimumSize)
		if ok {
			eth := header.Ethernet(hdrBytes)
			dst := eth.DestinationAddress()
			if dst == e.addr || dst[0]&1 == 1 {
				d.DeliverNetworkPacket(eth.Type(), pkt)
			}
		}
		pkt.DecRef()
	}
}

// WritePackets writes each packet with one writev(2), as fdbased does on a
// TAP; a packet the TAP cannot take now is dropped.
func (e *vnetTapEndpoint) WritePackets(pkts stack.PacketBufferList) (int, tcpip.Error) {
	n := 0
	for _, pkt := range pkts.AsSlice() {
		var h [vnetHdrLen]byte
		if g := pkt.GSOOptions; g.Type != stack.GSONone {
			hdrLen := uint16(pkt.HeaderSize())
			h[2], h[3] = byte(hdrLen), byte(hdrLen>>8)
			if g.NeedsCsum {
				start := header.EthernetMinimumSize + g.L3HdrLen
				h[0] = vnetNeedsCsum
				h[6], h[7] = byte(start), byte(start>>8)
				h[8], h[9] = byte(g.CsumOffset), byte(g.CsumOffset>>8)
			}
			if uint16(pkt.Data().Size()) > g.MSS {
				switch g.Type {
				case stack.GSOTCPv4:
					h[1] = vnetGSOTCPv4
				case stack.GSOTCPv6:
					h[1] = vnetGSOTCPv6
				}
				h[4], h[5] = byte(g.MSS), byte(g.MSS>>8)
			}
		}
		var iovs [16]unix.Iovec
		iov := iovs[:0]
		iov = appendIovec(iov, h[:])
		for _, s := range pkt.AsSlices() {
			iov = appendIovec(iov, s)
		}
		var errno syscall.Errno
		_ = e.rc.Write(func(fd uintptr) bool {
			_, _, errno = unix.Syscall(unix.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)))
			return true
		})
		if errno != 0 && errno != unix.EAGAIN {
			if n == 0 {
				return 0, tcpip.TranslateErrno(errno)
			}
			break
		}
		n++
	}
	return n, nil
}

func appendIovec(iov []unix.Iovec, b []byte) []unix.Iovec {
	if len(b) == 0 {
		return iov
	}
	v := unix.Iovec{Base: &b[0]}
	v.SetLen(len(b))
	return append(iov, v)
}

func (e *vnetTapEndpoint) IsAttached() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.dispatcher != nil
}

func (e *vnetTapEndpoint) Wait()                              {}
func (e *vnetTapEndpoint) waitReader()                        { e.wg.Wait() }
func (e *vnetTapEndpoint) MTU() uint32                        { return e.mtu }
func (e *vnetTapEndpoint) SetMTU(mtu uint32)                  { e.mtu = mtu }
func (*vnetTapEndpoint) MaxHeaderLength() uint16              { return header.EthernetMinimumSize }
func (e *vnetTapEndpoint) LinkAddress() tcpip.LinkAddress     { return e.addr }
func (e *vnetTapEndpoint) SetLinkAddress(a tcpip.LinkAddress) { e.addr = a }
func (*vnetTapEndpoint) Capabilities() stack.LinkEndpointCapabilities {
	return stack.CapabilityResolutionRequired | stack.CapabilityRXChecksumOffload
}
func (*vnetTapEndpoint) ARPHardwareType() header.ARPHardwareType { return header.ARPHardwareEther }
func (e *vnetTapEndpoint) AddHeader(pkt *stack.PacketBuffer) {
	eth := header.Ethernet(pkt.LinkHeader().Push(header.EthernetMinimumSize))
	eth.Encode(&header.EthernetFields{
		SrcAddr: pkt.EgressRoute.LocalLinkAddress,
		DstAddr: pkt.EgressRoute.RemoteLinkAddress,
		Type:    pkt.NetworkProtocolNumber,
	})
}
func (*vnetTapEndpoint) ParseHeader(pkt *stack.PacketBuffer) bool {
	_, ok := pkt.LinkHeader().Consume(header.EthernetMinimumSize)
	return ok
}
func (e *vnetTapEndpoint) Close()                { e.file.Close() }
func (*vnetTapEndpoint) SetOnCloseAction(func()) {}
func (*vnetTapEndpoint) GSOMaxSize() uint32      { return gvGSOMaxSize }
func (*vnetTapEndpoint) SupportedGSO() stack.SupportedGSO {
	return stack.HostGSOSupported
}
