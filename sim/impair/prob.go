package impair

import (
	"strconv"
	"strings"
)

// Prob is a probability in parts per million: an integer ratio, so a run
// replays exactly on every machine and a flag value round-trips through
// String without float rounding.
type Prob uint32

// Units of Prob: 3 * Percent, 250 * PPM, Always.
const (
	PPM     Prob = 1
	Percent Prob = 10_000
	Always  Prob = 1_000_000
)

// ProbError reports a probability that does not parse.
type ProbError struct {
	Input  string // the text as given
	Reason string
}

func (e *ProbError) Error() string {
	return "impair: probability " + strconv.Quote(e.Input) + ": " + e.Reason
}

// ParseProb parses a probability written as a percentage ("1%", "0.5%"), in
// parts per million ("250ppm") or as a fraction below one ("0.01"). A bare
// "1" or larger is refused rather than read as 100%: "--loss 1" almost
// always means 1%. Values finer than 1ppm or above 100% are errors, never
// rounded or clamped.
func ParseProb(s string) (Prob, error) {
	num, scale := s, uint64(Always) // a bare fraction: 1 = 1e6 ppm
	switch {
	case strings.HasSuffix(s, "%"):
		num, scale = s[:len(s)-1], uint64(Percent)
	case strings.HasSuffix(s, "ppm"):
		num, scale = s[:len(s)-3], uint64(PPM)
	}
	if num == "" {
		return 0, &ProbError{s, "no number"}
	}
	// Read the decimal as mant / 10^frac with integers only.
	var mant, div uint64 = 0, 1
	seenDot, digits := false, 0
	for i := 0; i < len(num); i++ {
		c := num[i]
		switch {
		case c == '.' && !seenDot:
			seenDot = true
		case c >= '0' && c <= '9':
			if mant == 0 && c == '0' && !seenDot {
				break // leading zeros cost no precision
			}
			digits++
			if digits > 15 {
				return 0, &ProbError{s, "too many digits"}
			}
			mant = mant*10 + uint64(c-'0')
			if seenDot {
				div *= 10
			}
		default:
			return 0, &ProbError{s, "unexpected " + strconv.QuoteRune(rune(c)) + " at offset " + strconv.Itoa(i)}
		}
	}
	if num == "." {
		return 0, &ProbError{s, "no digits"}
	}
	if scale == uint64(Always) && mant >= div {
		if mant == div {
			return 0, &ProbError{s, `a bare 1 is ambiguous: write "100%" or "1%"`}
		}
		return 0, &ProbError{s, "a bare fraction must be below 1 (write a percentage with %)"}
	}
	for div > 1 && mant%10 == 0 { // "0.50" is "0.5"
		mant, div = mant/10, div/10
	}
	if div > scale {
		return 0, &ProbError{s, "finer than 1ppm"}
	}
	// mant < 1e15 and scale/div <= 1e4 unless mant < div: no overflow.
	ppm := mant * (scale / div)
	if ppm > uint64(Always) {
		return 0, &ProbError{s, "above 100%"}
	}
	return Prob(ppm), nil
}

// String formats p as a percentage with as few digits as are exact:
// "0%", "1%", "0.025%", "100%". ParseProb(p.String()) == p.
func (p Prob) String() string {
	whole, frac := uint32(p)/uint32(Percent), uint32(p)%uint32(Percent)
	s := strconv.FormatUint(uint64(whole), 10)
	if frac != 0 {
		f := strconv.FormatUint(uint64(frac)+uint64(Percent), 10)[1:] // 4 digits, zero padded
		s += "." + strings.TrimRight(f, "0")
	}
	return s + "%"
}

// Set parses s with ParseProb, so a *Prob is a flag.Value.
func (p *Prob) Set(s string) error {
	v, err := ParseProb(s)
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// MarshalText implements encoding.TextMarshaler with String's format.
func (p Prob) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler with ParseProb.
func (p *Prob) UnmarshalText(b []byte) error { return p.Set(string(b)) }
