// Command bench runs the same workloads on tapstack and on gVisor's
// netstack and prints one table comparing them.
//
// Every measurement runs in a fresh child process (this program re-executed
// with -child), so no run inherits another's heap, goroutines or caches,
// and runs of different cases and stacks are interleaved: run 1 of every
// case on both stacks, then run 2, and so on, alternating which stack goes
// first, so a noisy neighbour on a shared machine spreads over all cases
// instead of landing on one. Each figure is reported as min/median/max over
// the runs, with the ratio of the medians tapstack/gVisor.
//
// The stacks are joined in-process by the same wire code (wire.go), and
// the TCP workloads are written once against the Pair interface (pair.go).
//
//	go run . -all                 every case, default sizes, 3 runs
//	go run . -quick               every case, tiny sizes, 1 run (CI)
//	go run . -cases bulk,rr -runs 5
//	go run . -cases idle -idle-n 10000,100000,1000000
//	go run . -cases kernel            as root
//
// The kernel cases (-cases kernel, root only, not in -quick unless named)
// put each stack on a TAP or a raw socket with the Linux kernel as the peer
// (kernel.go), beside gVisor with GSO and the kernel itself over a veth.
//
// This is its own Go module, so tapstack itself does not depend on gVisor.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	var (
		all        = flag.Bool("all", false, "run every case (the default when -cases is not given)")
		quick      = flag.Bool("quick", false, "tiny sizes and 1 run: a smoke test that exits non-zero on any workload error")
		casesFlag  = flag.String("cases", "", "comma-separated cases to run: "+strings.Join(kinds, ","))
		runs       = flag.Int("runs", 0, "runs of each case on each stack (default 3, or 1 with -quick)")
		idleN      = flag.String("idle-n", "", "comma-separated idle pair counts (default 10000, or 1000 with -quick)")
		rrIters    = flag.Int("rr-iters", 0, "rr round trips (default 20000, or 2000 with -quick)")
		crrIters   = flag.Int("crr-iters", 0, "crr connections (default 5000, or 200 with -quick)")
		stacksFlag = flag.String("stacks", strings.Join(allStacks, ","), "stacks to run (each case runs on those of its table)")
		jsonOut    = flag.String("json", "", "write every run's result and the table as JSON to this file")
		mdOut      = flag.String("md", "", "write the table as markdown to this file")
		profDir    = flag.String("cpuprofile", "", "write a CPU profile of each child of run 1 to this directory")
		timeout    = flag.Duration("timeout", 0, "limit on one child (default 10m, or 2m with -quick)")
		abFlag     = flag.String("ab", "", "compare tapstack with these TCP settings (Field=value,...: NoInflightGovernor=true, CC=cubic) against its defaults, alternating in one process per case; bulk, lossy, rr, crr and kernel only")
		abPairs    = flag.Int("pairs", 12, "with -ab, how many times each side runs")

		child    = flag.String("child", "", "internal: run this case spec (JSON) in this process")
		stack    = flag.String("stack", "", "internal: the child's stack")
		run      = flag.Int("run", 0, "internal: the child's run number")
		childPro = flag.String("child-cpuprofile", "", "internal: the child's CPU profile file")
	)
	flag.Parse()
	if *child != "" {
		os.Exit(childMain(*child, *stack, *run, *childPro))
	}
	if flag.NArg() > 0 {
		fatalf("unexpected arguments %q", flag.Args())
	}
	if *all && *casesFlag != "" {
		fatalf("-all and -cases exclude each other")
	}
	sel, err := parseKinds(*casesFlag)
	if err != nil {
		fatalf("%v", err)
	}
	if *quick && *casesFlag == "" {
		// The kernel cases take minutes and need root: -quick runs them
		// only when named.
		sel = slices.DeleteFunc(sel, func(k string) bool { return k == "kernel" })
	}
	if slices.Contains(sel, "kernel") {
		if why := kernelCasesBlocked(); why != "" {
			fmt.Fprintf(os.Stderr, "bench: kernel cases skipped: %s\n", why)
			sel = slices.DeleteFunc(sel, func(k string) bool { return k == "kernel" })
			if len(sel) == 0 {
				return
			}
		}
	}
	stackSel, err := parseStacks(*stacksFlag)
	if err != nil {
		fatalf("%v", err)
	}
	sz := defaultSizes
	if *quick {
		sz = quickSizes
	}
	if *idleN != "" {
		if sz.idlePairs, err = parseInts(*idleN); err != nil {
			fatalf("-idle-n: %v", err)
		}
	}
	if *rrIters > 0 {
		sz.rrIters = *rrIters
	}
	if *crrIters > 0 {
		sz.crrIters = *crrIters
	}
	if *runs == 0 {
		*runs = 3
		if *quick {
			*runs = 1
		}
	}
	if *timeout == 0 {
		*timeout = 10 * time.Minute
		if *quick {
			*timeout = 2 * time.Minute
		}
	}
	if *profDir != "" {
		if err := os.MkdirAll(*profDir, 0o755); err != nil {
			fatalf("%v", err)
		}
	}
	exe, err := os.Executable()
	if err != nil {
		fatalf("finding this program to re-execute: %v", err)
	}

	// An interrupted parent stops its running child too.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	specs := plan(sel, sz)
	if *abFlag != "" {
		if _, err := parseTCPSettings(*abFlag); err != nil {
			fatalf("%v", err)
		}
		var results []result
		for _, sp := range specs {
			for _, st := range abStacks(sp, stackSel) {
				if ctx.Err() != nil {
					break
				}
				sp.AB, sp.ABPairs = *abFlag, *abPairs
				res := runChild(ctx, exe, sp, st, 1, "", *timeout)
				fmt.Fprintf(os.Stderr, "[A/B] %-40s %-13s %s\n", sp.Name, st, summary(res))
				results = append(results, res)
			}
		}
		if slices.Contains(sel, "kernel") {
			cleanupKernelNS()
		}
		writeAB(os.Stdout, *abFlag, *abPairs, results)
		for _, r := range results {
			if r.Error != "" {
				os.Exit(1)
			}
		}
		return
	}
	rep := newReport(specs, stackSel)
	began := time.Now()
	load0 := loadAverage()
	for r := 1; r <= *runs && ctx.Err() == nil; r++ {
		order := stackSel
		if r%2 == 0 {
			order = reversed(stackSel)
		}
		for _, sp := range specs {
			order := stacksFor(sp, order)
			for _, st := range order {
				prof := ""
				if *profDir != "" && r == 1 {
					prof = filepath.Join(*profDir, slug(sp.Name)+"."+st+".pprof")
				}
				if ctx.Err() != nil {
					break
				}
				res := runChild(ctx, exe, sp, st, r, prof, *timeout)
				fmt.Fprintf(os.Stderr, "[run %d/%d] %-40s %-8s %s\n", r, *runs, sp.Name, st, summary(res))
				rep.add(res)
			}
		}
	}
	used := map[string]bool{}
	for _, sp := range specs {
		for _, st := range stacksFor(sp, stackSel) {
			used[st] = true
		}
	}
	fmt.Fprintf(os.Stderr, "%d runs of %d cases on %d stacks in %s\n", *runs, len(specs), len(used), time.Since(began).Round(time.Second))
	if slices.Contains(sel, "kernel") {
		cleanupKernelNS()
	}

	if ctx.Err() != nil {
		fatalf("interrupted")
	}
	rep.machine = describeMachine()
	rep.load = [2]string{load0, loadAverage()}
	rep.command = reproduce(os.Args[1:])
	rep.date = time.Now().UTC().Format("2006-01-02 15:04 UTC")
	rep.writeText(os.Stdout)
	if *mdOut != "" {
		var b bytes.Buffer
		rep.writeMarkdown(&b)
		if err := os.WriteFile(*mdOut, b.Bytes(), 0o644); err != nil {
			fatalf("%v", err)
		}
	}
	if *jsonOut != "" {
		b, err := json.MarshalIndent(rep.jsonValue(), "", "  ")
		if err == nil {
			err = os.WriteFile(*jsonOut, append(b, '\n'), 0o644)
		}
		if err != nil {
			fatalf("%v", err)
		}
	}
	if n := rep.failures(); n > 0 {
		fmt.Fprintf(os.Stderr, "%d run(s) failed\n", n)
		os.Exit(1)
	}
}

// runChild runs one case on one stack in a fresh process.
func runChild(ctx context.Context, exe string, sp spec, stackName string, run int, prof string, limit time.Duration) result {
	b, _ := json.Marshal(sp)
	args := []string{"-child", string(b), "-stack", stackName, "-run", strconv.Itoa(run)}
	if prof != "" {
		args = append(args, "-child-cpuprofile", prof)
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, args...)
	// A child out of time gets SIGQUIT first: Go prints every goroutine's
	// stack, which says where it was stuck.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGQUIT) }
	cmd.WaitDelay = 10 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()

	res := result{Case: sp.Name, Stack: stackName, Run: run}
	line := lastLine(stdout.Bytes())
	if err := json.Unmarshal(line, &res); err != nil || res.Case != sp.Name {
		msg := "no result"
		switch {
		case ctx.Err() != nil:
			msg = fmt.Sprintf("timed out after %s", limit)
		case runErr != nil:
			msg = runErr.Error()
		}
		res = result{Case: sp.Name, Stack: stackName, Run: run, Error: msg + tail(stderr.Bytes())}
	}
	if res.Error != "" && stderr.Len() > 0 {
		// The whole of a failed child's stderr (a goroutine dump can be
		// long) goes to a file the error names.
		name := filepath.Join(os.TempDir(), fmt.Sprintf("bench-%s.%s.run%d.stderr", slug(sp.Name), stackName, run))
		if err := os.WriteFile(name, stderr.Bytes(), 0o644); err == nil {
			first, rest, _ := strings.Cut(res.Error, "\n")
			res.Error = first + " (stderr in " + name + ")\n" + rest
		}
	}
	if ps := cmd.ProcessState; ps != nil {
		if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
			if res.Info == nil {
				res.Info = map[string]any{}
			}
			res.Info["child_cpu_s"] = time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
			res.Info["child_maxrss_bytes"] = ru.Maxrss << 10
		}
	}
	return res
}

// reproduce is the command line that repeats this run, without the flags
// that only say where output goes.
func reproduce(args []string) string {
	out := []string{"go", "-C", "bench", "run", "."}
	for i := 0; i < len(args); i++ {
		a := args[i]
		name := strings.TrimLeft(a, "-")
		name, _, hasValue := strings.Cut(name, "=")
		switch name {
		case "json", "md", "cpuprofile":
			if !hasValue {
				i++ // the value is the next argument
			}
			continue
		}
		out = append(out, a)
	}
	return strings.Join(out, " ")
}

// loadAverage is the 1-minute load average, a hint of how shared the
// machine was during a run.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

func lastLine(b []byte) []byte {
	b = bytes.TrimRight(b, "\n")
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		return b[i+1:]
	}
	return b
}

// tail is the end of a child's stderr, for an error message.
func tail(b []byte) string {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return ""
	}
	const max = 2000
	if len(b) > max {
		b = append([]byte("..."), b[len(b)-max:]...)
	}
	return "; stderr:\n" + string(b)
}

func summary(res result) string {
	switch {
	case res.Error != "":
		return "FAILED: " + firstLine(res.Error)
	case res.Unavailable != "":
		return "not available: " + res.Unavailable
	}
	var parts []string
	for _, m := range res.Metrics {
		parts = append(parts, fmt.Sprintf("%s %s %s", m.Name, fmtValue(m.Value), m.Unit))
	}
	return strings.Join(parts, ", ")
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

func parseStacks(list string) ([]string, error) {
	var out []string
	for _, s := range strings.Split(list, ",") {
		found := false
		for _, known := range allStacks {
			found = found || s == known
		}
		if !found {
			return nil, fmt.Errorf("unknown stack %q (known: %s)", s, strings.Join(allStacks, ","))
		}
		out = append(out, s)
	}
	return out, nil
}

func parseInts(list string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%q is not a positive count", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func reversed(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[len(s)-1-i] = v
	}
	return out
}

// slug turns a case name into a file name.
func slug(name string) string {
	var b strings.Builder
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == '%':
			b.WriteString("pct")
		default:
			b.WriteByte('-')
		}
	}
	return b.String()
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
	os.Exit(2)
}
