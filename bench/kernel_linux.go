package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/link/fdbased"
	"gvisor.dev/gvisor/pkg/tcpip/network/arp"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"

	"github.com/tapstack/tapstack/device"
	"github.com/tapstack/tapstack/netstack"
	tstcp "github.com/tapstack/tapstack/tcp"
)

// The kernel cases' network: namespace kernNS holds the kernel's end (its
// address kernAddr) and the clients; the stack takes stackAddr. Over a TAP,
// the TAP's kernel side is in kernNS and the stack holds its file. Over a
// veth (the raw backend, and the kernel-to-kernel ceiling), the veth's other
// end is in farNS, where the stack opens its packet socket, or, for the
// kernel, where the servers listen on kernel sockets.
const (
	kernNS  = "tsbnk"
	farNS   = "tsbns"
	tapName = "tsbntap"
	vethK   = "tsbnvk"
	vethS   = "tsbnvs"
)

var (
	kernAddr  = netip.MustParsePrefix("10.91.0.1/24")
	stackAddr = netip.MustParsePrefix("10.91.0.2/24")
)

// kernelCasesBlocked says why the kernel cases cannot run here, or "".
func kernelCasesBlocked() string {
	if os.Geteuid() != 0 {
		return "they need root (network namespaces, TAP and veth devices); run as root to include them"
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return "they need the ip command (Debian: apt-get install iproute2)"
	}
	return ""
}

// cleanupKernelNS deletes the kernel cases' namespaces, and with them
// their devices; a child killed mid-run leaves them behind.
func cleanupKernelNS() {
	for _, ns := range []string{kernNS, farNS} {
		if _, err := os.Stat(filepath.Join("/run/netns", ns)); err == nil {
			_ = sh("ip", "netns", "del", ns)
		}
	}
}

// sh runs a command and returns an error with its output when it fails.
func sh(args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// nsDo runs f on an OS thread inside namespace ns. Sockets and files f
// opens stay in ns.
func nsDo(ns string, f func() error) error {
	target, err := os.Open(filepath.Join("/run/netns", ns))
	if err != nil {
		return err
	}
	defer target.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer orig.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("entering %s: %w", ns, err)
			return
		}
		ferr := f()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- errors.Join(ferr, err) // the thread stays locked and dies
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// newNS creates namespace name with loopback up and IPv6 off (no router
// solicitations or MLD on the links).
func newNS(name string) error {
	if err := sh("ip", "netns", "add", name); err != nil {
		return err
	}
	if err := sh("ip", "-n", name, "link", "set", "lo", "up"); err != nil {
		return err
	}
	return nsDo(name, func() error {
		for _, k := range []string{"all", "default"} {
			if err := os.WriteFile("/proc/sys/net/ipv6/conf/"+k+"/disable_ipv6", []byte("1"), 0); err != nil {
				return err
			}
		}
		return nil
	})
}

// kernelNet is what a kernel case sets up: which link, and how the kernel's
// veth end offloads.
type kernelNet struct {
	tap       bool // a TAP in kernNS; otherwise a veth kernNS <-> farNS
	farAddr   bool // the veth's far end gets stackAddr (kernel to kernel)
	kernTxOff bool // checksum offload (and so TSO) off on the kernel's veth end
}

func (k kernelNet) setUp() error {
	cleanupKernelNS()
	if err := newNS(kernNS); err != nil {
		return err
	}
	if k.tap {
		return run(
			[]string{"ip", "-n", kernNS, "tuntap", "add", tapName, "mode", "tap"},
			[]string{"ip", "-n", kernNS, "addr", "add", kernAddr.String(), "dev", tapName},
			[]string{"ip", "-n", kernNS, "link", "set", tapName, "up"})
	}
	if err := newNS(farNS); err != nil {
		return err
	}
	cmds := [][]string{
		{"ip", "-n", kernNS, "link", "add", vethK, "type", "veth", "peer", "name", vethS, "netns", farNS},
		{"ip", "-n", kernNS, "addr", "add", kernAddr.String(), "dev", vethK},
		{"ip", "-n", kernNS, "link", "set", vethK, "up"},
		{"ip", "-n", farNS, "link", "set", vethS, "up"},
	}
	if k.farAddr {
		cmds = append(cmds, []string{"ip", "-n", farNS, "addr", "add", stackAddr.String(), "dev", vethS})
	}
	if k.kernTxOff {
		cmds = append(cmds, []string{"ip", "netns", "exec", kernNS, "ethtool", "-K", vethK, "tx", "off"})
	}
	return run(cmds...)
}

func run(cmds ...[]string) error {
	for _, c := range cmds {
		if err := sh(c...); err != nil {
			return err
		}
	}
	return nil
}

// waitUp waits until the kernel's end of the link is up: a TAP only once
// its file is open, and the kernel drops what it would send until then.
func (k kernelNet) waitUp() error {
	dev := vethK
	if k.tap {
		dev = tapName
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := exec.Command("ip", "-n", kernNS, "-j", "link", "show", "dev", dev).Output()
		var info []struct {
			OperState string `json:"operstate"`
		}
		if err == nil && json.Unmarshal(out, &info) == nil && len(info) == 1 && info[0].OperState == "UP" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s in %s not up after 10s: %s", dev, kernNS, out)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// kernelStack is a stack serving at stackAddr on the case's link.
type kernelStack interface {
	Listen(port uint16) (net.Listener, error)
	Counters() map[string]uint64
	Close() error
}

func runKernel(sp spec, stackName string) (measure, error) {
	return runKernelWith(sp, stackName, tstcp.Config{})
}

// runKernelWith is runKernel with tapstack's TCP settings (A/B mode).
func runKernelWith(sp spec, stackName string, tcpCfg tstcp.Config) (measure, error) {
	var m measure
	need := []string{"ip"}
	if sp.Workload == "download" {
		need = append(need, "curl")
	}
	knet := kernelNet{tap: sp.Link == "tap"}
	switch {
	case stackName == "kernel":
		knet = kernelNet{farAddr: true}
	case sp.Link == "raw" && stackName != "gvisor-gso" && stackName != "tapstack-gso":
		// tapstack's raw backend and gVisor without GSO take no partial
		// checksums: the kernel completes them, as internal/testnet does.
		knet.kernTxOff = true
		need = append(need, "ethtool")
	}
	for _, tool := range need {
		if _, err := exec.LookPath(tool); err != nil {
			return m, &unavailableError{"needs " + tool + " on PATH (Debian: apt-get install " + map[string]string{
				"ip": "iproute2", "curl": "curl", "ethtool": "ethtool"}[tool] + ")"}
		}
	}
	if err := knet.setUp(); err != nil {
		return m, err
	}
	defer cleanupKernelNS()

	var st kernelStack
	var err error
	switch stackName {
	case "tapstack", "tapstack-gso":
		st, err = newTapstackKernel(sp.Link, stackName == "tapstack-gso", tcpCfg)
	case "gvisor", "gvisor-gso":
		st, err = newGvisorKernel(sp.Link, stackName == "gvisor-gso")
	case "kernel":
		st = kernelKernel{}
	default:
		err = fmt.Errorf("unknown stack %q", stackName)
	}
	if err != nil {
		return m, err
	}
	defer st.Close()
	if err := knet.waitUp(); err != nil {
		return m, err
	}
	port := map[string]uint16{"download": httpPort, "upload": discardPort, "echo": echoPort}[sp.Workload]
	ln, err := st.Listen(port)
	if err != nil {
		return m, err
	}
	srv, stop := serveWorkload(ln, sp.Workload, sp.Bytes)
	defer stop()

	cpu0 := cpuTime()
	var secs float64
	switch sp.Workload {
	case "download":
		secs, err = curlDownload(sp.Bytes)
	case "upload", "echo":
		var c net.Conn
		addr := netip.AddrPortFrom(stackAddr.Addr(), port).String()
		if err = nsDo(kernNS, func() (err error) {
			c, err = net.DialTimeout("tcp4", addr, stepTimeout)
			return err
		}); err != nil {
			break
		}
		var d time.Duration
		if sp.Workload == "upload" {
			d, err = upload(c, sp.Bytes, srv)
		} else {
			d, err = echo(c, sp.Bytes, srv)
		}
		secs = d.Seconds()
	}
	cpu := cpuTime() - cpu0
	m.info = map[string]any{"elapsed_s": secs, "cpu_s": cpu.Seconds(), "tcp": st.Counters()}
	if err != nil {
		return m, fmt.Errorf("%w; tcp counters %v", err, st.Counters())
	}
	m.add("throughput", "MB/s", higher, float64(sp.Bytes)/secs/1e6)
	return m, nil
}

// curlDownload fetches n bytes from the stack with the kernel's curl and
// returns curl's total time.
func curlDownload(n int64) (float64, error) {
	url := "http://" + stackAddr.Addr().String() + "/"
	ctx, cancel := context.WithTimeout(context.Background(), transferLimit(n)+10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", kernNS, "curl", "-sS", "--noproxy", "*",
		"--max-time", strconv.Itoa(int(transferLimit(n).Seconds())),
		"-o", "/dev/null", "-w", "%{http_code} %{size_download} %{time_total}", url)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("curl: %v: %s", err, bytes.TrimSpace(out))
	}
	return parseCurl(string(out), n)
}

// tapstackKernel is tapstack on the TAP or, through its raw backend, on the
// veth's far end.
type tapstackKernel struct{ s *netstack.Stack }

func newTapstackKernel(link string, gso bool, tcpCfg tstcp.Config) (kernelStack, error) {
	var dev device.Device
	var err error
	var off device.Offloads
	if gso {
		off = device.OffloadAll
	}
	if link == "tap" {
		err = nsDo(kernNS, func() (err error) {
			dev, err = device.OpenTAP(tapName, device.Config{NoCreate: true, Offloads: off})
			return err
		})
	} else {
		err = nsDo(farNS, func() (err error) {
			dev, err = device.OpenRaw(vethS, device.Config{Offloads: off})
			return err
		})
	}
	if err != nil {
		return nil, err
	}
	s := netstack.New(netstack.Config{TCP: tcpCfg})
	if _, err := s.AttachDevice(dev, netstack.NICConfig{Name: link, Addrs: []netip.Prefix{stackAddr}}); err != nil {
		s.Close()
		return nil, err
	}
	return tapstackKernel{s}, nil
}

func (k tapstackKernel) Listen(port uint16) (net.Listener, error) {
	ln, err := k.s.ListenTCP(netip.AddrPortFrom(stackAddr.Addr(), port))
	if err != nil {
		return nil, err
	}
	ln.SetBacklog(listenBacklog)
	return &tapstackListener{ln}, nil
}

func (k tapstackKernel) Counters() map[string]uint64 { return tapstackCounters(k.s) }
func (k tapstackKernel) Close() error                { return k.s.Close() }

// gvisorKernel is gVisor's netstack on the TAP (fdbased; with GSO, the
// vnet endpoint) or on a packet socket on the veth's far end (fdbased,
// recvmmsg, with PACKET_VNET_HDR and host GSO for gso).
type gvisorKernel struct {
	s    *stack.Stack
	fd   int    // fdbased's file, which it does not close; -1 if none
	wait func() // waits for the vnet TAP endpoint's reader; nil if none
}

func newGvisorKernel(link string, gso bool) (kernelStack, error) {
	var ep stack.LinkEndpoint
	var err error
	keepFD := -1
	if link == "tap" {
		mac := tcpip.LinkAddress(device.DefaultMAC(tapName))
		var fd int
		if err := nsDo(kernNS, func() (err error) { fd, err = openTapFD(tapName, gso); return err }); err != nil {
			return nil, err
		}
		if gso {
			if ep, err = newVnetTapEndpoint(fd, 1500, mac); err != nil {
				unix.Close(fd)
			}
		} else {
			keepFD = fd
			ep, err = fdbased.New(&fdbased.Options{FDs: []int{fd}, MTU: 1500, EthernetHeader: true,
				Address: mac, PacketDispatchMode: fdbased.Readv})
		}
	} else {
		mac := tcpip.LinkAddress(device.DefaultMAC(vethS))
		var fd int
		if err := nsDo(farNS, func() (err error) { fd, err = openPacketFD(vethS, gso); return err }); err != nil {
			return nil, err
		}
		opts := &fdbased.Options{FDs: []int{fd}, MTU: 1500, EthernetHeader: true,
			Address: mac, PacketDispatchMode: fdbased.RecvMMsg}
		if gso {
			// As runsc sets up a veth with host GSO: partial checksums
			// from the local kernel are trusted.
			opts.GSOMaxSize = gvGSOMaxSize
			opts.RXChecksumOffload = true
		}
		keepFD = fd
		ep, err = fdbased.New(opts)
	}
	if err != nil {
		if keepFD >= 0 {
			unix.Close(keepFD)
		}
		return nil, err
	}
	s := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, arp.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol},
	})
	if err := gvisorTCPOptions(s, false); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.CreateNIC(gvNIC, ep); err != nil {
		s.Close()
		return nil, fmt.Errorf("gvisor: CreateNIC: %s", err)
	}
	pa := tcpip.ProtocolAddress{Protocol: ipv4.ProtocolNumber, AddressWithPrefix: tcpip.AddressWithPrefix{
		Address: tcpip.AddrFrom4(stackAddr.Addr().As4()), PrefixLen: stackAddr.Bits()}}
	if err := s.AddProtocolAddress(gvNIC, pa, stack.AddressProperties{}); err != nil {
		s.Close()
		return nil, fmt.Errorf("gvisor: AddProtocolAddress: %s", err)
	}
	s.SetRouteTable([]tcpip.Route{{Destination: pa.AddressWithPrefix.Subnet(), NIC: gvNIC}})
	k := gvisorKernel{s: s, fd: keepFD}
	if v, ok := ep.(*vnetTapEndpoint); ok {
		k.wait = v.waitReader
	}
	return k, nil
}

func (k gvisorKernel) Listen(port uint16) (net.Listener, error) {
	return gvisorListen(k.s, stackAddr.Addr(), port)
}

func (k gvisorKernel) Counters() map[string]uint64 { return gvisorCounters(k.s) }

// Close removes the NIC, which stops the endpoint's readers, and then
// closes fdbased's file.
func (k gvisorKernel) Close() error {
	k.s.Close()
	k.s.Wait()
	if k.wait != nil {
		k.wait()
	}
	if k.fd >= 0 {
		unix.Close(k.fd)
	}
	return nil
}

// kernelKernel is the kernel itself on the veth's far end: the servers
// listen on kernel sockets in farNS.
type kernelKernel struct{}

func (kernelKernel) Listen(port uint16) (net.Listener, error) {
	var ln net.Listener
	err := nsDo(farNS, func() (err error) {
		ln, err = net.Listen("tcp4", netip.AddrPortFrom(stackAddr.Addr(), port).String())
		return err
	})
	return ln, err
}

func (kernelKernel) Counters() map[string]uint64 { return nil }
func (kernelKernel) Close() error                { return nil }

// The TUNSETOFFLOAD flags (linux/if_tun.h).
const tunOffloadCsumTSO = 0x01 | 0x02 | 0x04

// openTapFD attaches to TAP name, with a virtio-net header and checksum
// and TSO offloads when vnet, and clears any offloads otherwise (as
// device.OpenTAP does).
func openTapFD(name string, vnet bool) (int, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return -1, err
	}
	flags := uint16(unix.IFF_TAP | unix.IFF_NO_PI)
	offloads := 0
	if vnet {
		flags |= unix.IFF_VNET_HDR
		offloads = tunOffloadCsumTSO
	}
	ifr.SetUint16(flags)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("TUNSETIFF %s: %w", name, err)
	}
	if vnet {
		if err := unix.IoctlSetPointerInt(fd, unix.TUNSETVNETHDRSZ, vnetHdrLen); err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("TUNSETVNETHDRSZ: %w", err)
		}
	}
	if err := unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, offloads); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("TUNSETOFFLOAD: %w", err)
	}
	return fd, nil
}

// openPacketFD opens a packet socket on interface name set up as
// tapstack's raw backend sets up its own: promiscuous, our own frames not
// read back, a 4 MiB receive queue; with a virtio-net header when vnet.
func openPacketFD(name string, vnet bool) (int, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return -1, err
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	fail := func(op string, err error) (int, error) {
		unix.Close(fd)
		return -1, fmt.Errorf("packet socket on %s: %s: %w", name, op, err)
	}
	if vnet {
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1); err != nil {
			return fail("PACKET_VNET_HDR", err)
		}
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
		return fail("bind", err)
	}
	mreq := &unix.PacketMreq{Ifindex: int32(ifi.Index), Type: unix.PACKET_MR_PROMISC}
	if err := unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, mreq); err != nil {
		return fail("PACKET_ADD_MEMBERSHIP", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1); err != nil {
		return fail("PACKET_IGNORE_OUTGOING", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 4<<20); err != nil {
		return fail("SO_RCVBUFFORCE", err)
	}
	return fd, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
