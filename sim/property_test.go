package sim

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/tapstack/tapstack/checksum"
	"github.com/tapstack/tapstack/mono"
	"github.com/tapstack/tapstack/netstack"
	"github.com/tapstack/tapstack/sim/impair"
	"github.com/tapstack/tapstack/tcp"
)

// mixFor draws a seed's impairments: up to 10% loss (sometimes with short
// bursts on top), 10% reordering, 1% duplication, 1% corruption, 1-50ms delay
// with jitter, sometimes a rate limit, and often partitions of 1-5s.
func mixFor(seed uint64) impair.Config {
	r := rand.New(rand.NewPCG(seed, 0x6d6978)) // "mix"
	prob := func(maxPPM int) impair.Prob { return impair.Prob(r.IntN(maxPPM + 1)) }
	c := impair.Config{
		Loss:      prob(10 * int(impair.Percent)),
		Reorder:   prob(10 * int(impair.Percent)),
		Duplicate: prob(int(impair.Percent)),
		Corrupt:   prob(int(impair.Percent)),
		Delay:     time.Duration(1+r.IntN(50)) * time.Millisecond,
	}
	c.Jitter = time.Duration(r.Int64N(int64(c.Delay)/4 + 1))
	if r.IntN(4) == 0 {
		// Bursts of 1-2 frames on average. The chain steps per frame, so
		// under TCP's backed-off retransmissions a long burst lasts minutes:
		// with R = 14%, fifteen retransmissions in a row (Linux's
		// tcp_retries2, after which a connection gives up) are lost one
		// time in ten.
		c.Burst = impair.GilbertElliott{P: prob(2*int(impair.Percent)) + 1, R: 50*impair.Percent + prob(40*int(impair.Percent)), LossBad: impair.Always}
	}
	if r.IntN(4) == 0 {
		c.Rate = 10_000_000
	}
	at := mono.Time(0)
	for range r.IntN(3) {
		start := at.Add(time.Duration(1+r.IntN(10)) * time.Second)
		end := start.Add(time.Duration(1000+r.IntN(4000)) * time.Millisecond)
		c.Partitions = append(c.Partitions, impair.Interval{Start: start, End: end})
		at = end
	}
	return c
}

// TestProperty runs many seeds, each with its own impairment mix, of a
// workload over the real stacks: TCP transfers of 1-4 MiB on 2-4
// connections, each byte checked as it arrives, each connection closed
// cleanly by both sides; UDP clients whose requests must all be answered
// exactly (retrying through loss and partitions); and a datagram flow
// whose every delivered datagram must be intact. On top of the
// applications' own checks: every corrupted packet delivered to a stack is
// caught and counted by a checksum, and the sink never receives more than
// the wire delivered intact.
func TestProperty(t *testing.T) {
	n := 200
	if testing.Short() {
		n = 20
	}
	// Over all seeds, the faults must have happened, or the test proves
	// little.
	var retransmits, partitioned, corruptedAll, reordered, duplicated uint64
	defer func() {
		if !seedSet && !t.Failed() && (retransmits == 0 || partitioned == 0 || corruptedAll == 0 || reordered == 0 || duplicated == 0) {
			t.Errorf("over %d seeds: %d retransmits, %d frames partitioned, %d corrupted, %d reordered, %d duplicated",
				n, retransmits, partitioned, corruptedAll, reordered, duplicated)
		}
	}()
	forSeeds(t, 1, n, func(t *testing.T, seed uint64) {
		mix := mixFor(seed)
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("impairments (both directions): %v", mix)
			}
		})
		p := newPair(t, seed, mix, mix)
		w := p.w
		r := w.Rand("workload")

		var corrupted, uncatchable, intactFlow uint64
		w.Observe(func(e *WireEvent) {
			if e.Kind != Delivered || !isIPv4(e.Frame) {
				return
			}
			switch {
			case e.Corrupted && udpChecksumZero(e.Frame):
				uncatchable++ // a flip that zeroed the checksum: "none", and the data intact
			case e.Corrupted:
				corrupted++
			case e.Dir == p.l.AB && isUDP(e.Frame, 9):
				intactFlow++
			}
		})

		x := Transfer{Transport: TCP{}, Client: p.a, Server: p.b, Port: 80,
			Conns: 2 + r.IntN(3), Bytes: int64(1<<20 + r.IntN(3<<20+1)), Redials: 3}
		if testing.Short() {
			x.Bytes /= 8
		}
		trace := w.TraceTCP()
		tr := must(w.StartTransfer(x))(t)

		must(w.ListenUDPEcho(p.b, 7))(t)
		var clients []*Requester
		for i := range 3 {
			q := must(w.StartRequests(p.a, Requests{ID: uint32(i), Dst: netip.AddrPortFrom(addrB, 7),
				Count: 100, Size: 16 + r.IntN(1400), Timeout: 300 * time.Millisecond}))(t)
			clients = append(clients, q)
		}
		flow := UDPFlow{ID: 100, Dst: netip.AddrPortFrom(addrB, 9), Size: 16 + r.IntN(1456), Count: 500, Interval: 5 * time.Millisecond}
		sink := must(w.ListenUDPSink(p.b, 9))(t)
		if err := sink.Expect(flow); err != nil {
			t.Fatal(err)
		}
		must(w.SendUDP(p.a, flow))(t)

		done := func() bool {
			if !tr.Done() {
				return false
			}
			for _, q := range clients {
				if !q.Task().Done() {
					return false
				}
			}
			return true
		}
		// On failure, say where every application stood.
		t.Cleanup(func() {
			if !t.Failed() {
				return
			}
			for _, c := range tr.Conns {
				t.Logf("TCP connection %d: %d written, %d verified, received at %v, closed at %v; sender done %v, receiver %v",
					c.ID, c.Written, c.Verified, c.Received, c.Closed, c.Sender.Done(), c.Receiver != nil && c.Receiver.Done())
			}
			for _, q := range clients {
				t.Logf("UDP client %d: %d of 100 answered, %d retransmits", q.Req.ID, q.Completed(), q.Retransmits)
			}
			for _, h := range w.Hosts() {
				t.Logf("%s TCP: %+v; next deadline %v", h.Name(), h.Stats().TCP, h.Stack().NextDeadline())
			}
			for _, c := range tr.Conns {
				for _, s := range []Stream{c.client, c.server} {
					if tc, ok := s.(*netstack.TCPConn); ok {
						t.Logf("connection %d %v>%v: %v, %d bytes acknowledged", c.ID, tc.LocalAddrPort(), tc.RemoteAddrPort(), tc.State(), tc.BytesAcked())
					}
				}
			}
		})
		if err := w.RunUntil(done, mono.Time(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := w.RunFor(5 * time.Second); err != nil { // the flow's stragglers
			t.Fatal(err)
		}
		for _, d := range w.Dirs() {
			st := d.Impair()
			partitioned += st.Dropped[impair.DropPartition]
			corruptedAll += st.Corrupted
			reordered += st.Reordered
			duplicated += st.Duplicated
		}
		for _, q := range clients {
			retransmits += q.Retransmits
			if q.Completed() != 100 {
				t.Errorf("client %d: %d of 100 requests answered", q.Req.ID, q.Completed())
			}
		}
		var caught uint64
		for _, h := range w.Hosts() {
			s := h.Stats()
			caught += s.IPv4.BadChecksum + s.IPv4.Malformed + s.IPv4.Truncated +
				s.UDP.BadChecksum + s.UDP.Malformed + s.ICMP.BadChecksum + s.ICMP.Malformed +
				s.TCP.BadChecksum + s.TCP.Malformed
			retransmits += s.TCP.Retransmits
		}
		// Every data segment the wire saw sent again, a stack counted; a
		// stack may count more (retransmissions parked for ARP and
		// dropped). SYNs are left out: a SYN-ACK resent in answer to a
		// retransmitted SYN is not counted (Linux counts it).
		var wireAgain, stackAgain uint64
		for _, f := range trace.Flows() {
			for _, s := range f.Segments {
				if s.Retransmit && !s.Flags.Contains(tcp.SYN) {
					wireAgain++
				}
			}
		}
		for _, h := range w.Hosts() {
			stackAgain += h.Stats().TCP.Retransmits
		}
		if wireAgain > stackAgain {
			t.Errorf("%d TCP segments sent again on the wire, %d counted by the stacks", wireAgain, stackAgain)
		}
		if tr.Verified() != int64(x.Conns)*x.Bytes {
			t.Errorf("TCP: %d of %d bytes verified", tr.Verified(), int64(x.Conns)*x.Bytes)
		}
		if caught != corrupted {
			t.Errorf("%d corrupted IPv4 packets delivered, %d caught", corrupted, caught)
		}
		if st := sink.Flow(100); st.Received > intactFlow+uncatchable || st.Unique > 500 {
			t.Errorf("sink got %+v; the wire delivered %d intact", st, intactFlow)
		}
	})
}

// udpChecksumZero reports whether f is UDP in an intact IPv4 header with a
// zero checksum: what a bit flip leaves when the checksum was one bit away
// from zero, "no checksum" to the receiver, with the data intact.
func udpChecksumZero(f []byte) bool {
	ihl := int(f[14]&0x0f) * 4
	u := 14 + ihl
	if ihl < 20 || len(f) < u+8 || checksum.Checksum(f[14:u], 0) != 0 {
		return false // a flip in the IP header, which its checksum catches
	}
	return f[14+9] == 17 && f[u+6] == 0 && f[u+7] == 0
}
