package device

import (
	"bytes"
	"hash/fnv"
	"net"
)

// DefaultBatchSize is the batch size of the backends when Config leaves it 0.
const DefaultBatchSize = 64

// EthernetHeaderLen is the length of an untagged Ethernet header.
const EthernetHeaderLen = 14

// Config holds the options shared by OpenTAP, OpenTUN and OpenRaw. The zero
// value is a usable default.
type Config struct {
	// MAC is the stack's own address, returned by LinkAddr. Nil means
	// DefaultMAC(name). It must be a 6-byte unicast address. Ignored by TUN.
	MAC net.HardwareAddr
	// BatchSize is the most frames one ReadBatch or WriteBatch call moves
	// (per system call for a raw socket). 0 means DefaultBatchSize.
	BatchSize int
	// NoCreate makes OpenTAP and OpenTUN fail with ErrNotFound when the
	// interface does not exist, instead of creating a transient one (which
	// they do when the process has CAP_NET_ADMIN).
	NoCreate bool
	// Offloads turns on virtio-net headers (see Offloader): IFF_VNET_HDR
	// with TUNSETOFFLOAD on a TAP or TUN, PACKET_VNET_HDR on a raw socket.
	// Zero (the default) moves plain frames, as before. On a TAP or TUN the
	// set chooses what the kernel may hand over (partial checksums, TSO
	// super-segments); on a raw socket the interface and its peer decide
	// that, so any non-zero set means OffloadAll.
	Offloads Offloads
}

func (c *Config) batchSize() int {
	if c.BatchSize <= 0 {
		return DefaultBatchSize
	}
	return c.BatchSize
}

// stackMAC picks the stack's MAC for interface name whose kernel side has
// address kernel: the configured one, or DefaultMAC(name) made different from
// kernel should the hash collide.
func (c *Config) stackMAC(name string, kernel net.HardwareAddr) (net.HardwareAddr, error) {
	if c.MAC != nil {
		if len(c.MAC) != 6 || c.MAC[0]&1 != 0 {
			return nil, &SetupError{Kind: ErrInvalid, Name: name,
				Problem: "MAC " + c.MAC.String() + " is not a 6-byte unicast address",
				Fix:     "use an address like 02:00:00:00:00:01 (first byte even)"}
		}
		return append(net.HardwareAddr(nil), c.MAC...), nil
	}
	mac := DefaultMAC(name)
	if bytes.Equal(mac, kernel) {
		mac[5] ^= 1
	}
	return mac, nil
}

// DefaultMAC is the stack's MAC on interface name when Config.MAC is nil: a
// locally administered unicast address 02:xx:xx:xx:xx:xx whose last five
// bytes are the FNV-1a hash of "tapstack:"+name. It is deterministic (the
// same name always gives the same MAC, so the kernel's neighbour cache stays
// valid across restarts) and differs from the kernel side's own MAC, which is
// what a stack sharing a link with the kernel needs: frames for the stack and
// frames for the kernel are told apart by destination MAC.
func DefaultMAC(name string) net.HardwareAddr {
	h := fnv.New64a()
	h.Write([]byte("tapstack:" + name))
	s := h.Sum64()
	return net.HardwareAddr{0x02, byte(s >> 32), byte(s >> 24), byte(s >> 16), byte(s >> 8), byte(s)}
}

// MaxFrameSize is the largest frame d carries, in bytes, not counting
// headroom: the MTU plus the Ethernet header for an L2 device, the MTU for an
// L3 one. Receive buffers need Headroom+MaxFrameSize(d) bytes.
func MaxFrameSize(d Device) int {
	if d.LinkAddr() == nil {
		return d.MTU()
	}
	return d.MTU() + EthernetHeaderLen
}

// checkBatch validates ReadBatch (read) or WriteBatch arguments: the headroom
// promise, and buffers that reach offset (with room for at least one byte
// after it for a read). An empty frame to write is not misuse: it is dropped.
func checkBatch(bufs [][]byte, offset int, read bool) error {
	if offset < Headroom {
		return errArg("offset %d is less than Headroom (%d)", offset, Headroom)
	}
	for i := range bufs {
		if len(bufs[i]) < offset || read && len(bufs[i]) == offset {
			return errArg("buffer %d is %d bytes, no room after offset %d", i, len(bufs[i]), offset)
		}
	}
	return nil
}
