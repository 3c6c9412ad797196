// Package sim is the deterministic network simulator: the real netstack
// code — not a model of it — running on a simulated network, on a virtual
// clock, so that one seed replays a run byte for byte.
//
// # What it owns
//
// A World holds hosts (each a netstack.Stack), the wires between them and
// the applications on them. Point-to-point links (World.Link) join two
// hosts' interfaces; learning switches (World.AddSwitch, World.Attach) join
// any number, learning source addresses into a bounded, lazily aged table
// and flooding broadcast, multicast and unknown destinations. Every
// direction of every link is a Dir with its own impair.Config: loss
// (uniform and Gilbert-Elliott bursts), duplication, bit corruption, delay
// with jitter, reordering, a rate limit with a bounded queue, an MTU and
// partitions scheduled in time (see package impair for their semantics).
// A frame handed to a Dir is copied (the stack reuses its buffers), its
// fate decided, a flipped bit applied to the copy, and each copy queued for
// its delivery instant in a heap ordered by (instant, queueing order).
// Corruption hits only frames carrying IPv4, whose checksums must catch it
// (Config.CorruptAll extends it to ARP, which has none).
//
// # Time, randomness and the one goroutine
//
// The World's clock is a mono.Time counter that jumps to the earliest of:
// the next frame delivery, the next stack deadline (Stack.NextDeadline),
// the next World timer (World.At, Task.WakeAt). Each stack's Clock reads it;
// nothing in a run reads the wall clock, sleeps, or starts a goroutine:
// the caller's goroutine does everything, so an hour of idle simulated
// time costs nothing but the timers that are armed (Steps counts them).
//
// All randomness derives from Config.Seed with impair.DeriveSeed: each
// host's stack gets a PCG (ISNs, ephemeral ports, ARP jitter), each Dir an
// impair.Link seed, scenario code World.Rand streams. Streams are picked by
// name (host, direction "a.eth0>b.eth0", rand name), not creation order, so
// adding a part to a scenario leaves the other parts' choices alone.
//
// # Applications
//
// Applications are Tasks: step functions run after each step of the World
// when ready — spawned, woken by a socket's SetNotify (Task.Wake), or by
// their timer. They use the sockets' non-blocking calls. Ready tasks run in
// spawn order, so a run does not depend on the order a stack notifies its
// sockets in. Ready-made applications:
//   - SendUDP and ListenUDPSink: a sequenced datagram stream and a sink
//     that checks every datagram's bytes, sequence and flow (FlowStats);
//   - ListenUDPEcho and StartRequests: request/response with
//     retransmission, a reliable exchange over UDP;
//   - StartPing: ping(8) over netstack's PingConn;
//   - StartTransfer: Conns connections × Bytes bytes over a Transport (TCP:
//     netstack's TCP sockets), each verified against its own Pattern as it
//     arrives, then closed cleanly by both sides (the client half-closes,
//     the server checks everything, sees the end of stream and closes, the
//     client sees that close). A connection that never got through
//     (refused, unreachable, timed out connecting) may be dialled again.
//
// Every payload is a Pattern — pseudo-random bytes keyed by seed and flow,
// checkable at any offset — so a payload that is damaged, misplaced or
// from another flow fails the run with an error wrapping ErrIntegrity.
//
// # Observing a run
//
// World.Digest is SHA-256 over every frame handed to a wire, in order,
// each preceded by a record of: the virtual time (8 bytes), the Dir's id
// (4), the frame's length (4), its fate (impair.Reason, or 0xff for
// MaxInFlight overflow), the number of copies, and per copy its delivery
// time, flipped bit and reorder hold. Same seed, same scenario: same
// digest. World.Capture writes pcaps stamped with virtual time from a fixed
// epoch (delivered frames; optionally dropped ones to a second file);
// World.Observe lets a checker see every frame sent, dropped and
// delivered. Hosts report netstack.Stats, Dirs DirStats and impair.Stats,
// switches SwitchStats.
//
// Two views of a TCP connection. World.SampleTCP reads a connection's own
// state (tcp.Info: SRTT, RTO, cwnd, ssthresh, recovery, its own
// retransmission and timeout counts) at the end of every instant in which
// its host may have been touched, into a TCPInfoSeries of bounded size; it only reads,
// so the digest is the same with or without it (Transfer.SampleInfo
// samples both ends of every connection). World.TraceTCP reads TCP
// connections off the wire as tcptrace does — per connection and
// direction: segments, which were sent again or dropped, ACKs, SACK
// blocks, RTT samples, data in flight over time — and TCPTrace.Attach
// pairs a flow with its sender's series. WriteSVG draws both as
// time-sequence graphs with the sender's congestion window beneath.
//
// RunTransfer is the scenario behind `tapstack sim`: two hosts, one
// impaired link, a TCP transfer (or UDP flows), a Result whose String is
// the summary ending in the `trace:` line, and Command to replay it.
//
// # Reproducing a failure
//
// A failing seed is a bug report: the package's tests take -seed N to run
// one seed, and print `go test ./sim -run TestName -seed N` on failure.
package sim
