package main

import (
	"fmt"
	"io"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tapstack/tapstack/tcp"
)

// A/B mode (-ab): one child per case runs tapstack with its default TCP
// settings and with the variant's, alternating them in the one process,
// and reports each metric as the median ratio variant/default over the
// pairs. On a shared machine the same child varies by up to 2x from one
// minute to the next; consecutive runs in one process see the same
// minute, so their ratio shows effects of a few percent that separate
// processes bury. The order within a pair alternates too.

// abKinds are the workloads A/B mode runs: those on a pair of stacks, and
// the kernel cases (tapstack with and without offloads).
var abKinds = []string{"bulk", "lossy", "rr", "crr", "kernel"}

// abStacks returns the stacks A/B mode runs sp on, of those selected:
// tapstack, and for the kernel cases tapstack-gso too.
func abStacks(sp spec, selected []string) []string {
	var out []string
	for _, st := range stacksFor(sp, selected) {
		if st == "tapstack" || st == "tapstack-gso" && sp.Kind == "kernel" {
			out = append(out, st)
		}
	}
	return out
}

// parseTCPSettings reads comma-separated Field=value assignments to
// tcp.Config's exported bool, int and duration fields (NoTLP=true,
// SendBufferMax=1048576, RTOMin=50ms), and CC=reno|cubic for its
// congestion control.
func parseTCPSettings(s string) (tcp.Config, error) {
	var cfg tcp.Config
	v := reflect.ValueOf(&cfg).Elem()
	for _, kv := range strings.Split(s, ",") {
		name, val, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok || name == "" {
			return cfg, fmt.Errorf("-ab: %q is not Field=value", kv)
		}
		if name == "CC" {
			cc, err := tcp.CongestionControlByName(val)
			if err != nil {
				return cfg, fmt.Errorf("-ab: %v", err)
			}
			cfg.NewCongestionControl = cc
			continue
		}
		sf, found := v.Type().FieldByName(name)
		if !found || !sf.IsExported() {
			return cfg, fmt.Errorf("-ab: tcp.Config has no setting %q", name)
		}
		f := v.FieldByIndex(sf.Index)
		switch {
		case f.Type() == reflect.TypeOf(time.Duration(0)):
			d, err := time.ParseDuration(val)
			if err != nil {
				return cfg, fmt.Errorf("-ab: %s: %v", name, err)
			}
			f.SetInt(int64(d))
		case f.Kind() == reflect.Bool:
			b, err := strconv.ParseBool(val)
			if err != nil {
				return cfg, fmt.Errorf("-ab: %s: %v", name, err)
			}
			f.SetBool(b)
		case f.Kind() == reflect.Int:
			n, err := strconv.Atoi(val)
			if err != nil {
				return cfg, fmt.Errorf("-ab: %s: %v", name, err)
			}
			f.SetInt(int64(n))
		default:
			return cfg, fmt.Errorf("-ab: %s is not a bool, int or duration setting", name)
		}
	}
	return cfg, nil
}

// runAB is a child's A/B run of sp.
func runAB(sp spec, stackName string) (measure, error) {
	var m measure
	if !slices.Contains(abKinds, sp.Kind) || !slices.Contains(abStacks(sp, allStacks), stackName) {
		return m, fmt.Errorf("A/B mode runs tapstack on %s, not %s on %s", strings.Join(abKinds, ", "), stackName, sp.Kind)
	}
	variant, err := parseTCPSettings(sp.AB)
	if err != nil {
		return m, err
	}
	once := func(cfg tcp.Config) (measure, error) {
		if sp.Kind == "kernel" {
			// The kernel cases report throughput only; the process's CPU
			// for the same bytes compares as CPU per GiB would.
			km, err := runKernelWith(sp, stackName, cfg)
			if cpu, ok := km.info["cpu_s"].(float64); ok && err == nil {
				km.add("CPU", "s", lower, cpu)
			}
			return km, err
		}
		run := map[string]func(Pair, spec) (measure, error){"bulk": runBulk, "lossy": runBulk, "rr": runRR, "crr": runCRR}[sp.Kind]
		return withPair(sp, stackName, pairConfig{MTU: sp.MTU, TCP: cfg}, run)
	}
	var defs []metric
	ratios := map[string][]float64{}
	for i := range max(sp.ABPairs, 1) {
		var got [2]measure // default, variant
		for k := range 2 {
			which := (i + k) % 2 // default first in even pairs
			var cfg tcp.Config
			if which == 1 {
				cfg = variant
			}
			if got[which], err = once(cfg); err != nil {
				return m, fmt.Errorf("pair %d, %s: %w", i, [2]string{"default", "variant"}[which], err)
			}
		}
		if defs == nil {
			defs = got[0].metrics
		}
		for j, d := range defs {
			ratios[d.Name] = append(ratios[d.Name], got[1].metrics[j].Value/got[0].metrics[j].Value)
		}
	}
	m.info = map[string]any{"pairs": max(sp.ABPairs, 1), "variant": sp.AB}
	for _, d := range defs {
		r := slices.Clone(ratios[d.Name])
		slices.Sort(r)
		m.add(d.Name, "variant/default", d.Better, r[len(r)/2])
		m.info[d.Name+" ratios"] = ratios[d.Name]
		m.info[d.Name+" min"], m.info[d.Name+" max"] = r[0], r[len(r)-1]
	}
	return m, nil
}

// writeAB prints A/B results: each metric's median ratio with its range.
func writeAB(w io.Writer, variant string, pairs int, results []result) {
	fmt.Fprintf(w, "tapstack with %s against its defaults, %d pairs alternating in one process per case\n", variant, pairs)
	fmt.Fprintf(w, "%-40s %-13s %-14s %-7s %s\n", "case", "stack", "metric", "better", "variant/default median [min .. max]")
	for _, res := range results {
		if res.Error != "" || res.Unavailable != "" {
			fmt.Fprintf(w, "%-40s %-13s %s%s\n", res.Case, res.Stack, res.Error, res.Unavailable)
			continue
		}
		for _, mt := range res.Metrics {
			lo, _ := res.Info[mt.Name+" min"].(float64)
			hi, _ := res.Info[mt.Name+" max"].(float64)
			fmt.Fprintf(w, "%-40s %-13s %-14s %-7s %.3f [%.3f .. %.3f]\n", res.Case, res.Stack, mt.Name, mt.Better, mt.Value, lo, hi)
		}
	}
}
