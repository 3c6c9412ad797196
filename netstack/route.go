package netstack

import (
	"errors"
	"fmt"
	"net/netip"
)

// Route sends packets for Dst out of NIC, through Gateway when it is set
// (otherwise Dst is a connected network and the destination itself is the
// next hop).
type Route struct {
	Dst     netip.Prefix
	Gateway netip.Addr
	NIC     *NIC
}

// ErrNoRoute is returned when no route leads to a destination.
var ErrNoRoute = errors.New("netstack: no route to host")

// AddRoute adds a route. The most specific prefix wins; among equals, the
// first added.
func (s *Stack) AddRoute(r Route) error {
	if r.NIC == nil || r.NIC.s != s {
		return fmt.Errorf("netstack: route %v: NIC not of this stack", r.Dst)
	}
	if !r.Dst.IsValid() || !r.Dst.Addr().Is4() {
		return fmt.Errorf("netstack: route %v: not an IPv4 prefix", r.Dst)
	}
	r.Dst = r.Dst.Masked()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.routes = append(s.routes, r)
	return nil
}

// SetDefaultGateway routes every destination without a more specific route
// through gw on nic.
func (s *Stack) SetDefaultGateway(nic *NIC, gw netip.Addr) error {
	return s.AddRoute(Route{Dst: netip.PrefixFrom(netip.IPv4Unspecified(), 0), Gateway: gw, NIC: nic})
}

// routeLocked finds the route to dst and the next hop on it.
func (s *Stack) routeLocked(dst netip.Addr) (r Route, nextHop netip.Addr, err error) {
	best := -1
	for i, c := range s.routes {
		if c.Dst.Contains(dst) && (best < 0 || c.Dst.Bits() > s.routes[best].Dst.Bits()) {
			best = i
		}
	}
	if best < 0 {
		return Route{}, netip.Addr{}, ErrNoRoute
	}
	r = s.routes[best]
	nextHop = dst
	if r.Gateway.IsValid() {
		nextHop = r.Gateway
	}
	return r, nextHop, nil
}
