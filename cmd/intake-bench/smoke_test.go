package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSmoke runs the whole harness as make bench does, scaled down: real
// intake and tusd binaries, the file store, one round. It writes only
// into temporary directories, never docs/.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real servers; skipped with -short")
	}
	dir := t.TempDir()
	o, err := parseFlags([]string{
		"--quick", "--rounds", "1", "--backends", "file",
		"--out", filepath.Join(dir, "out", "benchmarks.md"),
		"--json", filepath.Join(dir, "out", "benchmarks.json"),
		"--work-dir", filepath.Join(dir, "work"),
		"--timeout", "5m",
	}, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := run(ctx, o, []string{"intake-bench", "--quick"}, &log)
	if err != nil {
		t.Fatalf("run: %v\nlog:\n%s", err, log.String())
	}

	// Every workload ran on each of the three servers and verified.
	if got, want := len(res.Runs), 4*3; got != want {
		t.Fatalf("%d runs; want %d", got, want)
	}
	for _, r := range res.Runs {
		if r.Verified < 1 || r.Seconds <= 0 {
			t.Errorf("run %+v: want at least one verified upload and a duration", r)
		}
		switch r.Workload {
		case "W1", "W3":
			if r.PeakRSS < 1<<20 {
				t.Errorf("run %+v: peak RSS %d; want a real figure", r, r.PeakRSS)
			}
		case "W4":
			if r.Creates != 125 || r.CreatesPerSec <= 0 || r.P99Ms < r.P50Ms {
				t.Errorf("run %+v: want 125 creates with p50 <= p99", r)
			}
		}
	}
	if res.Limits.Loopback <= 0 || res.Limits.DiskSynced <= 0 || res.Limits.SHA256 <= 0 {
		t.Errorf("limits = %+v; want all measured", res.Limits)
	}

	md, err := os.ReadFile(o.Out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"## File store", "quick mode", "| W3 32 × 2 MiB at once |", "## Peak RSS", "tusd " + tusdVersion} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	var back Result
	if b, err := os.ReadFile(o.JSON); err != nil || json.Unmarshal(b, &back) != nil || len(back.Runs) != len(res.Runs) {
		t.Errorf("JSON beside the report: %v; %d runs", err, len(back.Runs))
	}
	// The scratch directory is gone; the work directory stays for the next
	// run.
	if left, _ := filepath.Glob(filepath.Join(dir, "work", "run-*")); len(left) > 0 {
		t.Errorf("scratch directories left behind: %v", left)
	}
}
