package impair

import (
	"errors"
	"flag"
	"testing"
)

func TestParseProb(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Prob
	}{
		{"0", 0},
		{"0%", 0},
		{"1%", Percent},
		{"100%", Always},
		{"0.5%", 5000},
		{"0.0001%", 1},
		{"0.01", Percent},
		{"0.5", 500_000},
		{"0.000001", 1},
		{".25", 250_000},
		{"0.50", 500_000},
		{"250ppm", 250},
		{"1000000ppm", Always},
		{"0ppm", 0},
		{"007%", 7 * Percent},
		{"1.50%", 15_000},
		{"12.3456%", 123_456},
		{"2.0ppm", 2},
	} {
		got, err := ParseProb(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseProb(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
}

func TestParseProbErrors(t *testing.T) {
	for _, in := range []string{
		"", "%", "ppm", ".", ".%",
		"1", "1.0", "2", "1.5", // bare values >= 1 are ambiguous or too big
		"101%", "1000001ppm", "100.0001%",
		"0.0000001", "0.00001%", "1.5ppm", // finer than 1ppm
		"-1%", "+1%", " 1%", "1% ", "1e-3", "1.2.3%", "1,5%", "5%ppm", "0x10ppm",
		"1234567890123456ppm",
	} {
		p, err := ParseProb(in)
		var pe *ProbError
		if !errors.As(err, &pe) || pe.Input != in || pe.Reason == "" {
			t.Errorf("ParseProb(%q) = %d, %v; want a *ProbError", in, p, err)
		}
	}
}

func TestProbString(t *testing.T) {
	for _, tc := range []struct {
		p    Prob
		want string
	}{
		{0, "0%"}, {1, "0.0001%"}, {250, "0.025%"}, {Percent, "1%"}, {15_000, "1.5%"},
		{123_456, "12.3456%"}, {Always, "100%"}, {Always + 1, "100.0001%"},
	} {
		if got := tc.p.String(); got != tc.want {
			t.Errorf("Prob(%d).String() = %q, want %q", tc.p, got, tc.want)
		}
	}
	for p := Prob(0); p <= Always; p += 997 {
		if q, err := ParseProb(p.String()); err != nil || q != p {
			t.Fatalf("round trip of %d via %q: %d, %v", p, p.String(), q, err)
		}
	}
}

func TestProbFlag(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(discard{})
	var loss, dup Prob
	fs.Var(&loss, "loss", "")
	fs.TextVar(&dup, "dup", Prob(0), "")
	if err := fs.Parse([]string{"--loss", "2.5%", "--dup", "100ppm"}); err != nil {
		t.Fatal(err)
	}
	if loss != 25_000 || dup != 100 {
		t.Fatalf("loss %d dup %d", loss, dup)
	}
	if err := fs.Parse([]string{"--loss", "1"}); err == nil {
		t.Fatal("--loss 1 accepted")
	}
	b, _ := Prob(250).MarshalText()
	if string(b) != "0.025%" {
		t.Fatalf("MarshalText = %q", b)
	}
}

type discard struct{}

func (discard) Write(b []byte) (int, error) { return len(b), nil }

func FuzzParseProb(f *testing.F) {
	for _, s := range []string{"1%", "0.01", "250ppm", "100%", "1", "0.0000001", "1e3", ".", "%"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseProb(s)
		if err != nil {
			var pe *ProbError
			if !errors.As(err, &pe) {
				t.Fatalf("%q: error %v is not a *ProbError", s, err)
			}
			return
		}
		if p > Always {
			t.Fatalf("%q parsed to %d ppm, above 100%%", s, p)
		}
		if q, err := ParseProb(p.String()); err != nil || q != p {
			t.Fatalf("%q -> %d -> %q -> %d, %v", s, p, p.String(), q, err)
		}
	})
}
