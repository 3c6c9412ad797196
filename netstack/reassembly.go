package netstack

import (
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/tapstack/tapstack/ip"
	"github.com/tapstack/tapstack/mono"
)

// IPv4 reassembly (RFC 791 §3.2, RFC 815). Memory is bounded: at most
// reasmDatagramsMax datagrams in progress, each in one 64 KiB pooled buffer,
// each of at most reasmFragmentsMax fragments. A fragment that overlaps
// another without repeating it exactly discards the whole datagram (as
// RFC 5722 asks for IPv6, and as defends against overlap attacks).
const (
	reasmTimeout      = 30 * time.Second // Linux ipfrag_time
	reasmDatagramsMax = 64
	reasmFragmentsMax = 64
	// reasmDataOffset is where payload starts in a reassembly buffer: room
	// for the longest IPv4 header in front of it.
	reasmDataOffset = ip.IPv4MaxHeaderLen
)

type reasmKey struct {
	src, dst netip.Addr
	id       uint16
	proto    ip.Protocol
}

type reasmEntry struct {
	key     reasmKey
	nic     *NIC
	buf     *[]byte
	hdrLen  int // 0 until the first fragment (offset 0) arrived
	total   int // payload length; -1 until the last fragment arrived
	ranges  []reasmRange
	have    int // payload bytes received
	expires mono.Time
}

type reasmRange struct{ start, end int }

type reassembler struct {
	s       *Stack
	entries []*reasmEntry
	dl      *deadline
}

func (s *Stack) reassemblerLocked() *reassembler {
	if s.reasm == nil {
		s.reasm = &reassembler{s: s}
		s.reasm.dl = newDeadline(s.reasm.expireLocked)
	}
	return s.reasm
}

// addLocked adds fragment h. When it completes a datagram, addLocked returns
// the datagram and the pooled buffer holding it, which the caller releases.
func (r *reassembler) addLocked(now mono.Time, nic *NIC, h ip.IPv4) (ip.IPv4, *[]byte) {
	st := &r.s.stats.IPv4
	st.FragmentsReceived++
	data := h.Payload()
	start := h.FragmentOffsetBytes()
	end := start + len(data)
	if (h.MF() && (len(data) == 0 || len(data)%ip.IPv4FragmentUnit != 0)) ||
		end+h.HeaderLength() > ip.IPv4MaxTotalLength {
		st.FragmentsMalformed++
		return nil, nil
	}
	key := reasmKey{src: h.Src(), dst: h.Dst(), id: h.ID(), proto: h.Protocol()}
	i := r.find(key)
	if i < 0 {
		if len(r.entries) >= reasmDatagramsMax {
			// Evict the oldest so a flood of incomplete datagrams cannot
			// block reassembly for good.
			st.ReassemblyEvicted++
			r.drop(0)
		}
		b := getBuf(reasmDataOffset + ip.IPv4MaxTotalLength)
		r.entries = append(r.entries, &reasmEntry{key: key, nic: nic, buf: b, total: -1,
			expires: now.Add(reasmTimeout)})
		i = len(r.entries) - 1
		r.armLocked()
	}
	e := r.entries[i]
	if !h.MF() {
		if (e.total >= 0 && e.total != end) || (len(e.ranges) > 0 && e.ranges[len(e.ranges)-1].end > end) {
			st.FragmentsOverlapping++
			r.drop(i)
			return nil, nil
		}
		e.total = end
	} else if e.total >= 0 && end > e.total {
		st.FragmentsOverlapping++
		r.drop(i)
		return nil, nil
	}
	// Ranges are sorted and disjoint; find where this one goes.
	at := 0
	for at < len(e.ranges) && e.ranges[at].end <= start {
		at++
	}
	if at < len(e.ranges) && e.ranges[at].start < end {
		if e.ranges[at].start == start && e.ranges[at].end == end {
			st.FragmentsDuplicate++
			return nil, nil
		}
		st.FragmentsOverlapping++
		r.drop(i)
		return nil, nil
	}
	if len(e.ranges) >= reasmFragmentsMax {
		st.FragmentsMalformed++
		r.drop(i)
		return nil, nil
	}
	e.ranges = append(e.ranges, reasmRange{})
	copy(e.ranges[at+1:], e.ranges[at:])
	e.ranges[at] = reasmRange{start, end}
	e.have += len(data)
	copy((*e.buf)[reasmDataOffset+start:], data)
	if start == 0 {
		e.hdrLen = h.HeaderLength()
		copy((*e.buf)[reasmDataOffset-e.hdrLen:], h.Header())
	}
	if e.hdrLen == 0 || e.total < 0 || e.have != e.total {
		return nil, nil
	}
	// Complete: the first fragment's header, with the whole length and no
	// fragment fields, in front of the payload.
	whole := ip.IPv4((*e.buf)[reasmDataOffset-e.hdrLen : reasmDataOffset+e.total])
	binary.BigEndian.PutUint16(whole[2:], uint16(e.hdrLen+e.total))
	binary.BigEndian.PutUint16(whole[6:], binary.BigEndian.Uint16(whole[6:])&0x4000) // keep DF only
	whole.SetChecksum(0)
	whole.SetChecksum(whole.ComputeChecksum())
	buf := e.buf
	e.buf = nil
	r.drop(i)
	if _, err := ip.ParseIPv4(whole); err != nil {
		st.FragmentsMalformed++
		putBuf(buf)
		return nil, nil
	}
	st.Reassembled++
	return whole, buf
}

func (r *reassembler) find(k reasmKey) int {
	for i, e := range r.entries {
		if e.key == k {
			return i
		}
	}
	return -1
}

// drop forgets entry i and frees its buffer.
func (r *reassembler) drop(i int) {
	if b := r.entries[i].buf; b != nil {
		putBuf(b)
	}
	r.entries = append(r.entries[:i], r.entries[i+1:]...)
	r.armLocked()
}

// expireLocked discards timed-out datagrams, telling the sender when the
// first fragment had arrived (RFC 792: time exceeded, reassembly).
func (r *reassembler) expireLocked(now mono.Time) {
	for i := 0; i < len(r.entries); i++ {
		e := r.entries[i]
		if e.expires > now {
			continue
		}
		r.s.stats.IPv4.ReassemblyTimeouts++
		if e.hdrLen > 0 {
			n := e.hdrLen + min(8, max(0, firstRangeLen(e)))
			quote := (*e.buf)[reasmDataOffset-e.hdrLen : reasmDataOffset-e.hdrLen+n]
			r.s.sendICMPErrorLocked(now, e.key.src, e.key.dst, quote, ip.ICMPv4TimeExceeded, ip.ICMPv4ReassemblyExceeded)
		}
		r.drop(i)
		i--
	}
	r.armLocked()
}

func firstRangeLen(e *reasmEntry) int {
	if len(e.ranges) == 0 || e.ranges[0].start != 0 {
		return 0
	}
	return e.ranges[0].end
}

func (r *reassembler) armLocked() {
	next := mono.Never
	for _, e := range r.entries {
		next = mono.Min(next, e.expires)
	}
	r.s.timers.set(r.dl, next)
}
