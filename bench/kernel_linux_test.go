package main

import (
	"math"
	"os"
	"testing"
	"time"
)

// TestKernelCases runs every kernel case small on every stack: it needs
// root (namespaces tsbnk and tsbns, 10.91.0.0/24).
func TestKernelCases(t *testing.T) {
	if why := kernelCasesBlocked(); why != "" {
		if os.Getenv("TAPSTACK_REQUIRE_ROOT") == "1" {
			t.Fatal(why)
		}
		t.Skip(why)
	}
	if testing.Short() {
		t.Skip("sets up namespaces for 24 runs")
	}
	for _, sp := range plan([]string{"kernel"}, sizes{kernDownload: 4 << 20, kernUpload: 4 << 20, kernEcho: 1 << 20}) {
		for _, st := range kernelStacks {
			t.Run(sp.Name+"/"+st, func(t *testing.T) {
				start := time.Now()
				m, err := runWorkload(sp, st)
				if err != nil {
					t.Fatal(err)
				}
				if len(m.metrics) != 1 || m.metrics[0].Unit != "MB/s" || !(m.metrics[0].Value > 0) || math.IsInf(m.metrics[0].Value, 0) {
					t.Fatalf("metrics %+v", m.metrics)
				}
				t.Logf("%.0f MB/s (%v with set-up)", m.metrics[0].Value, time.Since(start).Round(time.Millisecond))
			})
		}
	}
	// A/B mode on a kernel case: both sides run in this process, with the
	// process's CPU as a second metric.
	t.Run("ab", func(t *testing.T) {
		sp := spec{Name: "ab", Kind: "kernel", MTU: 1500, Link: "tap", Workload: "echo", Bytes: 1 << 20,
			AB: "NoAutocork=true", ABPairs: 2}
		m, err := runWorkload(sp, "tapstack-gso")
		if err != nil {
			t.Fatal(err)
		}
		if len(m.metrics) != 2 || m.metrics[0].Name != "throughput" || m.metrics[1].Name != "CPU" || !(m.metrics[0].Value > 0) {
			t.Fatalf("metrics %+v", m.metrics)
		}
	})
	for _, ns := range []string{kernNS, farNS} {
		if _, err := os.Stat("/run/netns/" + ns); err == nil {
			t.Errorf("namespace %s left behind", ns)
		}
	}
}
