package tcp

// Stats counts what the connections sharing a Config did and dropped. The
// owner reads it under the same lock that serialises the connections.
type Stats struct {
	ActiveOpens      uint64 // CLOSED -> SYN-SENT
	PassiveOpens     uint64 // LISTEN -> SYN-RECEIVED
	Established      uint64 // handshakes completed
	FailedAttempts   uint64 // SYN-SENT or SYN-RECEIVED -> CLOSED
	EstablishedReset uint64 // ESTABLISHED or CLOSE-WAIT -> CLOSED

	SegmentsSent        uint64
	Retransmits         uint64 // segments sent again
	FastRetransmits     uint64 // recoveries entered on duplicate ACKs
	Timeouts            uint64 // retransmission timeouts
	LossProbes          uint64 // tail loss probes sent (RFC 8985 §7)
	ResetsSent          uint64
	ResetsReceived      uint64 // RSTs that closed a connection
	ChallengeACKs       uint64 // RFC 5961
	ACKsRateLimited     uint64 // challenge and out-of-window ACKs not sent (RFC 5961 §7)
	OutOfWindow         uint64 // unacceptable segments
	PAWSRejected        uint64 // RFC 7323 §5
	BadACK              uint64 // ACKs of what was never sent, or too old
	BadFlags            uint64 // impossible flag combinations
	Dropped             uint64 // segments a state has no use for
	OutOfOrder          uint64 // segments queued beyond a hole
	OutOfOrderDropped   uint64 // ...that did not fit the queue's bounds
	TrimmedBeyondWindow uint64 // segments cut to the receive window
	SegmentsAdopted     uint64 // in-order segments kept in the buffer they arrived in, not copied
	DupACKs             uint64
	DSACKsReceived      uint64
	Undos               uint64 // recoveries found spurious and undone
	WindowProbes        uint64
	KeepaliveProbes     uint64
	DelayedACKs         uint64 // ACKs sent by the delayed-ACK timer
	CookiesSent         uint64
	CookiesAccepted     uint64
	CookiesRejected     uint64
}

func (st *Stats) transition(from, to State) {
	switch {
	case from == Closed && to == SynSent:
		st.ActiveOpens++
	case from == Listen && to == SynReceived:
		st.PassiveOpens++
	case to == Established && (from == SynSent || from == SynReceived):
		st.Established++
	case to == Closed && (from == SynSent || from == SynReceived):
		st.FailedAttempts++
	case to == Closed && (from == Established || from == CloseWait):
		st.EstablishedReset++
	}
}
