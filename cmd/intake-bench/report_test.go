package main

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/report.golden.md from the current renderer")

// fixedResult is a run with known numbers: three rounds, both backends,
// some targets met and some missed.
func fixedResult() *Result {
	r := &Result{
		Started:   time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Seconds:   754,
		Command:   "bin/intake-bench",
		ViaMake:   true,
		Rounds:    3,
		Backends:  []string{"file", "s3"},
		Workloads: []string{"W1", "W2", "W3", "W4"},
		Client:    "the Go client",
		Source:    "v0.1.0-3-gabcdef0",
		Tusd:      tusdVersion,
		Machine:   Machine{CPU: "Test CPU 9000", Cores: 4, RAM: 16 << 30, Kernel: "6.1.0", Go: "go1.26.8", FS: "ext4", FSDevice: "/dev/sda1", Reclaim: "virtio-balloon"},
		Limits: Limits{
			Loopback: 3000, LoopbackBytes: 2 << 30, LoopbackTrials: []float64{2900, 3000, 2950},
			DiskBuffered: 2000, DiskSynced: 800, DiskBytes: 1 << 30,
			SHA256: 1700, SHA256Bytes: 1 << 30,
		},
	}
	for _, s := range []ServerInfo{
		{"file", "tusd", serverLabel("file", "tusd"), "tusd -upload-dir $RUN/file/tusd/uploads"},
		{"file", "intake", serverLabel("file", "intake"), "$RUN/intake serve --data-dir $RUN/file/intake"},
		{"file", "intake-nosync", serverLabel("file", "intake-nosync"), "$RUN/intake serve --data-dir $RUN/file/intake-nosync --file-sync=false"},
		{"s3", "tusd", serverLabel("s3", "tusd"), "tusd -s3-bucket b1"},
		{"s3", "intake", serverLabel("s3", "intake"), "$RUN/intake serve --store s3 --s3-bucket b2"},
	} {
		r.Servers = append(r.Servers, s)
	}
	// rates per (backend, workload, server): three rounds each.
	rates := map[[3]string][3]float64{
		{"file", "W1", "tusd"}:          {900, 1000, 950},
		{"file", "W1", "intake"}:        {700, 720, 710},   // 0.75: miss
		{"file", "W1", "intake-nosync"}: {940, 960, 1000},  // 1.01: pass
		{"file", "W2", "tusd"}:          {800, 800, 800},   //
		{"file", "W2", "intake"}:        {720, 730, 700},   // 0.90 exactly: pass
		{"file", "W2", "intake-nosync"}: {1100, 1150, 990}, //
		{"file", "W3", "tusd"}:          {1000, 1100, 1050},
		{"file", "W3", "intake"}:        {900, 950, 1000},
		{"file", "W3", "intake-nosync"}: {1000, 1000, 1000},
		{"s3", "W1", "tusd"}:            {150, 160, 170},
		{"s3", "W1", "intake"}:          {155, 165, 175},
		{"s3", "W2", "tusd"}:            {80, 85, 90},
		{"s3", "W2", "intake"}:          {70, 75, 80},
		{"s3", "W3", "tusd"}:            {120, 130, 140},
		{"s3", "W3", "intake"}:          {125, 135, 145},
	}
	creates := map[[2]string][3]float64{
		{"file", "tusd"}: {4000, 4200, 4100}, {"file", "intake"}: {2000, 2100, 2050}, {"file", "intake-nosync"}: {1900, 2100, 2000},
		{"s3", "tusd"}: {800, 820, 810}, {"s3", "intake"}: {350, 400, 380},
	}
	rss := map[[3]string]int64{
		{"file", "W1", "tusd"}: 40 << 20, {"file", "W1", "intake"}: 30 << 20, {"file", "W1", "intake-nosync"}: 31 << 20,
		{"file", "W3", "tusd"}: 45 << 20, {"file", "W3", "intake"}: 50 << 20, {"file", "W3", "intake-nosync"}: 52 << 20,
		{"s3", "W1", "tusd"}: 60 << 20, {"s3", "W1", "intake"}: 70 << 20,
		{"s3", "W3", "tusd"}: 100 << 20, {"s3", "W3", "intake"}: 160 << 20, // over 150 MiB: miss
	}
	for round := 1; round <= 3; round++ {
		for _, backend := range r.Backends {
			for _, w := range r.Workloads {
				for _, s := range r.Servers {
					if s.Backend != backend {
						continue
					}
					run := Run{Backend: backend, Round: round, Workload: w, Server: s.Name, Verified: 1}
					if w == "W4" {
						c := creates[[2]string{backend, s.Name}][round-1]
						run.Creates, run.CreatesPerSec = 2000, c
						run.Seconds = 2000 / c
						run.P50Ms, run.P99Ms = 16000/c+float64(round)/10, 64000/c+float64(round)
					} else {
						run.Bytes = 1 << 30
						run.MiBps = rates[[3]string{backend, w, s.Name}][round-1]
						run.Seconds = 1024 / run.MiBps
						run.PeakRSS = rss[[3]string{backend, w, s.Name}] + int64(round)<<20
					}
					r.Runs = append(r.Runs, run)
				}
			}
		}
	}
	r.Summary = summarize(r.Runs)
	return r
}

func TestSummarize(t *testing.T) {
	t.Parallel()
	r := fixedResult()
	if got, want := len(r.Summary), 2*4*3-4; got != want { // s3 has no intake-nosync
		t.Fatalf("%d summaries; want %d", got, want)
	}
	find := func(backend, w, server string) Summary {
		for _, s := range r.Summary {
			if s.Backend == backend && s.Workload == w && s.Server == server {
				return s
			}
		}
		t.Fatalf("no summary for %s %s %s", backend, w, server)
		return Summary{}
	}
	if s := find("file", "W1", "tusd"); s.MiBps != 950 || s.MiBpsMin != 900 || s.MiBpsMax != 1000 || s.Rounds != 3 {
		t.Errorf("file W1 tusd = %+v; want median 950 of 900..1000 over 3 rounds", s)
	}
	if s := find("s3", "W3", "intake"); s.PeakRSS != 162<<20 {
		t.Errorf("s3 W3 intake peak RSS = %d; want the median round's %d", s.PeakRSS, 162<<20)
	}
	if s := find("file", "W4", "intake"); s.CreatesPerSec != 2050 || s.MiBps != 0 {
		t.Errorf("file W4 intake = %+v; want 2050 creates/s and no throughput", s)
	}
	// The order is the order of the runs: the report relies on it only
	// through lookups, the JSON shows it.
	if s := r.Summary[0]; s.Backend != "file" || s.Workload != "W1" || s.Server != "tusd" {
		t.Errorf("first summary = %+v; want file W1 tusd", s)
	}
}

// TestRenderMarkdown compares the report of a fixed result with a golden
// file (go test -update rewrites it), and checks the figures that a
// layout change could silently get wrong.
func TestRenderMarkdown(t *testing.T) {
	t.Parallel()
	r := fixedResult()
	got := renderMarkdown(r, "benchmarks.json")
	if again := renderMarkdown(fixedResult(), "benchmarks.json"); again != got {
		t.Fatal("two renderings of the same result differ")
	}
	golden := filepath.Join("testdata", "report.golden.md")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update once)", err)
	}
	if got != string(want) {
		t.Errorf("report differs from %s (go test -update to accept); got:\n%s", golden, got)
	}

	for _, row := range []string{
		// ratio = median(intake) / median(tusd); the limit binds intake's
		// default on the fsynced disk rate.
		"| W1 1 GiB, one PATCH | 710 MiB/s (700–720) | 950 MiB/s (900–1000) | 0.75 | 800 MiB/s (disk+fsync) | ≥ 0.90 | **miss** |",
		"| W1 1 GiB, one PATCH — intake `--file-sync=false` (not the default) | 960 MiB/s (940–1000) | 950 MiB/s (900–1000) | 1.01 | 2000 MiB/s (disk) | ≥ 0.90 | pass |",
		// exactly on the target passes
		"| W2 1 GiB in 8 MiB PATCHes | 720 MiB/s (700–730) | 800 MiB/s (800–800) | 0.90 |",
		"| W4 2000 creates, concurrency 16 | 2050/s | 4100/s | 0.50 | — | ≥ 0.50 | pass |",
		"| W4 2000 creates, concurrency 16 | 380/s | 810/s | 0.47 | — | ≥ 0.50 | **miss** |",
		"| s3 | W3 | intake | 162 MiB | 102 MiB | 1.59 | intake < 150 MiB | **miss** |",
		"| file | W3 | intake | 52 MiB | 47 MiB | 1.11 | intake < 150 MiB | pass |",
		"- **Command**: `make bench`, which runs `bin/intake-bench`",
		"| loopback TCP, one Go connection, 2 GiB | 3000 MiB/s |",
		"Each is the best of 3 trials",
		"| free memory handed back to the host | virtio-balloon |",
	} {
		if !strings.Contains(got, row) {
			t.Errorf("report lacks %q", row)
		}
	}
}

// TestJSONRoundTrip: the JSON beside the report holds every round and
// reads back into the same result.
func TestJSONRoundTrip(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	r := fixedResult()
	md, js := filepath.Join(dir, "b.md"), filepath.Join(dir, "b.json")
	if err := writeOutputs(r, md, js); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(js)
	if err != nil {
		t.Fatal(err)
	}
	var back Result
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Runs) != len(r.Runs) || back.Runs[7] != r.Runs[7] || !back.Started.Equal(r.Started) {
		t.Errorf("JSON round trip lost runs: %d runs, run 7 %+v; want %d, %+v", len(back.Runs), back.Runs[7], len(r.Runs), r.Runs[7])
	}
	mdBytes, err := os.ReadFile(md)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(mdBytes), "[`b.json`](b.json)") {
		t.Error("the report does not link the JSON beside it")
	}
}

func TestMeets(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		ratio, target float64
		want          bool
	}{
		{0.9, 0.9, true},
		{0.8951, 0.9, true}, // shown as 0.90
		{0.8949, 0.9, false},
		{720.0 / 800.0, 0.9, true},
		{0.5, 0.5, true},
		{0.4949, 0.5, false},
		{2.5, 0.9, true},
	} {
		if got := meets(tc.ratio, tc.target); got != tc.want {
			t.Errorf("meets(%v, %v) = %v; want %v", tc.ratio, tc.target, got, tc.want)
		}
	}
}
