package device

import (
	"bufio"
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ifreqAddr is struct ifreq with the struct sockaddr member of its union,
// the shape SIOCGIFHWADDR fills.
type ifreqAddr struct {
	Name   [unix.IFNAMSIZ]byte
	Family uint16
	Data   [14]byte
	_      [8]byte
}

// ifHWAddr returns the ARP hardware type (ARPHRD_*) and, for Ethernet, the
// MAC of interface name, through fd (a socket, or a /dev/net/tun fd attached
// to name).
func ifHWAddr(fd int, name string) (uint16, net.HardwareAddr, error) {
	var ifr ifreqAddr
	copy(ifr.Name[:], name)
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCGIFHWADDR, uintptr(unsafe.Pointer(&ifr)))
	if errno != 0 {
		return 0, nil, errno
	}
	if ifr.Family != unix.ARPHRD_ETHER {
		return ifr.Family, nil, nil
	}
	return ifr.Family, append(net.HardwareAddr(nil), ifr.Data[:6]...), nil
}

// ifMTU returns interface name's MTU through the socket fd.
func ifMTU(fd int, name string) (int, error) {
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return 0, err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFMTU, ifr); err != nil {
		return 0, err
	}
	return int(int32(ifr.Uint32())), nil
}

// ifIndex returns interface name's index through the socket fd.
func ifIndex(fd int, name string) (int, error) {
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return 0, err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFINDEX, ifr); err != nil {
		return 0, err
	}
	return int(int32(ifr.Uint32())), nil
}

// ctlSocket opens a socket for interface ioctls in the calling thread's
// network namespace.
func ctlSocket() (int, error) {
	return unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
}

// ifExists reports whether interface name exists in the calling thread's
// network namespace. Errors count as "exists": it is only used to choose the
// wording of an error message, and "not found" must not be claimed wrongly.
func ifExists(name string) bool {
	s, err := ctlSocket()
	if err != nil {
		return true
	}
	defer unix.Close(s)
	_, err = ifIndex(s, name)
	return err != unix.ENODEV
}

// ifDriver returns the ethtool driver name and bus info of interface name:
// "tun" and "tap" or "tun" for TUN/TAP devices, "veth" and "" for a veth.
func ifDriver(name string) (driver, bus string) {
	s, err := ctlSocket()
	if err != nil {
		return "", ""
	}
	defer unix.Close(s)
	info, err := unix.IoctlGetEthtoolDrvinfo(s, name)
	if err != nil {
		return "", ""
	}
	return unix.ByteSliceToString(info.Driver[:]), unix.ByteSliceToString(info.Bus_info[:])
}

// validName checks an interface name the way the kernel will, so a bad one
// gets a clear error instead of EINVAL from an ioctl. '%' is refused too: the
// kernel would treat it as a pattern and pick a name for us.
func validName(name string) error {
	if len(name) == 0 || len(name) >= unix.IFNAMSIZ || name == "." || name == ".." ||
		strings.ContainsAny(name, "/:% \t\n") {
		return &SetupError{Kind: ErrInvalid, Name: name,
			Problem: "not a valid interface name",
			Fix:     "use 1-15 characters without '/', ':', '%' or spaces"}
	}
	return nil
}

// tunHolders names the processes that hold TUN/TAP device name open, as
// "pid 123 (tapstack)", by reading /proc/*/fdinfo, where the tun driver
// writes "iff:\tNAME" for each attached file. Best effort: it sees only the
// processes this one may inspect, and it runs on an error path only.
func tunHolders(name string) []string {
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	want := []byte("iff:\t" + name)
	var holders []string
	for _, p := range procs {
		pid := p.Name()
		if pid[0] < '0' || pid[0] > '9' || pid == "self" {
			continue
		}
		fds, err := os.ReadDir(filepath.Join("/proc", pid, "fd"))
		if err != nil {
			continue
		}
		for _, fd := range fds {
			target, err := os.Readlink(filepath.Join("/proc", pid, "fd", fd.Name()))
			if err != nil || target != "/dev/net/tun" {
				continue
			}
			if fdinfoHas(filepath.Join("/proc", pid, "fdinfo", fd.Name()), want) {
				comm, _ := os.ReadFile(filepath.Join("/proc", pid, "comm"))
				holders = append(holders, "pid "+pid+" ("+string(bytes.TrimSpace(comm))+")")
				break
			}
		}
	}
	return holders
}

func fdinfoHas(path string, line []byte) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if bytes.Equal(sc.Bytes(), line) {
			return true
		}
	}
	return false
}
