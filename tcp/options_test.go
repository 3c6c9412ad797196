package tcp

import (
	"bytes"
	"errors"
	"testing"

	"github.com/tapstack/tapstack/tcp/seq"
)

func TestParseOptions(t *testing.T) {
	ts := []byte{optTimestamps, 10, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xfe}
	tests := []struct {
		name string
		b    []byte
		want Options
	}{
		{"empty", nil, Options{}},
		{"NOPs", []byte{1, 1, 1, 1}, Options{}},
		{"EOL", []byte{0, 0, 0, 0}, Options{}},
		{"MSS", []byte{optMSS, 4, 0x05, 0xb4}, Options{HasMSS: true, MSS: 1460}},
		{"MSS 0 is reported", []byte{optMSS, 4, 0, 0}, Options{HasMSS: true}},
		{"window scale", []byte{1, optWindowScale, 3, 7}, Options{HasWindowScale: true, WindowScale: 7}},
		{"window scale 14", []byte{1, optWindowScale, 3, 14}, Options{HasWindowScale: true, WindowScale: 14}},
		{"window scale 15 clamped", []byte{1, optWindowScale, 3, 15}, Options{HasWindowScale: true, WindowScale: 14}},
		{"window scale 255 clamped", []byte{1, optWindowScale, 3, 255}, Options{HasWindowScale: true, WindowScale: 14}},
		{"SACK-permitted", []byte{1, 1, optSACKPerm, 2}, Options{SACKPermitted: true}},
		{"timestamps", append([]byte{1, 1}, ts...), Options{HasTimestamps: true, TSVal: 1, TSEcr: 0xfffffffe}},
		{
			"one SACK block", []byte{1, 1, optSACK, 10, 0, 0, 0, 1, 0, 0, 0, 2},
			Options{NumSACK: 1, SACKBlocks: [4]SACKBlock{{1, 2}}},
		},
		{
			"four SACK blocks", []byte{1, 1, optSACK, 34,
				0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4,
				0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0x80, 0, 0, 0, 0x80, 0, 0, 1},
			Options{NumSACK: 4, SACKBlocks: [4]SACKBlock{{1, 2}, {3, 4}, {0xffffffff, 0}, {0x80000000, 0x80000001}}},
		},
		{
			"Linux SYN", []byte{optMSS, 4, 0x05, 0xb4, optSACKPerm, 2, optTimestamps, 10, 0, 0, 0, 9, 0, 0, 0, 0, 1, optWindowScale, 3, 10},
			Options{HasMSS: true, MSS: 1460, SACKPermitted: true, HasTimestamps: true, TSVal: 9, HasWindowScale: true, WindowScale: 10},
		},
		{"options after EOL are ignored", []byte{optEnd, optMSS, 4, 1, 1, 0, 0, 0}, Options{}},
		{"unknown options are skipped", []byte{0xfe, 4, 1, 2, optMSS, 4, 0, 1, 30, 2, 0, 0}, Options{HasMSS: true, MSS: 1}},
		{"unknown option of length 2", []byte{0xfe, 2, optMSS, 4, 0, 1, 1, 1}, Options{HasMSS: true, MSS: 1}},
		// Known options with the wrong length are ignored, as Linux does.
		{"MSS of length 3", []byte{optMSS, 3, 5, 1}, Options{}},
		{"MSS of length 6", []byte{optMSS, 6, 5, 0xb4, 0, 0, 1, 1}, Options{}},
		{"window scale of length 4", []byte{optWindowScale, 4, 0, 7}, Options{}},
		{"window scale of length 2", []byte{optWindowScale, 2, 1, 1}, Options{}},
		{"SACK-permitted of length 3", []byte{optSACKPerm, 3, 0, 1}, Options{}},
		{"timestamps of length 8", []byte{optTimestamps, 8, 0, 0, 0, 1, 0, 0}, Options{}},
		{"timestamps of length 12", append([]byte{optTimestamps, 12}, make([]byte, 10)...), Options{}},
		{"SACK of length 2", []byte{optSACK, 2, 1, 1}, Options{}},
		{"SACK of length 9", []byte{optSACK, 9, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1}, Options{}},
		{"SACK of length 11", []byte{optSACK, 11, 0, 0, 0, 1, 0, 0, 0, 2, 0, 1}, Options{}},
		{"wrong-length option, then a good one", []byte{optMSS, 3, 5, optMSS, 4, 1, 0, 1}, Options{HasMSS: true, MSS: 256}},
		// The last of two counts, as in Linux.
		{"two MSS", []byte{optMSS, 4, 0, 1, optMSS, 4, 0, 2}, Options{HasMSS: true, MSS: 2}},
		{
			"two SACK options", []byte{optSACK, 18, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4,
				optSACK, 10, 0, 0, 0, 5, 0, 0, 0, 6},
			Options{NumSACK: 1, SACKBlocks: [4]SACKBlock{{5, 6}}},
		},
		{"40 bytes", append(bytes.Repeat([]byte{1}, 30), ts...), Options{HasTimestamps: true, TSVal: 1, TSEcr: 0xfffffffe}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseOptions(tt.b)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("ParseOptions(% x)\n got %+v\nwant %+v", tt.b, got, tt.want)
			}
			// The same list inside a header decodes the same.
			seg := fixed(uint8(5+(len(tt.b)+3)/4), tt.b...)
			seg = append(seg, make([]byte, (4-len(tt.b)%4)%4)...)
			h, err := ParseHeader(seg)
			if err != nil {
				t.Fatal(err)
			}
			if got := h.DecodeOptions(); got != tt.want {
				t.Errorf("DecodeOptions = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseOptionsRejects(t *testing.T) {
	tests := []struct {
		name   string
		b      []byte
		class  error
		offset int
	}{
		{"41 bytes", make([]byte, 41), ErrMalformed, 40},
		{"kind, no length", []byte{optMSS}, ErrBadOption, 1},
		{"unknown kind, no length", []byte{1, 1, 1, 0xfe}, ErrBadOption, 4},
		{"length 0", []byte{optMSS, 0, 0, 0}, ErrBadOption, 1},
		{"length 1", []byte{1, 0xfe, 1, 0}, ErrBadOption, 2},
		{"MSS past the end", []byte{1, 1, optMSS, 4, 5}, ErrBadOption, 3},
		{"unknown past the end", []byte{0xfe, 255, 0, 0}, ErrBadOption, 1},
		{"SACK past the end", []byte{optSACK, 10, 0, 0, 0, 1, 0, 0, 0}, ErrBadOption, 1},
		{"good option, then a bad one", []byte{optMSS, 4, 5, 0xb4, optWindowScale, 0, 0, 0}, ErrBadOption, 5},
	}
	for _, tt := range tests {
		o, err := ParseOptions(tt.b)
		if !errors.Is(err, tt.class) {
			t.Errorf("%s: ParseOptions(% x) = %v, %v; want %v", tt.name, tt.b, o, err, tt.class)
			continue
		}
		var pe *ParseError
		if !errors.As(err, &pe) || pe.Offset != tt.offset {
			t.Errorf("%s: error %v, want offset %d", tt.name, err, tt.offset)
		}
		if o != (Options{}) {
			t.Errorf("%s: options %+v returned with the error", tt.name, o)
		}
	}
}

// TestEncodeLinuxLayout compares our encoding with the bytes Linux's
// tcp_options_write (net/ipv4/tcp_output.c) produces for the same options;
// the pcap test checks the common cases against captured segments too.
func TestEncodeLinuxLayout(t *testing.T) {
	tests := []struct {
		name string
		o    Options
		want []byte
	}{
		{"none", Options{}, nil},
		{
			"SYN: MSS, SACKOK, TS, NOP, WS",
			Options{HasMSS: true, MSS: 1460, SACKPermitted: true, HasTimestamps: true, TSVal: 0x01020304, HasWindowScale: true, WindowScale: 7},
			[]byte{2, 4, 0x05, 0xb4, 4, 2, 8, 10, 1, 2, 3, 4, 0, 0, 0, 0, 1, 3, 3, 7},
		},
		{
			"SYN without timestamps: MSS, NOP, NOP, SACKOK, NOP, WS",
			Options{HasMSS: true, MSS: 1460, SACKPermitted: true, HasWindowScale: true, WindowScale: 7},
			[]byte{2, 4, 0x05, 0xb4, 1, 1, 4, 2, 1, 3, 3, 7},
		},
		{
			"SYN without SACK: MSS, NOP, NOP, TS, NOP, WS",
			Options{HasMSS: true, MSS: 536, HasTimestamps: true, TSVal: 1, TSEcr: 2, HasWindowScale: true},
			[]byte{2, 4, 2, 0x18, 1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2, 1, 3, 3, 0},
		},
		{"MSS only", Options{HasMSS: true, MSS: 1}, []byte{2, 4, 0, 1}},
		{"window scale over 14 written as 14", Options{HasWindowScale: true, WindowScale: 200}, []byte{1, 3, 3, 14}},
		{
			"data: NOP, NOP, TS",
			Options{HasTimestamps: true, TSVal: 0xa0b0c0d0, TSEcr: 0x01020304},
			[]byte{1, 1, 8, 10, 0xa0, 0xb0, 0xc0, 0xd0, 1, 2, 3, 4},
		},
		{
			"data: NOP, NOP, TS, NOP, NOP, SACK",
			Options{HasTimestamps: true, TSVal: 1, TSEcr: 2, NumSACK: 2, SACKBlocks: [4]SACKBlock{{0x10, 0x20}, {0x30, 0x40}}},
			[]byte{1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2, 1, 1, 5, 18,
				0, 0, 0, 0x10, 0, 0, 0, 0x20, 0, 0, 0, 0x30, 0, 0, 0, 0x40},
		},
		{
			"SACK alone, four blocks",
			Options{NumSACK: 4, SACKBlocks: [4]SACKBlock{{1, 2}, {3, 4}, {5, 6}, {7, 8}}},
			[]byte{1, 1, 5, 34, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4,
				0, 0, 0, 5, 0, 0, 0, 6, 0, 0, 0, 7, 0, 0, 0, 8},
		},
		{
			// 12 bytes of timestamps leave room for 3 blocks; Linux drops the rest.
			"timestamps and four SACK blocks: the fourth is left out",
			Options{HasTimestamps: true, NumSACK: 4, SACKBlocks: [4]SACKBlock{{1, 2}, {3, 4}, {5, 6}, {7, 8}}},
			[]byte{1, 1, 8, 10, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 5, 26,
				0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 5, 0, 0, 0, 6},
		},
		{
			"everything: 20 bytes of SYN options leave room for 2 blocks",
			Options{HasMSS: true, MSS: 1, SACKPermitted: true, HasTimestamps: true, HasWindowScale: true, WindowScale: 1,
				NumSACK: 4, SACKBlocks: [4]SACKBlock{{1, 2}, {3, 4}, {5, 6}, {7, 8}}},
			[]byte{2, 4, 0, 1, 4, 2, 8, 10, 0, 0, 0, 0, 0, 0, 0, 0, 1, 3, 3, 1,
				1, 1, 5, 18, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4},
		},
		{"NumSACK out of range is clamped", Options{NumSACK: 9, SACKBlocks: [4]SACKBlock{{1, 2}, {3, 4}, {5, 6}, {7, 8}}},
			[]byte{1, 1, 5, 34, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4,
				0, 0, 0, 5, 0, 0, 0, 6, 0, 0, 0, 7, 0, 0, 0, 8}},
		{"negative NumSACK is none", Options{NumSACK: -1, SACKBlocks: [4]SACKBlock{{1, 2}}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if n := tt.o.EncodedLen(); n != len(tt.want) {
				t.Errorf("EncodedLen = %d, want %d", n, len(tt.want))
			}
			b := bytes.Repeat([]byte{0xee}, MaxOptionsLen+4)
			n, err := tt.o.Encode(b)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b[:n], tt.want) {
				t.Errorf("Encode wrote\n% x\nwant\n% x", b[:n], tt.want)
			}
			if !bytes.Equal(b[n:], bytes.Repeat([]byte{0xee}, len(b)-n)) {
				t.Errorf("Encode wrote past its %d bytes: % x", n, b[n:])
			}
			if _, err := tt.o.Encode(b[:len(tt.want)]); err != nil {
				t.Errorf("Encode into exactly EncodedLen bytes: %v", err)
			}
			if len(tt.want) > 0 {
				if n, err := tt.o.Encode(b[:len(tt.want)-1]); !errors.Is(err, ErrShortBuffer) || n != 0 {
					t.Errorf("Encode into EncodedLen-1 bytes = %d, %v; want ErrShortBuffer", n, err)
				}
			}
		})
	}
}

func TestOptionsString(t *testing.T) {
	tests := []struct {
		o    Options
		want string
	}{
		{Options{}, "none"},
		{Options{HasMSS: true, MSS: 1460, SACKPermitted: true, HasTimestamps: true, TSVal: 1, HasWindowScale: true, WindowScale: 7},
			"mss 1460,sackOK,TS val 1 ecr 0,wscale 7"},
		{Options{NumSACK: 2, SACKBlocks: [4]SACKBlock{{1, 2}, {3, 4}}}, "sack 1:2 3:4"},
	}
	for _, tt := range tests {
		if got := tt.o.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
}

func TestSACK(t *testing.T) {
	o := Options{NumSACK: 2, SACKBlocks: [4]SACKBlock{{1, 2}, {3, 4}, {5, 6}}}
	if got := o.SACK(); len(got) != 2 || got[1] != (SACKBlock{seq.Value(3), seq.Value(4)}) {
		t.Errorf("SACK() = %v", got)
	}
	o.NumSACK = 100
	if got := o.SACK(); len(got) != MaxSACKBlocks {
		t.Errorf("SACK() with NumSACK 100 has %d blocks", len(got))
	}
}

func TestMaxSACKBlocks(t *testing.T) {
	if (MaxOptionsLen-lenSACKBase)/lenSACKBlock != MaxSACKBlocks {
		t.Errorf("MaxSACKBlocks = %d, but %d fit in %d bytes", MaxSACKBlocks, (MaxOptionsLen-lenSACKBase)/lenSACKBlock, MaxOptionsLen)
	}
}
