package main

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

// tapstack bench needs the source tree's harness: outside one it says so,
// with the fix, and exits 2.
func TestBenchNeedsSourceTree(t *testing.T) {
	var out, errb bytes.Buffer
	code := run([]string{"bench", "--src", t.TempDir(), "-quick"}, &out, &errb)
	if code != 2 || !strings.Contains(errb.String(), "--src") {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
	code = run([]string{"bench", "--src"}, &out, &errb)
	if code != 2 {
		t.Fatalf("--src without a value: exit %d", code)
	}
}

// Inside the tree (the test runs in cmd/tapstack) it finds bench/ above and
// runs the harness: the checksum case on both stacks, with their ratio.
func TestBenchRunsHarness(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the bench module (gVisor)")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go on PATH")
	}
	var out, errb bytes.Buffer
	if code := run([]string{"bench", "-quick", "-cases", "checksum"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"checksum 64KiB", "tapstack/gVisor"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
