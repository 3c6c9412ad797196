package netstack

// Stats are the stack's counters: what each layer received, sent and
// dropped, every drop under its reason. Read them with Stack.Stats.
type Stats struct {
	Link LinkStats
	ARP  ARPStats
	IPv4 IPv4Stats
	ICMP ICMPStats
	UDP  UDPStats
	TCP  TCPStats
}

// LinkStats counts frames at the link layer.
type LinkStats struct {
	FramesReceived   uint64
	FramesSent       uint64
	FramesGathered   uint64 // ...of which the device wrote the payload from a send buffer
	Malformed        uint64 // unparsable Ethernet header
	NotForUs         uint64 // another unicast MAC (promiscuous capture)
	VLANTagged       uint64 // 802.1Q frames: no VLAN is configured
	UnknownEtherType uint64
	EncodeErrors     uint64 // a header could not be written (a bug if ever non-zero)
	RxErrors         uint64 // device read errors
	TxErrors         uint64 // frames a device failed to write
}

// ARPStats counts ARP packets and neighbour-cache events.
type ARPStats struct {
	Received         uint64
	Sent             uint64
	Malformed        uint64
	NoSender         uint64 // probes with sender 0.0.0.0
	AddressConflict  uint64 // someone else claims one of our addresses
	CacheFull        uint64 // no entry could be made: all in use
	PendingDropped   uint64 // packets dropped: too many waiting for one neighbour
	ResolutionFailed uint64 // neighbours that never answered
}

// IPv4Stats counts IPv4 packets.
type IPv4Stats struct {
	Received             uint64
	Delivered            uint64 // to a protocol, after reassembly
	Sent                 uint64
	Truncated            uint64
	Malformed            uint64
	BadChecksum          uint64
	NotForUs             uint64 // we are a host and do not forward
	BadSource            uint64 // broadcast or multicast source
	UnknownProtocol      uint64
	TooLong              uint64 // could not send: over 65535 bytes or DF
	FragmentsSent        uint64
	FragmentsReceived    uint64
	FragmentsMalformed   uint64
	FragmentsDuplicate   uint64
	FragmentsOverlapping uint64 // discarded the datagram
	Reassembled          uint64
	ReassemblyTimeouts   uint64
	ReassemblyEvicted    uint64 // incomplete datagrams dropped for room
}

// ICMPStats counts ICMPv4 messages.
type ICMPStats struct {
	Received             uint64
	Sent                 uint64
	Malformed            uint64
	BadChecksum          uint64
	EchoRequests         uint64
	BroadcastEchoIgnored uint64
	ErrorsReceived       uint64
	ErrorsSent           uint64
	RateLimited          uint64 // errors not sent
	NoRoute              uint64
	Ignored              uint64 // types we do not act on, unmatched replies
}

// UDPStats counts UDP datagrams.
type UDPStats struct {
	Received            uint64
	Delivered           uint64
	Sent                uint64
	Malformed           uint64
	BadChecksum         uint64
	NoPort              uint64 // no socket: port unreachable sent
	ReceiveBufferErrors uint64 // socket queue full
}

// Stats returns a snapshot of the counters.
func (s *Stack) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}
