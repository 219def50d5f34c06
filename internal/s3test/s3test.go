package s3test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/intake-dev/intake/internal/testenv"
)

// BinaryEnv names the environment variable holding the versitygw binary;
// make test sets it to tools/bin/versitygw.
const BinaryEnv = "INTAKE_VERSITYGW"

// Region is the region every server is started with. It is deliberately not
// us-east-1, the default that S3 clients fall back to when nobody configured
// one, so that code forgetting to pass the region fails signature checks.
const Region = "eu-central-1"

const (
	// startTimeout bounds one start of versitygw until it answers S3
	// requests. It takes well under a second; the margin is for -race on a
	// loaded machine.
	startTimeout = 30 * time.Second
	// requestTimeout bounds each helper request to the server.
	requestTimeout = 30 * time.Second
)

// errNoBinary marks a missing versitygw: the one start failure that is a skip
// outside CI rather than a broken test.
var errNoBinary = errors.New("versitygw not found")

// Server is one running versitygw with a posix backend. Its fields are
// fixed for its lifetime, Restart included.
type Server struct {
	// Endpoint is the base URL, http://127.0.0.1:PORT.
	Endpoint string
	// AccessKey and SecretKey are the root credentials, random per server.
	AccessKey, SecretKey string
	// Region is the region the server expects in signatures.
	Region string
	// Dir is the posix root: each bucket is a directory in it, each object
	// a file below that.
	Dir string

	bin     string
	addr    string // 127.0.0.1:PORT, what --port gets
	sidecar string // metadata directory when Dir lacks user xattrs, else ""
	client  *minio.Client
	shared  bool // owned by Main; tests must not Stop it

	mu      sync.Mutex
	proc    *process // nil while stopped
	lastOut *tail    // output of the last run, for failure messages
}

// process is one run of the versitygw binary.
type process struct {
	cmd  *exec.Cmd
	out  *tail
	done chan struct{} // closed once cmd.Wait returned
	err  error         // cmd.Wait's result, set before done closes
}

// Start runs a versitygw of its own for t, on a free loopback port with an
// empty posix root under t.TempDir(), and stops it when t and its subtests
// end. When the binary cannot be found t is skipped, or fails if CI=true;
// any other start failure fails t.
func Start(t testing.TB) *Server {
	t.Helper()
	base := t.TempDir() // registered first, so removed after the server stops
	s, err := launch(base)
	if err != nil {
		if errors.Is(err, errNoBinary) {
			unavailable(t, err)
		}
		t.Fatalf("s3test: %v", err)
	}
	t.Cleanup(func() {
		s.stop()
		if out := s.output(); t.Failed() && out != "" {
			t.Logf("s3test: versitygw output (last %d bytes):\n%s", len(out), out)
		}
	})
	return s
}

// shared is the package-wide server of Main and Shared.
var shared struct {
	sync.Mutex
	main bool // Main is running the tests
	srv  *Server
	base string // removed by Main
	err  error  // the first start failure, given to every caller
}

// Main runs a test binary's tests and afterwards stops the server that
// Shared may have started. Call it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(s3test.Main(m)) }
func Main(m *testing.M) int {
	shared.Lock()
	shared.main = true
	shared.Unlock()

	code := m.Run()

	shared.Lock()
	defer shared.Unlock()
	if shared.srv != nil {
		shared.srv.stop()
	}
	if shared.base != "" {
		if err := os.RemoveAll(shared.base); err != nil {
			fmt.Fprintf(os.Stderr, "s3test: error removing %s: %v\n", shared.base, err)
		}
	}
	return code
}

// Shared returns the one server of this test binary, starting it on first
// use; it needs TestMain to call Main, which stops it. Tests sharing it must
// keep to buckets of their own (NewBucket) and must never Stop or Restart
// it; outage tests use Start. Missing binary and CI rule as for Start.
func Shared(t testing.TB) *Server {
	t.Helper()
	shared.Lock()
	defer shared.Unlock()
	if !shared.main {
		t.Fatal("s3test: Shared needs TestMain to run the tests with s3test.Main")
	}
	if shared.srv == nil && shared.err == nil {
		shared.base, shared.err = os.MkdirTemp("", "s3test-")
		if shared.err == nil {
			shared.srv, shared.err = launch(shared.base)
		}
		if shared.srv != nil {
			shared.srv.shared = true
		}
	}
	if shared.err != nil {
		if errors.Is(shared.err, errNoBinary) {
			unavailable(t, shared.err)
		}
		t.Fatalf("s3test: %v", shared.err)
	}
	return shared.srv
}

// Launch runs a versitygw outside any test, for a program such as the
// benchmark harness (cmd/intake-bench). Its posix root goes into dir, an
// existing directory that the caller removes after Close. The binary is
// found as for Start; where Start would skip or fail the test, Launch
// returns the error.
func Launch(dir string) (*Server, error) {
	s, err := launch(dir)
	if err != nil {
		return nil, fmt.Errorf("s3test: %w", err)
	}
	return s, nil
}

// Close stops a server from Launch the way Stop does (a kill: it is not
// meant to come back); closing it twice does nothing.
func (s *Server) Close() { s.Stop() }

// launch makes a Server with its posix root in base and starts it.
func launch(base string) (*Server, error) {
	bin, err := binary()
	if err != nil {
		return nil, err
	}
	s := &Server{
		AccessKey: randomString(20, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"),
		SecretKey: randomString(40, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"),
		Region:    Region,
		Dir:       filepath.Join(base, "root"),
		bin:       bin,
	}
	if err := os.Mkdir(s.Dir, 0o755); err != nil {
		return nil, err
	}
	// versitygw keeps object metadata (ETags, multipart state) in user
	// xattrs and refuses to start without them; a tmpfs /tmp on older
	// kernels has none, so fall back to its sidecar directory, which must
	// lie outside the root.
	if !xattrsSupported(base) {
		s.sidecar = filepath.Join(base, "meta")
		if err := os.Mkdir(s.sidecar, 0o755); err != nil {
			return nil, err
		}
	}

	// The port is free when we look and versitygw binds it a moment later;
	// if something else took it in between, try another.
	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		s.Endpoint = "http://" + s.addr
		s.client, err = minio.New(s.addr, &minio.Options{
			Creds:        credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""),
			Region:       s.Region,
			BucketLookup: minio.BucketLookupPath,
			// minio-go retries refused connections with backoff for
			// many seconds by default; readiness polling and outage
			// tests want the error at once.
			MaxRetries: 1,
		})
		if err != nil {
			return nil, fmt.Errorf("error creating S3 client: %w", err)
		}
		err = s.start()
		if err == nil {
			return s, nil
		}
		if attempt == 3 || !strings.Contains(err.Error(), "address already in use") {
			return nil, err
		}
	}
}

// Client returns a minio-go client for the server, signed with its root
// credentials and region. It survives Stop and Restart.
func (s *Server) Client() *minio.Client { return s.client }

// Env returns the AWS SDK environment for a child process that should talk
// to the server; the endpoint is not included, pass s.Endpoint explicitly.
func (s *Server) Env() []string {
	return []string{
		"AWS_ACCESS_KEY_ID=" + s.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + s.SecretKey,
		"AWS_REGION=" + s.Region,
	}
}

// Stop kills versitygw and waits for it to exit, so that requests fail with
// connection refused from then on, as in an outage. It is a SIGKILL rather
// than a shutdown: nothing in flight completes, and what was written stays
// in Dir for Restart. Stopping a stopped server does nothing. Stop panics on
// a Shared server, which other tests are using.
func (s *Server) Stop() {
	if s.shared {
		panic("s3test: Stop on the Shared server; use Start for outage tests")
	}
	s.stop()
}

func (s *Server) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return
	}
	_ = s.proc.cmd.Process.Kill()
	<-s.proc.done
	s.lastOut = s.proc.out
	s.proc = nil
}

// Restart starts versitygw again on the same port and directory, after
// stopping it if it is running; objects and unfinished multipart uploads
// are still there. It fails t if the server does not come back.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	if s.shared {
		t.Fatal("s3test: Restart on the Shared server; use Start for outage tests")
	}
	s.stop()
	if err := s.start(); err != nil {
		t.Fatalf("s3test: restart: %v", err)
	}
}

// start runs the binary on s.addr and waits until it serves S3 requests.
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		return errors.New("versitygw is already running")
	}

	args := []string{"--port", s.addr, "--region", s.Region, "posix"}
	if s.sidecar != "" {
		args = append(args, "--sidecar", s.sidecar)
	}
	args = append(args, s.Dir)
	cmd := exec.Command(s.bin, args...)
	cmd.Env = childEnv(s.AccessKey, s.SecretKey)
	cmd.Dir = s.Dir
	cmd.SysProcAttr = sysProcAttr()
	p := &process{cmd: cmd, out: &tail{max: 64 << 10}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("error starting versitygw: %w", err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()

	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if err := s.waitReady(ctx, p); err != nil {
		_ = cmd.Process.Kill()
		<-p.done
		s.lastOut = p.out
		return fmt.Errorf("versitygw on %s: %w; command: %s; output:\n%s", s.addr, err, strings.Join(cmd.Args, " "), p.out)
	}
	s.proc = p
	return nil
}

// waitReady polls ListBuckets, the cheapest signed request, until it
// succeeds: a TCP accept alone would not show that the credentials and the
// backend work.
func (s *Server) waitReady(ctx context.Context, p *process) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		reqCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := s.client.ListBuckets(reqCtx)
		cancel()
		if err == nil {
			return nil
		}
		last = err
		select {
		case <-p.done:
			return fmt.Errorf("exited before serving (%v)", p.err)
		case <-ctx.Done():
			return fmt.Errorf("not ready after %v: %w", startTimeout, last)
		case <-tick.C:
		}
	}
}

// output returns the end of what the last or current run printed.
func (s *Server) output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.proc != nil:
		return s.proc.out.String()
	case s.lastOut != nil:
		return s.lastOut.String()
	}
	return ""
}

// NewBucket creates a bucket with a name of its own, derived from the test
// name so that a look into Dir tells who made it, and returns the name.
func (s *Server) NewBucket(t testing.TB) string {
	t.Helper()
	name := bucketName(t.Name())
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	if err := s.client.MakeBucket(ctx, name, minio.MakeBucketOptions{Region: s.Region}); err != nil {
		t.Fatalf("s3test: error creating bucket %s: %v", name, err)
	}
	return name
}

// ListObjects returns the keys of all objects in bucket, in S3 order.
func (s *Server) ListObjects(t testing.TB, bucket string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	var keys []string
	for obj := range s.client.ListObjects(ctx, bucket, minio.ListObjectsOptions{Recursive: true}) {
		if obj.Err != nil {
			t.Fatalf("s3test: error listing objects in %s: %v", bucket, obj.Err)
		}
		keys = append(keys, obj.Key)
	}
	return keys
}

// ListMultipartUploads returns the key of every multipart upload in bucket
// that was neither completed nor aborted; a key with two such uploads is
// there twice.
func (s *Server) ListMultipartUploads(t testing.TB, bucket string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	var keys []string
	for up := range s.client.ListIncompleteUploads(ctx, bucket, "", true) {
		if up.Err != nil {
			t.Fatalf("s3test: error listing multipart uploads in %s: %v", bucket, up.Err)
		}
		keys = append(keys, up.Key)
	}
	return keys
}

// binary finds versitygw: $INTAKE_VERSITYGW, else tools/bin/versitygw in
// the module root, else PATH. An INTAKE_VERSITYGW naming a missing file is
// missing: falling back would test with a binary nobody asked for.
func binary() (string, error) {
	if p := os.Getenv(BinaryEnv); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%w at %s=%s", errNoBinary, BinaryEnv, p)
		}
		return p, nil
	}
	if root, ok := moduleRoot(); ok {
		p := filepath.Join(root, "tools", "bin", "versitygw")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	p, err := exec.LookPath("versitygw")
	if err != nil {
		return "", fmt.Errorf("%w in %s, tools/bin or PATH", errNoBinary, BinaryEnv)
	}
	return p, nil
}

// moduleRoot is the module's root directory, if the working directory is
// inside it.
func moduleRoot() (string, bool) {
	root, err := testenv.ModuleRoot()
	return root, err == nil
}

// unavailable skips t for want of versitygw, or fails it in CI.
func unavailable(t testing.TB, err error) {
	t.Helper()
	testenv.Unavailable(t, err, "s3test", "S3", "run `make tools`, or set "+BinaryEnv)
}

// childEnv is the whole environment of versitygw. It reads dozens of
// variables, some with names as generic as LOGFILE and WEBHOOK, so the
// test's own environment is not passed on.
func childEnv(accessKey, secretKey string) []string {
	env := []string{
		"ROOT_ACCESS_KEY=" + accessKey,
		"ROOT_SECRET_KEY=" + secretKey,
	}
	for _, k := range []string{"PATH", "HOME", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// freePort asks the kernel for a loopback port nobody is listening on.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("error finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// bucketName builds "t-<test name>-<random>": lowercase letters, digits
// and single hyphens, starting and ending with an alphanumeric, at most 63
// bytes, so valid under the strict S3 rules versitygw enforces.
func bucketName(testName string) string {
	var b strings.Builder
	b.WriteString("t-")
	for _, r := range strings.ToLower(testName) {
		if b.Len() >= 40 {
			break
		}
		switch {
		case r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
		case !strings.HasSuffix(b.String(), "-"):
			b.WriteByte('-')
		}
	}
	if !strings.HasSuffix(b.String(), "-") {
		b.WriteByte('-')
	}
	b.WriteString(randomString(10, "abcdefghijklmnopqrstuvwxyz0123456789"))
	return b.String()
}

func randomString(n int, alphabet string) string {
	buf := make([]byte, n)
	_, _ = rand.Read(buf)
	for i, c := range buf {
		buf[i] = alphabet[int(c)%len(alphabet)]
	}
	return string(buf)
}

// tail keeps the last max bytes written to it.
type tail struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (w *tail) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	if over := len(w.buf) - w.max; over > 0 {
		w.buf = append(w.buf[:0], w.buf[over:]...)
	}
	return len(p), nil
}

func (w *tail) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.buf)
}
