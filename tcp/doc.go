// Package tcp owns TCP (RFC 9293): the segment format and its options, and
// the connection: its state machine, TCB, send and receive buffers,
// retransmission and congestion control.
//
// # Connections
//
// Conn is one TCB. Its state machine is a table, [State][Event] of handler
// functions (state.go), following RFC 9293 §3.10: user calls (Connect,
// Listen, Write, Read, Close, Abort), arriving segments classified once
// into an Event by Classify, and timeouts (OnTimer). Every cell is set,
// the "ignore" and "reset" ones included; testdata/tcp_state_table.md
// renders the table. Cells for segments in the synchronized states are
// short pipelines of the RFC's steps (checkSeq, checkRST, checkSYN,
// checkACK, processText, processFIN).
//
// A Conn does no I/O and keeps no clock: every entry point takes the
// instant, segments leave synchronously through the Output given in the
// Config with their payload referencing the send buffer, Deadline says when
// OnTimer must next run, and TakeEvents tells the owner what changed
// (readable, writable, established, closed). Buffers grow on demand from a
// pool and are released when empty, so an idle connection holds none.
// Where RFCs leave a choice, Linux is the reference, and the code says so.
//
// The package is sans-I/O: it reads no clock, starts no goroutine, draws no
// randomness of its own and touches no device. Time and randomness are
// arguments; segments come in and go out as byte slices owned by the caller.
//
// # Segment format
//
// Header is a view over a segment's bytes (header, options, payload) with
// accessors named after RFC 9293's fields. ParseHeader is the only way in
// from the wire: it checks the data offset against the segment and walks the
// option list, and once it has returned a Header without error no accessor,
// DecodeOptions included, can panic or read out of range. A rejected segment
// gets a *ParseError naming the field and its offset and wrapping one of
// ErrTruncated, ErrMalformed or ErrBadOption, so the stack can count drops by
// class; parse errors are preallocated, so even a flood of garbage costs no
// allocation. The checksum is verified separately (Header.ChecksumValid),
// because the device may already have done it.
//
// Options holds the parsed options RFC 9293, RFC 7323 and RFC 2018 define
// (MSS, window scale, SACK-permitted, SACK, timestamps) in a fixed-size value.
// Options.Encode lays them out exactly as Linux does, so our segments look
// like the kernel's to middleboxes and in captures.
//
// HeaderFields.Encode writes a header into headroom in front of a payload the
// caller has already placed, with the checksum over pseudo-header, header and
// payload; the payload's sum is an argument so it is never read twice. Neither
// parsing nor encoding allocates.
//
// Sequence-number arithmetic lives in the subpackage seq.
package tcp
