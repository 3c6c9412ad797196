package device

import (
	"errors"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Every set-up failure reads as one line that names a fix, matches exactly
// one sentinel, and keeps the errno reachable.
func TestSetupErrorMapping(t *testing.T) {
	sentinels := []error{ErrNotFound, ErrPermission, ErrBusy, ErrWrongMode, ErrInvalid}
	tests := []struct {
		name     string
		err      error
		kind     error
		errno    unix.Errno
		contains []string
	}{
		{"no tun driver", tunOpenError("tap0", false, unix.ENOENT), ErrNotFound, unix.ENOENT,
			[]string{"/dev/net/tun", "modprobe tun"}},
		{"tun not readable", tunOpenError("tap0", false, unix.EACCES), ErrPermission, unix.EACCES,
			[]string{"tap0: no permission to open /dev/net/tun", "ip tuntap add tap0 mode tap user $USER"}},
		{"missing tap, unprivileged", tunSetIFFError("tap0", false, unix.EPERM, tunFacts{}), ErrNotFound, unix.EPERM,
			[]string{"no TAP interface tap0", "create it as root: ip tuntap add tap0 mode tap user $USER"}},
		{"missing tun, unprivileged", tunSetIFFError("tun0", true, unix.EPERM, tunFacts{}), ErrNotFound, unix.EPERM,
			[]string{"no TUN interface tun0", "ip tuntap add tun0 mode tun user $USER"}},
		{"tap of another user", tunSetIFFError("tap0", false, unix.EPERM, tunFacts{exists: true, driver: "tun", bus: "tap"}),
			ErrPermission, unix.EPERM, []string{"belongs to another user", "ip tuntap del tap0 mode tap; ip tuntap add tap0 mode tap user $USER"}},
		{"busy", tunSetIFFError("tap0", false, unix.EBUSY, tunFacts{exists: true, driver: "tun", bus: "tap", holders: []string{"pid 42 (tapstack)"}}),
			ErrBusy, unix.EBUSY, []string{"in use by another process (pid 42 (tapstack))", "stop that process or use another TAP"}},
		{"busy, holder unknown", tunSetIFFError("tap0", false, unix.EBUSY, tunFacts{exists: true}),
			ErrBusy, unix.EBUSY, []string{"in use by another process;"}},
		{"tun opened as tap", tunSetIFFError("tun0", false, unix.EINVAL, tunFacts{exists: true, driver: "tun", bus: "tun"}),
			ErrWrongMode, unix.EINVAL, []string{"tun0 is a TUN interface, not a TAP", "open it as TUN", "ip tuntap add tun0 mode tap"}},
		{"tap opened as tun", tunSetIFFError("tap0", true, unix.EINVAL, tunFacts{exists: true, driver: "tun", bus: "tap"}),
			ErrWrongMode, unix.EINVAL, []string{"tap0 is a TAP interface, not a TUN", "open it as TAP"}},
		{"veth opened as tap", tunSetIFFError("veth0", false, unix.EINVAL, tunFacts{exists: true, driver: "veth"}),
			ErrWrongMode, unix.EINVAL, []string{"not a TUN/TAP interface (driver veth)", "raw socket"}},
		{"multi-queue tap", tunSetIFFError("tap0", false, unix.EINVAL, tunFacts{exists: true, driver: "tun", bus: "tap"}),
			ErrWrongMode, unix.EINVAL, []string{"refused our flags", "recreate it as root"}},
		{"raw without CAP_NET_RAW", rawError("eth0", "socket(AF_PACKET)", unix.EPERM, 0), ErrPermission, unix.EPERM,
			[]string{"CAP_NET_RAW", "setcap cap_net_raw+ep"}},
		{"raw on missing interface", rawError("eth9", "SIOCGIFINDEX", unix.ENODEV, 0), ErrNotFound, unix.ENODEV,
			[]string{"no interface eth9", "ip link"}},
		{"raw on a tun", rawError("tun0", "SIOCGIFHWADDR", nil, unix.ARPHRD_NONE), ErrWrongMode, 0,
			[]string{"not Ethernet", "OpenTUN"}},
		{"raw on loopback", rawError("lo", "SIOCGIFHWADDR", nil, unix.ARPHRD_LOOPBACK), ErrWrongMode, 0,
			[]string{"ARP hardware type 772"}},
		{"bad name", validName("a/b"), ErrInvalid, 0, []string{"a/b: not a valid interface name", "1-15 characters"}},
		{"long name", validName("abcdefghijklmnop"), ErrInvalid, 0, []string{"not a valid interface name"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := tt.err.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("message is not one line: %q", msg)
			}
			for _, s := range tt.contains {
				if !strings.Contains(msg, s) {
					t.Errorf("message %q lacks %q", msg, s)
				}
			}
			for _, s := range sentinels {
				if got := errors.Is(tt.err, s); got != (s == tt.kind) {
					t.Errorf("errors.Is(err, %v) = %v; message %q", s, got, msg)
				}
			}
			if tt.errno != 0 && !errors.Is(tt.err, tt.errno) {
				t.Errorf("errno %v not reachable from %q", tt.errno, msg)
			}
			var se *SetupError
			if !errors.As(tt.err, &se) || se.Fix == "" {
				t.Errorf("want a *SetupError with a Fix, got %#v", tt.err)
			}
		})
	}
}

func TestSetupErrorPermissionIsOSPermission(t *testing.T) {
	err := tunOpenError("tap0", false, unix.EACCES)
	if !errors.Is(err, os.ErrPermission) {
		t.Errorf("errors.Is(%q, os.ErrPermission) = false", err)
	}
}

func TestSetupErrorFormat(t *testing.T) {
	e := &SetupError{Kind: ErrBusy, Name: "tap0", Problem: "busy", Fix: "stop it", Op: "TUNSETIFF", Err: unix.EBUSY}
	if got, want := e.Error(), "tap0: busy; stop it (TUNSETIFF: device or resource busy)"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	e = &SetupError{Kind: ErrInvalid, Name: "x", Problem: "bad"}
	if got, want := e.Error(), "x: bad"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}
