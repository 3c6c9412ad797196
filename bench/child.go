package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// result is one child's answer, one JSON line on its stdout.
type result struct {
	Case  string `json:"case"`
	Stack string `json:"stack"`
	Run   int    `json:"run"`
	// Exactly one of Metrics, Unavailable and Error says how it went.
	Metrics     []metric       `json:"metrics,omitempty"`
	Unavailable string         `json:"unavailable,omitempty"`
	Error       string         `json:"error,omitempty"`
	Info        map[string]any `json:"info,omitempty"`
}

type metric struct {
	Name   string  `json:"name"`
	Unit   string  `json:"unit"`
	Better string  `json:"better"` // "higher" or "lower"
	Value  float64 `json:"value"`
}

// childMain runs one case on one stack in this process and prints its
// result. It returns the exit code: 0 when the workload ran or is not
// available on this stack, 1 when it failed.
func childMain(specJSON, stackName string, run int, cpuprofile string) int {
	res := result{Stack: stackName, Run: run}
	var sp spec
	if err := json.Unmarshal([]byte(specJSON), &sp); err != nil {
		res.Error = fmt.Sprintf("bad -child spec: %v", err)
		return emit(res)
	}
	res.Case = sp.Name
	if cpuprofile != "" {
		f, err := os.Create(cpuprofile)
		if err != nil {
			res.Error = err.Error()
			return emit(res)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			res.Error = err.Error()
			return emit(res)
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}
	start := time.Now()
	m, err := runWorkload(sp, stackName)
	switch {
	case errors.Is(err, errUnavailable):
		var u *unavailableError
		if errors.As(err, &u) {
			res.Unavailable = u.reason
		} else {
			res.Unavailable = err.Error()
		}
	case err != nil:
		res.Error = err.Error()
	default:
		res.Metrics = m.metrics
	}
	res.Info = m.info
	if res.Info == nil {
		res.Info = map[string]any{}
	}
	res.Info["wall_s"] = time.Since(start).Seconds()
	res.Info["process_cpu_s"] = cpuTime().Seconds()
	res.Info["vmhwm_bytes"] = procStatus("VmHWM")
	return emit(res)
}

func emit(res result) int {
	b, err := json.Marshal(res)
	if err != nil {
		b, _ = json.Marshal(result{Case: res.Case, Stack: res.Stack, Run: res.Run, Error: "encoding result: " + err.Error()})
	}
	os.Stdout.Write(append(b, '\n'))
	if res.Error != "" {
		return 1
	}
	return 0
}

// cpuTime is the user and system CPU this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procStatus reads a "kB" field of /proc/self/status, in bytes; 0 when it
// cannot.
func procStatus(field string) uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || k != field {
			continue
		}
		kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return 0
		}
		return kb << 10
	}
	return 0
}
