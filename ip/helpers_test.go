package ip

import (
	"errors"
	"net/netip"
	"testing"
)

var (
	hostIP = netip.MustParseAddr("10.99.0.1")
	nsIP   = netip.MustParseAddr("10.99.0.2")
	macA   = MAC{0x02, 0x00, 0x00, 0x00, 0x00, 0x0a}
	macB   = MAC{0x02, 0x00, 0x00, 0x00, 0x00, 0x0b}
)

var errClasses = []error{ErrTruncated, ErrMalformed, ErrUnsupported}

// wantParseError checks that err is a *ParseError of class want, from layer
// l, about field at offset off.
func wantParseError(t *testing.T, err, want error, l Layer, field string, off int) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %v for %s", want, field)
	}
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T) is not a *ParseError", err, err)
	}
	if !errors.Is(err, want) {
		t.Errorf("error %v: not %v", err, want)
	}
	if pe.Layer != l || pe.Field != field || pe.Offset != off {
		t.Errorf("error %v: got layer %v field %q offset %d, want %v %q %d",
			err, pe.Layer, pe.Field, pe.Offset, l, field, off)
	}
	if pe.Error() == "" || pe.Reason == "" {
		t.Errorf("error without text: %#v", pe)
	}
}

// wantFieldError checks that err is a *FieldError of class want.
func wantFieldError(t *testing.T, err, want error) {
	t.Helper()
	var fe *FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("error %v (%T) is not a *FieldError", err, err)
	}
	if !errors.Is(err, want) {
		t.Errorf("error %v: not %v", err, want)
	}
	if fe.Error() == "" {
		t.Error("empty error text")
	}
}

// clone returns a copy of b with no spare capacity, so that any access
// beyond it panics.
func clone(b []byte) []byte {
	c := make([]byte, len(b))
	copy(c, b)
	return c[:len(c):len(c)]
}
