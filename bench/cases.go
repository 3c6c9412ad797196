package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/tapstack/tapstack/sim/impair"
)

// spec is one case: a workload and its parameters. The parent sends it to
// each child as JSON, so a child runs exactly what the parent planned.
type spec struct {
	Name string `json:"name"` // the table's label, unique
	Kind string `json:"kind"` // bulk, rr, crr, lossy, idle, checksum, kernel

	MTU       int   `json:"mtu,omitempty"`
	Conns     int   `json:"conns,omitempty"`
	Bytes     int64 `json:"bytes,omitempty"` // per connection
	WriteSize int   `json:"write_size,omitempty"`
	Iters     int   `json:"iters,omitempty"`
	Pairs     int   `json:"pairs,omitempty"` // idle
	Size      int   `json:"size,omitempty"`  // checksum buffer

	Link     string `json:"link,omitempty"`     // kernel: "tap" or "raw"
	Workload string `json:"workload,omitempty"` // kernel: "download", "upload" or "echo"

	Duration time.Duration `json:"duration,omitempty"` // checksum
	Loss     impair.Prob   `json:"loss,omitempty"`
	Reorder  impair.Prob   `json:"reorder,omitempty"`
	Seed     uint64        `json:"seed,omitempty"`

	// AB, when set, makes the child compare tapstack with these TCP
	// settings against its defaults, alternating the two ABPairs times in
	// one process (see ab.go).
	AB      string `json:"ab,omitempty"`
	ABPairs int    `json:"ab_pairs,omitempty"`
}

// kinds are the workloads, in table order.
var kinds = []string{"bulk", "rr", "crr", "lossy", "idle", "checksum", "kernel"}

// sizes are the knobs that differ between the default run and -quick.
type sizes struct {
	bulk1, bulk8 int64 // bytes on the one connection, on each of eight
	rrIters      int
	crrIters     int
	lossyBytes   int64
	idlePairs    []int
	sumDuration  time.Duration
	// kernel: curl's download, the upload to discard, the echo (each way)
	kernDownload, kernUpload, kernEcho int64
}

var (
	defaultSizes = sizes{
		bulk1: 1 << 30, bulk8: 128 << 20,
		rrIters: 20000, crrIters: 5000,
		lossyBytes: 64 << 20, idlePairs: []int{10000},
		sumDuration:  time.Second,
		kernDownload: 1 << 30, kernUpload: 1 << 30, kernEcho: 64 << 20,
	}
	quickSizes = sizes{
		bulk1: 16 << 20, bulk8: 2 << 20,
		rrIters: 2000, crrIters: 200,
		lossyBytes: 4 << 20, idlePairs: []int{1000},
		sumDuration:  50 * time.Millisecond,
		kernDownload: 64 << 20, kernUpload: 64 << 20, kernEcho: 8 << 20,
	}
)

const (
	appWrite  = 64 << 10 // application write size in bulk and lossy
	lossySeed = 1
)

// plan returns the cases of the selected kinds.
func plan(selected []string, sz sizes) []spec {
	want := map[string]bool{}
	for _, k := range selected {
		want[k] = true
	}
	var out []spec
	if want["bulk"] {
		for _, mtu := range []int{1500, 65535} {
			out = append(out,
				spec{Name: fmt.Sprintf("bulk 1x%s mtu%d", fmtBytes(sz.bulk1), mtu), Kind: "bulk",
					MTU: mtu, Conns: 1, Bytes: sz.bulk1, WriteSize: appWrite},
				spec{Name: fmt.Sprintf("bulk 8x%s mtu%d", fmtBytes(sz.bulk8), mtu), Kind: "bulk",
					MTU: mtu, Conns: 8, Bytes: sz.bulk8, WriteSize: appWrite})
		}
	}
	if want["rr"] {
		out = append(out, spec{Name: "rr 1B", Kind: "rr", MTU: 1500, Iters: sz.rrIters})
	}
	if want["crr"] {
		out = append(out, spec{Name: "crr 1B", Kind: "crr", MTU: 1500, Iters: sz.crrIters})
	}
	if want["lossy"] {
		out = append(out, spec{Name: fmt.Sprintf("lossy 1x%s mtu1500 1%%loss 1%%reorder", fmtBytes(sz.lossyBytes)),
			Kind: "lossy", MTU: 1500, Conns: 1, Bytes: sz.lossyBytes, WriteSize: appWrite,
			Loss: 1 * impair.Percent, Reorder: 1 * impair.Percent, Seed: lossySeed})
	}
	if want["idle"] {
		for _, n := range sz.idlePairs {
			out = append(out, spec{Name: fmt.Sprintf("idle %d pairs", n), Kind: "idle", MTU: 1500, Pairs: n})
		}
	}
	if want["checksum"] {
		for _, n := range []int{64, 1500, 64 << 10} {
			out = append(out, spec{Name: "checksum " + fmtBytes(int64(n)), Kind: "checksum",
				Size: n, Duration: sz.sumDuration})
		}
	}
	if want["kernel"] {
		for _, link := range []string{"tap", "raw"} {
			for _, w := range []struct {
				name string
				n    int64
			}{{"download", sz.kernDownload}, {"upload", sz.kernUpload}, {"echo", sz.kernEcho}} {
				out = append(out, spec{Name: fmt.Sprintf("%s %s %s", link, w.name, fmtBytes(w.n)), Kind: "kernel",
					MTU: 1500, Link: link, Workload: w.name, Bytes: w.n})
			}
		}
	}
	return out
}

// parseKinds checks a -cases list.
func parseKinds(list string) ([]string, error) {
	if list == "" {
		return kinds, nil
	}
	var out []string
	for _, k := range strings.Split(list, ",") {
		k = strings.TrimSpace(k)
		ok := false
		for _, known := range kinds {
			ok = ok || k == known
		}
		if !ok {
			return nil, fmt.Errorf("unknown case %q (known: %s)", k, strings.Join(kinds, ","))
		}
		out = append(out, k)
	}
	return out, nil
}

// fmtBytes writes n in the largest binary unit that divides it.
func fmtBytes(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}
