package tcp

// State is a connection state of RFC 9293 §3.3.2.
type State uint8

// The eleven states.
const (
	Closed State = iota
	Listen
	SynSent
	SynReceived
	Established
	FinWait1
	FinWait2
	CloseWait
	Closing
	LastAck
	TimeWait
	numStates
)

var stateNames = [numStates]string{
	"CLOSED", "LISTEN", "SYN-SENT", "SYN-RECEIVED", "ESTABLISHED", "FIN-WAIT-1",
	"FIN-WAIT-2", "CLOSE-WAIT", "CLOSING", "LAST-ACK", "TIME-WAIT",
}

func (s State) String() string {
	if s < numStates {
		return stateNames[s]
	}
	return "State(?)"
}

// synchronized reports whether s is one of the states RFC 9293 §3.10.7.4
// calls synchronized: the handshake is done (or half done, SYN-RECEIVED).
func (s State) synchronized() bool { return s >= SynReceived }

// Event is one input to the state machine: a user call, a classified
// segment, or a timer that expired.
type Event uint8

// User calls (RFC 9293 §3.10.1-3.10.6), segment classes (§3.10.7), timeouts
// (§3.10.8).
const (
	UserOpenActive Event = iota
	UserOpenPassive
	UserSend
	UserReceive
	UserClose
	UserAbort

	SegSYN    // SYN without ACK
	SegSYNACK // SYN and ACK
	SegACK    // ACK, with or without data; no SYN, RST or FIN
	SegFIN    // FIN and ACK, with or without data
	SegRST    // RST without ACK
	SegRSTACK // RST and ACK
	SegBare   // none of SYN, RST and ACK: data or FIN or nothing, unacknowledging

	TimerRetransmit
	TimerPersist
	TimerDelayedACK
	TimerKeepalive
	TimerTimeWait
	numEvents
)

var eventNames = [numEvents]string{
	"OPEN-active", "OPEN-passive", "SEND", "RECEIVE", "CLOSE", "ABORT",
	"SYN", "SYN+ACK", "ACK", "FIN+ACK", "RST", "RST+ACK", "no-ACK",
	"retransmit-timeout", "persist-timeout", "delayed-ack-timeout", "keepalive-timeout", "time-wait-timeout",
}

func (e Event) String() string {
	if e < numEvents {
		return eventNames[e]
	}
	return "Event(?)"
}

// Classify turns a segment's control bits into its Event. It is the only
// place that looks at the raw flags: ECE, CWR, URG and PSH are masked first
// (we negotiate no ECN and, like Linux, deliver urgent data inline). A set of
// bits no correct sender produces (SYN with RST, SYN with FIN) is rejected:
// ok is false and the segment is to be dropped and counted.
func Classify(f Flags) (ev Event, ok bool) {
	f &^= ECE | CWR | URG | PSH
	switch {
	case f.Contains(SYN | RST), f.Contains(SYN | FIN):
		return 0, false
	case f&RST != 0:
		if f&ACK != 0 {
			return SegRSTACK, true
		}
		return SegRST, true
	case f&SYN != 0:
		if f&ACK != 0 {
			return SegSYNACK, true
		}
		return SegSYN, true
	case f&ACK == 0:
		return SegBare, true
	case f&FIN != 0:
		return SegFIN, true
	}
	return SegACK, true
}

// handler is one cell of the table: what a state does with an event.
type handler func(c *Conn, in *Input)

// table is RFC 9293's event processing, [state][event]. Every cell is set;
// "ignore" and "reset" are explicit cells like any other.
var table [numStates][numEvents]handler

func init() {
	// Column defaults first: what the RFC does with each event in a state
	// that has nothing more specific to say.
	for s := range numStates {
		t := &table[s]
		t[UserOpenActive] = (*Conn).errConnExists
		t[UserOpenPassive] = (*Conn).errConnExists
		t[UserSend] = (*Conn).errClosing
		t[UserReceive] = (*Conn).receive
		t[UserClose] = (*Conn).errClosing
		t[UserAbort] = (*Conn).abortWithRST
		for ev := SegSYN; ev <= SegBare; ev++ {
			t[ev] = (*Conn).drop
		}
		for ev := TimerRetransmit; ev <= TimerTimeWait; ev++ {
			t[ev] = (*Conn).ignore // a timer that cannot be armed in this state
		}
	}

	// CLOSED (§3.10.7.1): every segment but a RST is answered with a RST.
	t := &table[Closed]
	t[UserOpenActive] = (*Conn).openActive
	t[UserOpenPassive] = (*Conn).openPassive
	t[UserSend] = (*Conn).errNotConnected
	t[UserReceive] = (*Conn).receive // buffered data, then the error or EOF
	t[UserClose] = (*Conn).errNotConnected
	t[UserAbort] = (*Conn).errNotConnected
	t[SegSYN] = (*Conn).replyReset
	t[SegSYNACK] = (*Conn).replyReset
	t[SegACK] = (*Conn).replyReset
	t[SegFIN] = (*Conn).replyReset
	t[SegBare] = (*Conn).replyReset
	t[SegRST] = (*Conn).drop
	t[SegRSTACK] = (*Conn).drop

	// LISTEN (§3.10.7.2).
	t = &table[Listen]
	t[UserOpenActive] = (*Conn).errConnExists // sockets do not turn a listener into a client
	t[UserSend] = (*Conn).errNotConnected
	t[UserReceive] = (*Conn).receive
	t[UserClose] = (*Conn).deleteTCB
	t[UserAbort] = (*Conn).deleteTCB
	t[SegSYN] = (*Conn).listenOnSYN
	t[SegSYNACK] = (*Conn).replyReset
	t[SegACK] = (*Conn).listenOnACK // a SYN cookie, or a RST
	t[SegFIN] = (*Conn).replyReset
	t[SegRST] = (*Conn).drop
	t[SegRSTACK] = (*Conn).drop
	t[SegBare] = (*Conn).drop

	// SYN-SENT (§3.10.7.3).
	t = &table[SynSent]
	t[UserSend] = (*Conn).queueSend
	t[UserClose] = (*Conn).deleteTCB
	t[UserAbort] = (*Conn).deleteTCB
	t[SegSYN] = (*Conn).synSentOnSYN // simultaneous open
	t[SegSYNACK] = (*Conn).synSentOnSYNACK
	t[SegACK] = (*Conn).synSentOnACK
	t[SegFIN] = (*Conn).synSentOnACK
	t[SegRST] = (*Conn).drop // a RST without ACK cannot be ours
	t[SegRSTACK] = (*Conn).synSentOnRST
	t[SegBare] = (*Conn).drop
	t[TimerRetransmit] = (*Conn).retransmitSYN

	// SYN-RECEIVED.
	t = &table[SynReceived]
	t[UserSend] = (*Conn).queueSend
	t[UserClose] = (*Conn).closeSynReceived
	t[SegSYN] = (*Conn).synReceivedOnSYN
	t[SegSYNACK] = (*Conn).synReceivedOnSYNACK // simultaneous open's last step
	t[SegACK] = (*Conn).synReceivedOnSeg
	t[SegFIN] = (*Conn).synReceivedOnSeg
	t[SegRST] = (*Conn).onRST
	t[SegRSTACK] = (*Conn).onRST
	t[SegBare] = (*Conn).onNoACK
	t[TimerRetransmit] = (*Conn).retransmitSYN

	// The synchronized states share the §3.10.7.4 pipeline; what differs is
	// the tail of ACK processing and where a FIN takes them.
	for _, s := range []State{Established, FinWait1, FinWait2, CloseWait, Closing, LastAck, TimeWait} {
		t := &table[s]
		t[SegSYN] = (*Conn).onSYN
		t[SegSYNACK] = (*Conn).onSYN
		t[SegRST] = (*Conn).onRST
		t[SegRSTACK] = (*Conn).onRST
		t[SegBare] = (*Conn).onNoACK
		t[TimerDelayedACK] = (*Conn).delayedACK
	}
	table[TimeWait][SegSYN] = (*Conn).timeWaitOnSYN

	t = &table[Established]
	t[UserSend] = (*Conn).send
	t[UserClose] = (*Conn).closeEstablished
	t[SegACK] = (*Conn).establishedOnSeg
	t[SegFIN] = (*Conn).establishedOnSeg
	t[TimerRetransmit] = (*Conn).retransmit
	t[TimerPersist] = (*Conn).probeZeroWindow
	t[TimerKeepalive] = (*Conn).keepalive

	t = &table[FinWait1]
	t[SegACK] = (*Conn).finWait1OnSeg
	t[SegFIN] = (*Conn).finWait1OnSeg
	t[TimerRetransmit] = (*Conn).retransmit
	t[TimerPersist] = (*Conn).probeZeroWindow

	t = &table[FinWait2]
	t[SegACK] = (*Conn).establishedOnSeg
	t[SegFIN] = (*Conn).establishedOnSeg
	t[TimerTimeWait] = (*Conn).finWait2Timeout // Linux's tcp_fin_timeout, for a closed socket
	t[TimerKeepalive] = (*Conn).keepalive

	t = &table[CloseWait]
	t[UserSend] = (*Conn).send
	t[UserClose] = (*Conn).closeCloseWait
	t[SegACK] = (*Conn).establishedOnSeg
	t[SegFIN] = (*Conn).establishedOnSeg
	t[TimerRetransmit] = (*Conn).retransmit
	t[TimerPersist] = (*Conn).probeZeroWindow
	t[TimerKeepalive] = (*Conn).keepalive

	t = &table[Closing]
	t[SegACK] = (*Conn).closingOnSeg
	t[SegFIN] = (*Conn).closingOnSeg
	t[TimerRetransmit] = (*Conn).retransmit
	t[UserAbort] = (*Conn).deleteTCB // RFC 9293 §3.10.5: no RST once our FIN is out

	t = &table[LastAck]
	t[SegACK] = (*Conn).lastAckOnSeg
	t[SegFIN] = (*Conn).lastAckOnSeg
	t[TimerRetransmit] = (*Conn).retransmit
	t[TimerPersist] = (*Conn).probeZeroWindow
	t[UserAbort] = (*Conn).deleteTCB

	t = &table[TimeWait]
	t[SegACK] = (*Conn).timeWaitOnSeg
	t[SegFIN] = (*Conn).timeWaitOnSeg
	t[TimerTimeWait] = (*Conn).deleteTCB
	t[UserAbort] = (*Conn).deleteTCB
}
