package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/intake-dev/intake/internal/s3test"
	"github.com/intake-dev/intake/internal/testenv"
	"github.com/intake-dev/intake/pkg/client"
)

// s3Prefix is the object prefix both servers write under.
const s3Prefix = "bench/"

// S3 part settings, the same for both servers (tusd's and intake's
// defaults, passed explicitly so that a change of either default cannot
// make the comparison unequal).
const (
	s3PartSize        = 50 << 20
	s3MinPartSize     = 5 << 20
	s3MaxBuffered     = 20
	s3ConcurrentParts = 10
)

// clientDescription goes into the report as is.
const clientDescription = "intake's Go tus client (pkg/client) inside the harness process, one shared " +
	"http.Transport (keep-alive, 256 KiB buffers, loopback only); request bodies are generated on the fly " +
	"from a pseudo-random pattern and downloads compared as they stream. curl is not used: a process per " +
	"request would be the bottleneck of W3 (32 uploads at once) and W4 (2,000 creates)."

// bench is one run of the harness.
type bench struct {
	opts   Options
	sz     sizes
	root   string // module root
	runDir string // scratch, removed at the end
	out    io.Writer
	intake string // binaries
	tusd   string
}

// run does everything: build, measure, report. The outputs are written
// only when every workload ran and verified.
func run(ctx context.Context, o Options, args []string, out io.Writer) (*Result, error) {
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	root, err := testenv.ModuleRoot()
	if err != nil {
		return nil, fmt.Errorf("intake-bench runs inside the intake module: %w", err)
	}
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(root, p)
	}
	o.WorkDir, o.TusdDir, o.Out, o.JSON = abs(o.WorkDir), abs(o.TusdDir), abs(o.Out), abs(o.JSON)
	o.IntakeBin, o.TusdBin = abs(o.IntakeBin), abs(o.TusdBin)
	b := &bench{opts: o, sz: o.sizes(), root: root, out: out}

	if err := os.MkdirAll(o.WorkDir, 0o755); err != nil {
		return nil, err
	}
	free, err := freeSpace(o.WorkDir)
	if err != nil {
		return nil, err
	}
	if free < o.MinFree {
		return nil, fmt.Errorf("only %.1f GiB free on the filesystem of %s; the benchmark needs %.1f GiB "+
			"(1 GiB uploads on each server, S3 parts, the disk test): free some space or pass --work-dir on a larger filesystem",
			gib(free), o.WorkDir, gib(o.MinFree))
	}
	if b.runDir, err = os.MkdirTemp(o.WorkDir, "run-"); err != nil {
		return nil, err
	}
	defer os.RemoveAll(b.runDir)

	res := &Result{
		Started:   time.Now().UTC().Truncate(time.Second),
		Command:   shellJoin(args),
		ViaMake:   os.Getenv("MAKELEVEL") != "",
		Rounds:    o.Rounds,
		Backends:  o.Backends,
		Workloads: o.Workloads,
		Quick:     o.Quick,
		Client:    clientDescription,
		Source:    gitDescribe(ctx, root),
		Tusd:      tusdVersion,
	}
	if err := b.binaries(ctx); err != nil {
		return nil, err
	}
	res.Machine = describeMachine(b.runDir)
	b.logf("machine: %s, %d cores, %.1f GiB RAM, kernel %s, %s on %s", res.Machine.CPU, res.Machine.Cores, gib(res.Machine.RAM), res.Machine.Kernel, res.Machine.FS, res.Machine.FSDevice)
	if res.Limits, err = measureLimits(ctx, b.runDir, b.sz); err != nil {
		return nil, err
	}
	b.logf("limits: loopback %.0f MiB/s, disk %.0f MiB/s buffered / %.0f MiB/s with fsync, SHA-256 %.0f MiB/s",
		res.Limits.Loopback, res.Limits.DiskBuffered, res.Limits.DiskSynced, res.Limits.SHA256)

	for _, backend := range o.Backends {
		if err := b.backend(ctx, backend, res); err != nil {
			return nil, fmt.Errorf("%s backend: %w", backend, err)
		}
	}
	res.Seconds = time.Since(res.Started).Round(time.Second).Seconds()
	res.Summary = summarize(res.Runs)
	if err := writeOutputs(res, o.Out, o.JSON); err != nil {
		return nil, err
	}
	b.logf("wrote %s and %s", o.Out, o.JSON)
	return res, nil
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.out, "intake-bench: "+format+"\n", args...)
}

func (b *bench) binaries(ctx context.Context) error {
	var err error
	if b.tusd = b.opts.TusdBin; b.tusd == "" {
		if b.tusd, err = ensureTusd(ctx, b.opts.TusdDir, b.logf); err != nil {
			return err
		}
	}
	if b.intake = b.opts.IntakeBin; b.intake == "" {
		b.logf("building intake")
		if b.intake, err = buildIntake(ctx, b.root, b.runDir); err != nil {
			return err
		}
	}
	return nil
}

// backend runs every round of every workload against every server on one
// backend: servers started once, runs interleaved tusd, intake, … within
// each workload of each round.
func (b *bench) backend(ctx context.Context, backend string, res *Result) error {
	base := filepath.Join(b.runDir, backend)
	if err := os.MkdirAll(base, 0o755); err != nil {
		return err
	}
	var specs []serverSpec
	switch backend {
	case "file":
		specs = b.fileSpecs(base)
	case "s3":
		vgwDir := filepath.Join(base, "versitygw")
		if err := os.Mkdir(vgwDir, 0o755); err != nil {
			return err
		}
		vgw, err := s3test.Launch(vgwDir)
		if err != nil {
			return fmt.Errorf("%w (make bench installs versitygw into tools/bin)", err)
		}
		defer vgw.Close()
		if specs, err = b.s3Specs(ctx, base, vgw); err != nil {
			return err
		}
	}

	var servers []*server
	defer func() {
		for _, s := range servers {
			s.stop()
		}
	}()
	for _, spec := range specs {
		s, err := startServer(ctx, spec)
		if err != nil {
			return err
		}
		servers = append(servers, s)
		res.Servers = append(res.Servers, ServerInfo{
			Backend: backend, Name: spec.Name, Label: serverLabel(backend, spec.Name),
			Command: strings.ReplaceAll(strings.ReplaceAll(s.command(), b.runDir, "$RUN"), b.root+"/", ""),
		})
	}

	hc := newHTTPClient()
	defer hc.CloseIdleConnections()
	// The first requests of a fresh process pay for page faults, heap
	// growth and the first files of a directory; without a warm-up that
	// cost lands on round 1 of whichever server runs first, always tusd.
	warm := Options{Quick: true}.sizes()
	for _, w := range b.opts.Workloads {
		for _, s := range servers {
			t := target{name: s.spec.Name, client: &client.Client{Endpoint: s.endpoint, HTTP: hc}, http: hc}
			if _, err := runWorkload(ctx, w, t, warm, runSeed(backend, 0, w, s.spec.Name)); err != nil {
				return fmt.Errorf("warm-up, %s, %s: %w", w, s.spec.Name, err)
			}
		}
	}
	b.logf("%s: warm-up done", backend)
	for round := 1; round <= b.opts.Rounds; round++ {
		for _, w := range b.opts.Workloads {
			for _, s := range servers {
				r, err := b.once(ctx, hc, s, backend, round, w)
				if err != nil {
					return fmt.Errorf("round %d, %s, %s: %w", round, w, s.spec.Name, err)
				}
				res.Runs = append(res.Runs, r)
			}
		}
	}
	return nil
}

// once runs one workload against one server, from equal conditions: dirty
// pages of earlier runs flushed, no idle connections, the harness's own
// garbage collected.
func (b *bench) once(ctx context.Context, hc *http.Client, s *server, backend string, round int, w string) (Run, error) {
	syscall.Sync()
	hc.CloseIdleConnections()
	runtime.GC()
	rss := w == "W1" || w == "W3"
	if rss {
		if err := s.resetPeakRSS(); err != nil {
			return Run{}, fmt.Errorf("resetting peak RSS: %w", err)
		}
	}
	t := target{name: s.spec.Name, client: &client.Client{Endpoint: s.endpoint, HTTP: hc}, http: hc}
	r, err := runWorkload(ctx, w, t, b.sz, runSeed(backend, round, w, s.spec.Name))
	if err != nil {
		if alive := s.alive(); alive != nil {
			return Run{}, fmt.Errorf("%w; %w", err, alive)
		}
		return Run{}, fmt.Errorf("%w; server output (last lines):\n%s", err, lastLines(s.out.String(), 20))
	}
	if rss {
		if r.PeakRSS, err = s.peakRSS(); err != nil {
			return Run{}, err
		}
	}
	r.Backend, r.Round, r.Workload, r.Server = backend, round, w, s.spec.Name
	line := fmt.Sprintf("%-4s round %d/%d %s %-13s ", backend, round, b.opts.Rounds, w, s.spec.Name)
	if w == "W4" {
		line += fmt.Sprintf("%7.0f creates/s  p50 %.2f ms  p99 %.2f ms", r.CreatesPerSec, r.P50Ms, r.P99Ms)
	} else {
		line += fmt.Sprintf("%7.1f MiB/s", r.MiBps)
	}
	if rss {
		line += fmt.Sprintf("  peak RSS %.0f MiB", mib(r.PeakRSS))
	}
	b.logf("%s  (%d verified)", line, r.Verified)
	return r, nil
}

// baseEnv is the start of every server's environment: no INTAKE_* or
// AWS_* of the developer's, temporary files in the server's own directory.
func baseEnv(tmp string) []string {
	env := []string{"TMPDIR=" + tmp}
	for _, k := range []string{"PATH", "HOME"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

func (b *bench) fileSpecs(base string) []serverSpec {
	dir := func(name string) string {
		d := filepath.Join(base, name)
		_ = os.MkdirAll(d, 0o755)
		return d
	}
	tusdDir, intakeDir, nosyncDir := dir("tusd"), dir("intake"), dir("intake-nosync")
	return []serverSpec{
		{
			Name: "tusd", Bin: b.tusd, Env: baseEnv(tusdDir),
			Args: func(addr string) []string {
				host, port, _ := net.SplitHostPort(addr)
				return []string{"-host", host, "-port", port, "-base-path", "/files/", "-upload-dir", filepath.Join(tusdDir, "uploads")}
			},
			ReadyPath: "/files/", ReadyMethod: "OPTIONS",
		},
		b.intakeSpec("intake", intakeDir, nil, nil),
		b.intakeSpec("intake-nosync", nosyncDir, []string{"--file-sync=false"}, nil),
	}
}

func (b *bench) intakeSpec(name, dir string, extra, env []string) serverSpec {
	return serverSpec{
		Name: name, Bin: b.intake, Env: append(baseEnv(dir), env...),
		Args: func(addr string) []string {
			return append([]string{"serve", "--listen", addr, "--data-dir", dir}, extra...)
		},
		ReadyPath: "/readyz",
	}
}

// s3Specs makes a fresh bucket for each server on vgw and the two
// servers' settings: the same endpoint, region, prefix and part settings.
// tusd addresses a custom endpoint path-style (it sets UsePathStyle when
// -s3-endpoint is given; a virtual-host request to 127.0.0.1 could not
// work, so the verified uploads prove it), intake is told so.
func (b *bench) s3Specs(ctx context.Context, base string, vgw *s3test.Server) ([]serverSpec, error) {
	bucket := func(name string) (string, error) {
		suffix := make([]byte, 4)
		_, _ = rand.Read(suffix)
		bk := "bench-" + name + "-" + hex.EncodeToString(suffix)
		if err := vgw.Client().MakeBucket(ctx, bk, minio.MakeBucketOptions{Region: vgw.Region}); err != nil {
			return "", fmt.Errorf("creating bucket %s: %w", bk, err)
		}
		return bk, nil
	}
	tusdBucket, err := bucket("tusd")
	if err != nil {
		return nil, err
	}
	intakeBucket, err := bucket("intake")
	if err != nil {
		return nil, err
	}
	tusdDir, intakeDir := filepath.Join(base, "tusd"), filepath.Join(base, "intake")
	for _, d := range []string{tusdDir, intakeDir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return nil, err
		}
	}
	itoa := func(n int64) string { return strconv.FormatInt(n, 10) }
	return []serverSpec{
		{
			// tusd's S3 store buffers parts in os.TempDir: TMPDIR puts
			// them on the same filesystem as intake's.
			Name: "tusd", Bin: b.tusd, Env: append(baseEnv(tusdDir), vgw.Env()...),
			Args: func(addr string) []string {
				host, port, _ := net.SplitHostPort(addr)
				return []string{"-host", host, "-port", port, "-base-path", "/files/",
					"-s3-bucket", tusdBucket, "-s3-endpoint", vgw.Endpoint, "-s3-object-prefix", s3Prefix,
					"-s3-part-size", itoa(s3PartSize), "-s3-min-part-size", itoa(s3MinPartSize),
					"-s3-max-buffered-parts", itoa(s3MaxBuffered), "-s3-concurrent-part-uploads", itoa(s3ConcurrentParts)}
			},
			ReadyPath: "/files/", ReadyMethod: "OPTIONS",
		},
		b.intakeSpec("intake", intakeDir, []string{
			"--store", "s3", "--s3-bucket", intakeBucket, "--s3-endpoint", vgw.Endpoint,
			"--s3-region", vgw.Region, "--s3-path-style", "--s3-prefix", s3Prefix,
			"--s3-part-size", itoa(s3PartSize), "--s3-min-part-size", itoa(s3MinPartSize),
			"--s3-max-buffered-parts", itoa(s3MaxBuffered), "--s3-concurrent-part-uploads", itoa(s3ConcurrentParts),
		}, vgw.Env()),
	}, nil
}

func serverLabel(backend, name string) string {
	switch {
	case name == "tusd":
		return "tusd " + tusdVersion + " (reference binary)"
	case name == "intake" && backend == "file":
		return "intake, defaults (--file-sync=true)"
	case name == "intake":
		return "intake, defaults"
	case name == "intake-nosync":
		return "intake --file-sync=false"
	}
	return name
}

func gitDescribe(ctx context.Context, root string) string {
	cmd := exec.CommandContext(ctx, "git", "describe", "--tags", "--always", "--dirty")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

// shellJoin renders argv so that it can be pasted into a shell.
func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a != "" && strings.Trim(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=,:@+") == "" {
			q[i] = a
			continue
		}
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func gib(n int64) float64 { return float64(n) / (1 << 30) }
func mib(n int64) float64 { return float64(n) / (1 << 20) }
