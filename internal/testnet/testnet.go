// Package testnet builds throwaway Linux network set-ups for tests that use
// the kernel as a peer: network namespaces, TAP and TUN devices and veth
// pairs, each removed by t.Cleanup (also when the test fails).
//
// The kernel side of every device lives inside a namespace the test created,
// so tests never touch the host's interfaces, addresses or routes, and tests
// with distinct names can run in parallel. The test process opens its side
// from there with NS.Do, which runs a function on an OS thread that has
// entered the namespace; a file descriptor opened there (a TAP file, a packet
// socket) keeps working after the thread returns to the host namespace.
//
// A typical TAP test:
//
//	testnet.RequireRoot(t)
//	ns := testnet.NewNS(t, "tsfoo1")
//	ns.AddTAP(t, "tsfootap", netip.MustParsePrefix("10.98.7.1/24"))
//	dev := testnet.In(t, ns, func() (*device.Tun, error) {
//		return device.OpenTAP("tsfootap", device.Config{})
//	})
//	t.Cleanup(func() { dev.Close() })
//	// the kernel answers at 10.98.7.1; the stack takes 10.98.7.2
//	testnet.Exec(t, ns, "ping", "-c1", "-W1", "10.98.7.2")
//
// Names: every namespace and interface name must start with "ts" and be at
// most 15 bytes; tests pick unique names and 10.x subnets of their own.
// Everything here needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN): call
// RequireRoot first.
package testnet

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
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// EnvRequireRoot names the environment variable that, set to 1, makes
// RequireRoot fail a test instead of skipping it (CI sets it, so a root-only
// test cannot pass by being skipped).
const EnvRequireRoot = "TAPSTACK_REQUIRE_ROOT"

// DefaultTimeout bounds Exec and every command run while setting up.
const DefaultTimeout = 10 * time.Second

// RequireRoot skips the test unless the process runs as root, or fails it
// when TAPSTACK_REQUIRE_ROOT=1. It also skips (or fails) when the tools the
// helpers drive (ip) are missing.
func RequireRoot(t testing.TB) {
	t.Helper()
	strict := os.Getenv(EnvRequireRoot) == "1"
	miss := t.Skipf
	if strict {
		miss = t.Fatalf
	}
	if os.Geteuid() != 0 {
		miss("needs root (network namespaces, TAP and veth devices); run as root, or unset %s to skip", EnvRequireRoot)
	}
	if _, err := exec.LookPath("ip"); err != nil {
		miss("needs the ip command (Debian: apt-get install iproute2)")
	}
}

// RequireTool skips the test (or fails it, as RequireRoot) when program
// is not on PATH.
func RequireTool(t testing.TB, program string) {
	t.Helper()
	if _, err := exec.LookPath(program); err != nil {
		if os.Getenv(EnvRequireRoot) == "1" {
			t.Fatalf("needs %s on PATH", program)
		}
		t.Skipf("needs %s on PATH", program)
	}
}

// NS is a network namespace created by NewNS. A nil *NS stands for the
// test process's own (host) namespace wherever one is accepted.
type NS struct {
	Name string
}

// checkName fails t unless name is a "ts"-prefixed name that fits an
// interface name (IFNAMSIZ-1 bytes), which also suits a namespace.
func checkName(t testing.TB, name string) {
	t.Helper()
	if !strings.HasPrefix(name, "ts") || len(name) > 15 || strings.ContainsAny(name, "/ \t\n%:") {
		t.Fatalf("testnet: name %q: use a unique name starting with \"ts\", at most 15 bytes", name)
	}
}

// NewNS creates network namespace name with its loopback up, replacing a
// stale one of the same name left by a killed run, and deletes it at
// cleanup. Devices inside it go with it.
func NewNS(t testing.TB, name string) *NS {
	t.Helper()
	checkName(t, name)
	if _, err := os.Stat(nsPath(name)); err == nil {
		_, _ = Run(nil, DefaultTimeout, "ip", "netns", "del", name)
	}
	Exec(t, nil, "ip", "netns", "add", name)
	ns := &NS{Name: name}
	t.Cleanup(func() {
		if out, err := Run(nil, DefaultTimeout, "ip", "netns", "del", name); err != nil {
			t.Errorf("testnet: deleting namespace %s: %v: %s", name, err, out)
		}
	})
	Exec(t, ns, "ip", "link", "set", "lo", "up")
	return ns
}

func nsPath(name string) string { return filepath.Join("/run/netns", name) }

func (ns *NS) String() string {
	if ns == nil {
		return "host"
	}
	return ns.Name
}

// Do runs f on an OS thread that has entered ns (the calling goroutine's
// thread is left alone) and returns f's error. Sockets and files that f
// opens stay in ns after Do returns; so do the interfaces f creates. f must
// not expect goroutines it starts to run inside ns. A nil ns runs f as is.
func (ns *NS) Do(f func() error) error {
	if ns == nil {
		return f()
	}
	target, err := os.Open(nsPath(ns.Name))
	if err != nil {
		return fmt.Errorf("testnet: namespace %s: %w", ns.Name, err)
	}
	defer target.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("testnet: own namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("testnet: entering %s: %w", ns.Name, err)
			return
		}
		ferr := f()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			// Keep the thread locked: the runtime ends it with this
			// goroutine instead of reusing a thread in the wrong namespace.
			errc <- errors.Join(ferr, fmt.Errorf("testnet: leaving %s: %w", ns.Name, err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// In runs open inside ns (see NS.Do) and returns its result, failing t on
// error. It is how a test opens a device whose interface lives in ns:
//
//	dev := testnet.In(t, ns, func() (*device.Tun, error) { return device.OpenTAP(name, cfg) })
func In[T any](t testing.TB, ns *NS, open func() (T, error)) T {
	t.Helper()
	var v T
	err := ns.Do(func() error {
		var err error
		v, err = open()
		return err
	})
	if err != nil {
		t.Fatalf("in namespace %s: %v", ns, err)
	}
	return v
}

// Run runs a command inside ns (nil: the host namespace) and returns its
// combined output. The command is killed after timeout.
func Run(ns *NS, timeout time.Duration, args ...string) (string, error) {
	if len(args) == 0 {
		return "", errors.New("testnet: Run: no command")
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := command(ctx, ns, args)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("%q in %s: timed out after %v", strings.Join(args, " "), ns, timeout)
	} else if err != nil {
		err = fmt.Errorf("%q in %s: %w", strings.Join(args, " "), ns, err)
	}
	return out.String(), err
}

func command(ctx context.Context, ns *NS, args []string) *exec.Cmd {
	if ns != nil {
		args = append([]string{"ip", "netns", "exec", ns.Name}, args...)
	}
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.WaitDelay = time.Second // do not wait forever on a child holding the pipe
	return cmd
}

// Exec runs a command inside ns (nil: the host namespace) with
// DefaultTimeout and returns its combined output; it fails t if the command
// fails or times out.
func Exec(t testing.TB, ns *NS, args ...string) string {
	t.Helper()
	out, err := Run(ns, DefaultTimeout, args...)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return out
}

// Start starts a long-running command inside ns (a server, tcpdump) and
// kills it, by its PID, at cleanup. Its output goes to the returned
// buffer, which the test may read once the command has ended (Wait).
func Start(t testing.TB, ns *NS, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := command(context.Background(), ns, args)
	out := new(bytes.Buffer)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %q in %s: %v", strings.Join(args, " "), ns, err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd, out
}

// WaitFor polls cond every 10ms until it holds, failing t after timeout.
// what names the condition in the failure message.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Sysctl sets a sysctl inside ns, for example
// ns.Sysctl(t, "net.ipv6.conf.all.disable_ipv6", "1") to keep IPv6 chatter
// (router solicitations, MLD reports) off a link.
func (ns *NS) Sysctl(t testing.TB, key, value string) {
	t.Helper()
	path := filepath.Join("/proc/sys", strings.ReplaceAll(key, ".", "/"))
	if err := ns.Do(func() error { return os.WriteFile(path, []byte(value), 0) }); err != nil {
		t.Fatalf("sysctl %s=%s in %s: %v", key, value, ns, err)
	}
}

// Link is an interface made by AddTAP, AddTUN or AddVeth.
type Link struct {
	Name string
	NS   *NS          // where it lives; nil: the host namespace
	Addr netip.Prefix // the kernel's address on it; invalid if none
}

// AddTAP creates a persistent TAP interface name inside ns, gives the
// kernel side addr (skipped if addr is the zero Prefix) and sets it up. The
// test opens the other side with device.OpenTAP inside ns (In or NS.Do).
// The link has no carrier until it is opened.
func (ns *NS) AddTAP(t testing.TB, name string, addr netip.Prefix) *Link {
	t.Helper()
	return ns.addTunTap(t, name, "tap", addr)
}

// AddTUN is AddTAP for an L3 TUN interface.
func (ns *NS) AddTUN(t testing.TB, name string, addr netip.Prefix) *Link {
	t.Helper()
	return ns.addTunTap(t, name, "tun", addr)
}

func (ns *NS) addTunTap(t testing.TB, name, mode string, addr netip.Prefix) *Link {
	t.Helper()
	checkName(t, name)
	Exec(t, ns, "ip", "tuntap", "add", name, "mode", mode)
	t.Cleanup(func() { _, _ = Run(ns, DefaultTimeout, "ip", "link", "del", name) })
	l := &Link{Name: name, NS: ns, Addr: addr}
	l.setUp(t)
	return l
}

// AddVeth creates a veth pair inside ns: end kernel stays in ns, gets addr
// (skipped if zero) and is up, with transmit checksum offload off so that
// the frames it sends carry complete checksums; end ours moves to oursNS
// (nil: the host namespace), is up and has no address, ready for a raw
// socket (device.OpenRaw inside oursNS). Both are deleted at cleanup.
func (ns *NS) AddVeth(t testing.TB, kernel string, addr netip.Prefix, ours string, oursNS *NS) (k, o *Link) {
	t.Helper()
	checkName(t, kernel)
	checkName(t, ours)
	if oursNS == nil {
		// A stale end from a killed run would make "ip link add" fail.
		_, _ = Run(nil, DefaultTimeout, "ip", "link", "del", ours)
	}
	Exec(t, ns, "ip", "link", "add", kernel, "type", "veth", "peer", "name", ours)
	t.Cleanup(func() { _, _ = Run(ns, DefaultTimeout, "ip", "link", "del", kernel) })
	dest := strconv.Itoa(os.Getpid()) // this process's namespace
	if oursNS != nil {
		dest = oursNS.Name
	}
	if oursNS != ns {
		Exec(t, ns, "ip", "link", "set", ours, "netns", dest)
	}
	k = &Link{Name: kernel, NS: ns, Addr: addr}
	o = &Link{Name: ours, NS: oursNS}
	if _, err := exec.LookPath("ethtool"); err == nil {
		Exec(t, ns, "ethtool", "-K", kernel, "tx", "off")
	} else {
		t.Logf("testnet: no ethtool: %s keeps checksum offload; frames from the kernel may carry partial checksums", kernel)
	}
	k.setUp(t)
	o.setUp(t)
	return k, o
}

func (l *Link) setUp(t testing.TB) {
	t.Helper()
	if l.Addr.IsValid() {
		Exec(t, l.NS, "ip", "addr", "add", l.Addr.String(), "dev", l.Name)
	}
	Exec(t, l.NS, "ip", "link", "set", l.Name, "up")
}

// MAC returns the interface's current MAC address.
func (l *Link) MAC(t testing.TB) net.HardwareAddr {
	t.Helper()
	var info []struct {
		Address string `json:"address"`
	}
	out := Exec(t, l.NS, "ip", "-j", "link", "show", "dev", l.Name)
	if err := json.Unmarshal([]byte(out), &info); err != nil || len(info) != 1 {
		t.Fatalf("ip -j link show %s: %v: %s", l.Name, err, out)
	}
	mac, err := net.ParseMAC(info[0].Address)
	if err != nil {
		t.Fatalf("%s: MAC %q: %v", l.Name, info[0].Address, err)
	}
	return mac
}

// Promiscuity returns the interface's promiscuity count (how many users
// asked for promiscuous mode).
func (l *Link) Promiscuity(t testing.TB) int {
	t.Helper()
	var info []struct {
		Promiscuity int `json:"promiscuity"`
	}
	out := Exec(t, l.NS, "ip", "-j", "-d", "link", "show", "dev", l.Name)
	if err := json.Unmarshal([]byte(out), &info); err != nil || len(info) != 1 {
		t.Fatalf("ip -j -d link show %s: %v: %s", l.Name, err, out)
	}
	return info[0].Promiscuity
}

// WaitUp waits, at most DefaultTimeout, until the interface's operational
// state is UP. A TAP or TUN is up only once a process has opened it, and
// the kernel brings a link up asynchronously: until then it drops the
// frames it would send (its replies among them). Call WaitUp after opening
// the device and before expecting the kernel to answer.
func (l *Link) WaitUp(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(DefaultTimeout)
	for {
		state := l.operState()
		if state == "UP" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s in %s: operstate %q after %v, want UP", l.Name, l.NS, state, DefaultTimeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (l *Link) operState() string {
	var info []struct {
		OperState string `json:"operstate"`
	}
	out, err := Run(l.NS, DefaultTimeout, "ip", "-j", "link", "show", "dev", l.Name)
	if err != nil || json.Unmarshal([]byte(out), &info) != nil || len(info) != 1 {
		return "unknown: " + strings.TrimSpace(out)
	}
	return info[0].OperState
}
