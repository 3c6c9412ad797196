package sim

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"syscall"

	"github.com/tapstack/tapstack/mono"
	"github.com/tapstack/tapstack/netstack"
)

// Stream is a non-blocking byte stream, as the transfer application drives
// it: the shape of netstack's TCP sockets.
type Stream interface {
	// TryRead reads what is buffered: netstack.ErrWouldBlock when nothing
	// is, io.EOF once the peer has closed and everything was read.
	TryRead(p []byte) (int, error)
	// TryWrite queues what fits of p: netstack.ErrWouldBlock when nothing
	// does (or the stream is not yet connected).
	TryWrite(p []byte) (int, error)
	// CloseWrite ends the sending direction after the queued data. It may
	// fail with syscall.ENOTCONN while the connection is being set up;
	// the caller tries again when notified.
	CloseWrite() error
	// Close releases the stream.
	Close() error
	// SetNotify registers a readiness callback: it is called, with the
	// stack's lock held, whenever the stream may have become readable or
	// writable or changed state, and must only record that (Task.Wake).
	SetNotify(f func())
}

// StreamListener accepts Streams without blocking.
type StreamListener interface {
	// TryAccept returns the next connected stream, or
	// netstack.ErrWouldBlock.
	TryAccept() (Stream, error)
	SetNotify(f func())
	Close() error
}

// Transport opens streams on a World's hosts.
type Transport interface {
	Listen(h *Host, port uint16) (StreamListener, error)
	// Dial starts a connection and returns at once; the stream becomes
	// writable when it is connected.
	Dial(h *Host, raddr netip.AddrPort) (Stream, error)
}

// Transfer describes a bulk transfer: Conns connections from Client to
// Server's Port, each carrying Bytes bytes of its own Pattern, verified by
// the server as they arrive, then closed cleanly by both sides.
type Transfer struct {
	Transport      Transport
	Client, Server *Host
	// ServerAddr is the address the client dials; zero means the server's
	// first interface's address.
	ServerAddr netip.Addr
	Port       uint16
	Conns      int   // 1..65536
	Bytes      int64 // per connection, >= 0
	// Chunk is the most one write offers; 0 means 64 KiB.
	Chunk int
	// Redials is how many times a connection that failed before the peer
	// acknowledged any of it (refused, unreachable, timed out connecting:
	// a neighbour that did not answer ARP, a SYN lost too often) is dialled
	// again from the start, as an application would. 0 means never.
	Redials int
	// SampleInfo samples both ends of every connection whose streams
	// report their TCP state (InfoConn, as netstack's do) into
	// ConnRun.ClientInfo and ServerInfo. It only reads: the run is the same
	// with or without it.
	SampleInfo bool
}

// ConnRun is the progress of one connection of a transfer. Its fields are
// final once both tasks are done.
type ConnRun struct {
	ID       int
	Sender   *Task
	Receiver *Task // nil until the server accepted it
	Written  int64 // data bytes the stream took (the header excluded)
	Redials  int   // times the connection was dialled again
	Verified int64 // data bytes the server read and checked
	Started  mono.Time
	// Received is when the server read the last byte; Closed when the
	// client saw the server's close: the end of the clean close.
	Received, Closed mono.Time
	// ClientInfo and ServerInfo are each end's own state over time, with
	// Transfer.SampleInfo (ClientInfo: the last attempt's).
	ClientInfo, ServerInfo *TCPInfoSeries

	client, server Stream // for diagnostics
}

// TransferRun is a transfer in progress.
type TransferRun struct {
	x        Transfer
	Conns    []*ConnRun
	listener *Task
}

// Done reports whether every connection has finished on both sides.
func (r *TransferRun) Done() bool {
	for _, c := range r.Conns {
		if !c.Sender.Done() || c.Receiver == nil || !c.Receiver.Done() {
			return false
		}
	}
	return r.listener.Done()
}

// Verified returns the data bytes verified over all connections.
func (r *TransferRun) Verified() int64 {
	var n int64
	for _, c := range r.Conns {
		n += c.Verified
	}
	return n
}

const (
	streamHeaderLen = 16         // magic, connection id, length
	magicStream     = 0x53494d53 // "SIMS"
	defaultChunk    = 64 << 10
)

// StartTransfer starts x: the server listens, then every connection is
// dialled at once.
func (w *World) StartTransfer(x Transfer) (*TransferRun, error) {
	if x.Transport == nil || x.Client == nil || x.Server == nil {
		return nil, errors.New("sim: transfer needs a Transport, a Client and a Server")
	}
	if x.Conns < 1 || x.Conns > 1<<16 || x.Bytes < 0 || x.Chunk < 0 || x.Port == 0 || x.Redials < 0 {
		return nil, fmt.Errorf("sim: transfer: bad Conns %d, Bytes %d, Chunk %d or Port %d", x.Conns, x.Bytes, x.Chunk, x.Port)
	}
	if x.Chunk == 0 {
		x.Chunk = defaultChunk
	}
	if !x.ServerAddr.IsValid() {
		if x.ServerAddr = x.Server.Addr(); !x.ServerAddr.IsValid() {
			return nil, fmt.Errorf("sim: transfer: server %s has no interface", x.Server.name)
		}
	}
	ln, err := x.Transport.Listen(x.Server, x.Port)
	if err != nil {
		return nil, err
	}
	r := &TransferRun{x: x}
	for i := range x.Conns {
		s, err := x.Transport.Dial(x.Client, netip.AddrPortFrom(x.ServerAddr, x.Port))
		if err != nil {
			return nil, fmt.Errorf("sim: transfer: dial %d: %w", i, err)
		}
		c := &ConnRun{ID: i, Started: w.now, Received: mono.Never, Closed: mono.Never}
		c.client = s
		snd := &streamSender{c: c, s: s, r: r, x: &r.x, raddr: netip.AddrPortFrom(x.ServerAddr, x.Port), total: x.Bytes, pat: NewPattern(w.Seed(), streamPatternID(i)),
			buf: make([]byte, x.Chunk)}
		c.Sender = w.spawnOn(x.Client, fmt.Sprintf("stream-send/%d", i), snd.step)
		s.SetNotify(c.Sender.Wake)
		r.sample(w, c, s)
		r.Conns = append(r.Conns, c)
	}
	acc := &streamAcceptor{r: r, ln: ln}
	r.listener = w.spawnOn(x.Server, fmt.Sprintf("stream-listen/%s:%d", x.Server.name, x.Port), acc.step)
	ln.SetNotify(r.listener.Wake)
	return r, nil
}

// sample starts sampling a connection's client end, if asked for.
func (r *TransferRun) sample(w *World, c *ConnRun, s Stream) {
	if ic, ok := s.(InfoConn); ok && r.x.SampleInfo {
		c.ClientInfo = w.SampleTCP(r.x.Client, fmt.Sprintf("client/%d", c.ID), ic)
	}
}

// streamPatternID keeps connections' patterns apart from UDP flows'.
func streamPatternID(conn int) uint64 { return 1<<32 | uint64(conn) }

// streamSender writes one connection's header and data, half-closes, and
// waits for the server's close.
type streamSender struct {
	c       *ConnRun
	s       Stream
	r       *TransferRun
	x       *Transfer
	raddr   netip.AddrPort
	total   int64
	off     int64 // bytes written, header included
	pat     Pattern
	buf     []byte
	pend    []byte // filled from buf, not yet written from pos on
	pos     int
	shut    bool // CloseWrite done
	scratch [1]byte
}

func (snd *streamSender) step(t *Task) {
	end := streamHeaderLen + snd.total
	for snd.off < end {
		if snd.pos == len(snd.pend) {
			// Fill the next chunk once; what the stream does not take now
			// waits here for the next step.
			n := int(min(int64(len(snd.buf)), end-snd.off))
			snd.pend, snd.pos = snd.buf[:n], 0
			snd.fill(snd.pend)
		}
		b := snd.pend[snd.pos:]
		m, err := snd.s.TryWrite(b)
		if m > 0 {
			snd.pos += m
			snd.off += int64(m)
			snd.c.Written = max(snd.off-streamHeaderLen, 0)
		}
		if err == netstack.ErrWouldBlock || (err == nil && m < len(b)) {
			return
		}
		if err != nil {
			snd.fail(t, fmt.Sprintf("write at %d", snd.off), err)
			return
		}
	}
	if !snd.shut {
		// ENOTCONN: still connecting, everything queued; or the connection
		// failed, which the read below reports.
		if err := snd.s.CloseWrite(); err == nil {
			snd.shut = true
		} else if !errors.Is(err, syscall.ENOTCONN) {
			snd.fail(t, "close write", err)
			return
		}
	}
	// The server sends nothing; it closes once it has checked everything.
	n, err := snd.s.TryRead(snd.scratch[:])
	switch {
	case err == netstack.ErrWouldBlock:
		return
	case err == io.EOF && snd.shut:
		snd.c.Closed = t.Now()
		if err := snd.s.Close(); err != nil {
			t.Exit(fmt.Errorf("close: %w", err))
			return
		}
		t.Exit(nil)
	case err == io.EOF:
		t.Exit(integrityf("connection %d: the server closed first", snd.c.ID))
	case err != nil:
		snd.fail(t, "waiting for the server's close", err)
	case n > 0:
		t.Exit(integrityf("connection %d: the server sent data", snd.c.ID))
	}
}

// fail ends the sender with err, or dials again if the connection never
// got anywhere and redials are left.
func (snd *streamSender) fail(t *Task, what string, err error) {
	if snd.c.Redials >= snd.x.Redials || snd.c.Receiver != nil || !neverConnected(snd.s, err) {
		t.Exit(fmt.Errorf("%s: %w", what, err))
		return
	}
	_ = snd.s.Close() // it has failed already
	s, derr := snd.x.Transport.Dial(snd.x.Client, snd.raddr)
	if derr != nil {
		t.Exit(fmt.Errorf("%s: %w; dialling again: %w", what, err, derr))
		return
	}
	snd.c.Redials++
	snd.c.client, snd.s = s, s
	snd.off, snd.shut, snd.c.Written = 0, false, 0
	snd.pend, snd.pos = nil, 0
	s.SetNotify(t.Wake)
	snd.r.sample(t.w, snd.c, s)
	t.Wake()
}

// neverConnected reports whether err ended a connection that the peer
// never acknowledged a byte of: refused, unreachable, or timed out.
// Without BytesAcked on the stream, it cannot tell.
func neverConnected(s Stream, err error) bool {
	a, ok := s.(interface{ BytesAcked() uint64 })
	if !ok || a.BytesAcked() != 0 {
		return false
	}
	for _, e := range []error{syscall.ECONNREFUSED, syscall.EHOSTUNREACH, syscall.ENETUNREACH, syscall.ETIMEDOUT} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// fill puts the stream's bytes [off, off+len(b)) in b: the header, then the
// pattern.
func (snd *streamSender) fill(b []byte) {
	off := snd.off
	if off < streamHeaderLen {
		var h [streamHeaderLen]byte
		binary.BigEndian.PutUint32(h[0:], magicStream)
		binary.BigEndian.PutUint32(h[4:], uint32(snd.c.ID))
		binary.BigEndian.PutUint64(h[8:], uint64(snd.total))
		k := copy(b, h[off:])
		b, off = b[k:], streamHeaderLen
	}
	snd.pat.Fill(b, uint64(off-streamHeaderLen))
}

// streamAcceptor accepts the transfer's connections and gives each a
// receiver.
type streamAcceptor struct {
	r        *TransferRun
	ln       StreamListener
	accepted int
}

func (a *streamAcceptor) step(t *Task) {
	x := &a.r.x
	for a.accepted < x.Conns {
		s, err := a.ln.TryAccept()
		if err == netstack.ErrWouldBlock {
			return
		}
		if err != nil {
			t.Exit(fmt.Errorf("accept: %w", err))
			return
		}
		a.accepted++
		rcv := &streamReceiver{r: a.r, s: s, buf: make([]byte, x.Chunk)}
		rt := t.w.spawnOn(x.Server, fmt.Sprintf("stream-recv/%d", a.accepted-1), rcv.step)
		rcv.task = rt
		s.SetNotify(rt.Wake)
		if ic, ok := s.(InfoConn); ok && x.SampleInfo {
			// Named once the header says which connection it is.
			rcv.info = t.w.SampleTCP(x.Server, fmt.Sprintf("server/accepted-%d", a.accepted-1), ic)
		}
	}
	if err := a.ln.Close(); err != nil {
		t.Exit(fmt.Errorf("close listener: %w", err))
		return
	}
	t.Exit(nil)
}

// streamReceiver reads one connection, checks every byte against its
// pattern, and closes at the end of the stream.
type streamReceiver struct {
	r    *TransferRun
	s    Stream
	task *Task
	buf  []byte
	hdr  [streamHeaderLen]byte
	nhdr int
	c    *ConnRun // known once the header is read
	info *TCPInfoSeries
	pat  Pattern
	got  int64 // data bytes checked
}

func (rcv *streamReceiver) step(t *Task) {
	for {
		n, err := rcv.s.TryRead(rcv.buf)
		if n > 0 {
			if err := rcv.consume(rcv.buf[:n]); err != nil {
				t.Exit(err)
				return
			}
		}
		switch {
		case err == nil:
			continue
		case err == netstack.ErrWouldBlock:
			return
		case err == io.EOF:
			rcv.eof(t)
			return
		default:
			t.Exit(fmt.Errorf("read after %d bytes: %w", rcv.got, err))
			return
		}
	}
}

func (rcv *streamReceiver) consume(b []byte) error {
	if rcv.c == nil {
		k := copy(rcv.hdr[rcv.nhdr:], b)
		rcv.nhdr += k
		b = b[k:]
		if rcv.nhdr < streamHeaderLen {
			return nil
		}
		if err := rcv.header(); err != nil {
			return err
		}
	}
	x := &rcv.r.x
	if int64(len(b)) > x.Bytes-rcv.got {
		return integrityf("connection %d: more than %d bytes", rcv.c.ID, x.Bytes)
	}
	if i := rcv.pat.Check(b, uint64(rcv.got)); i >= 0 {
		return integrityf("connection %d: byte %d differs", rcv.c.ID, rcv.got+int64(i))
	}
	rcv.got += int64(len(b))
	rcv.c.Verified = rcv.got
	if rcv.got == x.Bytes {
		rcv.c.Received = rcv.task.Now()
	}
	return nil
}

func (rcv *streamReceiver) header() error {
	x := &rcv.r.x
	magic := binary.BigEndian.Uint32(rcv.hdr[0:])
	id := binary.BigEndian.Uint32(rcv.hdr[4:])
	total := binary.BigEndian.Uint64(rcv.hdr[8:])
	switch {
	case magic != magicStream:
		return integrityf("stream header magic %#x", magic)
	case id >= uint32(x.Conns):
		return integrityf("stream header: connection %d of %d", id, x.Conns)
	case total != uint64(x.Bytes):
		return integrityf("connection %d: header announces %d bytes, want %d", id, total, x.Bytes)
	}
	c := rcv.r.Conns[id]
	if c.Receiver != nil {
		return integrityf("connection %d accepted twice", id)
	}
	c.Receiver = rcv.task
	c.server = rcv.s
	rcv.c = c
	if rcv.info != nil {
		rcv.info.Name = fmt.Sprintf("server/%d", id)
		c.ServerInfo = rcv.info
	}
	rcv.pat = NewPattern(rcv.task.w.Seed(), streamPatternID(int(id)))
	if x.Bytes == 0 {
		c.Received = rcv.task.Now()
	}
	return nil
}

func (rcv *streamReceiver) eof(t *Task) {
	if rcv.c == nil {
		t.Exit(integrityf("stream ended after %d header bytes", rcv.nhdr))
		return
	}
	if rcv.got != rcv.r.x.Bytes {
		t.Exit(integrityf("connection %d ended after %d of %d bytes", rcv.c.ID, rcv.got, rcv.r.x.Bytes))
		return
	}
	if err := rcv.s.Close(); err != nil {
		t.Exit(fmt.Errorf("close: %w", err))
		return
	}
	t.Exit(nil)
}
