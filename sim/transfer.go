package sim

import (
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"github.com/tapstack/tapstack/mono"
	"github.com/tapstack/tapstack/sim/impair"
	"github.com/tapstack/tapstack/tcp"
)

// TransferOptions is the scenario behind `tapstack sim`: two hosts on one
// point-to-point link, both directions impaired alike, Conns TCP
// connections (or UDP flows) of Bytes bytes each from the client to the
// server.
type TransferOptions struct {
	Seed                        uint64
	Loss, Reorder, Dup, Corrupt impair.Prob
	// Burst adds Gilbert-Elliott burst loss (impair.Config.Burst).
	Burst  impair.GilbertElliott
	Delay  time.Duration // one way
	Jitter time.Duration // spreads Delay over ±Jitter
	// Rate limits each direction in bits/s (0: unlimited), behind a queue
	// of Queue bytes (0: the impairment model's default).
	Rate  uint64
	Queue int
	// Partitions cut both directions during these intervals.
	Partitions []impair.Interval
	Bytes      int64 // per connection
	Conns      int
	// CC names both hosts' congestion control (tcp.CongestionControlByName);
	// empty means the TCP layer's default, NewReno.
	CC string
	// Transport carries the connections; nil means TCP.
	Transport Transport
	// UDP sends a UDP flow per connection instead (see RunTransfer), one
	// datagram every UDPInterval; 0 means 1ms (11.6 Mbit/s per flow).
	UDP         bool
	UDPInterval time.Duration
	// Limit bounds the run in virtual time; 0 means 1h (streams) or the
	// flows' sending time plus 10s (UDP).
	Limit time.Duration
	// Pcap, if set, receives a capture of every frame delivered.
	Pcap io.Writer
	// Setup, if set, is called with the World before it runs: to observe
	// its wires, say.
	Setup func(*World) error
}

// Result is what a transfer did. String formats the summary `tapstack
// sim` prints, ending with the `trace:` line.
type Result struct {
	Options   TransferOptions
	Transport string // "tcp", "udp", or the Transport's String or type

	Sent      int64 // data bytes sent (UDP: whole datagrams' payloads)
	Delivered int64 // data bytes delivered and verified (UDP: distinct datagrams)
	// UDP only: datagrams sent, received once, again, and out of order.
	Datagrams, Unique, Duplicates, Reordered uint64

	// Elapsed is the virtual time from the start to the last byte
	// delivered (streams: to the last clean close).
	Elapsed time.Duration
	// SimTime is the virtual time the run took; WallTime the real time.
	SimTime, WallTime time.Duration
	Steps             uint64

	Wire         impair.Stats // both directions together
	BadChecksums uint64       // packets the stacks' checksums caught
	// TCP, both stacks together: segments sent again, and how recoveries
	// began.
	Retransmits, FastRetransmits, Timeouts uint64
	// Conns are the stream connections, each as its own stack saw it:
	// retransmissions, RTT, congestion window over time.
	Conns []ConnResult
	// Flows are the TCP connections' data directions as read off the
	// wire (TCPTrace), redialled attempts included: segments sent again,
	// SACKs, RTT samples and data in flight over time, each with its
	// sender's samples (TCPFlow.Sender) where known. WriteSVG draws them.
	Flows  []*TCPFlow
	Digest string
}

// ConnResult is one connection of a stream transfer.
type ConnResult struct {
	ID       int
	Redials  int
	Verified int64 // data bytes the server checked
	// Started is when it was first dialled, Closed when the client saw the
	// server's close (mono.Never if it did not).
	Started, Closed mono.Time
	// Client and Server are each end's tcp.Info over time (the last
	// attempt's); nil for a Transport whose streams do not report it.
	Client, Server *TCPInfoSeries
	// Flow is the client's data as the wire carried it (nil without a
	// TCP client series).
	Flow *TCPFlow
}

// RunTransfer builds and runs the transfer scenario, verifies every byte,
// and returns its Result. The error is non-nil when a check failed (it
// wraps ErrIntegrity then), the run hit its Limit, or the scenario could
// not be built; the Result describes the run up to that point.
//
// Over TCP (or another Transport), each connection carries Bytes bytes of
// its own pattern and must deliver them exactly, in order, then close
// cleanly on both sides. With UDP, each connection is a UDP flow of
// ceil(Bytes/1456) datagrams of 1472 bytes, one every UDPInterval: nothing
// is retransmitted, so loss reduces Delivered, but every datagram that
// arrives must be intact.
func RunTransfer(opts TransferOptions) (Result, error) {
	wallStart := time.Now() // the only wall-clock read: for the summary
	if opts.Transport == nil {
		opts.Transport = TCP{}
	}
	res := Result{Options: opts, Transport: "udp"}
	if !opts.UDP {
		if s, ok := opts.Transport.(fmt.Stringer); ok {
			res.Transport = s.String()
		} else {
			res.Transport = strings.TrimPrefix(fmt.Sprintf("%T", opts.Transport), "*")
		}
	}
	if opts.Conns < 1 || opts.Bytes < 0 {
		return res, fmt.Errorf("sim: transfer: Conns %d and Bytes %d must be positive", opts.Conns, opts.Bytes)
	}
	cfg := opts.Impairments()
	cc, err := tcp.CongestionControlByName(opts.CC)
	if err != nil {
		return res, err
	}
	w := New(Config{Seed: opts.Seed, TCP: tcp.Config{NewCongestionControl: cc}})
	defer w.Close()
	client, server, err := transferHosts(w, cfg)
	if err != nil {
		return res, err
	}
	if opts.Pcap != nil {
		if err := w.Capture(CaptureConfig{Delivered: opts.Pcap}); err != nil {
			return res, err
		}
	}
	if opts.Setup != nil {
		if err := opts.Setup(w); err != nil {
			return res, err
		}
	}
	if opts.UDP {
		err = runFlows(w, &res, client, server)
	} else {
		err = runStreams(w, &res, client, server)
	}
	res.SimTime = time.Duration(w.Now())
	res.WallTime = time.Since(wallStart)
	res.Steps = w.Steps()
	for _, d := range w.Dirs() {
		addImpair(&res.Wire, d.Impair())
	}
	for _, h := range w.Hosts() {
		st := h.Stats()
		res.BadChecksums += st.IPv4.BadChecksum + st.ICMP.BadChecksum + st.UDP.BadChecksum + st.TCP.BadChecksum
		res.Retransmits += st.TCP.Retransmits
		res.FastRetransmits += st.TCP.FastRetransmits
		res.Timeouts += st.TCP.Timeouts
	}
	res.Digest = w.Digest()
	if err == nil {
		err = w.CaptureErr()
	}
	return res, err
}

// Impairments returns the impairments each direction of the link gets.
func (o *TransferOptions) Impairments() impair.Config {
	return impair.Config{Loss: o.Loss, Burst: o.Burst, Reorder: o.Reorder, Duplicate: o.Dup,
		Corrupt: o.Corrupt, Delay: o.Delay, Jitter: o.Jitter, Rate: o.Rate, Queue: o.Queue, Partitions: o.Partitions}
}

// transferHosts makes the client (10.0.0.1) and server (10.0.0.2) joined
// by a link impaired by cfg both ways.
func transferHosts(w *World, cfg impair.Config) (client, server *Host, err error) {
	if client, err = w.AddHost("client"); err != nil {
		return nil, nil, err
	}
	if server, err = w.AddHost("server"); err != nil {
		return nil, nil, err
	}
	_, err = w.Link(End{Host: client, Addr: netip.MustParsePrefix("10.0.0.1/24")},
		End{Host: server, Addr: netip.MustParsePrefix("10.0.0.2/24")}, cfg, cfg)
	return client, server, err
}

const transferPort = 5001

func runStreams(w *World, res *Result, client, server *Host) error {
	o := &res.Options
	trace := w.TraceTCP()
	run, err := w.StartTransfer(Transfer{Transport: o.Transport, Client: client, Server: server,
		Port: transferPort, Conns: o.Conns, Bytes: o.Bytes, Redials: 3, SampleInfo: true})
	if err != nil {
		return err
	}
	limit := o.Limit
	if limit == 0 {
		limit = time.Hour
	}
	err = w.RunUntil(run.Done, w.Now().Add(limit))
	res.Sent = int64(o.Conns) * o.Bytes
	res.Delivered = run.Verified()
	end := mono.Time(0)
	for _, c := range run.Conns {
		end = max(end, c.Closed)
	}
	if run.Done() {
		res.Elapsed = time.Duration(end)
	} else {
		res.Elapsed = time.Duration(w.Now())
	}
	for _, c := range run.Conns {
		cr := ConnResult{ID: c.ID, Redials: c.Redials, Verified: c.Verified, Started: c.Started, Closed: c.Closed,
			Client: c.ClientInfo, Server: c.ServerInfo}
		if cr.Client != nil {
			cr.Flow = trace.Attach(cr.Client)
		}
		res.Conns = append(res.Conns, cr)
	}
	for _, f := range trace.Flows() {
		if f.Src.Addr() == client.Addr() {
			res.Flows = append(res.Flows, f)
		}
	}
	return err
}

// UDP flows carry datagrams that fit a 1500-byte MTU unfragmented.
const (
	flowDatagram = 1500 - 20 - 8
	flowBody     = flowDatagram - appHeaderLen
)

func runFlows(w *World, res *Result, client, server *Host) error {
	o := &res.Options
	interval := o.UDPInterval
	if interval == 0 {
		interval = time.Millisecond
	}
	count := int((o.Bytes + flowBody - 1) / flowBody)
	sink, err := w.ListenUDPSink(server, transferPort)
	if err != nil {
		return err
	}
	var senders []*UDPSender
	for i := range o.Conns {
		f := UDPFlow{ID: uint32(i), Dst: netip.AddrPortFrom(server.Addr(), transferPort),
			Size: flowDatagram, Count: count, Interval: interval}
		if err := sink.Expect(f); err != nil {
			return err
		}
		s, err := w.SendUDP(client, f)
		if err != nil {
			return err
		}
		senders = append(senders, s)
	}
	sending := time.Duration(count) * interval
	limit := o.Limit
	if limit == 0 {
		limit = sending + 10*time.Second
	}
	deadline := w.Now().Add(limit)
	sent := func() bool {
		for _, s := range senders {
			if !s.Task().Done() {
				return false
			}
		}
		return true
	}
	err = w.RunUntil(sent, deadline)
	if err == nil {
		// Stragglers: the longest a copy can be held on the wire.
		grace := 2*o.Delay + time.Second
		if o.Reorder != 0 {
			grace += max(2*o.Delay, impair.MinReorderDelay)
		}
		err = w.Run(min(w.Now().Add(grace), deadline))
	}
	last := mono.Time(0)
	for i, s := range senders {
		st := sink.Flow(uint32(i))
		res.Datagrams += uint64(s.Sent())
		res.Unique += st.Unique
		res.Duplicates += st.Duplicates
		res.Reordered += st.Reordered
		res.Delivered += int64(st.Unique) * flowBody
		if st.Unique > 0 {
			last = max(last, st.Last)
		}
	}
	res.Sent = int64(res.Datagrams) * flowBody
	res.Elapsed = time.Duration(last)
	return err
}

func addImpair(t *impair.Stats, s impair.Stats) {
	t.Frames += s.Frames
	t.Delivered += s.Delivered
	t.Duplicated += s.Duplicated
	t.Corrupted += s.Corrupted
	t.Reordered += s.Reordered
	for i := range t.Dropped {
		t.Dropped[i] += s.Dropped[i]
	}
}

// String is the connection's lines of the summary: what its client's
// stack counted and measured, and what the wire carried.
func (c *ConnResult) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "  conn %d", c.ID)
	if c.Client != nil {
		fmt.Fprintf(&b, " %v>%v", c.Client.Local, c.Client.Remote)
	}
	fmt.Fprintf(&b, ": %d bytes verified", c.Verified)
	if c.Closed != mono.Never {
		fmt.Fprintf(&b, ", closed at %v", time.Duration(c.Closed))
	}
	if c.Redials > 0 {
		fmt.Fprintf(&b, ", dialled %d times", c.Redials+1)
	}
	b.WriteString("\n")
	if s := c.Client; s != nil {
		in := &s.Info
		fmt.Fprintf(&b, "    stack: %d retransmissions (%d fast recoveries, %d timeouts; %d D-SACKs, %d recoveries undone), ",
			in.Retransmits, in.FastRecoveries, in.Timeouts, in.DSACKsReceived, in.SpuriousUndos)
		if s.SRTT.N > 0 {
			fmt.Fprintf(&b, "srtt min/mean/max %v/%v/%v, ", s.SRTT.Min.Round(time.Microsecond),
				s.SRTT.Mean().Round(time.Microsecond), s.SRTT.Max.Round(time.Microsecond))
		} else {
			b.WriteString("no RTT measured, ")
		}
		fmt.Fprintf(&b, "max cwnd %d bytes", s.MaxCwnd)
		if sv := c.Server; sv != nil && (sv.Info.Retransmits > 0 || sv.Info.Timeouts > 0) {
			fmt.Fprintf(&b, "; the server's end: %d retransmissions (%d timeouts)", sv.Info.Retransmits, sv.Info.Timeouts)
		}
		b.WriteString("\n")
	}
	if f := c.Flow; f != nil {
		st := &f.Stats
		fmt.Fprintf(&b, "    wire: %d of %d segments sent again, %d dropped, %d SACK blocks (%d D-SACK), max %d bytes in flight\n",
			st.Retransmits, st.Segments, st.Dropped, st.SACKBlocks, st.DSACKs, st.MaxFlight)
	}
	return b.String()
}

// Goodput returns the delivered data rate in bits per second of virtual
// time.
func (r *Result) Goodput() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Delivered) * 8 / r.Elapsed.Seconds()
}

// Command returns the `tapstack sim` command line that replays the run:
// every option but Transport, Pcap and Setup, which have no flags (a
// Transport other than TCP cannot be replayed from the command line).
func (r *Result) Command() string {
	o := &r.Options
	var b strings.Builder
	fmt.Fprintf(&b, "tapstack sim --seed %d", o.Seed)
	for _, p := range []struct {
		flag string
		p    impair.Prob
	}{{"loss", o.Loss}, {"reorder", o.Reorder}, {"dup", o.Dup}, {"corrupt", o.Corrupt}} {
		if p.p != 0 {
			fmt.Fprintf(&b, " --%s %v", p.flag, p.p)
		}
	}
	if g := o.Burst; g != (impair.GilbertElliott{}) {
		fmt.Fprintf(&b, " --burst %v", FormatBurst(g))
	}
	for _, d := range []struct {
		flag string
		d    time.Duration
	}{{"delay", o.Delay}, {"jitter", o.Jitter}} {
		if d.d != 0 {
			fmt.Fprintf(&b, " --%s %v", d.flag, d.d)
		}
	}
	if o.Rate != 0 {
		fmt.Fprintf(&b, " --rate %d", o.Rate)
	}
	if o.Queue != 0 {
		fmt.Fprintf(&b, " --queue %d", o.Queue)
	}
	for _, iv := range o.Partitions {
		fmt.Fprintf(&b, " --partition %v", FormatInterval(iv))
	}
	if o.CC != "" {
		fmt.Fprintf(&b, " --cc %s", o.CC)
	}
	fmt.Fprintf(&b, " --bytes %d --conns %d", o.Bytes, o.Conns)
	if o.UDP {
		b.WriteString(" --udp")
		if o.UDPInterval != 0 {
			fmt.Fprintf(&b, " --interval %v", o.UDPInterval)
		}
	}
	if o.Limit != 0 {
		fmt.Fprintf(&b, " --limit %v", o.Limit)
	}
	return b.String()
}

// FormatBurst writes a Gilbert-Elliott chain as `tapstack sim --burst`
// takes it: "P,R" (bursts lose every frame, the good state none), or
// "P,R,BAD,GOOD" with the loss in each state.
func FormatBurst(g impair.GilbertElliott) string {
	if g.LossBad == impair.Always && g.LossGood == 0 {
		return fmt.Sprintf("%v,%v", g.P, g.R)
	}
	return fmt.Sprintf("%v,%v,%v,%v", g.P, g.R, g.LossBad, g.LossGood)
}

// ParseBurst reads what FormatBurst writes.
func ParseBurst(s string) (impair.GilbertElliott, error) {
	parts := strings.Split(s, ",")
	if len(parts) != 2 && len(parts) != 4 {
		return impair.GilbertElliott{}, fmt.Errorf("burst %q: want P,R or P,R,BAD,GOOD", s)
	}
	ps := make([]impair.Prob, 4)
	ps[2] = impair.Always
	for i, p := range parts {
		v, err := impair.ParseProb(strings.TrimSpace(p))
		if err != nil {
			return impair.GilbertElliott{}, fmt.Errorf("burst %q: %w", s, err)
		}
		ps[i] = v
	}
	return impair.GilbertElliott{P: ps[0], R: ps[1], LossBad: ps[2], LossGood: ps[3]}, nil
}

// FormatInterval writes a partition as `tapstack sim --partition` takes
// it: START+DURATION in virtual time, e.g. "2s+3s".
func FormatInterval(iv impair.Interval) string {
	return fmt.Sprintf("%v+%v", time.Duration(iv.Start), iv.End.Sub(iv.Start))
}

// ParseInterval reads what FormatInterval writes.
func ParseInterval(s string) (impair.Interval, error) {
	start, dur, ok := strings.Cut(s, "+")
	if !ok {
		return impair.Interval{}, fmt.Errorf("partition %q: want START+DURATION, e.g. 2s+3s", s)
	}
	a, err := time.ParseDuration(start)
	if err != nil {
		return impair.Interval{}, fmt.Errorf("partition %q: %w", s, err)
	}
	d, err := time.ParseDuration(dur)
	if err != nil {
		return impair.Interval{}, fmt.Errorf("partition %q: %w", s, err)
	}
	if a < 0 || d <= 0 || a > time.Duration(mono.Never)-d {
		return impair.Interval{}, fmt.Errorf("partition %q: the start must be >= 0 and the duration > 0", s)
	}
	return impair.Interval{Start: mono.Time(a), End: mono.Time(a + d)}, nil
}

// String is the summary: transfer, goodput, wire, time and trace lines.
func (r *Result) String() string {
	var b strings.Builder
	pct := 100.0
	if r.Sent > 0 {
		pct = 100 * float64(r.Delivered) / float64(r.Sent)
	}
	fmt.Fprintf(&b, "transfer: %d × %d bytes over %s: %d sent, %d delivered and verified (%.1f%%)\n",
		r.Options.Conns, r.Options.Bytes, r.Transport, r.Sent, r.Delivered, pct)
	if r.Options.UDP {
		fmt.Fprintf(&b, "datagrams: %d sent, %d received, %d duplicates, %d out of order\n",
			r.Datagrams, r.Unique, r.Duplicates, r.Reordered)
	} else {
		fmt.Fprintf(&b, "retransmissions: %d segments (%d fast recoveries, %d timeouts)\n",
			r.Retransmits, r.FastRetransmits, r.Timeouts)
	}
	for i := range r.Conns {
		b.WriteString(r.Conns[i].String())
	}
	fmt.Fprintf(&b, "goodput: %.3f Mbit/s over %v simulated\n", r.Goodput()/1e6, r.Elapsed)
	fmt.Fprintf(&b, "wire: %d frames, %d dropped, %d duplicated, %d reordered, %d corrupted; stacks counted %d bad checksums\n",
		r.Wire.Frames, r.Wire.DroppedTotal(), r.Wire.Duplicated, r.Wire.Reordered, r.Wire.Corrupted, r.BadChecksums)
	ratio := 0.0
	if r.WallTime > 0 {
		ratio = r.SimTime.Seconds() / r.WallTime.Seconds()
	}
	fmt.Fprintf(&b, "time: %v simulated, %v wall (%.0f× real time), %d steps\n",
		r.SimTime, r.WallTime.Round(time.Microsecond), ratio, r.Steps)
	fmt.Fprintf(&b, "trace: %s\n", r.Digest)
	return b.String()
}
