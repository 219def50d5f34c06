package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Options are the harness's settings; every one is a flag (main.go), the
// defaults being those of issue 4.
type Options struct {
	// Rounds is how many times each workload runs against each server,
	// interleaved. Defaults to 3.
	Rounds int
	// Backends are "file" and/or "s3". Defaults to both.
	Backends []string
	// Workloads are W1–W4; W5 (peak RSS) is taken during W1 and W3.
	// Defaults to all four.
	Workloads []string
	// Out and JSON are where the report and its raw numbers go. Default to
	// docs/benchmarks.md and docs/benchmarks.json.
	Out, JSON string
	// Quick divides every size and count by 16, for smoke runs.
	Quick bool
	// WorkDir is where each run makes its scratch directory (server data,
	// versitygw's root, the disk test), removed at the end. Its filesystem
	// is the one measured. Defaults to tools/bench in the module root.
	WorkDir string
	// TusdDir caches the reference tusd binary and its scratch module.
	// Defaults to tools/tusd-v2.10.1 in the module root.
	TusdDir string
	// IntakeBin and TusdBin use prebuilt binaries instead of building.
	IntakeBin, TusdBin string
	// Timeout bounds the whole run. Defaults to 90m.
	Timeout time.Duration
	// MinFree is the free space the work directory's filesystem must have.
	// Defaults to 8 GiB (a sixteenth with Quick).
	MinFree int64
}

var (
	allBackends  = []string{"file", "s3"}
	allWorkloads = []string{"W1", "W2", "W3", "W4"}
)

// defaultOptions are the flag defaults; paths are relative to the module
// root.
func defaultOptions() Options {
	return Options{
		Rounds:    3,
		Backends:  allBackends,
		Workloads: allWorkloads,
		Out:       "docs/benchmarks.md",
		JSON:      "docs/benchmarks.json",
		WorkDir:   "tools/bench",
		TusdDir:   "tools/tusd-" + tusdVersion,
		Timeout:   90 * time.Minute,
	}
}

// parseFlags parses args into Options.
func parseFlags(args []string, stderr io.Writer) (Options, error) {
	o := defaultOptions()
	fs := flag.NewFlagSet("intake-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `intake-bench: intake against a reference tusd `+tusdVersion+` binary, same machine, same backends.

Builds both servers, starts each on a free loopback port over the same
backend (a fresh directory on one filesystem; a fresh bucket on one
versitygw), drives them with intake's Go tus client in this process, in
interleaved rounds, and writes the medians as markdown and every round as
JSON. versitygw is found as in the tests: $INTAKE_VERSITYGW, else
tools/bin/versitygw, else PATH (make bench installs it). Relative paths
are taken from the module root.

Flags:
`)
		fs.PrintDefaults()
	}
	fs.IntVar(&o.Rounds, "rounds", o.Rounds, "interleaved rounds; the report gives their medians")
	list(fs, &o.Backends, "backends", "backends to run: file, s3")
	list(fs, &o.Workloads, "workloads", "workloads to run: W1, W2, W3, W4 (W5, peak RSS, is taken during W1 and W3)")
	fs.StringVar(&o.Out, "out", o.Out, "markdown report")
	fs.StringVar(&o.JSON, "json", o.JSON, "raw results, every round")
	fs.BoolVar(&o.Quick, "quick", false, "sizes and counts divided by 16, for a smoke run")
	fs.StringVar(&o.WorkDir, "work-dir", o.WorkDir, "parent of the run's scratch directory; its filesystem is the one measured")
	fs.StringVar(&o.TusdDir, "tusd-dir", o.TusdDir, "cache of the reference tusd binary and its scratch module")
	fs.StringVar(&o.IntakeBin, "intake-bin", "", "use this intake binary instead of building ./cmd/intake")
	fs.StringVar(&o.TusdBin, "tusd-bin", "", "use this tusd binary instead of the cached reference build")
	fs.DurationVar(&o.Timeout, "timeout", o.Timeout, "bound on the whole run")
	var minFreeGiB float64
	fs.Float64Var(&minFreeGiB, "min-free-gib", 0, "free space the work directory needs (default 8, 0.5 with --quick)")
	if err := fs.Parse(args); err != nil {
		return Options{}, err
	}
	if fs.NArg() > 0 {
		return Options{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	o.MinFree = int64(minFreeGiB * (1 << 30))
	return o, o.Validate()
}

// Validate checks the options and fills in what depends on others.
func (o *Options) Validate() error {
	if o.Rounds < 1 {
		return errors.New("--rounds must be at least 1")
	}
	if err := subset("backends", o.Backends, allBackends); err != nil {
		return err
	}
	if slices.Contains(o.Workloads, "W5") {
		return errors.New("W5 (peak RSS) is not a workload of its own: it is measured during W1 and W3")
	}
	if err := subset("workloads", o.Workloads, allWorkloads); err != nil {
		return err
	}
	if o.Out == "" || o.JSON == "" {
		return errors.New("--out and --json must name files")
	}
	if o.Timeout <= 0 {
		return errors.New("--timeout must be positive")
	}
	if o.MinFree == 0 {
		o.MinFree = 8 << 30
		if o.Quick {
			o.MinFree /= 16
		}
	}
	return nil
}

func subset(name string, got, all []string) error {
	if len(got) == 0 {
		return fmt.Errorf("--%s: none given; choose from %s", name, strings.Join(all, ","))
	}
	for i, g := range got {
		if !slices.Contains(all, g) {
			return fmt.Errorf("--%s: unknown %q; choose from %s", name, g, strings.Join(all, ","))
		}
		if slices.Contains(got[:i], g) {
			return fmt.Errorf("--%s: %q given twice", name, g)
		}
	}
	return nil
}

// list binds a comma-separated flag.
func list(fs *flag.FlagSet, p *[]string, name, usage string) {
	fs.Func(name, usage+" (default "+strings.Join(*p, ",")+")", func(s string) error {
		*p = nil
		for _, v := range strings.Split(s, ",") {
			if v = strings.TrimSpace(v); v != "" {
				*p = append(*p, v)
			}
		}
		return nil
	})
}

// sizes are what the workloads and limit measurements move; Quick divides
// them by 16.
type sizes struct {
	W1, W2, W2Chunk  int64 // bytes
	W3Uploads        int
	W3Size           int64
	W4Creates, W4Par int
	Loopback, Disk   int64
	SHABuf           int64
	SHAPasses        int
}

func (o Options) sizes() sizes {
	s := sizes{
		W1: 1 << 30, W2: 1 << 30, W2Chunk: 8 << 20,
		W3Uploads: 32, W3Size: 32 << 20,
		W4Creates: 2000, W4Par: 16,
		Loopback: 2 << 30, Disk: 1 << 30,
		SHABuf: 64 << 20, SHAPasses: 16,
	}
	if o.Quick {
		// The shape stays: PATCH size and concurrency are what the
		// workloads are about, so only totals shrink.
		s.W1 /= 16
		s.W2 /= 16
		s.W3Size /= 16
		s.W4Creates /= 16
		s.Loopback /= 16
		s.Disk /= 16
		s.SHAPasses = 1
	}
	return s
}
