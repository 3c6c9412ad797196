package sim

import (
	"net/netip"

	"github.com/tapstack/tapstack/netstack"
)

// TCP is the Transport of netstack's TCP sockets: Listen is
// Stack.ListenTCP on every address, Dial is Stack.StartDialTCP, which
// returns with the handshake under way.
type TCP struct{}

func (TCP) String() string { return "tcp" }

// Listen listens on h's port, every address.
func (TCP) Listen(h *Host, port uint16) (StreamListener, error) {
	ln, err := h.stack.ListenTCP(netip.AddrPortFrom(netip.IPv4Unspecified(), port))
	if err != nil {
		return nil, err
	}
	return tcpListener{ln}, nil
}

// Dial starts a connection from h to raddr.
func (TCP) Dial(h *Host, raddr netip.AddrPort) (Stream, error) {
	c, err := h.stack.StartDialTCP(netip.AddrPort{}, raddr)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// tcpListener gives TryAccept the Stream result type.
type tcpListener struct{ *netstack.TCPListener }

func (l tcpListener) TryAccept() (Stream, error) {
	c, err := l.TCPListener.TryAccept()
	if err != nil {
		return nil, err // not a typed nil in the interface
	}
	return c, nil
}

var _ Stream = (*netstack.TCPConn)(nil)
