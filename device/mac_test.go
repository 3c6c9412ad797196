package device

import (
	"bytes"
	"errors"
	"net"
	"testing"
)

func TestDefaultMAC(t *testing.T) {
	a, b := DefaultMAC("tap0"), DefaultMAC("tap0")
	if !bytes.Equal(a, b) {
		t.Fatalf("DefaultMAC not deterministic: %v %v", a, b)
	}
	if len(a) != 6 || a[0] != 0x02 {
		t.Errorf("DefaultMAC(tap0) = %v, want 02:xx:xx:xx:xx:xx (local, unicast)", a)
	}
	if bytes.Equal(a, DefaultMAC("tap1")) {
		t.Errorf("tap0 and tap1 share MAC %v", a)
	}
}

func TestStackMAC(t *testing.T) {
	var c Config
	def := DefaultMAC("tap0")
	got, err := c.stackMAC("tap0", net.HardwareAddr{0x52, 0x54, 0, 0, 0, 1})
	if err != nil || !bytes.Equal(got, def) {
		t.Errorf("stackMAC = %v, %v; want %v", got, err, def)
	}
	// A kernel side that happens to own the default gets a different one.
	got, err = c.stackMAC("tap0", def)
	if err != nil || bytes.Equal(got, def) || got[0] != 0x02 {
		t.Errorf("stackMAC colliding with kernel %v = %v, %v", def, got, err)
	}
	c.MAC = net.HardwareAddr{0x02, 1, 2, 3, 4, 5}
	got, err = c.stackMAC("tap0", nil)
	if err != nil || !bytes.Equal(got, c.MAC) {
		t.Errorf("stackMAC with Config.MAC = %v, %v", got, err)
	}
	for _, bad := range []net.HardwareAddr{{0x03, 1, 2, 3, 4, 5}, {0x02, 1, 2}} {
		c.MAC = bad
		if _, err := c.stackMAC("tap0", nil); !errors.Is(err, ErrInvalid) {
			t.Errorf("stackMAC(%v) err = %v, want ErrInvalid", bad, err)
		}
	}
}
