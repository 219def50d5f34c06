package browser

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/intake-dev/intake/internal/nodemodules"
	"github.com/intake-dev/intake/internal/testenv"
)

// The Node.js side, in the order it is hashed. driver.mjs is part of the
// install so that node resolves its import of playwright-core from the
// node_modules next to it.
//
//go:embed package.json package-lock.json driver.mjs
var files embed.FS

// uppyPage is served by Page, not installed: editing it needs no npm ci.
//
//go:embed uppy.html
var uppyPage []byte

var spec = nodemodules.Spec{
	Name:      "browser",
	Files:     files,
	FileNames: []string{"package.json", "package-lock.json", "driver.mjs"},
	MinNode:   minNodeMajor,
}

const (
	// DefaultTimeout bounds one upload when Options.Timeout is zero.
	DefaultTimeout = 2 * time.Minute
	// minNodeMajor is playwright-core's engines requirement.
	minNodeMajor = 20
	// launchMargin is what driver.mjs may take beyond the upload's
	// timeout: starting Chromium (Playwright gives up after a minute) and
	// closing it.
	launchMargin = 90 * time.Second
)

// chromiumArgs make Chromium fit for tests on a closed network: without
// the networking flags it keeps trying Google's services, and this
// network refuses the connections. Playwright adds a fresh --user-data-dir
// itself (and refuses one in args).
var chromiumArgs = []string{
	"--headless", "--no-sandbox", "--disable-gpu",
	"--disable-background-networking", "--disable-quic", "--no-first-run",
	"--disable-component-update", "--disable-sync",
}

// chromiumNames are tried on PATH, in order, unless INTAKE_CHROMIUM is set.
var chromiumNames = []string{"chromium", "chromium-browser", "google-chrome-stable", "google-chrome"}

// errNoChromium is, with nodemodules.ErrNoNode, an install failure that is
// a skip outside CI.
var errNoChromium = errors.New("chromium not found")

// installation is node_modules with driver.mjs, and the browser it drives.
type installation struct {
	nodemodules.Installation
	chromium string
}

var install = sync.OnceValues(func() (installation, error) {
	// Before npm: a machine without a browser skips at once.
	chromium, err := findChromium()
	if err != nil {
		return installation{}, err
	}
	inst, err := spec.Install()
	if err != nil {
		return installation{}, err
	}
	return installation{Installation: inst, chromium: chromium}, nil
})

// findChromium returns $INTAKE_CHROMIUM when set, or the first of
// chromiumNames on PATH.
func findChromium() (string, error) {
	if p := os.Getenv("INTAKE_CHROMIUM"); p != "" {
		path, err := exec.LookPath(p)
		if err != nil {
			return "", fmt.Errorf("%w: INTAKE_CHROMIUM: %v", errNoChromium, err)
		}
		return path, nil
	}
	for _, name := range chromiumNames {
		if path, err := exec.LookPath(name); err == nil {
			return path, nil
		}
	}
	return "", fmt.Errorf("%w: none of %s on PATH, and INTAKE_CHROMIUM not set", errNoChromium, strings.Join(chromiumNames, ", "))
}

func installed(t testing.TB) installation {
	t.Helper()
	inst, err := install()
	if err != nil {
		if errors.Is(err, nodemodules.ErrNoNode) || errors.Is(err, errNoChromium) {
			testenv.Unavailable(t, err, "browser", "browser", fmt.Sprintf("install Node.js %d or later with npm, and Chromium: apt-get install chromium", minNodeMajor))
		}
		t.Fatalf("browser: %v", err)
	}
	return inst
}

// Page is a web page with Uppy on it, served on a loopback port of its
// own: its Origin is not that of the server it uploads to, so every
// request of an upload is cross-origin.
type Page struct {
	// Origin is what the browser sends as the Origin header, e.g.
	// http://127.0.0.1:40123.
	Origin string

	inst installation

	mu   sync.Mutex
	data map[string][]byte // served at /data/{id}, one entry per upload
	next int
}

// NewPage installs Uppy and the browser driver (npm ci at most once per
// test binary) and starts serving the page until t ends. When node, npm
// or Chromium is missing t is skipped, or fails if CI=true.
func NewPage(t testing.TB) *Page {
	t.Helper()
	p := &Page{inst: installed(t), data: make(map[string][]byte)}
	bundle := filepath.Join(p.inst.Dir, "node_modules", "uppy", "dist", "uppy.min.js")
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(uppyPage)
	})
	// Chromium asks for it; a 404 would be an error in Result.Console.
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /uppy.min.js", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, bundle)
	})
	mux.HandleFunc("GET /data/{id}", func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		b, ok := p.data[r.PathValue("id")]
		p.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(b)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	p.Origin = srv.URL
	return p
}

// serve makes b available to the page until the returned func is called.
func (p *Page) serve(b []byte) (url string, remove func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.next++
	id := strconv.Itoa(p.next)
	p.data[id] = b
	return p.Origin + "/data/" + id, func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		delete(p.data, id)
	}
}

// Options describe one upload by Uppy with @uppy/tus.
type Options struct {
	// Endpoint is the tus creation URL, e.g. http://127.0.0.1:8080/files/.
	Endpoint string
	// Data is the file's content. The page fetches it from its own origin
	// and hands it to Uppy as a Blob.
	Data []byte
	// Name and Type are the file's; @uppy/tus sends them as the metadata
	// filename and filetype (and name and type). Default to upload.bin and
	// application/octet-stream.
	Name, Type string
	// Meta is more Uppy metadata, all of it sent as Upload-Metadata.
	Meta map[string]string
	// ChunkSize is the most bytes one PATCH carries. Defaults to the whole
	// rest of the file in one PATCH.
	ChunkSize int
	// Headers are added to every request of the upload, e.g. Authorization.
	Headers map[string]string
	// Timeout bounds the upload in the browser. Defaults to
	// DefaultTimeout.
	Timeout time.Duration
}

// Request is one request the page made, as Chromium saw it.
type Request struct {
	Method string `json:"method"`
	URL    string `json:"url"`
	// Status is the response's; 0 when there was none.
	Status int `json:"status"`
	// Failure says why there was no response, e.g. net::ERR_FAILED for a
	// request that CORS refused.
	Failure string `json:"failure"`
}

// Result is what happened in the browser during an upload.
type Result struct {
	// URL is the upload URL Uppy reported with upload-success; "" when the
	// upload failed.
	URL string
	// Retries holds the message of every error Uppy retried after, in
	// order.
	Retries []string
	// Requests are the page's requests, in order, including those for the
	// page itself and its data. CORS preflights are not among them.
	Requests []Request
	// Console holds the page's console messages and Chromium's (a CORS
	// refusal reads "... has been blocked by CORS policy: ...").
	Console []string
}

// UploadError is a failed upload: Uppy emitted upload-error.
type UploadError struct {
	// Message is the error's message as Uppy built it; for an HTTP error
	// it quotes the status and the response body.
	Message string
	// Status is that of the response Uppy got; 0 when the browser gave it
	// none, as when CORS refuses the request.
	Status int
}

func (e *UploadError) Error() string {
	return fmt.Sprintf("uppy: status %d: %s", e.Status, e.Message)
}

// Upload uploads opts.Data with Uppy in the browser and returns what
// happened; t fails unless the upload succeeded.
func (p *Page) Upload(t testing.TB, opts Options) Result {
	t.Helper()
	res, err := p.TryUpload(t, opts)
	if err != nil {
		t.Fatalf("browser: upload from %s to %s: %v\nconsole:\n%s", p.Origin, opts.Endpoint, err, strings.Join(res.Console, "\n"))
	}
	return res
}

// TryUpload is Upload for uploads that may fail: it returns an
// *UploadError, with the Result so far, when Uppy gave up. Anything else
// going wrong (the page not loading, the timeout, node crashing, a Uppy
// bundle that is not the pinned @uppy/core and @uppy/tus) fails t.
func (p *Page) TryUpload(t testing.TB, opts Options) (Result, error) {
	t.Helper()
	if opts.Endpoint == "" {
		t.Fatal("browser: Options need an Endpoint")
	}
	if opts.Name == "" {
		opts.Name = "upload.bin"
	}
	if opts.Type == "" {
		opts.Type = "application/octet-stream"
	}
	timeout := opts.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	dataURL, remove := p.serve(opts.Data)
	defer remove()
	input, err := json.Marshal(map[string]any{
		"chromium":  p.inst.chromium,
		"args":      chromiumArgs,
		"url":       p.Origin + "/",
		"timeoutMs": timeout.Milliseconds(),
		"input": map[string]any{
			"endpoint":  opts.Endpoint,
			"dataURL":   dataURL,
			"name":      opts.Name,
			"type":      opts.Type,
			"meta":      opts.Meta,
			"chunkSize": opts.ChunkSize,
			"headers":   opts.Headers,
		},
	})
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), timeout+launchMargin)
	defer cancel()
	cmd := exec.CommandContext(ctx, p.inst.Node, filepath.Join(p.inst.Dir, "driver.mjs"))
	cmd.Dir = p.inst.Dir
	// Chromium's profile (made by Playwright in TMPDIR), its NSS database
	// and font cache (in HOME) go where t's cleanup removes them, even
	// after a kill.
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HOME="+home, "TMPDIR="+home,
		"XDG_CONFIG_HOME="+filepath.Join(home, ".config"), "XDG_CACHE_HOME="+filepath.Join(home, ".cache"))
	cmd.Stdin = bytes.NewReader(input)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// Playwright closes the browser on SIGTERM before node exits; a kill
	// would leave Chromium to notice its closed pipe on its own. The kill
	// comes only if node is not gone WaitDelay later.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	runErr := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("browser: driver.mjs not done after %s (stopped); stdout: %q; stderr:\n%s", timeout+launchMargin, stdout.Bytes(), stderr.Bytes())
	}

	var out struct {
		Output *struct {
			URL      string   `json:"url"`
			Error    *string  `json:"error"`
			Status   int      `json:"status"`
			Retries  []string `json:"retries"`
			Versions struct {
				Core string `json:"core"`
				Tus  string `json:"tus"`
			} `json:"versions"`
		} `json:"output"`
		Error    *string   `json:"error"`
		Browser  string    `json:"browser"`
		Console  []string  `json:"console"`
		Requests []Request `json:"requests"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatalf("browser: driver.mjs: %v, stdout is not its JSON line (%v): %q; stderr:\n%s", runErr, err, stdout.Bytes(), stderr.Bytes())
	}
	res := Result{Requests: out.Requests, Console: out.Console}
	var exit *exec.ExitError
	if errors.As(runErr, &exit) && exit.ExitCode() == 1 && out.Error != nil {
		t.Fatalf("browser: page %s: %s\nconsole:\n%s", p.Origin, *out.Error, strings.Join(out.Console, "\n"))
	}
	if runErr != nil || out.Output == nil {
		t.Fatalf("browser: driver.mjs: exit %v with stdout %q; stderr:\n%s", runErr, stdout.Bytes(), stderr.Bytes())
	}

	o := out.Output
	pins, err := spec.Pins()
	if err != nil {
		t.Fatal(err)
	}
	if o.Versions.Core != pins["@uppy/core"] || o.Versions.Tus != pins["@uppy/tus"] {
		t.Fatalf("browser: the bundle of uppy %s holds @uppy/core %s and @uppy/tus %s; package.json pins %s and %s (pin the versions uppy depends on)",
			pins["uppy"], o.Versions.Core, o.Versions.Tus, pins["@uppy/core"], pins["@uppy/tus"])
	}
	t.Logf("browser: Uppy %s with @uppy/tus %s in Chromium %s, on %s", o.Versions.Core, o.Versions.Tus, out.Browser, p.Origin)
	res.Retries = o.Retries
	if o.Error != nil {
		return res, &UploadError{Message: *o.Error, Status: o.Status}
	}
	if o.URL == "" {
		t.Fatalf("browser: Uppy reported neither an upload URL nor an error; console:\n%s", strings.Join(out.Console, "\n"))
	}
	res.URL = o.URL
	return res, nil
}
