package mono

import (
	"testing"
	"time"
)

func TestAddSaturatesAtNever(t *testing.T) {
	cases := []struct {
		t    Time
		d    time.Duration
		want Time
	}{
		{0, time.Second, Time(time.Second)},
		{Never, time.Second, Never},
		{Never - 5, 10, Never},
		{Never - 10, 10, Never},
		{Never - 11, 10, Never - 1},
		{100, -50, 50},
	}
	for _, c := range cases {
		if got := c.t.Add(c.d); got != c.want {
			t.Errorf("%d.Add(%d) = %d, want %d", c.t, c.d, got, c.want)
		}
	}
	if Min(3, Never) != 3 || Min(Never, 3) != 3 || Time(5).Sub(2) != 3 || Never.String() != "never" {
		t.Error("Min, Sub or String wrong")
	}
}
