package device

import (
	"errors"
	"fmt"
)

// Sentinels for the ways opening a device goes wrong. Errors returned by
// OpenTAP, OpenTUN and OpenRaw match exactly one of them with errors.Is, so a
// CLI can map a failure to an exit code or a longer explanation.
var (
	// ErrNotFound: the interface (or /dev/net/tun) does not exist.
	ErrNotFound = errors.New("device not found")
	// ErrPermission: the process lacks the privilege the operation needs.
	ErrPermission = errors.New("permission denied")
	// ErrBusy: another process holds the device.
	ErrBusy = errors.New("device busy")
	// ErrWrongMode: the interface exists but is of another kind (a TUN
	// opened as a TAP, a veth opened as a TAP, a non-Ethernet interface
	// opened raw).
	ErrWrongMode = errors.New("wrong device mode")
	// ErrInvalid: a bad argument (an interface name, a MAC, an offset).
	ErrInvalid = errors.New("invalid argument")
)

// SetupError says why a device could not be opened and how to fix it.
// Error() is one line: "NAME: PROBLEM; FIX (OP: CAUSE)".
//
// errors.Is matches Kind (one of the sentinels above) and, through Unwrap,
// the underlying cause (usually a syscall.Errno, so errors.Is(err,
// os.ErrPermission) also holds for EPERM and EACCES).
type SetupError struct {
	Kind    error  // ErrNotFound, ErrPermission, ErrBusy, ErrWrongMode or ErrInvalid
	Name    string // the interface name as given
	Problem string // what is wrong, in words
	Fix     string // what to do about it; may be empty
	Op      string // the step that failed, e.g. "TUNSETIFF"
	Err     error  // the cause; may be nil
}

func (e *SetupError) Error() string {
	s := e.Name + ": " + e.Problem
	if e.Fix != "" {
		s += "; " + e.Fix
	}
	switch {
	case e.Op != "" && e.Err != nil:
		s += fmt.Sprintf(" (%s: %v)", e.Op, e.Err)
	case e.Err != nil:
		s += fmt.Sprintf(" (%v)", e.Err)
	}
	return s
}

// Is reports whether target is the error's Kind.
func (e *SetupError) Is(target error) bool { return target == e.Kind }

// Unwrap returns the cause.
func (e *SetupError) Unwrap() error { return e.Err }

// errArg reports API misuse on an open device (a bad offset or buffer): a
// programming error, not a set-up problem, so it is not a SetupError.
func errArg(format string, args ...any) error {
	return fmt.Errorf("device: %w: "+format, append([]any{ErrInvalid}, args...)...)
}
