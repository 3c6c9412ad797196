package ip

import (
	"errors"
	"strconv"
)

// Classes of parse error; every *ParseError unwraps to exactly one of them.
var (
	// ErrTruncated: the buffer ends before a length the packet states or
	// requires.
	ErrTruncated = errors.New("truncated")
	// ErrMalformed: a field holds a value the protocol forbids.
	ErrMalformed = errors.New("malformed")
	// ErrUnsupported: a valid packet of a kind this package does not handle
	// (an ARP for another hardware or protocol, a second VLAN tag).
	ErrUnsupported = errors.New("unsupported")
)

// Errors of Encode and of other calls that misuse the API.
var (
	// ErrShortBuffer: the buffer given to Encode cannot hold the header.
	ErrShortBuffer = errors.New("buffer too short for header")
	// ErrInvalidField: a fields struct holds a value the header cannot carry.
	ErrInvalidField = errors.New("invalid field for encoding")
)

// Layer names the protocol a ParseError was found in.
type Layer uint8

// Layers.
const (
	LayerEthernet Layer = iota + 1
	LayerARP
	LayerIPv4
	LayerICMPv4
	LayerUDP
)

func (l Layer) String() string {
	switch l {
	case LayerEthernet:
		return "ethernet"
	case LayerARP:
		return "arp"
	case LayerIPv4:
		return "ipv4"
	case LayerICMPv4:
		return "icmpv4"
	case LayerUDP:
		return "udp"
	}
	return "layer(" + strconv.Itoa(int(l)) + ")"
}

// ParseError reports why a Parse function rejected its input.
type ParseError struct {
	Layer  Layer
	Field  string // the RFC's name of the offending field
	Offset int    // byte offset of Field from the start of the layer's header
	Reason string // what is wrong with it, with the values involved
	Err    error  // ErrTruncated, ErrMalformed or ErrUnsupported
}

func (e *ParseError) Error() string {
	return e.Layer.String() + ": " + e.Field + " at offset " + strconv.Itoa(e.Offset) +
		": " + e.Reason + " (" + e.Err.Error() + ")"
}

// Unwrap returns the error's class, for errors.Is.
func (e *ParseError) Unwrap() error { return e.Err }

func truncated(l Layer, field string, off int, need, have int) error {
	return &ParseError{l, field, off,
		"needs " + strconv.Itoa(need) + " bytes, have " + strconv.Itoa(have), ErrTruncated}
}

func malformed(l Layer, field string, off int, reason string) error {
	return &ParseError{l, field, off, reason, ErrMalformed}
}

func unsupported(l Layer, field string, off int, reason string) error {
	return &ParseError{l, field, off, reason, ErrUnsupported}
}

// FieldError reports why Encode (or a setter) refused its input.
type FieldError struct {
	Layer  Layer
	Field  string
	Reason string
	Err    error // ErrShortBuffer or ErrInvalidField
}

func (e *FieldError) Error() string {
	return e.Layer.String() + ": cannot encode " + e.Field + ": " + e.Reason
}

// Unwrap returns the error's class, for errors.Is.
func (e *FieldError) Unwrap() error { return e.Err }

func shortBuffer(l Layer, need, have int) error {
	return &FieldError{l, "header", "needs " + strconv.Itoa(need) + " bytes, buffer has " +
		strconv.Itoa(have), ErrShortBuffer}
}

func invalidField(l Layer, field, reason string) error {
	return &FieldError{l, field, reason, ErrInvalidField}
}
