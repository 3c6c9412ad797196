package device

// Tests against the Linux kernel as the peer. They need root and skip
// without it (fail with TAPSTACK_REQUIRE_ROOT=1). Every interface's kernel
// side lives in a namespace the test creates (names tsdev*, subnets
// 10.98.x.0/24), removed at cleanup.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/tapstack/tapstack/internal/testnet"
)

var (
	_ Device       = (*Tun)(nil)
	_ GatherWriter = (*Tun)(nil)
	_ Device       = (*RawSocket)(nil)
	_ DropCounter  = (*Tun)(nil)
	_ DropCounter  = (*RawSocket)(nil)
)

const frameWait = 5 * time.Second

// quietNS makes a namespace whose links carry no IPv6 chatter, so that the
// frames a test sees are the ones it caused.
func quietNS(t testing.TB, name string) *testnet.NS {
	ns := testnet.NewNS(t, name)
	ns.Sysctl(t, "net.ipv6.conf.all.disable_ipv6", "1")
	ns.Sysctl(t, "net.ipv6.conf.default.disable_ipv6", "1")
	return ns
}

func serialize(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, ls...); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// arpRequest asks who has ip, from mac/src.
func arpRequest(t testing.TB, mac net.HardwareAddr, src, ip netip.Addr) []byte {
	return serialize(t,
		&layers.Ethernet{SrcMAC: mac, DstMAC: layers.EthernetBroadcast, EthernetType: layers.EthernetTypeARP},
		&layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4,
			HwAddressSize: 6, ProtAddressSize: 4, Operation: layers.ARPRequest,
			SourceHwAddress: mac, SourceProtAddress: src.AsSlice(),
			DstHwAddress: make([]byte, 6), DstProtAddress: ip.AsSlice()})
}

// asARP returns frame's Ethernet and ARP layers, or nil if it is not ARP.
func asARP(frame []byte) (*layers.Ethernet, *layers.ARP) {
	p := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
	eth, _ := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	arp, _ := p.Layer(layers.LayerTypeARP).(*layers.ARP)
	if eth == nil || arp == nil {
		return nil, nil
	}
	return eth, arp
}

// startReader reads dev in a goroutine until it is closed, passing copies
// of the frames on; cleanup closes dev and waits for the goroutine.
func startReader(t *testing.T, dev Device) <-chan []byte {
	ch := make(chan []byte, 1024)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(ch)
		bufs, sizes := newBufs(8, MaxFrameSize(dev))
		for {
			n, err := dev.ReadBatch(bufs, sizes, Headroom)
			for i := range n {
				ch <- append([]byte(nil), bufs[i][Headroom:Headroom+sizes[i]]...)
			}
			if err != nil {
				if !errors.Is(err, net.ErrClosed) {
					t.Errorf("ReadBatch: %v", err)
				}
				return
			}
		}
	}()
	t.Cleanup(func() {
		dev.Close()
		<-done
	})
	return ch
}

// waitFrame returns the first frame from ch that match accepts, failing t
// after frameWait. Frames it passes over are handed to skip, if not nil.
func waitFrame(t *testing.T, ch <-chan []byte, what string, match func([]byte) bool) []byte {
	t.Helper()
	timeout := time.After(frameWait)
	for {
		select {
		case f, ok := <-ch:
			if !ok {
				t.Fatalf("device closed while waiting for %s", what)
			}
			if match(f) {
				return f
			}
		case <-timeout:
			t.Fatalf("no %s within %v", what, frameWait)
		}
	}
}

// readAll reads from dev, with 100-byte buffers, until it has want frames
// and drops rx drops, failing t after frameWait. The frames were sent before
// the call, so the first ReadBatch must return more than one: the batching.
func readAll(t *testing.T, dev interface {
	Device
	DropCounter
}, want int, drops uint64) ([][]byte, []int, int) {
	t.Helper()
	stop := time.AfterFunc(frameWait, func() { dev.Close() })
	defer stop.Stop()
	bufs, sizes := newBufs(32, 100)
	n := 0
	for calls := 0; ; calls++ {
		rx, _ := dev.Drops()
		if n >= want && rx >= drops {
			if n != want || rx != drops {
				t.Errorf("read %d frames, %d dropped; want %d and %d", n, rx, want, drops)
			}
			return bufs, sizes, n
		}
		k, err := dev.ReadBatch(bufs[n:], sizes[n:], Headroom)
		if err != nil {
			t.Fatalf("after %d frames and %d drops: ReadBatch: %v", n, rx, err)
		}
		if calls == 0 && k < 2 {
			t.Errorf("first ReadBatch returned %d frame(s) of %d queued", k, want)
		}
		n += k
	}
}

func writeFrames(t *testing.T, dev Device, frames ...[]byte) {
	t.Helper()
	bufs := make([][]byte, len(frames))
	for i, f := range frames {
		bufs[i] = frameBuf(f)
	}
	if n, err := dev.WriteBatch(bufs, Headroom); n != len(frames) || err != nil {
		t.Fatalf("WriteBatch = %d, %v", n, err)
	}
}

// checkARPReply asks the kernel at kernelIP (MAC kernelMAC) who it is, from
// the stack's address ourIP on dev, and checks the reply, then that the
// kernel learnt the stack's MAC.
func checkARPReply(t *testing.T, dev Device, frames <-chan []byte, ns *testnet.NS, ifname string,
	kernelMAC net.HardwareAddr, kernelIP, ourIP netip.Addr) {
	t.Helper()
	ours := dev.LinkAddr()
	writeFrames(t, dev, arpRequest(t, ours, ourIP, kernelIP))
	f := waitFrame(t, frames, "ARP reply", func(f []byte) bool {
		_, arp := asARP(f)
		return arp != nil && arp.Operation == layers.ARPReply
	})
	eth, arp := asARP(f)
	if !bytes.Equal(eth.DstMAC, ours) || !bytes.Equal(eth.SrcMAC, kernelMAC) {
		t.Errorf("reply Ethernet %v -> %v, want %v -> %v", eth.SrcMAC, eth.DstMAC, kernelMAC, ours)
	}
	if got := net.HardwareAddr(arp.SourceHwAddress); !bytes.Equal(got, kernelMAC) {
		t.Errorf("reply sender MAC %v, want the kernel side's %v", got, kernelMAC)
	}
	if got, _ := netip.AddrFromSlice(arp.SourceProtAddress); got != kernelIP {
		t.Errorf("reply sender IP %v, want %v", got, kernelIP)
	}
	if got := net.HardwareAddr(arp.DstHwAddress); !bytes.Equal(got, ours) {
		t.Errorf("reply target MAC %v, want ours %v", got, ours)
	}
	if got, _ := netip.AddrFromSlice(arp.DstProtAddress); got != ourIP {
		t.Errorf("reply target IP %v, want %v", got, ourIP)
	}
	neigh := testnet.Exec(t, ns, "ip", "neigh", "show", ourIP.String(), "dev", ifname)
	if !strings.Contains(neigh, "lladdr "+ours.String()) {
		t.Errorf("kernel neighbour entry for %v: %q, want lladdr %v", ourIP, neigh, ours)
	}
}

func TestTAPKernelARP(t *testing.T) {
	testnet.RequireRoot(t)
	ns := quietNS(t, "tsdev1")
	link := ns.AddTAP(t, "tsdevtap1", netip.MustParsePrefix("10.98.1.1/24"))
	dev := testnet.In(t, ns, func() (*Tun, error) { return OpenTAP("tsdevtap1", Config{NoCreate: true}) })
	frames := startReader(t, dev)
	link.WaitUp(t)

	if dev.Created() || dev.Name() != "tsdevtap1" {
		t.Errorf("Created() = %v for a persistent TAP, Name %q", dev.Created(), dev.Name())
	}
	if dev.MTU() != 1500 || dev.BatchSize() != DefaultBatchSize {
		t.Errorf("MTU %d, BatchSize %d", dev.MTU(), dev.BatchSize())
	}
	if !bytes.Equal(dev.KernelAddr(), link.MAC(t)) {
		t.Errorf("KernelAddr %v, ip link says %v", dev.KernelAddr(), link.MAC(t))
	}
	if !bytes.Equal(dev.LinkAddr(), DefaultMAC("tsdevtap1")) {
		t.Errorf("LinkAddr %v, want DefaultMAC %v", dev.LinkAddr(), DefaultMAC("tsdevtap1"))
	}
	checkARPReply(t, dev, frames, ns, "tsdevtap1", dev.KernelAddr(),
		netip.MustParseAddr("10.98.1.1"), netip.MustParseAddr("10.98.1.2"))

	// A second open of the same TAP finds it held, and by whom.
	err := ns.Do(func() error {
		d, err := OpenTAP("tsdevtap1", Config{})
		if err == nil {
			d.Close()
		}
		return err
	})
	if !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), "pid "+strconv.Itoa(os.Getpid())) {
		t.Errorf("second open: %v; want ErrBusy naming pid %d", err, os.Getpid())
	}
}

// Frames ready together come back from one ReadBatch; a frame too long for
// its buffer is dropped and counted, not cut.
func TestTAPBatchAndDrop(t *testing.T) {
	testnet.RequireRoot(t)
	testnet.RequireTool(t, "bash")
	ns := quietNS(t, "tsdev2")
	link := ns.AddTAP(t, "tsdevtap2", netip.MustParsePrefix("10.98.7.1/24"))
	dev := testnet.In(t, ns, func() (*Tun, error) { return OpenTAP("tsdevtap2", Config{}) })
	defer dev.Close()
	link.WaitUp(t)
	testnet.Exec(t, ns, "ip", "neigh", "add", "10.98.7.9", "lladdr", "02:98:00:00:00:09", "dev", "tsdevtap2", "nud", "permanent")
	// Ten small datagrams and one large, queued before we read.
	testnet.Exec(t, ns, "bash", "-c",
		`for i in $(seq 10); do echo $i > /dev/udp/10.98.7.9/9; done; printf '%0300d' 0 > /dev/udp/10.98.7.9/9`)
	bufs, sizes, n := readAll(t, dev, 10, 1)
	for i := range n {
		p := gopacket.NewPacket(bufs[i][Headroom:Headroom+sizes[i]], layers.LayerTypeEthernet, gopacket.Default)
		udp, _ := p.Layer(layers.LayerTypeUDP).(*layers.UDP)
		if udp == nil || string(udp.Payload) != strconv.Itoa(i+1)+"\n" {
			t.Errorf("frame %d: %v", i, p)
		}
	}
}

func TestTAPOpenErrors(t *testing.T) {
	testnet.RequireRoot(t)
	ns := quietNS(t, "tsdev3")
	ns.AddTUN(t, "tsdevtun3", netip.Prefix{})
	ns.AddTAP(t, "tsdevtap3", netip.Prefix{})
	ns.AddVeth(t, "tsdevv3a", netip.Prefix{}, "tsdevv3b", ns)
	open := func(f func() (Device, error)) error {
		return ns.Do(func() error {
			d, err := f()
			if err == nil {
				d.Close()
				return errors.New("opened")
			}
			return err
		})
	}
	tests := []struct {
		name string
		open func() (Device, error)
		kind error
		msg  string
	}{
		{"TUN as TAP", func() (Device, error) { return OpenTAP("tsdevtun3", Config{}) }, ErrWrongMode, "tsdevtun3 is a TUN interface, not a TAP"},
		{"TAP as TUN", func() (Device, error) { return OpenTUN("tsdevtap3", Config{}) }, ErrWrongMode, "tsdevtap3 is a TAP interface, not a TUN"},
		{"veth as TAP", func() (Device, error) { return OpenTAP("tsdevv3a", Config{}) }, ErrWrongMode, "not a TUN/TAP interface (driver veth)"},
		{"missing TAP, NoCreate", func() (Device, error) { return OpenTAP("tsdevnone3", Config{NoCreate: true}) }, ErrNotFound, "ip tuntap add tsdevnone3 mode tap user $USER"},
		{"missing raw", func() (Device, error) { return OpenRaw("tsdevnone3", Config{}) }, ErrNotFound, "no interface tsdevnone3; list the interfaces with: ip link"},
		{"raw on a TUN", func() (Device, error) { return OpenRaw("tsdevtun3", Config{}) }, ErrWrongMode, "OpenTUN"},
		{"bad MAC", func() (Device, error) { return OpenRaw("tsdevv3a", Config{MAC: net.HardwareAddr{1, 2, 3, 4, 5, 6}}) }, ErrInvalid, "not a 6-byte unicast address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := open(tt.open)
			if !errors.Is(err, tt.kind) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("err = %v; want %v mentioning %q", err, tt.kind, tt.msg)
			}
		})
	}
}

// With CAP_NET_ADMIN, opening a missing TAP creates a transient one, which
// goes when closed.
func TestTAPCreateTransient(t *testing.T) {
	testnet.RequireRoot(t)
	ns := quietNS(t, "tsdev4")
	dev := testnet.In(t, ns, func() (*Tun, error) { return OpenTAP("tsdevtmp4", Config{}) })
	if !dev.Created() {
		t.Errorf("Created() = false")
	}
	testnet.Exec(t, ns, "ip", "link", "show", "tsdevtmp4")
	dev.Close()
	if out, err := testnet.Run(ns, testnet.DefaultTimeout, "ip", "link", "show", "tsdevtmp4"); err == nil {
		t.Errorf("transient TAP still there after Close: %s", out)
	}
}

// A TUN carries bare IP packets: answer the kernel's ping.
func TestTUNKernelPing(t *testing.T) {
	testnet.RequireRoot(t)
	testnet.RequireTool(t, "ping")
	ns := quietNS(t, "tsdev5")
	link := ns.AddTUN(t, "tsdevtun5", netip.MustParsePrefix("10.98.3.1/24"))
	dev := testnet.In(t, ns, func() (*Tun, error) { return OpenTUN("tsdevtun5", Config{}) })
	link.WaitUp(t)
	if dev.LinkAddr() != nil || dev.KernelAddr() != nil || MaxFrameSize(dev) != dev.MTU() {
		t.Errorf("TUN LinkAddr %v KernelAddr %v MaxFrameSize %d", dev.LinkAddr(), dev.KernelAddr(), MaxFrameSize(dev))
	}
	frames := startReader(t, dev)
	ping, out := testnet.Start(t, ns, "ping", "-c1", "-W5", "10.98.3.2")
	req := waitFrame(t, frames, "ICMP echo request", func(f []byte) bool {
		icmp, _ := gopacket.NewPacket(f, layers.LayerTypeIPv4, gopacket.Default).Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
		return icmp != nil && icmp.TypeCode.Type() == layers.ICMPv4TypeEchoRequest
	})
	p := gopacket.NewPacket(req, layers.LayerTypeIPv4, gopacket.Default)
	ip4 := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	icmp := p.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
	if ip4.SrcIP.String() != "10.98.3.1" || ip4.DstIP.String() != "10.98.3.2" {
		t.Errorf("request %v -> %v", ip4.SrcIP, ip4.DstIP)
	}
	// The reply goes out in three parts (writev): headers, then the
	// payload in two pieces, as a stack gathers a segment.
	reply := serialize(t,
		&layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolICMPv4, SrcIP: ip4.DstIP, DstIP: ip4.SrcIP},
		&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeEchoReply, 0), Id: icmp.Id, Seq: icmp.Seq},
		gopacket.Payload(icmp.Payload))
	cut := 28 + len(icmp.Payload)/2
	tails := [][2][]byte{{reply[28:cut], reply[cut:]}}
	if n, err := dev.WriteBatchGather([][]byte{frameBuf(reply[:28])}, tails, Headroom); n != 1 || err != nil {
		t.Fatalf("WriteBatchGather = %d, %v", n, err)
	}
	if err := ping.Wait(); err != nil {
		t.Errorf("ping got no answer: %v\n%s", err, out)
	}
}

// The unprivileged path: root makes a persistent TAP for a user, who opens
// it with no capability at all, provided /dev/net/tun lets them (0666, as on
// most distributions). With /dev/net/tun at 0600 they get ErrPermission.
func TestTAPUnprivileged(t *testing.T) {
	testnet.RequireRoot(t)
	for _, tool := range []string{"setpriv", "unshare", "sh", "mount", "mknod"} {
		testnet.RequireTool(t, tool)
	}
	ns := quietNS(t, "tsdev6")
	testnet.Exec(t, ns, "ip", "tuntap", "add", "tsdevtap6", "mode", "tap", "user", "65534")
	t.Cleanup(func() { testnet.Run(ns, testnet.DefaultTimeout, "ip", "link", "del", "tsdevtap6") })

	// A copy of this test binary that user 65534 may run.
	dir, err := os.MkdirTemp("", "tsdev")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	exe := filepath.Join(dir, "device.test")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	testnet.Exec(t, nil, "cp", self, exe)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	asNobody := "exec setpriv --reuid 65534 --regid 65534 --clear-groups --inh-caps=-all " + exe +
		" -test.run=^TestTAPUnprivilegedChild$ -test.v"
	run := func(script string) string {
		t.Helper()
		out, _ := testnet.Run(ns, testnet.DefaultTimeout, "env", "TAPSTACK_CHILD_TAP=tsdevtap6",
			"unshare", "-m", "--propagation", "private", "sh", "-c", script)
		t.Logf("child: %s", out)
		return out
	}

	if out := run(asNobody); !strings.Contains(out, "CHILD ERR permission: tsdevtap6: no permission to open /dev/net/tun") {
		t.Errorf("as nobody with /dev/net/tun at 0600: want ErrPermission, got\n%s", out)
	}
	// In a private mount namespace, a 0666 node for the same device.
	mnt := filepath.Join(dir, "dev")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	open := fmt.Sprintf("mount -t tmpfs -o mode=0755 tsdev %[1]s && mknod -m 0666 %[1]s/tun c 10 200 && mount --bind %[1]s/tun /dev/net/tun && ", mnt)
	if out := run(open + asNobody); !strings.Contains(out, "CHILD OK") {
		t.Errorf("as nobody with a 0666 /dev/net/tun: want the persistent TAP to open, got\n%s", out)
	}
	if out := run(open + "exec setpriv --reuid 1 --regid 1 --clear-groups --inh-caps=-all " + exe +
		" -test.run=^TestTAPUnprivilegedChild$ -test.v"); !strings.Contains(out, "CHILD ERR permission: tsdevtap6: TAP tsdevtap6 belongs to another user") {
		t.Errorf("as another user: want ErrPermission naming the owner problem, got\n%s", out)
	}
}

// TestTAPUnprivilegedChild runs in the process TestTAPUnprivileged starts.
func TestTAPUnprivilegedChild(t *testing.T) {
	name := os.Getenv("TAPSTACK_CHILD_TAP")
	if name == "" {
		t.Skip("run by TestTAPUnprivileged")
	}
	d, err := OpenTAP(name, Config{})
	switch {
	case err == nil:
		fmt.Printf("CHILD OK uid %d mac %v mtu %d\n", os.Getuid(), d.KernelAddr(), d.MTU())
		d.Close()
	case errors.Is(err, ErrPermission):
		fmt.Printf("CHILD ERR permission: %v\n", err)
	default:
		fmt.Printf("CHILD ERR other: %v\n", err)
	}
}

func TestRawKernelARP(t *testing.T) {
	testnet.RequireRoot(t)
	ns := quietNS(t, "tsdev7")
	// Our end in the host namespace, as a raw socket on a real NIC would be.
	kernel, ours := ns.AddVeth(t, "tsdevv7k", netip.MustParsePrefix("10.98.2.1/24"), "tsdevv7o", nil)
	dev, err := OpenRaw("tsdevv7o", Config{})
	if err != nil {
		t.Fatal(err)
	}
	frames := startReader(t, dev)
	kernel.WaitUp(t)
	ours.WaitUp(t)
	if !bytes.Equal(dev.KernelAddr(), ours.MAC(t)) || bytes.Equal(dev.LinkAddr(), dev.KernelAddr()) {
		t.Errorf("KernelAddr %v (ip link: %v), LinkAddr %v", dev.KernelAddr(), ours.MAC(t), dev.LinkAddr())
	}
	if dev.MTU() != 1500 || dev.Name() != "tsdevv7o" {
		t.Errorf("MTU %d Name %q", dev.MTU(), dev.Name())
	}
	if p := ours.Promiscuity(t); p != 1 {
		t.Errorf("promiscuity %d while open, want 1", p)
	}
	checkARPReply(t, dev, frames, ns, "tsdevv7k", kernel.MAC(t),
		netip.MustParseAddr("10.98.2.1"), netip.MustParseAddr("10.98.2.2"))
	dev.Close()
	for f := range frames {
		if eth, _ := asARP(f); eth != nil && bytes.Equal(eth.SrcMAC, dev.LinkAddr()) {
			t.Errorf("read back our own frame: %x", f)
		}
	}
	if p := ours.Promiscuity(t); p != 0 {
		t.Errorf("promiscuity %d after Close, want 0", p)
	}
}

// The stack's MAC is not the interface's: promiscuous mode brings in frames
// for any MAC; frames queued together come back from one recvmmsg.
func TestRawPromiscuousBatch(t *testing.T) {
	testnet.RequireRoot(t)
	testnet.RequireTool(t, "bash")
	kns, ons := quietNS(t, "tsdev8k"), quietNS(t, "tsdev8o")
	kernel, _ := kns.AddVeth(t, "tsdevv8k", netip.MustParsePrefix("10.98.4.1/24"), "tsdevv8o", ons)
	dev := testnet.In(t, ons, func() (*RawSocket, error) { return OpenRaw("tsdevv8o", Config{}) })
	defer dev.Close()
	kernel.WaitUp(t)
	other := "02:98:00:00:00:09"
	testnet.Exec(t, kns, "ip", "neigh", "add", "10.98.4.9", "lladdr", other, "dev", "tsdevv8k", "nud", "permanent")
	testnet.Exec(t, kns, "bash", "-c",
		`for i in $(seq 10); do echo $i > /dev/udp/10.98.4.9/9; done; printf '%0300d' 0 > /dev/udp/10.98.4.9/9`)
	bufs, sizes, n := readAll(t, dev, 10, 1)
	for i := range n {
		p := gopacket.NewPacket(bufs[i][Headroom:Headroom+sizes[i]], layers.LayerTypeEthernet, gopacket.Default)
		eth, _ := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
		udp, _ := p.Layer(layers.LayerTypeUDP).(*layers.UDP)
		if eth == nil || eth.DstMAC.String() != other || udp == nil || string(udp.Payload) != strconv.Itoa(i+1)+"\n" {
			t.Errorf("frame %d: %v", i, p)
		}
	}
}

// Close unblocks a ReadBatch parked in the poller, for both backends.
func TestCloseUnblocksKernelDevices(t *testing.T) {
	testnet.RequireRoot(t)
	ns := quietNS(t, "tsdev9")
	ns.AddTAP(t, "tsdevtap9", netip.Prefix{})
	ns.AddVeth(t, "tsdevv9k", netip.Prefix{}, "tsdevv9o", ns)
	opens := map[string]func() (Device, error){
		"Tun":       func() (Device, error) { return OpenTAP("tsdevtap9", Config{}) },
		"RawSocket": func() (Device, error) { return OpenRaw("tsdevv9o", Config{}) },
	}
	for _, typ := range []string{"Tun", "RawSocket"} {
		t.Run(typ, func(t *testing.T) {
			dev := testnet.In(t, ns, opens[typ])
			errc := make(chan error, 1)
			go func() {
				bufs, sizes := newBufs(4, MaxFrameSize(dev))
				for {
					// Frames may arrive (the link just came up); wait for the
					// read that Close interrupts.
					if _, err := dev.ReadBatch(bufs, sizes, Headroom); err != nil {
						errc <- err
						return
					}
				}
			}()
			waitBlocked(t, "(*"+typ+").ReadBatch")
			if err := dev.Close(); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-errc:
				if !errors.Is(err, net.ErrClosed) {
					t.Errorf("ReadBatch after Close: %v, want net.ErrClosed", err)
				}
			case <-time.After(frameWait):
				t.Fatal("ReadBatch still blocked after Close")
			}
			if _, err := dev.WriteBatch([][]byte{frameBuf(make([]byte, 60))}, Headroom); !errors.Is(err, net.ErrClosed) {
				t.Errorf("WriteBatch after Close: %v, want net.ErrClosed", err)
			}
			if err := dev.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
		})
	}
}

// The capture of a real exchange reads back in tshark: frame count and ARP
// fields.
func TestPcapKernelTshark(t *testing.T) {
	testnet.RequireRoot(t)
	testnet.RequireTool(t, "tshark")
	ns := quietNS(t, "tsdev10")
	link := ns.AddTAP(t, "tsdevtap10", netip.MustParsePrefix("10.98.5.1/24"))
	tap := testnet.In(t, ns, func() (*Tun, error) { return OpenTAP("tsdevtap10", Config{}) })
	link.WaitUp(t)
	path := filepath.Join(t.TempDir(), "arp.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	bw := bufio.NewWriter(f)
	pc, err := NewPcap(tap, bw, nil)
	if err != nil {
		t.Fatal(err)
	}
	dev := NewCounters(pc)
	frames := startReader(t, dev)
	ours := dev.LinkAddr()
	writeFrames(t, dev, arpRequest(t, ours, netip.MustParseAddr("10.98.5.2"), netip.MustParseAddr("10.98.5.1")))
	waitFrame(t, frames, "ARP reply", func(f []byte) bool {
		_, arp := asARP(f)
		return arp != nil && arp.Operation == layers.ARPReply
	})
	if err := dev.Close(); err != nil {
		t.Fatal(err)
	}
	for range frames { // drain: the reader has ended once frames closes
	}
	st := dev.Stats()
	total := st.RxFrames + st.TxFrames
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stdout, err := exec.CommandContext(ctx, "tshark", "-r", path, "-T", "fields", "-E", "separator=,",
		"-e", "arp.opcode", "-e", "arp.src.hw_mac", "-e", "arp.src.proto_ipv4", "-e", "arp.dst.hw_mac", "-e", "arp.dst.proto_ipv4").Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	out := string(stdout)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if uint64(len(lines)) != total {
		t.Errorf("tshark reads %d frames, the device moved %d:\n%s", len(lines), total, out)
	}
	want := []string{
		"1," + ours.String() + ",10.98.5.2,00:00:00:00:00:00,10.98.5.1",
		"2," + tap.KernelAddr().String() + ",10.98.5.1," + ours.String() + ",10.98.5.2",
	}
	for _, w := range want {
		if !strings.Contains(out, w+"\n") && !strings.HasSuffix(out, w) {
			t.Errorf("tshark output lacks %q:\n%s", w, out)
		}
	}
}

// The write paths into the kernel (which discards the frames: an unknown
// EtherType), BatchSize frames per call.
func BenchmarkTAPWrite(b *testing.B) {
	testnet.RequireRoot(b)
	ns := quietNS(b, "tsdevb1")
	ns.AddTAP(b, "tsdevtapb1", netip.MustParsePrefix("10.98.8.1/24"))
	benchWrite(b, testnet.In(b, ns, func() (*Tun, error) { return OpenTAP("tsdevtapb1", Config{}) }))
}

func BenchmarkRawWrite(b *testing.B) {
	testnet.RequireRoot(b)
	ns := quietNS(b, "tsdevb2")
	ns.AddVeth(b, "tsdevvb2k", netip.MustParsePrefix("10.98.8.1/24"), "tsdevvb2o", ns)
	benchWrite(b, testnet.In(b, ns, func() (*RawSocket, error) { return OpenRaw("tsdevvb2o", Config{}) }))
}

func benchWrite(b *testing.B, dev Device) {
	defer dev.Close()
	frame := serialize(b,
		&layers.Ethernet{SrcMAC: dev.LinkAddr(), DstMAC: layers.EthernetBroadcast, EthernetType: layers.EthernetType(0x88b5)},
		gopacket.Payload(make([]byte, 1000)))
	batch := make([][]byte, dev.BatchSize())
	for i := range batch {
		batch[i] = frameBuf(frame)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(frame) * len(batch)))
	for b.Loop() {
		if _, err := dev.WriteBatch(batch, Headroom); err != nil {
			b.Fatal(err)
		}
	}
}

// rawPair opens raw sockets on both ends of a veth inside a quiet namespace.
func rawPair(t testing.TB, nsName, a, b string, cfg Config) (*RawSocket, *RawSocket) {
	ns := quietNS(t, nsName)
	la, lb := ns.AddVeth(t, a, netip.Prefix{}, b, ns)
	da := testnet.In(t, ns, func() (*RawSocket, error) { return OpenRaw(a, cfg) })
	t.Cleanup(func() { da.Close() })
	db := testnet.In(t, ns, func() (*RawSocket, error) { return OpenRaw(b, cfg) })
	t.Cleanup(func() { db.Close() })
	la.WaitUp(t)
	lb.WaitUp(t)
	return da, db
}

// testFrame is a frame of an experimental EtherType that no kernel
// protocol takes, size bytes long.
func testFrame(t testing.TB, src, dst net.HardwareAddr, size int) []byte {
	return serialize(t, &layers.Ethernet{SrcMAC: src, DstMAC: dst, EthernetType: layers.EthernetType(0x88b5)},
		gopacket.Payload(make([]byte, size-EthernetHeaderLen)))
}

// The steady-state I/O paths allocate nothing.
func TestKernelDevicesNoAllocs(t *testing.T) {
	testnet.RequireRoot(t)
	t.Run("RawSocket", func(t *testing.T) {
		a, b := rawPair(t, "tsdev11", "tsdevv11a", "tsdevv11b", Config{})
		out := [][]byte{frameBuf(testFrame(t, a.LinkAddr(), b.LinkAddr(), 1000))}
		bufs, sizes := newBufs(4, MaxFrameSize(b))
		allocs := testing.AllocsPerRun(50, func() {
			if n, err := a.WriteBatch(out, Headroom); n != 1 || err != nil {
				t.Fatalf("WriteBatch = %d, %v", n, err)
			}
			if n, err := b.ReadBatch(bufs, sizes, Headroom); n != 1 || err != nil || sizes[0] != 1000 {
				t.Fatalf("ReadBatch = %d, %v", n, err)
			}
		})
		if allocs != 0 {
			t.Errorf("%v allocations per write+read", allocs)
		}
	})
	t.Run("Tun", func(t *testing.T) {
		testnet.RequireTool(t, "bash")
		ns := quietNS(t, "tsdev12")
		link := ns.AddTAP(t, "tsdevtap12", netip.MustParsePrefix("10.98.6.1/24"))
		dev := testnet.In(t, ns, func() (*Tun, error) { return OpenTAP("tsdevtap12", Config{}) })
		defer dev.Close()
		link.WaitUp(t)
		testnet.Exec(t, ns, "ip", "neigh", "add", "10.98.6.9", "lladdr", "02:98:00:00:00:09", "dev", "tsdevtap12", "nud", "permanent")
		// 60 frames queued, for the 51 reads below.
		testnet.Exec(t, ns, "bash", "-c", `for i in $(seq 60); do echo $i > /dev/udp/10.98.6.9/9; done`)
		out := [][]byte{frameBuf(testFrame(t, dev.LinkAddr(), layers.EthernetBroadcast, 1000))}
		bufs, sizes := newBufs(1, MaxFrameSize(dev))
		allocs := testing.AllocsPerRun(50, func() {
			if n, err := dev.WriteBatch(out, Headroom); n != 1 || err != nil {
				t.Fatalf("WriteBatch = %d, %v", n, err)
			}
			if n, err := dev.ReadBatch(bufs, sizes, Headroom); n != 1 || err != nil {
				t.Fatalf("ReadBatch = %d, %v", n, err)
			}
		})
		if allocs != 0 {
			t.Errorf("%v allocations per write+read", allocs)
		}
	})
}

// Frames through a veth between two raw sockets: sendmmsg on one end,
// recvmmsg on the other, BatchSize frames of 1514 bytes per round.
func BenchmarkRawVeth(b *testing.B) {
	testnet.RequireRoot(b)
	x, y := rawPair(b, "tsdevb3", "tsdevvb3a", "tsdevvb3b", Config{})
	frame := testFrame(b, x.LinkAddr(), y.LinkAddr(), 1514)
	out := make([][]byte, x.BatchSize())
	for i := range out {
		out[i] = frameBuf(frame)
	}
	bufs, sizes := newBufs(y.BatchSize(), MaxFrameSize(y))
	b.ReportAllocs()
	b.SetBytes(int64(len(frame) * len(out)))
	for b.Loop() {
		if _, err := x.WriteBatch(out, Headroom); err != nil {
			b.Fatal(err)
		}
		for got := 0; got < len(out); {
			_, txDrops := x.Drops()
			rxDrops, _ := y.Drops()
			if uint64(got)+rxDrops+txDrops >= uint64(len(out)) {
				break // frames lost on the way are counted, not awaited
			}
			n, err := y.ReadBatch(bufs, sizes, Headroom)
			if err != nil {
				b.Fatal(err)
			}
			got += n
		}
	}
	rx, _ := y.Drops()
	_, tx := x.Drops()
	b.ReportMetric(float64(rx+tx)/float64(b.N*len(out)), "drops/frame")
}
