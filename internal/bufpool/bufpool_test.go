package bufpool

import "testing"

func TestSizeClasses(t *testing.T) {
	for _, c := range []struct{ n, want int }{
		{1, 2048}, {2048, 2048}, {2049, 4096}, {65536, 65536}, {65537, 131072}, {8 << 20, 8 << 20}, {8<<20 + 1, 8<<20 + 1},
	} {
		b := Get(c.n)
		if len(*b) != c.want || cap(*b) != c.want {
			t.Errorf("Get(%d): len %d cap %d, want %d", c.n, len(*b), cap(*b), c.want)
		}
		Put(b)
	}
	if b := GetFrame(); len(*b) != Frame {
		t.Errorf("GetFrame: %d bytes, want %d", len(*b), Frame)
	}
}

// A buffer comes back whole whatever its user left its length at, and
// one of no class is not pooled.
func TestPutRestoresLength(t *testing.T) {
	for range 100 {
		b := Get(4096)
		*b = (*b)[:10]
		Put(b)
		if b := Get(4096); len(*b) != 4096 {
			t.Fatalf("Get after Put of a shortened buffer: %d bytes", len(*b))
		}
		f := GetFrame()
		*f = (*f)[:1]
		Put(f)
		if f := GetFrame(); len(*f) != Frame {
			t.Fatalf("GetFrame after Put of a shortened buffer: %d bytes", len(*f))
		}
		odd := make([]byte, 3000)
		Put(&odd)
		if b := Get(3000); cap(*b) != 4096 {
			t.Fatalf("Get(3000) returned a %d-byte buffer", cap(*b))
		}
	}
}
