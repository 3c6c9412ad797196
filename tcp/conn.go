package tcp

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"syscall"
	"time"

	"github.com/tapstack/tapstack/mono"
	"github.com/tapstack/tapstack/tcp/seq"
)

// Output is where a connection's segments go. SendSegment is called
// synchronously from inside the connection's entry points; f is valid only
// during the call and payload references the send buffer (its two parts are
// contiguous in sequence space), so the callee copies what it keeps.
type Output interface {
	SendSegment(now mono.Time, c *Conn, f *HeaderFields, payload [2][]byte)
}

// Config holds what connections share. Fill it with Defaults, then change
// what you need before the first NewConn; it must not change afterwards.
type Config struct {
	Output Output
	Stats  *Stats // counters shared by every connection; nil for none

	// ISNKey is the secret of RFC 6528's F() and of SYN cookies.
	ISNKey [16]byte

	SendBufferMax    int // bytes; Linux's tcp_wmem max is 4 MiB
	ReceiveBufferMax int // bytes; Linux's tcp_rmem max is 6 MiB

	RTOInitial time.Duration // RFC 6298 says 1 s
	RTOMin     time.Duration // RFC 6298 says 1 s; Linux uses 200 ms, as do we
	RTOMax     time.Duration // 120 s, as Linux
	SYNRetries int           // Linux's tcp_syn_retries: 6
	// SYNACKRetries is Linux's tcp_synack_retries: 5.
	SYNACKRetries int
	// Retries2 is Linux's tcp_retries2: retransmissions of data before the
	// connection is given up with ETIMEDOUT.
	Retries2 int

	DelayedACK time.Duration // Linux's minimum delayed-ACK timeout, 40 ms (at most 200 ms)
	TimeWait   time.Duration // 2MSL; Linux's TCP_TIMEWAIT_LEN is 60 s
	FinTimeout time.Duration // FIN-WAIT-2 for a closed socket: Linux's tcp_fin_timeout, 60 s
	KeepIdle   time.Duration // Linux: 2 h
	KeepIntvl  time.Duration // Linux: 75 s
	KeepCount  int           // Linux: 9
	// InvalidRateLimit spaces the ACKs sent for segments without data
	// outside the window and RFC 5961's challenge ACKs (Linux's
	// tcp_invalid_ratelimit, 500 ms).
	InvalidRateLimit                    time.Duration
	NoTimestamps, NoSACK, NoWindowScale bool
	// NoTLP turns off tail loss probes (RFC 8985 §7), which Linux sends
	// by default.
	NoTLP bool
	// NoInflightGovernor turns off the cap a bulk sender finds on what it
	// keeps in flight (inflight.go); the windows alone limit it then.
	NoInflightGovernor bool
	// NoAutocork sends a write's short last segment at once even while
	// full ones are in flight (output.go, corks), as Linux's
	// net.ipv4.tcp_autocorking=0.
	NoAutocork bool
	// NotsentLowat bounds what writes may queue beyond what has been sent
	// (Linux's tcp_notsent_lowat), so that bytes wait in the send buffer
	// only briefly and leave while still in the cache; a blocked writer
	// wakes once less than half of it is left. 0 means 128 KiB; negative,
	// no bound but the send buffer (Linux's default). A buffer the user
	// set is left whole.
	NotsentLowat int

	// OOOSegmentsMax and the receive buffer bound the out-of-order queue:
	// 4096 segments by default, so that the memory bound (ReceiveBufferMax
	// of chunks, 3072 segments of 1448 bytes by default) is the one that
	// holds, as Linux bounds it by the receive buffer alone.
	OOOSegmentsMax int

	// NewCongestionControl makes a connection's congestion controller; nil
	// means NewReno.
	NewCongestionControl func(mss int) CongestionControl

	filled  bool
	scratch *scratch
}

// scratch is working memory the connections of a Config share: the
// dispatch input and the header under construction must not live on the
// stack (an indirect call through the table, and Output's interface call,
// would move them to the heap per segment) and need not live in every
// connection (a million idle connections would carry 184 bytes each for
// nothing). Connections sharing a Config are serialised by their owner, as
// for Stats.
type scratch struct {
	in   Input
	busy bool // a dispatch is running: a nested one gets its own Input
	hdr  HeaderFields
}

// Defaults fills every zero field with its default.
func (cfg *Config) Defaults() {
	def := func(p *time.Duration, d time.Duration) {
		if *p == 0 {
			*p = d
		}
	}
	defi := func(p *int, d int) {
		if *p == 0 {
			*p = d
		}
	}
	defi(&cfg.SendBufferMax, 4<<20)
	defi(&cfg.ReceiveBufferMax, 6<<20)
	defi(&cfg.NotsentLowat, 128<<10)
	def(&cfg.RTOInitial, time.Second)
	def(&cfg.RTOMin, 200*time.Millisecond)
	def(&cfg.RTOMax, 120*time.Second)
	def(&cfg.InvalidRateLimit, 500*time.Millisecond)
	defi(&cfg.SYNRetries, 6)
	defi(&cfg.SYNACKRetries, 5)
	defi(&cfg.Retries2, 15)
	def(&cfg.DelayedACK, 40*time.Millisecond)
	def(&cfg.TimeWait, 60*time.Second)
	def(&cfg.FinTimeout, 60*time.Second)
	def(&cfg.KeepIdle, 2*time.Hour)
	def(&cfg.KeepIntvl, 75*time.Second)
	defi(&cfg.KeepCount, 9)
	defi(&cfg.OOOSegmentsMax, 4096)
	if cfg.scratch == nil {
		cfg.scratch = new(scratch)
	}
	cfg.filled = true
}

// Clone returns a copy of cfg for another owner: the settings, without the
// working space that Defaults gave cfg, which one event loop uses alone.
func (cfg *Config) Clone() Config {
	c := *cfg
	c.scratch, c.filled = nil, false
	return c
}

// Errors a connection reports. Those a Go user checks for wrap the errno
// net reports for the same condition.
var (
	ErrWouldBlock   = errors.New("tcp: operation would block")
	ErrConnExists   = errors.New("tcp: connection already exists")
	ErrNotConnected = fmt.Errorf("tcp: connection does not exist: %w", syscall.ENOTCONN)
	ErrClosing      = fmt.Errorf("tcp: connection closing: %w", syscall.EPIPE)
	ErrConnReset    = fmt.Errorf("tcp: connection reset by peer: %w", syscall.ECONNRESET)
	ErrConnRefused  = fmt.Errorf("tcp: connection refused: %w", syscall.ECONNREFUSED)
	ErrTimeout      = fmt.Errorf("tcp: connection timed out: %w", syscall.ETIMEDOUT)
	ErrConnAborted  = fmt.Errorf("tcp: connection aborted: %w", syscall.ECONNABORTED)
)

// Events are what a connection reports to its owner after a call: the owner
// wakes waiters accordingly. TakeEvents returns and clears them.
type Events uint8

const (
	EventReadable    Events = 1 << iota // data, end of stream or an error to read
	EventWritable                       // send buffer space freed, or an error
	EventEstablished                    // the handshake completed
	EventClosed                         // the connection reached CLOSED
	EventReuse                          // TIME-WAIT accepted a new SYN: reopen the tuple (see TimeWaitReuse)
)

// Endpoint is a connection's 4-tuple and the path's MSS.
type Endpoint struct {
	Local, Remote netip.AddrPort
	// MSS is the largest segment we can receive: the route MTU less the IP
	// and TCP headers. It caps what we send too.
	MSS int
	// GSOMax, when larger than the MSS, lets output hand the link one
	// super-segment of up to this many payload bytes, which the link (a
	// device with TSO) cuts into segments of SegmentSize bytes, each with
	// this header: one pass through the stack per 64 KiB, not per 1448 B.
	GSOMax int
}

// endpoint is an Endpoint as a Conn keeps it, its sizes in 32 bits.
type endpoint struct {
	Local, Remote netip.AddrPort
	mss, gsoMax   int32
}

// Input is what a handler works on: the event, the instant, and the
// segment or the user call's arguments and results.
type Input struct {
	ev    Event
	at    mono.Time
	seg   *Segment
	finOK bool   // the segment's FIN is in order and inside the window
	buf   []byte // SEND / RECEIVE
	n     int
	err   error
}

// fin reports whether the segment carries a FIN still to be processed.
func (in *Input) fin() bool { return in.finOK }

// Segment is an arriving segment, parsed.
type Segment struct {
	Seq, Ack seq.Value
	Flags    Flags
	Window   uint16
	Options  Options
	Payload  []byte

	// Buf, when not nil, is a buffer from internal/bufpool that Payload
	// lies in, offered to the connection to keep instead of copying the
	// payload. A connection that takes it sets Buf to nil and gives it back
	// to the pool once the bytes are read; the caller must not touch it
	// again.
	Buf *[]byte
}

// SegmentOf fills s from a parsed header. The payload stays in h's bytes.
func SegmentOf(h Header, s *Segment) {
	s.Seq, s.Ack, s.Flags, s.Window = h.SeqNum(), h.AckNum(), h.Flags(), h.Window()
	s.Options = h.DecodeOptions()
	s.Payload = h.Payload()
}

// Len is SEG.LEN: the payload plus one for each of SYN and FIN.
func (s *Segment) Len() seq.Size {
	n := seq.Size(len(s.Payload))
	if s.Flags&SYN != 0 {
		n++
	}
	if s.Flags&FIN != 0 {
		n++
	}
	return n
}

// Conn is one connection's TCB and the state machine that drives it.
// It is not safe for concurrent use: its owner calls it from one event loop.
//
// A million idle connections must fit in a few hundred bytes each (with
// the owner's socket and table entry, under 1 KiB per end), so what only
// some connections need lives in side structures that exist only while
// needed: the out-of-order queue and its SACK reporting state, and the
// scoreboard, come from pools while data is out of order or outstanding;
// errors, per-connection counters and the undo record are allocated the
// first time one is set. Fields are ordered to leave no padding. Every
// part is plain data reachable from the Conn, so a TCB can be exported.
type Conn struct {
	cfg *Config
	ep  endpoint
	x   *connExtra        // errors, counters, undo record; nil until one is set
	ooo *oooQueue         // out-of-order segments and SACK reports; nil while none
	sb  *scoreboard       // SACK and retransmission state; nil while nothing is outstanding
	rt  *tuning           // buffer autotuning and the in-flight governor; nil until data flows
	cc  CongestionControl // nil: NewReno, kept in renoAcc

	snd        sendBuffer
	rcv        recvBuffer
	bytesAcked uint64 // data bytes the peer has acknowledged

	// Retransmission (RFC 6298).
	srtt, rttvar, rto time.Duration
	rttStart          mono.Time

	cwnd     int // bytes
	ssthresh int
	renoAcc  int // NewReno's bytes acknowledged toward the next increase
	sndMSS   int // largest payload we send (options excluded)

	keepIdle   time.Duration
	tsRecentAt mono.Time
	oowAt      mono.Time // the last ACK sent for an out-of-window segment or challenge

	// Timers: the instant each one fires, or mono.Never.
	rtoAt, persistAt, delackAt, keepAt, waitAt mono.Time

	// Send sequence variables (RFC 9293 §3.3.1). SndNxt is the highest
	// sequence number sent so far plus one; sndCur is where the next
	// segment starts, behind SndNxt after a retransmission timeout.
	ISS, SndUna, SndNxt seq.Value
	SndWnd              seq.Size // scaled
	SndWl1, SndWl2      seq.Value
	sndCur              seq.Value
	maxSndWnd           seq.Size
	sndBufSeq           seq.Value // sequence number of snd's first byte
	finSeq              seq.Value // valid when finQueued

	// Receive sequence variables.
	IRS, RcvNxt seq.Value
	RcvWnd      seq.Size  // what the last advertisement allows beyond RcvNxt
	rcvAdv      seq.Value // right edge advertised: never moves left
	lastAckSent seq.Value
	dsack       SACKBlock // a duplicate to report (RFC 2883), valid when dsackValid

	tsOffset uint32
	TSRecent uint32
	rtoTS    uint32    // our timestamp clock at the last timeout
	rttSeq   seq.Value // the segment being timed ends here
	recover  seq.Value // RFC 6582's recover

	// Bounds of snd and rcv: a ring holds at most 2 GiB, as Linux's
	// sk_sndbuf and sk_rcvbuf are ints.
	sndBufMax, rcvBufMax int32

	// The send buffer in use, autotuned up to its bound (autotune.go);
	// the receive buffer's is rcvBuf().
	sndBuf int32

	backoff    int32 // consecutive timeouts
	dupAcks    int32
	rcvUnacked int32 // bytes received since the last ACK sent
	quickAcks  int32 // segments still to ACK at once (Linux's quickack mode)
	probes     int32 // unanswered zero-window probes
	keepProbes int32 // unanswered keepalive probes

	state              State
	prev               State // the state before the last transition, for tests and logs
	ev                 Events
	SndScale, RcvScale uint8

	// User options.
	NoDelay   bool // disable Nagle's algorithm
	KeepAlive bool

	finQueued        bool // CLOSE called: a FIN follows the data
	finRcvd          bool
	tsOK, sackOK     bool
	wsOK             bool // window scaling in effect
	rttTiming        bool
	recoverValid     bool
	inRecov          bool // in fast recovery, or in loss recovery after a timeout
	lossAll          bool // after a timeout: all unSACKed data below recover is lost
	ackPending       bool // an ACK is owed
	ackNow           bool // ...and must not wait for the delayed-ACK timer
	dsackValid       bool
	orphan           bool // the user has closed the socket: nobody reads
	issSet           bool
	sndLocked        bool // the user set the send buffer: no autotuning
	rcvLocked        bool // the user set the receive buffer: no autotuning
	listenCookies    bool // answer SYNs with SYN cookies, keeping no state
	synRetransmitted bool
	tlp              uint8 // tail loss probe: tlpNone, tlpArmed (rtoAt is the probe's), tlpSent
	opened           bool  // has left CLOSED since Reset: an OPEN starts it afresh
}

// connExtra is what few connections ever need: why the connection closed,
// the last ICMP error, the counts Info reports, and the record that undoes
// a spurious recovery. It is allocated the first time one of them is set
// and lives as long as the connection.
type connExtra struct {
	err    error // why the connection closed, if not cleanly
	soft   error // the last ICMP-reported error, reported on a timeout
	counts connCounts
	undo   undoState
}

// extra returns c's connExtra, allocating it if needed.
func (c *Conn) extra() *connExtra {
	if c.x == nil {
		c.x = new(connExtra)
	}
	return c.x
}

// closeErr returns why the connection closed abnormally, or nil.
func (c *Conn) closeErr() error {
	if c.x == nil {
		return nil
	}
	return c.x.err
}

// setErr records why the connection closes.
func (c *Conn) setErr(err error) { c.extra().err = err }

// counts returns the per-connection counters to increment.
func (c *Conn) counts() *connCounts { return &c.extra().counts }

// NewConn returns a connection in CLOSED for the endpoint.
func NewConn(cfg *Config, ep Endpoint) *Conn {
	c := &Conn{}
	c.Reset(cfg, ep)
	return c
}

// Reset reinitialises c as a new connection in CLOSED, reusing its memory.
func (c *Conn) Reset(cfg *Config, ep Endpoint) {
	if !cfg.filled {
		panic("tcp: Config used without Defaults")
	}
	c.releaseScoreboard()
	c.releaseOOO()
	*c = Conn{cfg: cfg, ep: endpoint{Local: ep.Local, Remote: ep.Remote, mss: clamp32(ep.MSS), gsoMax: clamp32(ep.GSOMax)}}
	if c.ep.mss <= 0 {
		c.ep.mss = defaultMSS
	}
	c.rto = cfg.RTOInitial
	c.keepIdle = cfg.KeepIdle
	c.sndBufMax, c.rcvBufMax = clamp32(cfg.SendBufferMax), clamp32(cfg.ReceiveBufferMax)
	c.initBuffers()
	c.rtoAt, c.persistAt, c.delackAt, c.keepAt, c.waitAt = mono.Never, mono.Never, mono.Never, mono.Never, mono.Never
	c.sndMSS = min(defaultMSS, int(c.ep.mss))
	// The timestamp offset is a keyed hash of the tuple, as Linux's: a
	// SYN-cookie connection rebuilt later must use the same one.
	c.tsOffset = uint32(tupleHash(&cfg.ISNKey, ep.Local, ep.Remote, 1))
}

func clamp32(n int) int32 { return int32(min(max(n, 0), 1<<31-1)) }

// defaultMSS is what we assume a peer that sends no MSS option can take
// (RFC 9293 §3.7.1, IPv4).
const defaultMSS = 536

// State returns the connection's state.
func (c *Conn) State() State { return c.state }

// Err returns why the connection closed abnormally, or nil.
func (c *Conn) Err() error { return c.closeErr() }

// Addrs returns the local and remote addresses and ports: the 4-tuple
// alone, for owners that look it up on every segment.
func (c *Conn) Addrs() (local, remote netip.AddrPort) { return c.ep.Local, c.ep.Remote }

// Endpoint returns the 4-tuple and the path's sizes.
func (c *Conn) Endpoint() Endpoint {
	return Endpoint{Local: c.ep.Local, Remote: c.ep.Remote, MSS: int(c.ep.mss), GSOMax: int(c.ep.gsoMax)}
}

// TakeEvents returns the events since the last call and clears them.
func (c *Conn) TakeEvents() Events { e := c.ev; c.ev = 0; return e }

// run dispatches one event in the Config's scratch Input and returns its
// results.
func (c *Conn) run(ev Input) (int, error) {
	sc := c.cfg.scratch
	if sc.busy {
		in := new(Input)
		*in = ev
		c.dispatch(in)
		return in.n, in.err
	}
	sc.busy = true
	sc.in = ev
	c.dispatch(&sc.in)
	n, err := sc.in.n, sc.in.err
	sc.in = Input{} // hold no segment or buffer
	sc.busy = false
	return n, err
}

// dispatch runs one event through the table.
func (c *Conn) dispatch(in *Input) {
	table[c.state][in.ev](c, in)
}

// setState is the only way the state changes.
func (c *Conn) setState(s State) {
	if s == c.state {
		return
	}
	c.prev, c.state = c.state, s
	if c.cfg.Stats != nil {
		c.cfg.Stats.transition(c.prev, s)
	}
	switch s {
	case Established:
		if c.prev == SynSent || c.prev == SynReceived {
			c.ev |= EventEstablished | EventWritable
		}
	case Closed:
		c.ev |= EventClosed | EventReadable | EventWritable
		c.setRTO(mono.Never)
		c.persistAt, c.delackAt, c.keepAt, c.waitAt = mono.Never, mono.Never, mono.Never, mono.Never
		c.snd.release()
		c.releaseOOO()
		c.releaseScoreboard()
		if c.orphan {
			c.rcv.release()
		}
	}
}

// Connect is the active OPEN: it sends a SYN.
func (c *Conn) Connect(now mono.Time) error {
	_, err := c.run(Input{ev: UserOpenActive, at: now})
	return err
}

// Listen is the passive OPEN: the connection waits in LISTEN for a SYN
// from its endpoint's remote address. cookies says to answer with a SYN
// cookie and stay in LISTEN (the listener's SYN queue is full).
func (c *Conn) Listen(now mono.Time, cookies bool) error {
	c.listenCookies = cookies
	_, err := c.run(Input{ev: UserOpenPassive, at: now})
	return err
}

// Write is SEND: it queues what fits of p in the send buffer and sends what
// the windows allow. It returns the number of bytes taken; ErrWouldBlock
// when the buffer is full.
func (c *Conn) Write(now mono.Time, p []byte) (int, error) {
	return c.run(Input{ev: UserSend, at: now, buf: p})
}

// Read is RECEIVE: it copies received data into p. At the end of the
// stream it returns io.EOF; with nothing to read yet, ErrWouldBlock; after
// an abnormal close, the reason once the data is read.
func (c *Conn) Read(now mono.Time, p []byte) (int, error) {
	return c.run(Input{ev: UserReceive, at: now, buf: p})
}

// Close is CLOSE: no more data will be sent; a FIN follows what is queued.
func (c *Conn) Close(now mono.Time) error {
	_, err := c.run(Input{ev: UserClose, at: now})
	return err
}

// Abort is ABORT: the connection is reset and closed at once.
func (c *Conn) Abort(now mono.Time) error {
	_, err := c.run(Input{ev: UserAbort, at: now})
	return err
}

// SetOrphan records that nobody will read or write any more (the socket was
// closed): data that still arrives is answered with a RST, as Linux does,
// and FIN-WAIT-2 ends after FinTimeout.
func (c *Conn) SetOrphan(now mono.Time) {
	c.orphan = true
	c.rcv.release()
	if c.state == FinWait2 && c.waitAt == mono.Never {
		c.waitAt = now.Add(c.cfg.FinTimeout)
	}
}

// Input processes an arriving segment. The payload is copied if kept,
// unless the connection takes the buffer s.Buf offers.
func (c *Conn) Input(now mono.Time, s *Segment) {
	ev, ok := Classify(s.Flags)
	if !ok {
		c.count(func(st *Stats) { st.BadFlags++ })
		return
	}
	c.run(Input{ev: ev, at: now, seg: s, finOK: ev == SegFIN})
}

// OnTimer runs every timer due at or before now.
func (c *Conn) OnTimer(now mono.Time) {
	timers := [...]struct {
		at *mono.Time
		ev Event
	}{
		{&c.rtoAt, TimerRetransmit},
		{&c.persistAt, TimerPersist},
		{&c.delackAt, TimerDelayedACK},
		{&c.keepAt, TimerKeepalive},
		{&c.waitAt, TimerTimeWait},
	}
	for _, t := range timers {
		if *t.at <= now {
			*t.at = mono.Never
			c.run(Input{ev: t.ev, at: now})
		}
	}
}

// Deadline returns when OnTimer must next be called, or mono.Never.
func (c *Conn) Deadline() mono.Time {
	return mono.Min(mono.Min(mono.Min(c.rtoAt, c.persistAt), mono.Min(c.delackAt, c.keepAt)), c.waitAt)
}

// Readable returns the number of bytes ready to read.
func (c *Conn) Readable() int { return c.rcv.Len() }

// ReadClosed reports whether Read would return without blocking once the
// buffered data is read: the peer's FIN arrived or the connection closed.
func (c *Conn) ReadClosed() bool { return c.finRcvd || c.state == Closed }

// WriteSpace returns how many bytes Write would take now.
func (c *Conn) WriteSpace() int {
	if c.finQueued {
		return 0
	}
	return max(c.sndLimit()-c.snd.Len(), 0)
}

// Unacked returns the bytes queued but not yet acknowledged by the peer.
func (c *Conn) Unacked() int { return c.snd.Len() }

// BytesAcked returns the number of data bytes the peer has acknowledged
// since the connection opened: where an application resumes after a
// failover.
func (c *Conn) BytesAcked() uint64 { return c.bytesAcked }

// SetBufferSizes sets the send and receive buffer bounds (SO_SNDBUF,
// SO_RCVBUF); 0 leaves one as it is. As in Linux, the receive buffer
// chooses the window scale only if set before the SYN is sent.
func (c *Conn) SetBufferSizes(snd, rcv int) {
	if snd > 0 {
		c.sndBufMax = clamp32(max(snd, c.snd.Len(), 2048))
		c.sndBuf, c.sndLocked = c.sndBufMax, true
	}
	if rcv > 0 {
		// Never below what is buffered plus the window already offered:
		// the peer may send all of it, and a window must not shrink
		// (RFC 9293 §3.8.6). A smaller bound takes effect as data is read.
		held := c.rcv.Len()
		if c.rcvAdv.GreaterThan(c.RcvNxt) {
			held += int(c.RcvNxt.Size(c.rcvAdv))
		}
		c.rcvBufMax = clamp32(max(rcv, held, 2048))
		c.rcvLocked = true
		if c.rt != nil {
			c.rt.rcvOn = false
		}
	}
}

// BufferSizes returns the send and receive buffer bounds.
func (c *Conn) BufferSizes() (snd, rcv int) { return int(c.sndBufMax), int(c.rcvBufMax) }

// SoftError reports an ICMP error about the connection's segments
// (RFC 1122 §4.2.3.9). During the handshake it ends the connection with
// that error, as Linux does; afterwards it is remembered and reported only
// if the connection times out.
func (c *Conn) SoftError(err error) {
	if c.state == SynSent {
		c.setErr(err)
		c.setState(Closed)
		return
	}
	c.extra().soft = err
}

// SetKeepAlive turns keepalive probes on or off; idle 0 keeps the
// configured idle time.
func (c *Conn) SetKeepAlive(now mono.Time, on bool, idle time.Duration) {
	c.KeepAlive = on
	if idle > 0 {
		c.keepIdle = idle
	}
	c.armKeepalive(now)
}

// MSS returns the largest payload the connection sends in one segment.
func (c *Conn) MSS() int { return c.sndMSS }

// SRTT returns the smoothed round-trip time, 0 before the first sample.
func (c *Conn) SRTT() time.Duration { return c.srtt }

// RTO returns the current retransmission timeout.
func (c *Conn) RTO() time.Duration { return c.rto }

// Cwnd returns the congestion window in bytes.
func (c *Conn) Cwnd() int { return c.cwnd }

// Info is a snapshot of a connection's sender and receiver state, in the
// spirit of Linux's struct tcp_info: what a simulation plots and an
// operator asks about one connection.
type Info struct {
	State      State
	SndMSS     int
	RcvMSS     int
	SRTT       time.Duration // 0 before the first sample
	RTTVar     time.Duration
	RTO        time.Duration
	Cwnd       int // bytes
	Ssthresh   int // bytes
	InRecovery bool
	Backoff    int // consecutive timeouts
	InFlight   int // bytes sent and not acknowledged
	SndWnd     int // the peer's window
	RcvWnd     int // the window we offer
	BytesAcked uint64
	// InflightCap is the in-flight governor's cap; 0 while there is none.
	InflightCap int

	// Per-connection counts of the events Stats sums over all connections.
	Retransmits    uint32
	Timeouts       uint32
	FastRecoveries uint32
	DSACKsReceived uint32
	SpuriousUndos  uint32 // recoveries undone by D-SACK
}

// Info returns the connection's current state.
func (c *Conn) Info() Info {
	var n connCounts
	if c.x != nil {
		n = c.x.counts
	}
	return Info{
		State: c.state, SndMSS: c.sndMSS, RcvMSS: c.rcvMSS(),
		SRTT: c.srtt, RTTVar: c.rttvar, RTO: c.rto,
		Cwnd: c.cwnd, Ssthresh: c.ssthresh, InRecovery: c.inRecov, Backoff: int(c.backoff),
		InFlight: int(c.SndUna.Size(c.SndNxt)), SndWnd: int(c.SndWnd), RcvWnd: int(c.RcvWnd),
		BytesAcked: c.bytesAcked, InflightCap: c.inflightCap(),
		Retransmits: n.retransmits, Timeouts: n.timeouts,
		FastRecoveries: n.fastRecoveries, DSACKsReceived: n.dsacks,
		SpuriousUndos: n.undos,
	}
}

// BufferedBytes returns the memory the connection's buffers hold.
func (c *Conn) BufferedBytes() int { return c.snd.Cap() + c.rcv.Cap() + c.ooo.size() }

// connCounts are the per-connection counters Info reports.
type connCounts struct {
	retransmits, timeouts, fastRecoveries, dsacks, undos uint32
}

func (c *Conn) count(f func(*Stats)) {
	if c.cfg.Stats != nil {
		f(c.cfg.Stats)
	}
}

// ---- User-call cells ----

func (c *Conn) errConnExists(in *Input) { in.err = ErrConnExists }
func (c *Conn) errNotConnected(in *Input) {
	in.err = ErrNotConnected
	if err := c.closeErr(); err != nil && in.ev == UserSend {
		in.err = err
	}
}

// errClosing answers SEND and CLOSE after CLOSE (§3.10.2, §3.10.4), or
// reports why the connection ended.
func (c *Conn) errClosing(in *Input) {
	if err := c.closeErr(); err != nil {
		in.err = err
		return
	}
	in.err = ErrClosing
}

// ignore is a timer cell: that timer cannot be armed in this state.
func (c *Conn) ignore(in *Input) {}

func (c *Conn) openActive(in *Input) {
	c.renew()
	c.initSend(in.at)
	c.setState(SynSent)
	c.sendSYN(in.at)
	c.armRTO(in.at)
}

func (c *Conn) openPassive(in *Input) {
	c.renew()
	c.setState(Listen)
}

// renew makes a connection that was open before a new TCB, as OPEN in
// CLOSED creates one (RFC 9293 §3.10.1): nothing of the old connection
// stays (a queued FIN, buffered data, sequence numbers, errors) but its
// endpoint and what its user set: buffer sizes, Nagle, keepalive, a fixed
// ISS, SYN cookies.
func (c *Conn) renew() {
	if c.opened {
		noDelay, keep, keepIdle := c.NoDelay, c.KeepAlive, c.keepIdle
		snd, rcv, sndLocked, rcvLocked := c.sndBufMax, c.rcvBufMax, c.sndLocked, c.rcvLocked
		issSet, iss, cookies := c.issSet, c.ISS, c.listenCookies
		c.Reset(c.cfg, c.Endpoint())
		c.NoDelay, c.KeepAlive, c.keepIdle = noDelay, keep, keepIdle
		c.sndBufMax, c.rcvBufMax, c.sndLocked, c.rcvLocked = snd, rcv, sndLocked, rcvLocked
		c.initBuffers()
		c.issSet, c.ISS, c.listenCookies = issSet, iss, cookies
	}
	c.opened = true
}

// deleteTCB ends the connection without a word to the peer.
func (c *Conn) deleteTCB(in *Input) {
	if in.ev == UserAbort || in.ev == UserClose {
		if c.closeErr() == nil && in.ev == UserAbort {
			c.setErr(ErrConnAborted)
		}
	}
	c.setState(Closed)
}

// abortWithRST is ABORT in a synchronized state: <SEQ=SND.NXT><CTL=RST>.
func (c *Conn) abortWithRST(in *Input) {
	c.sendRST(in.at, c.SndNxt, 0, false)
	if c.closeErr() == nil {
		c.setErr(ErrConnAborted)
	}
	c.setState(Closed)
}

// queueSend is SEND before the handshake completes: the data waits.
func (c *Conn) queueSend(in *Input) {
	if c.finQueued {
		in.err = ErrClosing
		return
	}
	in.n = c.snd.write(in.buf, c.sndLimit())
	if in.n == 0 && len(in.buf) > 0 {
		in.err = ErrWouldBlock
	}
}

// send is SEND when data may flow: queue, then send what the windows allow.
func (c *Conn) send(in *Input) {
	if c.finQueued {
		in.err = ErrClosing
		return
	}
	in.n = c.snd.write(in.buf, c.sndLimit())
	if in.n == 0 && len(in.buf) > 0 {
		in.err = ErrWouldBlock
		return
	}
	c.sendData(in.at, sendWrite)
}

// receive is RECEIVE in every state: buffered data first, then end of
// stream or the error, else wait.
func (c *Conn) receive(in *Input) {
	if n := c.rcv.read(in.buf); n > 0 {
		in.n = n
		if c.rcv.Len() == 0 {
			c.rcv.release()
		}
		if c.state.synchronized() && !c.finRcvd {
			c.tuneRcvBuf(in.at)
			c.windowUpdate(in.at)
		}
		return
	}
	switch {
	case len(in.buf) == 0:
	case c.finRcvd:
		in.err = io.EOF
	case c.state == Closed && c.closeErr() != nil:
		in.err = c.closeErr()
	case c.state == Closed && c.prev == Closed:
		in.err = ErrNotConnected // never opened
	case c.state == Closed:
		in.err = io.EOF
	default:
		in.err = ErrWouldBlock
	}
}

// closeSynReceived: a FIN once the handshake completes (§3.10.4 queues the
// CLOSE until ESTABLISHED when data is pending; we queue it always, since
// our SYN-ACK may not have been acknowledged yet).
func (c *Conn) closeSynReceived(in *Input) {
	c.queueFIN()
}

func (c *Conn) closeEstablished(in *Input) {
	c.queueFIN()
	c.setState(FinWait1)
	c.output(in.at)
}

func (c *Conn) closeCloseWait(in *Input) {
	c.queueFIN()
	c.setState(LastAck)
	c.output(in.at)
}

func (c *Conn) queueFIN() {
	if !c.finQueued {
		c.finQueued = true
		c.finSeq = c.sndBufSeq.Add(seq.Size(c.snd.Len()))
	}
}

// ---- Segment cells outside the synchronized states ----

// drop discards a segment the state has no use for.
func (c *Conn) drop(in *Input) {
	c.count(func(st *Stats) { st.Dropped++ })
}

// replyReset answers a segment for no connection (§3.10.7.1): if the
// segment has an ACK, <SEQ=SEG.ACK><CTL=RST>; otherwise
// <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>.
func (c *Conn) replyReset(in *Input) {
	f, ok := ResetFor(in.seg)
	if !ok {
		return
	}
	c.emitRST(in.at, f)
}

// ResetFor returns the RST that answers s when no connection exists for it
// (RFC 9293 §3.10.7.1), with ports left zero; ok is false for a RST, which
// is never answered.
func ResetFor(s *Segment) (f HeaderFields, ok bool) {
	if s.Flags&RST != 0 {
		return f, false
	}
	if s.Flags&ACK != 0 {
		return HeaderFields{SeqNum: s.Ack, Flags: RST}, true
	}
	return HeaderFields{AckNum: s.Seq.Add(s.Len()), Flags: RST | ACK}, true
}

// listenOnSYN (§3.10.7.2, third check): record the peer's ISN and options,
// choose ours, answer SYN,ACK and enter SYN-RECEIVED. With the SYN queue
// full, a SYN cookie answers instead and we stay in LISTEN.
func (c *Conn) listenOnSYN(in *Input) {
	s := in.seg
	c.IRS, c.RcvNxt = s.Seq, s.Seq.Add(1)
	c.negotiate(&s.Options, true)
	c.initRecvOnSYN(in.at, s)
	if c.listenCookies {
		c.sendCookieSYNACK(in.at, s)
		return
	}
	c.initSend(in.at)
	c.setState(SynReceived)
	c.sendSYN(in.at)
	c.armRTO(in.at)
}

// listenOnACK: an ACK in LISTEN may complete a SYN-cookie handshake;
// otherwise it is answered <SEQ=SEG.ACK><CTL=RST>.
func (c *Conn) listenOnACK(in *Input) {
	if c.acceptCookie(in) {
		return
	}
	c.replyReset(in)
}

// synSentOnSYNACK (§3.10.7.3): check the ACK, then record the peer and
// acknowledge its SYN: ESTABLISHED.
func (c *Conn) synSentOnSYNACK(in *Input) {
	s := in.seg
	if !c.synSentACKAcceptable(in) {
		return
	}
	c.IRS, c.RcvNxt = s.Seq, s.Seq.Add(1)
	c.negotiate(&s.Options, false)
	c.initRecvOnSYN(in.at, s)
	c.SndUna = s.Ack
	c.sndBufSeq = c.ISS.Add(1)
	c.sampleSYNRTT(in.at)
	c.SndWnd = seq.Size(s.Window) // never scaled in a SYN
	c.maxSndWnd = c.SndWnd
	c.SndWl1, c.SndWl2 = s.Seq, s.Ack
	c.setRTO(mono.Never)
	c.backoff = 0
	c.setState(Established)
	c.armKeepalive(in.at)
	// The third segment of the handshake: at once, or carrying data.
	c.ackNow = true
	c.output(in.at)
	c.flushACK(in.at)
}

// synSentOnSYN is simultaneous open (§3.10.7.3, fourth check): SYN-RECEIVED,
// answering <SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK>.
func (c *Conn) synSentOnSYN(in *Input) {
	s := in.seg
	c.IRS, c.RcvNxt = s.Seq, s.Seq.Add(1)
	c.negotiate(&s.Options, true)
	c.initRecvOnSYN(in.at, s)
	c.setState(SynReceived)
	c.sendSYN(in.at)
	c.armRTO(in.at)
}

// synSentOnACK: an ACK (perhaps with FIN) but no SYN. An unacceptable ACK
// is answered <SEQ=SEG.ACK><CTL=RST>; an acceptable one without SYN is
// dropped.
func (c *Conn) synSentOnACK(in *Input) {
	if c.synSentACKAcceptable(in) {
		c.drop(in)
	}
}

// synSentACKAcceptable is the first check of §3.10.7.3: ISS < SEG.ACK =<
// SND.NXT, else a RST (unless the segment is one) and a drop.
func (c *Conn) synSentACKAcceptable(in *Input) bool {
	a := in.seg.Ack
	if a.LessThanEq(c.ISS) || a.GreaterThan(c.SndNxt) {
		if in.ev != SegRSTACK {
			c.emitRST(in.at, HeaderFields{SeqNum: a, Flags: RST})
		}
		c.count(func(st *Stats) { st.BadACK++ })
		return false
	}
	return true
}

// synSentOnRST: a RST whose ACK acknowledges our SYN means the connection
// is refused; any other RST is dropped.
func (c *Conn) synSentOnRST(in *Input) {
	if !c.synSentACKAcceptable(in) {
		return
	}
	c.count(func(st *Stats) { st.ResetsReceived++ })
	c.setErr(ErrConnRefused)
	c.setState(Closed)
}

// synReceivedOnSYN: the peer retransmitted its SYN, so our SYN,ACK was
// lost: send it again (as Linux does for a request socket). Any other SYN
// gets the challenge ACK of RFC 5961 §4.
func (c *Conn) synReceivedOnSYN(in *Input) {
	if in.seg.Seq == c.IRS {
		c.sendSYN(in.at)
		return
	}
	c.onSYN(in)
}

// synReceivedOnSYNACK: in simultaneous open (RFC 9293 Figure 7, line 6)
// the peer's SYN,ACK repeats its SYN and acknowledges ours; it completes
// the handshake although its SYN lies before RCV.NXT (Linux makes the same
// exception to RFC 5961 §4). Any other SYN,ACK gets a challenge ACK.
func (c *Conn) synReceivedOnSYNACK(in *Input) {
	s := in.seg
	if s.Seq.Add(1) != c.RcvNxt || s.Ack != c.SndNxt {
		c.onSYN(in)
		return
	}
	t := *s
	t.Seq, t.Payload = c.RcvNxt, nil
	in.seg = &t
	_ = c.acceptHandshakeACK(in) && c.checkACK(in)
	c.finish(in.at)
}
