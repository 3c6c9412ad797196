package netstack

import (
	"net/netip"
	"time"

	"github.com/tapstack/tapstack/ip"
	"github.com/tapstack/tapstack/mono"
)

// The neighbour cache maps next-hop IPv4 addresses to MAC addresses on one
// interface (RFC 826, with the timers of RFC 1122 §2.3.2.1 and Linux's
// defaults). Everything in it is bounded: entries, packets parked per entry
// waiting for resolution, and request retries.
const (
	neighEntriesMax    = 1024             // Linux gc_thresh3
	neighPendingMax    = 64               // packets parked per unresolved entry
	neighRequestsMax   = 3                // requests before giving up (mcast_solicit)
	neighRetransmit    = time.Second      // between requests (retrans_time)
	neighReachableTime = 30 * time.Second // base_reachable_time; jittered ±50%
	neighStaleLifetime = 60 * time.Second // unused stale entries are forgotten (gc_stale_time)
)

type neighState uint8

const (
	neighIncomplete neighState = iota // resolving; packets wait in pending
	neighReachable                    // confirmed recently
	neighStale                        // usable; refreshed on next use
	neighProbe                        // stale and in use: a unicast request is out
)

type neighbor struct {
	addr    netip.Addr
	mac     ip.MAC
	state   neighState
	timer   mono.Time // incomplete/probe: next retry; reachable: goes stale; stale: forgotten
	sent    int       // requests sent in this resolution or probe
	pending []*[]byte // IPv4 packets waiting, each a frame with its Ethernet header left blank
}

// neighborCache is one NIC's cache. Entries live in a slice so that timer
// scans run in a fixed order (map iteration would not replay).
type neighborCache struct {
	nic     *NIC
	entries []*neighbor
	index   map[netip.Addr]*neighbor
	dl      *deadline
}

func newNeighborCache(n *NIC) *neighborCache {
	c := &neighborCache{nic: n, index: make(map[netip.Addr]*neighbor)}
	c.dl = newDeadline(c.onTimer)
	return c
}

// insert adds an entry for a, evicting the stale entry with the earliest
// timer when the cache is full. It returns nil when nothing can be evicted.
func (c *neighborCache) insert(a netip.Addr) *neighbor {
	if len(c.entries) >= neighEntriesMax {
		victim := -1
		for i, e := range c.entries {
			if e.state == neighStale && (victim < 0 || e.timer < c.entries[victim].timer) {
				victim = i
			}
		}
		if victim < 0 {
			c.nic.s.stats.ARP.CacheFull++
			return nil
		}
		c.remove(victim)
	}
	e := &neighbor{addr: a}
	c.entries = append(c.entries, e)
	c.index[a] = e
	return e
}

func (c *neighborCache) remove(i int) {
	e := c.entries[i]
	for _, p := range e.pending {
		putBuf(p)
	}
	e.pending = nil
	delete(c.index, e.addr)
	c.entries = append(c.entries[:i], c.entries[i+1:]...)
}

// reachableFor draws the jittered reachable time, uniform in [0.5, 1.5) of
// the base as RFC 4861 §6.3.2 and Linux do, so neighbours do not refresh in
// lockstep.
func (c *neighborCache) reachableFor() time.Duration {
	half := uint64(neighReachableTime / 2)
	return time.Duration(half + c.nic.s.rand.Uint64()%(2*half))
}

// resolveLocked returns the MAC for next hop a. When it is not known, pkt
// (a pooled buffer) is parked until resolution ends and ok is false; the
// cache owns pkt from then on. A stale entry is used at once and refreshed.
func (c *neighborCache) resolveLocked(now mono.Time, a netip.Addr, pkt *[]byte) (mac ip.MAC, ok bool) {
	e, mac, ok := c.lookupLocked(now, a)
	if ok {
		return mac, true
	}
	if e == nil {
		putBuf(pkt)
		return mac, false
	}
	if len(e.pending) >= neighPendingMax {
		c.nic.s.stats.ARP.PendingDropped++
		putBuf(pkt)
		return mac, false
	}
	e.pending = append(e.pending, pkt)
	return mac, false
}

// lookupLocked returns the MAC for next hop a when it is known (a stale
// entry is used and refreshed), else the entry resolving it, nil when the
// cache has no room; resolution starts with the first lookup.
func (c *neighborCache) lookupLocked(now mono.Time, a netip.Addr) (e *neighbor, mac ip.MAC, ok bool) {
	e = c.index[a]
	if e == nil {
		e = c.insert(a)
		if e == nil {
			return nil, mac, false
		}
		e.state = neighIncomplete
		c.sendRequestLocked(now, e, false)
	}
	switch e.state {
	case neighReachable, neighProbe:
		return e, e.mac, true
	case neighStale:
		e.state = neighProbe
		e.sent = 0
		c.sendRequestLocked(now, e, true)
		return e, e.mac, true
	}
	return e, mac, false
}

// sendRequestLocked sends a request for e (unicast to its known MAC when
// refreshing) and schedules the retry.
func (c *neighborCache) sendRequestLocked(now mono.Time, e *neighbor, unicast bool) {
	e.sent++
	e.timer = now.Add(neighRetransmit)
	c.nic.sendARPRequestLocked(e.addr, e.mac, unicast)
	c.armLocked()
}

// learnLocked records that a answers at mac (from an ARP packet). create
// says whether a missing entry is made (RFC 826: only when the packet was
// addressed to us). Parked packets go out.
func (c *neighborCache) learnLocked(now mono.Time, a netip.Addr, mac ip.MAC, create bool) {
	e := c.index[a]
	if e == nil {
		if !create {
			return
		}
		if e = c.insert(a); e == nil {
			return
		}
	}
	e.mac = mac
	e.state = neighReachable
	e.sent = 0
	e.timer = now.Add(c.reachableFor())
	pending := e.pending
	e.pending = nil
	for _, p := range pending {
		c.nic.sendResolvedLocked(p, mac)
	}
	c.armLocked()
}

// onTimer retries, ages and forgets entries.
func (c *neighborCache) onTimer(now mono.Time) {
	var failed []*[]byte
	for i := 0; i < len(c.entries); i++ {
		e := c.entries[i]
		if e.timer > now {
			continue
		}
		switch e.state {
		case neighIncomplete, neighProbe:
			if e.sent < neighRequestsMax {
				c.sendRequestLocked(now, e, e.state == neighProbe)
				continue
			}
			// Resolution failed: the entry goes, then (below, once the
			// cache is consistent again) the waiting packets' senders hear
			// of it; their reactions may send packets or add entries.
			c.nic.s.stats.ARP.ResolutionFailed++
			failed = append(failed, e.pending...)
			e.pending = nil
			c.remove(i)
			i--
		case neighReachable:
			e.state = neighStale
			e.timer = now.Add(neighStaleLifetime)
		case neighStale:
			c.remove(i)
			i--
		}
	}
	c.armLocked()
	for _, p := range failed {
		c.nic.unreachableLocked(now, p)
		putBuf(p)
	}
}

// armLocked sets the cache's deadline to its earliest entry timer.
func (c *neighborCache) armLocked() {
	next := mono.Never
	for _, e := range c.entries {
		next = mono.Min(next, e.timer)
	}
	c.nic.s.timers.set(c.dl, next)
}
