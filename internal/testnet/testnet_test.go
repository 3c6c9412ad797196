package testnet

import (
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeTB records a fatal failure instead of ending the test.
type fakeTB struct {
	testing.TB
	fatal string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.fatal = format
	runtime.Goexit()
}

func TestCheckName(t *testing.T) {
	for name, ok := range map[string]bool{
		"tsdev1": true, "tsdevabcdefghij": true, // 15 bytes
		"eth0": false, "tsdevabcdefghijk": false, "ts/x": false, "ts x": false,
	} {
		f := &fakeTB{TB: t}
		done := make(chan struct{})
		go func() {
			defer close(done)
			checkName(f, name)
		}()
		<-done
		if (f.fatal == "") != ok {
			t.Errorf("checkName(%q): accepted %v, want %v", name, f.fatal == "", ok)
		}
	}
}

func TestRunTimeout(t *testing.T) {
	start := time.Now()
	_, err := Run(nil, 100*time.Millisecond, "sleep", "10")
	if err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Errorf("Run(sleep 10) with a 100ms timeout: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the timeout took %v", d)
	}
	if out, err := Run(nil, time.Second, "sh", "-c", "echo out; echo err >&2; exit 3"); err == nil || out != "out\nerr\n" {
		t.Errorf("Run(exit 3) = %q, %v; want both streams and an error", out, err)
	}
}

func netnsInode(t *testing.T) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat("/proc/thread-self/ns/net", &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

func TestDoEntersNamespace(t *testing.T) {
	RequireRoot(t)
	ns := NewNS(t, "tsdevn1")
	host := netnsInode(t)
	var inside uint64
	var ifaces []net.Interface
	err := ns.Do(func() error {
		inside = netnsInode(t)
		var err error
		ifaces, err = net.Interfaces()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if inside == host {
		t.Errorf("Do ran f in the host namespace")
	}
	if len(ifaces) != 1 || ifaces[0].Name != "lo" || ifaces[0].Flags&net.FlagUp == 0 {
		t.Errorf("interfaces inside: %v, want lo, up", ifaces)
	}
	if netnsInode(t) != host {
		t.Errorf("the calling thread changed namespace")
	}
	if err := (*NS)(nil).Do(func() error { return nil }); err != nil {
		t.Errorf("nil NS: %v", err)
	}
}

// A veth between two namespaces carries traffic, and everything is gone
// after cleanup.
func TestVethAndCleanup(t *testing.T) {
	RequireRoot(t)
	RequireTool(t, "ping")
	t.Run("build", func(t *testing.T) {
		a, b := NewNS(t, "tsdevn2"), NewNS(t, "tsdevn3")
		k, o := a.AddVeth(t, "tsdevn2k", netip.MustParsePrefix("10.98.10.1/24"), "tsdevn3o", b)
		Exec(t, b, "ip", "addr", "add", "10.98.10.2/24", "dev", o.Name)
		k.WaitUp(t)
		o.WaitUp(t)
		Exec(t, a, "ping", "-c1", "-W5", "10.98.10.2")
		if k.MAC(t).String() == o.MAC(t).String() || o.Promiscuity(t) != 0 {
			t.Errorf("MACs %v %v, promiscuity %d", k.MAC(t), o.MAC(t), o.Promiscuity(t))
		}
		if out := Exec(t, a, "ethtool", "-k", k.Name); !strings.Contains(out, "tx-checksumming: off") {
			t.Errorf("checksum offload still on:\n%s", out)
		}
		tap := a.AddTAP(t, "tsdevn2tap", netip.MustParsePrefix("10.98.11.1/24"))
		if out := Exec(t, a, "ip", "-d", "link", "show", tap.Name); !strings.Contains(out, "tun type tap") {
			t.Errorf("not a TAP: %s", out)
		}
	})
	if out := Exec(t, nil, "ip", "netns", "list"); strings.Contains(out, "tsdevn2") || strings.Contains(out, "tsdevn3") {
		t.Errorf("namespaces left after cleanup:\n%s", out)
	}
}

// The veth end that stays in the host namespace is removed by cleanup.
func TestVethHostEnd(t *testing.T) {
	RequireRoot(t)
	t.Run("build", func(t *testing.T) {
		ns := NewNS(t, "tsdevn4")
		_, o := ns.AddVeth(t, "tsdevn4k", netip.Prefix{}, "tsdevn4o", nil)
		Exec(t, nil, "ip", "link", "show", o.Name)
	})
	if out, err := Run(nil, DefaultTimeout, "ip", "link", "show", "tsdevn4o"); err == nil {
		t.Errorf("host end left after cleanup: %s", out)
	}
}

// scripts/netns.sh up is idempotent and down removes everything.
func TestNetnsScript(t *testing.T) {
	RequireRoot(t)
	script := "../../scripts/netns.sh"
	if _, err := os.Stat(script); err != nil {
		t.Fatal(err)
	}
	const name = "tsdevsh"
	t.Cleanup(func() { Run(nil, DefaultTimeout, "ip", "netns", "del", name) })
	ns := &NS{Name: name}
	for range 2 {
		out := Exec(t, nil, script, "up", name, "--tap", "tsdevshtap", "--addr", "10.98.9.1/24")
		if !strings.Contains(out, "10.98.9.2") {
			t.Errorf("up does not say which address the stack takes:\n%s", out)
		}
		addrs := Exec(t, ns, "ip", "-4", "-o", "addr", "show", "dev", "tsdevshtap")
		if strings.Count(addrs, "inet ") != 1 || !strings.Contains(addrs, "10.98.9.1/24") {
			t.Errorf("addresses after up: %s", addrs)
		}
		if out := Exec(t, ns, "ip", "-d", "link", "show", "tsdevshtap"); !strings.Contains(out, "tun type tap") || !strings.Contains(out, "persist on") {
			t.Errorf("not a persistent TAP: %s", out)
		}
	}
	for range 2 {
		Exec(t, nil, script, "down", name)
		if _, err := os.Stat(nsPath(name)); err == nil {
			t.Errorf("namespace %s still there after down", name)
		}
	}
	if out, err := Run(nil, DefaultTimeout, script, "up", name, "--addr", "bogus"); err == nil || !strings.Contains(out, "not an IPv4 address") {
		t.Errorf("bad --addr: %v %s", err, out)
	}
}
