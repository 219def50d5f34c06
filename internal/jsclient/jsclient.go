package jsclient

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/intake-dev/intake/internal/testenv"
)

// The JavaScript side, in the order it is hashed. upload.mjs is part of the
// install so that node resolves its import of tus-js-client from the
// node_modules next to it.
//
//go:embed package.json package-lock.json upload.mjs
var files embed.FS

var fileNames = []string{"package.json", "package-lock.json", "upload.mjs"}

const (
	// DefaultTimeout bounds one upload when Options.Timeout is zero.
	DefaultTimeout = 2 * time.Minute
	// installTimeout bounds npm ci. It takes about a second with a warm npm
	// cache; the margin is for a cold cache on a slow network.
	installTimeout = 5 * time.Minute
	// minNodeMajor is tus-js-client's engines requirement.
	minNodeMajor = 18
	// stampName holds the hash of the embedded files in a finished install.
	stampName = ".intake-stamp"
)

// errNoNode marks the one install failure that is a skip outside CI.
var errNoNode = errors.New("node or npm not found")

// installation is a finished install: dir holds the embedded files and
// node_modules, node is the interpreter to run upload.mjs with.
type installation struct {
	dir, node string
}

var install = sync.OnceValues(func() (installation, error) {
	node, err := findNode()
	if err != nil {
		return installation{}, err
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return installation{}, fmt.Errorf("%w: %v", errNoNode, err)
	}
	base, err := baseDir()
	if err != nil {
		return installation{}, err
	}
	dir, err := installInto(base, npm)
	if err != nil {
		return installation{}, err
	}
	return installation{dir: dir, node: node}, nil
})

// Install makes sure tus-js-client is installed, running npm ci at most once
// per test binary, and returns the directory holding upload.mjs and its
// node_modules. When node or npm is missing t is skipped, or fails if
// CI=true; any other install failure fails t.
func Install(t testing.TB) (dir string) {
	t.Helper()
	return installed(t).dir
}

func installed(t testing.TB) installation {
	t.Helper()
	inst, err := install()
	if err != nil {
		if errors.Is(err, errNoNode) {
			unavailable(t, ciEnabled(), err)
		}
		t.Fatalf("jsclient: %v", err)
	}
	return inst
}

// findNode finds node on PATH and checks it is recent enough for
// tus-js-client: an older one counts as missing.
func findNode() (string, error) {
	node, err := exec.LookPath("node")
	if err != nil {
		return "", fmt.Errorf("%w: %v", errNoNode, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, node, "--version").Output()
	if err != nil {
		return "", fmt.Errorf("error running %s --version: %w", node, err)
	}
	v := strings.TrimSpace(string(out))
	major, _, _ := strings.Cut(strings.TrimPrefix(v, "v"), ".")
	if n, err := strconv.Atoi(major); err != nil || n < minNodeMajor {
		return "", fmt.Errorf("%w: %s is %s, tus-js-client needs %d or later", errNoNode, node, v, minNodeMajor)
	}
	return node, nil
}

// baseDir is tools/_node in the module root (the "_" keeps `go ./...`
// out of node_modules), or a directory in the user's
// cache when the test does not run inside the module.
func baseDir() (string, error) {
	if root, ok := moduleRoot(); ok {
		return filepath.Join(root, "tools", "_node"), nil
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no module root and no user cache directory: %w", err)
	}
	return filepath.Join(cache, "intake-jsclient"), nil
}

// moduleRoot is the module's root directory, if the working directory is
// inside it.
func moduleRoot() (string, bool) {
	root, err := testenv.ModuleRoot()
	return root, err == nil
}

// filesHash identifies the embedded files: an install made from other
// files is another directory.
func filesHash() string {
	h := sha256.New()
	for _, name := range fileNames {
		b, err := files.ReadFile(name)
		if err != nil {
			panic(err) // unreachable: embedded above
		}
		fmt.Fprintf(h, "%s %d\n", name, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// pinnedVersion is the exact tus-js-client version package.json asks for.
func pinnedVersion() (string, error) {
	b, err := files.ReadFile("package.json")
	if err != nil {
		return "", err
	}
	var pkg struct {
		Dependencies map[string]string `json:"dependencies"`
	}
	if err := json.Unmarshal(b, &pkg); err != nil {
		return "", fmt.Errorf("error parsing package.json: %w", err)
	}
	v := pkg.Dependencies["tus-js-client"]
	if v == "" {
		return "", errors.New("package.json does not depend on tus-js-client")
	}
	return v, nil
}

// installInto returns base/<hash>, first building it with npm ci unless a
// finished install of the same files is there.
func installInto(base, npm string) (string, error) {
	sum := filesHash()
	dir := filepath.Join(base, sum[:16])
	if checkInstall(dir, sum) == nil {
		return dir, nil
	}
	if err := os.MkdirAll(base, 0o755); err != nil {
		return "", err
	}
	staging, err := os.MkdirTemp(base, ".install-")
	if err != nil {
		return "", err
	}
	// After the rename this removes nothing.
	defer os.RemoveAll(staging)
	if err := os.Chmod(staging, 0o755); err != nil { // MkdirTemp makes it 0700
		return "", err
	}

	for _, name := range fileNames {
		b, _ := files.ReadFile(name)
		if err := os.WriteFile(filepath.Join(staging, name), b, 0o644); err != nil {
			return "", err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), installTimeout)
	defer cancel()
	// --prefer-offline takes what the npm cache has without asking the
	// registry; the lockfile's integrity hashes still apply.
	cmd := exec.CommandContext(ctx, npm, "ci",
		"--ignore-scripts", "--prefer-offline", "--no-audit", "--no-fund",
		"--no-update-notifier", "--loglevel=error")
	cmd.Dir = staging
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("not done after %s", installTimeout)
		}
		return "", fmt.Errorf("npm ci in %s: %v\n%s", staging, err, out)
	}
	if err := os.WriteFile(filepath.Join(staging, stampName), []byte(sum+"\n"), 0o644); err != nil {
		return "", err
	}
	if err := checkInstall(staging, sum); err != nil {
		return "", fmt.Errorf("npm ci succeeded in %s but %w", time.Since(start).Round(time.Millisecond), err)
	}

	if err := os.Rename(staging, dir); err != nil {
		// Another test binary may have finished the same install first.
		if checkInstall(dir, sum) == nil {
			return dir, nil
		}
		// Or dir is a broken install (node_modules deleted by hand, say).
		if err := os.RemoveAll(dir); err != nil {
			return "", err
		}
		if err := os.Rename(staging, dir); err != nil {
			return "", err
		}
	}
	return dir, nil
}

// checkInstall reports why dir is not a finished install of the files
// hashing to sum with the pinned tus-js-client in its node_modules.
func checkInstall(dir, sum string) error {
	stamp, err := os.ReadFile(filepath.Join(dir, stampName))
	if err != nil {
		return err
	}
	if strings.TrimSpace(string(stamp)) != sum {
		return fmt.Errorf("%s is an install of other files", dir)
	}
	want, err := pinnedVersion()
	if err != nil {
		return err
	}
	b, err := os.ReadFile(filepath.Join(dir, "node_modules", "tus-js-client", "package.json"))
	if err != nil {
		return err
	}
	var pkg struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal(b, &pkg); err != nil || pkg.Version != want {
		return fmt.Errorf("tus-js-client in %s is %q, not %s (%v)", dir, pkg.Version, want, err)
	}
	return nil
}

func ciEnabled() bool { return testenv.CI() }

// unavailable skips t, or fails it in CI.
func unavailable(t testing.TB, ci bool, err error) {
	t.Helper()
	if ci {
		t.Fatalf("jsclient: %v and CI=true, where a skipped client test counts as a failure (install Node.js %d or later)", err, minNodeMajor)
		return
	}
	t.Skipf("jsclient: skipping, %v (install Node.js %d or later with npm)", err, minNodeMajor)
}

// Options describe one upload by tus-js-client.
type Options struct {
	// Endpoint is the tus creation URL, e.g. http://127.0.0.1:8080/files/.
	Endpoint string
	// File is the path of the file to upload, handed to tus-js-client as
	// a fs.ReadStream.
	File string
	// ChunkSize is the most bytes one PATCH carries. Defaults to
	// tus-js-client's default: the whole rest of the file in one PATCH.
	ChunkSize int
	// ParallelUploads above 1 splits the file into that many partial
	// uploads sent at once and concatenated by a final upload (the
	// concatenation extension). Defaults to 1, one plain upload.
	ParallelUploads int
	// Metadata is sent as Upload-Metadata (of the final upload, when
	// parallel).
	Metadata map[string]string
	// Headers are added to every request.
	Headers map[string]string
	// Timeout bounds the whole run of node. Defaults to DefaultTimeout.
	Timeout time.Duration
}

// Result is what tus-js-client reported for a finished upload.
type Result struct {
	// URL is the upload URL (the final upload's, when parallel).
	URL string
	// Retries holds the message of every error tus-js-client retried
	// after, in order; a retry means the server answered 5xx, 409 or 423,
	// or the connection failed.
	Retries []string
}

// ClientError is a failed upload: tus-js-client called onError.
type ClientError struct {
	// Message is the error's message as tus-js-client built it; for an
	// HTTP error it quotes the status and the response body.
	Message string
	// Retries as in Result.
	Retries []string
}

func (e *ClientError) Error() string { return "tus-js-client: " + e.Message }

// Upload uploads opts.File with tus-js-client and returns what it reported;
// t fails unless the upload succeeded.
func Upload(t testing.TB, opts Options) Result {
	t.Helper()
	res, err := TryUpload(t, opts)
	if err != nil {
		t.Fatalf("jsclient: upload of %s to %s: %v", opts.File, opts.Endpoint, err)
	}
	return res
}

// TryUpload is Upload for uploads that may fail: it returns a *ClientError
// when tus-js-client gave up. Anything else going wrong (node crashing,
// the timeout, garbled output) fails t.
func TryUpload(t testing.TB, opts Options) (Result, error) {
	t.Helper()
	inst := installed(t)
	if opts.Endpoint == "" || opts.File == "" {
		t.Fatal("jsclient: Options need Endpoint and File")
	}
	file, err := filepath.Abs(opts.File)
	if err != nil {
		t.Fatal(err)
	}
	input, err := json.Marshal(map[string]any{
		"endpoint":        opts.Endpoint,
		"file":            file,
		"chunkSize":       opts.ChunkSize,
		"parallelUploads": opts.ParallelUploads,
		"metadata":        opts.Metadata,
		"headers":         opts.Headers,
	})
	if err != nil {
		t.Fatal(err)
	}
	timeout := opts.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}

	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, inst.node, filepath.Join(inst.dir, "upload.mjs"))
	cmd.Dir = inst.dir
	cmd.Stdin = bytes.NewReader(input)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// Kill closes node's end of the pipes; this bounds the wait for them
	// should node ever start children that inherit them.
	cmd.WaitDelay = 5 * time.Second
	runErr := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("jsclient: upload.mjs not done after %s (killed); stdout: %q; stderr:\n%s", timeout, stdout.Bytes(), stderr.Bytes())
	}

	var out struct {
		URL     string   `json:"url"`
		Error   *string  `json:"error"`
		Retries []string `json:"retries"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatalf("jsclient: upload.mjs: %v, stdout is not its JSON line (%v): %q; stderr:\n%s", runErr, err, stdout.Bytes(), stderr.Bytes())
	}
	var exit *exec.ExitError
	switch {
	case runErr == nil && out.Error == nil && out.URL != "":
		return Result{URL: out.URL, Retries: out.Retries}, nil
	case errors.As(runErr, &exit) && exit.ExitCode() == 1 && out.Error != nil:
		return Result{Retries: out.Retries}, &ClientError{Message: *out.Error, Retries: out.Retries}
	}
	t.Fatalf("jsclient: upload.mjs: exit %v with stdout %q; stderr:\n%s", runErr, stdout.Bytes(), stderr.Bytes())
	return Result{}, nil
}
