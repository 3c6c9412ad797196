package tcp

import (
	"errors"
	"strconv"
)

// Classes of parse error. Every error ParseHeader and ParseOptions return
// wraps exactly one of them, so the stack can count drops by class with
// errors.Is.
var (
	// ErrTruncated: the segment ends before a length it states.
	ErrTruncated = errors.New("truncated")
	// ErrMalformed: a header field holds a value no segment may carry.
	ErrMalformed = errors.New("malformed")
	// ErrBadOption: the option list cannot be walked.
	ErrBadOption = errors.New("malformed option list")
)

// Errors for misuse of the encoders.
var (
	// ErrShortBuffer: the buffer cannot hold the header or options to encode.
	ErrShortBuffer = errors.New("tcp: buffer too small")
	// ErrRawOptions: HeaderFields.RawOptions is not a multiple of 4 bytes of
	// at most 40, or is set together with HeaderFields.Options.
	ErrRawOptions = errors.New("tcp: raw options must be whole 32-bit words, at most 40 bytes, and not combined with Options")
)

// ParseError describes why a segment or option list was rejected.
// The parsers return pointers to preallocated values: do not modify them.
type ParseError struct {
	Field  string // the RFC 9293 name of the field at fault, e.g. "Data Offset", "option-length"
	Offset int    // its offset in bytes from the start of what was parsed
	Reason string // what is wrong with it
	Err    error  // the class: ErrTruncated, ErrMalformed or ErrBadOption
}

func (e *ParseError) Error() string {
	return "tcp: " + e.Field + " at offset " + strconv.Itoa(e.Offset) + ": " + e.Reason + " (" + e.Err.Error() + ")"
}

// Unwrap returns the error's class, for errors.Is.
func (e *ParseError) Unwrap() error { return e.Err }

type parseReason uint8

const (
	shortHeader parseReason = iota
	dataOffsetSmall
	dataOffsetPastEnd
	optionAreaLong
	optionNoLength
	optionLengthSmall
	optionPastEnd
	numParseReasons
)

var parseReasons = [numParseReasons]ParseError{
	shortHeader:       {Field: "header", Reason: "segment ends before the 20-byte fixed header", Err: ErrTruncated},
	dataOffsetSmall:   {Field: "Data Offset", Reason: "below 5 words", Err: ErrMalformed},
	dataOffsetPastEnd: {Field: "Data Offset", Reason: "header runs past the end of the segment", Err: ErrTruncated},
	optionAreaLong:    {Field: "Options", Reason: "option area longer than 40 bytes", Err: ErrMalformed},
	optionNoLength:    {Field: "option-length", Reason: "option area ends after the option-kind", Err: ErrBadOption},
	optionLengthSmall: {Field: "option-length", Reason: "below 2", Err: ErrBadOption},
	optionPastEnd:     {Field: "option-length", Reason: "option runs past the end of the option area", Err: ErrBadOption},
}

// parseErrors holds every error the parsers can return: each reason at each
// offset up to the end of the largest header. Returning a pointer into it
// keeps the drop path free of allocation.
var parseErrors [numParseReasons][HeaderMaxLen + 1]ParseError

func init() {
	for r := range parseErrors {
		for off := range parseErrors[r] {
			parseErrors[r][off] = parseReasons[r]
			parseErrors[r][off].Offset = off
		}
	}
}

// parseErr returns the error for reason r at offset off (0 <= off <= 60).
func parseErr(r parseReason, off int) *ParseError { return &parseErrors[r][off] }
