package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// cmdBench runs the side-by-side benchmark against gVisor's netstack. The
// harness is the bench/ module of the source tree, kept out of this binary
// so that the product never links gVisor: tapstack bench finds the tree
// (the current directory or a parent, or --src) and runs `go run .` there,
// passing every other argument on.
func cmdBench(args []string, stdout, stderr io.Writer) error {
	src := ""
	var pass []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if v, ok := strings.CutPrefix(strings.TrimPrefix(a, "-"), "-src="); ok {
			src = v
			continue
		}
		switch a {
		case "--src", "-src":
			if i+1 == len(args) {
				return usagef("bench: --src needs a directory")
			}
			src = args[i+1]
			i++
		case "-h", "-help", "--help":
			fmt.Fprint(stdout, benchUsage)
			pass = append(pass, a)
		default:
			pass = append(pass, a)
		}
	}
	dir, err := benchDir(src)
	if err != nil {
		return &setupError{err}
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		return &setupError{errors.New("bench: the harness runs with the Go toolchain: put go on PATH (e.g. PATH=$PATH:/usr/local/go/bin)")}
	}
	cmd := exec.Command(gobin, append([]string{"run", "."}, pass...)...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return fmt.Errorf("bench: the harness exited with status %d", ee.ExitCode())
		}
		return fmt.Errorf("bench: %v", err)
	}
	return nil
}

const benchUsage = `usage: tapstack bench [--src DIR] [harness flags]

Runs bench/ of the tapstack source tree (DIR, or the current directory or a
parent): identical workloads on tapstack and gVisor's netstack, each run in
a fresh process, with min/median/max and the ratio. Harness flags include
-quick, -all, -cases LIST, -runs N, -md FILE, -cpuprofile DIR; the
harness's own help follows.

`

// benchDir returns the bench module's directory: src/bench, or the first
// bench/ holding the harness's go.mod from the working directory upward.
func benchDir(src string) (string, error) {
	isBench := func(dir string) bool {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		return err == nil && bytes.HasPrefix(b, []byte("module github.com/tapstack/tapstack/bench\n"))
	}
	if src != "" {
		if d := filepath.Join(src, "bench"); isBench(d) {
			return d, nil
		}
		return "", fmt.Errorf("bench: %s holds no tapstack source tree (no bench/go.mod): pass --src with the checkout's path", src)
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("bench: %v", err)
	}
	for d := wd; ; d = filepath.Dir(d) {
		if isBench(filepath.Join(d, "bench")) {
			return filepath.Join(d, "bench"), nil
		}
		if isBench(d) {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", errors.New("bench: the harness lives in the source tree's bench/: run tapstack bench inside a checkout, or pass --src DIR")
		}
	}
}
