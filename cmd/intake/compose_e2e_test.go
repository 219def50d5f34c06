package main_test

// The docker-compose.yml deploy, run as processes: PostgreSQL, versitygw and
// intake configured by nothing but config/compose.env. No Docker engine is
// needed, so the deploy's configuration is exercised wherever the other
// end-to-end tests run.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"

	"github.com/intake-dev/intake/internal/pgtest"
	"github.com/intake-dev/intake/internal/s3test"
	"github.com/intake-dev/intake/internal/testenv"
	"github.com/intake-dev/intake/pkg/client"
	"github.com/intake-dev/intake/pkg/config"
	"github.com/intake-dev/intake/pkg/server"
)

// The deploy's files, relative to the repository root, and the service in
// docker-compose.yml that runs intake.
const (
	composeFile    = "docker-compose.yml"
	composeEnvFile = "config/compose.env"
	composeIntake  = "intake"
)

// composeOverrides is every variable the test sets differently from
// compose.env, or adds to it. Everything else compose.env sets reaches
// intake unchanged, so a setting added there is exercised here without a
// change to this test; a new entry here has to be argued for.
var composeOverrides = []string{
	"AWS_ACCESS_KEY_ID",
	"AWS_REGION",
	"AWS_SECRET_ACCESS_KEY",
	"HOME",
	"INTAKE_DATABASE_URL",
	"INTAKE_DATA_DIR",
	"INTAKE_LISTEN",
	"INTAKE_S3_BUCKET",
	"INTAKE_S3_ENDPOINT",
	"INTAKE_S3_REGION",
}

// TestComposeTopology is `docker compose up` without Docker: intake started
// with compose.env as its whole environment, on a fresh PostgreSQL schema and
// a versitygw with a fresh bucket, must become ready, store an upload in the
// bucket, list it complete from the CLI, and stop cleanly on SIGTERM within
// the stop_grace_period Docker would give it before SIGKILL.
func TestComposeTopology(t *testing.T) {
	if testing.Short() {
		t.Skip("process end-to-end test")
	}
	t.Parallel()
	root := moduleRoot(t)
	compose := parseEnvFile(t, filepath.Join(root, composeEnvFile))
	svc := composeService(t, root)

	// The services compose would start. Both skip when unavailable, and fail
	// under CI=true. They are registered before intake, so intake is stopped
	// before its schema is dropped and its S3 server killed.
	dbURL := pgtest.URL(t)
	s3 := s3test.Start(t)

	var bucket string
	if svc.waitsForJob {
		// compose's one-shot s3-init job creates the bucket before intake
		// starts (internal/deploytest checks that the job does that).
		bucket = s3.NewBucket(t)
	} else if v, _ := strconv.ParseBool(compose["INTAKE_S3_CREATE_BUCKET"]); v {
		// No job: intake creates the bucket itself.
		bucket = "compose-e2e-" + hex.EncodeToString(random(t, 8))
	} else {
		t.Fatalf("%s: nothing creates the bucket: intake waits for no one-shot job and %s does not set INTAKE_S3_CREATE_BUCKET=true", composeFile, composeEnvFile)
	}

	dataDir := t.TempDir()
	addr := freePort(t)
	overrides := map[string]string{
		// A free loopback port instead of :8080: 8080 may be taken on a
		// shared machine, and without a container around it :8080 would
		// listen on every interface of the machine.
		"INTAKE_LISTEN": addr,
		// The intake-data volume (/data inside the container) becomes a
		// directory of this test's own.
		"INTAKE_DATA_DIR": dataDir,
		// The image's user has /data as its home; here, so does the test's
		// intake, which keeps this machine's ~/.aws profiles out of the
		// credential chain, as the container does.
		"HOME": dataDir,
		// The same database engine in place of the postgres service, in a
		// schema of this test's own: compose.env's URL names a host that
		// only resolves inside the compose network.
		"INTAKE_DATABASE_URL": dbURL,
		// The harness's versitygw in place of the s3 service (http://s3:7070).
		"INTAKE_S3_ENDPOINT": s3.Endpoint,
		// The harness's versitygw signs for a region of its own, deliberately
		// not us-east-1; compose's s3 service signs for VGW_REGION, which
		// equals compose.env's INTAKE_S3_REGION. The relation, intake's
		// region being the server's, is what is kept.
		"INTAKE_S3_REGION": s3.Region,
		// A fresh bucket per run, so that the listing below sees only this
		// test's objects.
		"INTAKE_S3_BUCKET": bucket,
	}
	// The harness's random root keys in place of compose.env's, passed as
	// the same AWS_* variables compose passes through env_file (plus the
	// harness's AWS_REGION, which intake ignores in favour of
	// INTAKE_S3_REGION).
	for _, kv := range s3.Env() {
		k, v, _ := strings.Cut(kv, "=")
		overrides[k] = v
	}

	if got := slices.Sorted(maps.Keys(overrides)); !slices.Equal(got, composeOverrides) {
		t.Fatalf("the test overrides %v; want exactly %v", got, composeOverrides)
	}
	// An override of a setting compose.env no longer makes would add to the
	// deploy rather than stand in for part of it.
	for _, k := range composeOverrides {
		if _, ok := compose[k]; !ok && strings.HasPrefix(k, "INTAKE_") {
			t.Errorf("%s no longer sets %s, which this test overrides; revise the override", composeEnvFile, k)
		}
	}
	env := map[string]string{}
	for k, v := range compose {
		env[k] = v
	}
	for k, v := range overrides {
		env[k] = v
	}
	environ := make([]string, 0, len(env))
	for _, k := range slices.Sorted(maps.Keys(env)) {
		environ = append(environ, k+"="+env[k])
	}
	cfg := resolveEnv(t, env)

	// `serve` and nothing else, as the image's CMD: the environment carries
	// every setting.
	p := &proc{t: t, base: "http://" + addr, log: &bytes.Buffer{}}
	p.cmd = exec.Command(binary, "serve")
	p.cmd.Env = environ
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.kill)
	// fail stops intake before reading its log, which it may be writing.
	fail := func(format string, args ...any) {
		t.Helper()
		p.kill()
		t.Fatalf(format+"; intake's log:\n%s", append(args, p.log)...)
	}

	var ready struct {
		Status string            `json:"status"`
		Checks map[string]string `json:"checks"`
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		status, body, err := get(p.base + "/readyz")
		if err == nil && status == http.StatusOK {
			if err := json.Unmarshal(body, &ready); err != nil {
				fail("/readyz: %v: %s", err, body)
			}
			break
		}
		if time.Now().After(deadline) {
			fail("intake did not become ready: %d %s %v", status, body, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if ready.Status != "ok" || ready.Checks["database"] != "ok" || ready.Checks["storage"] != "ok" {
		fail("/readyz = %+v; want status ok, database ok, storage ok", ready)
	}

	ctx := context.Background()
	c := &client.Client{Endpoint: p.base + cfg.BasePath}
	const size, chunk = 24 << 20, 8 << 20
	data := random(t, size)
	url, _, err := c.Create(ctx, client.Upload{Size: size, Metadata: map[string]string{"filename": "compose.bin"}}, nil, 0)
	if err != nil {
		fail("creating the upload: %v", err)
	}
	for off := int64(0); off < size; off += chunk {
		got, err := c.Patch(ctx, url, off, bytes.NewReader(data[off:off+chunk]), chunk, -1)
		if err != nil {
			fail("PATCH at %d: %v", off, err)
		}
		if got != off+chunk {
			fail("offset after PATCH at %d = %d; want %d", off, got, off+chunk)
		}
	}
	if got := download(t, url); !bytes.Equal(got, data) {
		fail("downloaded %d bytes that differ from the %d uploaded", len(got), size)
	}

	// tusd's S3 upload id is <object id>+<multipart id>; the object is
	// <prefix><object id>, next to its .info.
	id := path.Base(url)
	objectID, _, _ := strings.Cut(id, "+")
	keys := s3.ListObjects(t, bucket)
	if !slices.Contains(keys, cfg.S3Prefix+objectID) {
		t.Errorf("bucket %s holds %v; want %q among them", bucket, keys, cfg.S3Prefix+objectID)
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, cfg.S3Prefix) {
			t.Errorf("object %q is outside the configured prefix %q", k, cfg.S3Prefix)
		}
	}
	if mps := s3.ListMultipartUploads(t, bucket); len(mps) != 0 {
		t.Errorf("multipart uploads left after completion: %v", mps)
	}

	var list []server.UploadView
	if err := json.Unmarshal(cliEnv(t, environ, "uploads", "ls", "--json"), &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].ID != id || list[0].State != "complete" || list[0].Offset != size {
		t.Errorf("uploads ls = %+v; want one complete upload %s of %d bytes", list, id, size)
	}

	// Docker sends SIGTERM on `docker compose stop` and SIGKILL once
	// stop_grace_period has passed.
	exited := make(chan error, 1)
	go func() { exited <- p.cmd.Wait() }()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("intake exited with %v after SIGTERM; want exit status 0; log:\n%s", err, p.log)
		}
	case <-time.After(svc.stopGrace):
		_ = p.cmd.Process.Kill()
		<-exited
		t.Fatalf("intake still running %s (stop_grace_period) after SIGTERM; log:\n%s", svc.stopGrace, p.log)
	}
}

// moduleRoot is the module's root directory.
func moduleRoot(t *testing.T) string {
	t.Helper()
	root, err := testenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

var envFileKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// parseEnvFile reads KEY=VALUE lines, skipping blank and "#" lines and
// removing one pair of matching quotes around a value; a later line for the
// same key wins, as in docker compose. Whether the file keeps to the subset
// that compose and `docker run --env-file` read alike is internal/deploytest's
// concern, not this test's.
func parseEnvFile(t *testing.T, file string) map[string]string {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	vars := map[string]string{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || !envFileKey.MatchString(k) {
			t.Fatalf("%s line %d: %q is not KEY=VALUE", file, n, line)
		}
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		vars[k] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return vars
}

// composeIntakeService is what the test takes from intake's service in
// docker-compose.yml.
type composeIntakeService struct {
	// waitsForJob: intake depends on a service with condition
	// service_completed_successfully, the bucket job.
	waitsForJob bool
	// stopGrace is how long Docker waits after SIGTERM before SIGKILL.
	stopGrace time.Duration
}

func composeService(t *testing.T, root string) composeIntakeService {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root, composeFile))
	if err != nil {
		t.Fatal(err)
	}
	var cf struct {
		Services map[string]struct {
			EnvFile         any    `yaml:"env_file"`
			Environment     any    `yaml:"environment"`
			DependsOn       any    `yaml:"depends_on"`
			StopGracePeriod string `yaml:"stop_grace_period"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(raw, &cf); err != nil {
		t.Fatalf("parsing %s: %v", composeFile, err)
	}
	s, ok := cf.Services[composeIntake]
	if !ok {
		t.Fatalf("%s has no %s service", composeFile, composeIntake)
	}
	// The test runs intake on compose.env alone; settings from elsewhere
	// in the service would be missed.
	if s.EnvFile != composeEnvFile {
		t.Fatalf("service %s: env_file %v; this test expects just %s", composeIntake, s.EnvFile, composeEnvFile)
	}
	if s.Environment != nil {
		t.Fatalf("service %s sets environment %v, which this test does not pass on", composeIntake, s.Environment)
	}

	var svc composeIntakeService
	if deps, ok := s.DependsOn.(map[string]any); ok { // the list form means service_started
		for _, d := range deps {
			if m, ok := d.(map[string]any); ok && m["condition"] == "service_completed_successfully" {
				svc.waitsForJob = true
			}
		}
	}
	svc.stopGrace = 10 * time.Second // Docker's default
	if s.StopGracePeriod != "" {
		if svc.stopGrace, err = time.ParseDuration(s.StopGracePeriod); err != nil {
			t.Fatalf("service %s: stop_grace_period %q: %v", composeIntake, s.StopGracePeriod, err)
		}
	}
	return svc
}

// resolveEnv is the configuration `intake serve` builds from env alone.
func resolveEnv(t *testing.T, env map[string]string) config.Config {
	t.Helper()
	var c config.Config
	fs := pflag.NewFlagSet("intake", pflag.ContinueOnError)
	c.RegisterFlags(fs)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Resolve(fs, func(k string) string { return env[k] }); err != nil {
		t.Fatalf("resolving intake's environment: %v", err)
	}
	return c
}

// cliEnv runs the intake binary with args and exactly env, and returns its
// standard output.
func cliEnv(t *testing.T, env []string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("intake %v: %v\n%s%s", args, err, out, stderr.Bytes())
	}
	return out
}

// get returns the status and body of a GET.
func get(url string) (int, []byte, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	_, err = body.ReadFrom(resp.Body)
	return resp.StatusCode, body.Bytes(), err
}
