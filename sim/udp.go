package sim

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"syscall"
	"time"

	"github.com/tapstack/tapstack/mono"
	"github.com/tapstack/tapstack/netstack"
)

// UDP applications: a sequenced datagram stream with a checking sink, and
// request/response over an echo server with retransmission. Every payload
// is a header (magic, flow or client id, sequence number) followed by the
// flow's Pattern at the offset the sequence number gives, so any damaged,
// misplaced or foreign payload a stack lets through fails the run.

const (
	appHeaderLen = 16         // magic, id, sequence number
	magicFlow    = 0x53494d46 // "SIMF"
	magicRequest = 0x53494d51 // "SIMQ"

	maxUDPPayload = 65507   // 65535 - 20 (IPv4) - 8 (UDP)
	maxCount      = 1 << 24 // datagrams or requests per flow: bounds the sink's bitmap
)

// ErrIntegrity is wrapped by every failure of a data check: a payload that
// is not what was sent, in content, length, sequence or flow.
var ErrIntegrity = errors.New("integrity check failed")

func integrityf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrIntegrity}, args...)...)
}

func putAppHeader(b []byte, magic, id uint32, seq uint64) {
	binary.BigEndian.PutUint32(b[0:], magic)
	binary.BigEndian.PutUint32(b[4:], id)
	binary.BigEndian.PutUint64(b[8:], seq)
}

func appHeader(b []byte) (magic, id uint32, seq uint64) {
	return binary.BigEndian.Uint32(b[0:]), binary.BigEndian.Uint32(b[4:]), binary.BigEndian.Uint64(b[8:])
}

// UDPFlow describes a sequenced stream of datagrams from a sender to a
// sink.
type UDPFlow struct {
	// ID tells the flow apart at its sink and keys its Pattern.
	ID uint32
	// Dst is the sink's address.
	Dst netip.AddrPort
	// Size is each datagram's payload, header included: 16..65507 bytes;
	// 0 means 1024.
	Size int
	// Count is the number of datagrams, at most 1<<24.
	Count int
	// Interval is the time between datagrams; 0 sends them all at once.
	Interval time.Duration
}

func (f *UDPFlow) check() error {
	if f.Size == 0 {
		f.Size = 1024
	}
	switch {
	case f.Size < appHeaderLen || f.Size > maxUDPPayload:
		return fmt.Errorf("sim: flow %d: Size %d outside %d..%d", f.ID, f.Size, appHeaderLen, maxUDPPayload)
	case f.Count < 0 || f.Count > maxCount:
		return fmt.Errorf("sim: flow %d: Count %d outside 0..%d", f.ID, f.Count, maxCount)
	case f.Interval < 0:
		return fmt.Errorf("sim: flow %d: negative Interval", f.ID)
	}
	return nil
}

func (f *UDPFlow) body() int { return f.Size - appHeaderLen }

// UDPSender sends a UDPFlow from a host.
type UDPSender struct {
	Flow UDPFlow
	task *Task
	conn *netstack.UDPConn
	pat  Pattern
	buf  []byte
	sent int
	next mono.Time
	errs uint64
}

// SendUDP starts sending flow from h, the first datagram now.
func (w *World) SendUDP(h *Host, flow UDPFlow) (*UDPSender, error) {
	if err := flow.check(); err != nil {
		return nil, err
	}
	c, err := h.stack.DialUDP(netip.AddrPort{}, flow.Dst)
	if err != nil {
		return nil, err
	}
	s := &UDPSender{Flow: flow, conn: c, pat: NewPattern(w.Seed(), uint64(flow.ID)),
		buf: make([]byte, flow.Size), next: w.now}
	s.task = w.Spawn(fmt.Sprintf("udp-send/%d", flow.ID), s.step)
	return s, nil
}

func (s *UDPSender) step(t *Task) {
	f := &s.Flow
	for s.sent < f.Count && s.next <= t.Now() {
		seq := uint64(s.sent)
		putAppHeader(s.buf, magicFlow, f.ID, seq)
		s.pat.Fill(s.buf[appHeaderLen:], seq*uint64(f.body()))
		// An error (no route, a soft error from ICMP) loses the datagram,
		// as it would for any UDP application; it is counted.
		if err := s.conn.TryWriteTo(s.buf, netip.AddrPort{}); err != nil {
			s.errs++
		}
		s.sent++
		s.next = s.next.Add(f.Interval)
	}
	if s.sent == f.Count {
		s.conn.Close()
		t.Exit(nil)
		return
	}
	t.WakeAt(s.next)
}

// Sent returns the datagrams sent so far.
func (s *UDPSender) Sent() int { return s.sent }

// SendErrors returns the datagrams the stack refused to send.
func (s *UDPSender) SendErrors() uint64 { return s.errs }

// Task returns the sender's task.
func (s *UDPSender) Task() *Task { return s.task }

// FlowStats is what a sink received of one flow.
type FlowStats struct {
	Received   uint64 // datagrams read, duplicates included
	Unique     uint64 // distinct sequence numbers
	Duplicates uint64
	Reordered  uint64 // arrived after a later sequence number
	Bytes      uint64 // payload bytes of the distinct datagrams
	First      mono.Time
	Last       mono.Time // arrival of the last distinct datagram
}

type sinkFlow struct {
	flow  UDPFlow
	pat   Pattern
	seen  []uint64 // bitmap of sequence numbers
	high  uint64   // highest sequence number + 1
	stats FlowStats
}

// UDPSink receives flows on one port and checks every datagram: each must
// belong to an expected flow and carry exactly that flow's bytes for its
// sequence number. Any other datagram fails the run with ErrIntegrity.
type UDPSink struct {
	task  *Task
	conn  *netstack.UDPConn
	buf   []byte
	flows map[uint32]*sinkFlow
}

// ListenUDPSink opens a sink on h's port.
func (w *World) ListenUDPSink(h *Host, port uint16) (*UDPSink, error) {
	c, err := h.stack.ListenUDP(netip.AddrPortFrom(netip.IPv4Unspecified(), port))
	if err != nil {
		return nil, err
	}
	k := &UDPSink{conn: c, buf: make([]byte, maxUDPPayload+1), flows: make(map[uint32]*sinkFlow)}
	k.task = w.Spawn(fmt.Sprintf("udp-sink/%s:%d", h.name, port), k.step)
	c.SetNotify(k.task.Wake)
	return k, nil
}

// Expect tells the sink about a flow it is to receive.
func (k *UDPSink) Expect(flow UDPFlow) error {
	if err := flow.check(); err != nil {
		return err
	}
	if k.flows[flow.ID] != nil {
		return fmt.Errorf("sim: flow %d expected twice", flow.ID)
	}
	k.flows[flow.ID] = &sinkFlow{flow: flow, pat: NewPattern(k.task.w.Seed(), uint64(flow.ID)),
		seen: make([]uint64, (flow.Count+63)/64)}
	return nil
}

// Flow returns what the sink received of flow id.
func (k *UDPSink) Flow(id uint32) FlowStats {
	if f := k.flows[id]; f != nil {
		return f.stats
	}
	return FlowStats{}
}

// Close stops the sink.
func (k *UDPSink) Close() {
	k.conn.Close()
	k.task.Exit(nil)
}

func (k *UDPSink) step(t *Task) {
	for {
		n, from, err := k.conn.TryReadFrom(k.buf)
		if err == netstack.ErrWouldBlock {
			return
		}
		if err != nil {
			if !k.task.done {
				t.Exit(fmt.Errorf("read: %w", err))
			}
			return
		}
		if err := k.check(t.Now(), k.buf[:n]); err != nil {
			t.Exit(fmt.Errorf("datagram of %d bytes from %v: %w", n, from, err))
			return
		}
	}
}

func (k *UDPSink) check(now mono.Time, p []byte) error {
	if len(p) < appHeaderLen {
		return integrityf("shorter than the header")
	}
	magic, id, seq := appHeader(p)
	if magic != magicFlow {
		return integrityf("magic %#x", magic)
	}
	f := k.flows[id]
	if f == nil {
		return integrityf("unexpected flow %d", id)
	}
	if seq >= uint64(f.flow.Count) {
		return integrityf("flow %d: sequence number %d beyond %d", id, seq, f.flow.Count)
	}
	if len(p) != f.flow.Size {
		return integrityf("flow %d seq %d: %d bytes, want %d", id, seq, len(p), f.flow.Size)
	}
	if i := f.pat.Check(p[appHeaderLen:], seq*uint64(f.flow.body())); i >= 0 {
		return integrityf("flow %d seq %d: payload differs at byte %d", id, seq, appHeaderLen+i)
	}
	st := &f.stats
	st.Received++
	if f.seen[seq/64]&(1<<(seq%64)) != 0 {
		st.Duplicates++
		return nil
	}
	f.seen[seq/64] |= 1 << (seq % 64)
	if st.Unique == 0 {
		st.First = now
	}
	st.Unique++
	st.Bytes += uint64(len(p))
	st.Last = now
	if seq+1 < f.high {
		st.Reordered++
	}
	f.high = max(f.high, seq+1)
	return nil
}

// Task returns the sink's task.
func (k *UDPSink) Task() *Task { return k.task }

// UDPEcho is a server that sends every datagram back to its sender.
type UDPEcho struct {
	task   *Task
	conn   *netstack.UDPConn
	buf    []byte
	echoed uint64
}

// ListenUDPEcho opens an echo server on h's port.
func (w *World) ListenUDPEcho(h *Host, port uint16) (*UDPEcho, error) {
	c, err := h.stack.ListenUDP(netip.AddrPortFrom(netip.IPv4Unspecified(), port))
	if err != nil {
		return nil, err
	}
	e := &UDPEcho{conn: c, buf: make([]byte, maxUDPPayload+1)}
	e.task = w.Spawn(fmt.Sprintf("udp-echo/%s:%d", h.name, port), e.step)
	c.SetNotify(e.task.Wake)
	return e, nil
}

func (e *UDPEcho) step(t *Task) {
	for {
		n, from, err := e.conn.TryReadFrom(e.buf)
		if err == netstack.ErrWouldBlock {
			return
		}
		if err != nil {
			if !t.done {
				t.Exit(fmt.Errorf("read: %w", err))
			}
			return
		}
		if e.conn.TryWriteTo(e.buf[:n], from) == nil {
			e.echoed++
		}
	}
}

// Echoed returns the datagrams sent back.
func (e *UDPEcho) Echoed() uint64 { return e.echoed }

// Close stops the server.
func (e *UDPEcho) Close() {
	e.conn.Close()
	e.task.Exit(nil)
}

// Requests describes a client that sends Count requests to an echo
// server, one at a time, each retransmitted until its response arrives:
// a reliable exchange over an unreliable network, built on UDP.
type Requests struct {
	// ID tells clients apart and keys the request bodies' Pattern.
	ID uint32
	// Dst is the echo server's address.
	Dst netip.AddrPort
	// Size is each request's payload, header included: 16..65507 bytes;
	// 0 means 256.
	Size int
	// Count is the number of requests, at most 1<<24.
	Count int
	// Timeout is the first retransmission timeout; 0 means 200ms. It
	// doubles with each retry of a request, up to MaxTimeout (0: 3s).
	Timeout, MaxTimeout time.Duration
	// MaxTries bounds the sends of one request; 0 means 100. A request
	// that exhausts it fails the run.
	MaxTries int
}

// RTTStats summarises round-trip times.
type RTTStats struct {
	N             int
	Min, Max, Sum time.Duration
}

func (r *RTTStats) add(d time.Duration) {
	if r.N == 0 || d < r.Min {
		r.Min = d
	}
	r.Max = max(r.Max, d)
	r.Sum += d
	r.N++
}

// Mean returns the average, or 0 without samples.
func (r RTTStats) Mean() time.Duration {
	if r.N == 0 {
		return 0
	}
	return r.Sum / time.Duration(r.N)
}

func (r RTTStats) String() string {
	if r.N == 0 {
		return "no samples"
	}
	return fmt.Sprintf("min/avg/max %v/%v/%v over %d", r.Min, r.Mean(), r.Max, r.N)
}

// Requester runs Requests from a host.
type Requester struct {
	Req      Requests
	task     *Task
	conn     *netstack.UDPConn
	pat      Pattern
	req, buf []byte
	seq      uint64 // the request outstanding
	tries    int
	sentAt   mono.Time
	timeout  time.Duration

	Retransmits uint64
	Stale       uint64   // late or duplicated responses to earlier requests
	RTT         RTTStats // of requests answered on their first try (Karn)
	Finished    mono.Time
}

// StartRequests starts r's client on h; its first request goes out now.
func (w *World) StartRequests(h *Host, r Requests) (*Requester, error) {
	if r.Size == 0 {
		r.Size = 256
	}
	if r.Timeout == 0 {
		r.Timeout = 200 * time.Millisecond
	}
	if r.MaxTimeout == 0 {
		r.MaxTimeout = 3 * time.Second
	}
	if r.MaxTries == 0 {
		r.MaxTries = 100
	}
	switch {
	case r.Size < appHeaderLen || r.Size > maxUDPPayload:
		return nil, fmt.Errorf("sim: requests %d: Size %d outside %d..%d", r.ID, r.Size, appHeaderLen, maxUDPPayload)
	case r.Count < 0 || r.Count > maxCount:
		return nil, fmt.Errorf("sim: requests %d: Count %d outside 0..%d", r.ID, r.Count, maxCount)
	case r.Timeout < 0 || r.MaxTimeout < r.Timeout || r.MaxTries < 0:
		return nil, fmt.Errorf("sim: requests %d: bad Timeout, MaxTimeout or MaxTries", r.ID)
	}
	c, err := h.stack.DialUDP(netip.AddrPort{}, r.Dst)
	if err != nil {
		return nil, err
	}
	q := &Requester{Req: r, conn: c, pat: NewPattern(w.Seed(), uint64(r.ID)),
		req: make([]byte, r.Size), buf: make([]byte, maxUDPPayload+1), Finished: mono.Never}
	q.task = w.Spawn(fmt.Sprintf("requests/%d", r.ID), q.step)
	c.SetNotify(q.task.Wake)
	return q, nil
}

// Task returns the client's task.
func (q *Requester) Task() *Task { return q.task }

// Completed returns the requests answered so far.
func (q *Requester) Completed() int { return int(q.seq) }

func (q *Requester) step(t *Task) {
	r := &q.Req
	for {
		n, _, err := q.conn.TryReadFrom(q.buf)
		if err == netstack.ErrWouldBlock {
			break
		}
		var errno syscall.Errno
		if errors.As(err, &errno) {
			// An ICMP error (port or host unreachable) is transient for a
			// retrying client.
			continue
		}
		if err != nil {
			t.Exit(fmt.Errorf("read: %w", err))
			return
		}
		if err := q.check(q.buf[:n]); err != nil {
			t.Exit(fmt.Errorf("response of %d bytes: %w", n, err))
			return
		}
	}
	if int(q.seq) == r.Count {
		q.Finished = t.Now()
		q.conn.Close()
		t.Exit(nil)
		return
	}
	if q.tries == 0 || t.Now() >= q.sentAt.Add(q.timeout) {
		if q.tries == r.MaxTries {
			t.Exit(fmt.Errorf("request %d unanswered after %d tries", q.seq, q.tries))
			return
		}
		if q.tries == 0 {
			q.timeout = r.Timeout
			putAppHeader(q.req, magicRequest, r.ID, q.seq)
			q.pat.Fill(q.req[appHeaderLen:], q.seq*uint64(r.Size-appHeaderLen))
		} else {
			q.Retransmits++
			q.timeout = min(2*q.timeout, r.MaxTimeout)
		}
		q.tries++
		q.sentAt = t.Now()
		_ = q.conn.TryWriteTo(q.req, netip.AddrPort{}) // a refusal is a loss: retried
	}
	t.WakeAt(q.sentAt.Add(q.timeout))
}

// check validates a response and moves to the next request when it
// answers the outstanding one.
func (q *Requester) check(p []byte) error {
	r := &q.Req
	if len(p) < appHeaderLen {
		return integrityf("shorter than the header")
	}
	magic, id, seq := appHeader(p)
	switch {
	case magic != magicRequest:
		return integrityf("magic %#x", magic)
	case id != r.ID:
		return integrityf("response for client %d", id)
	case seq > q.seq || (seq == q.seq && q.tries == 0):
		return integrityf("response to request %d before it was sent", seq)
	case len(p) != r.Size:
		return integrityf("request %d: %d bytes, want %d", seq, len(p), r.Size)
	}
	if i := q.pat.Check(p[appHeaderLen:], seq*uint64(r.Size-appHeaderLen)); i >= 0 {
		return integrityf("request %d: payload differs at byte %d", seq, appHeaderLen+i)
	}
	if seq < q.seq {
		q.Stale++
		return nil
	}
	if q.tries == 1 {
		q.RTT.add(q.task.Now().Sub(q.sentAt))
	}
	q.seq++
	q.tries = 0
	return nil
}
