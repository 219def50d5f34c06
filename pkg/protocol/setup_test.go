package protocol

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/tus/tusd/v2/pkg/filestore"
	"github.com/tus/tusd/v2/pkg/handler"
	"github.com/tus/tusd/v2/pkg/memorylocker"
	xslog "golang.org/x/exp/slog"

	"github.com/intake-dev/intake/pkg/jsonerr"
)

const maxSize = 1 << 20

// testConfig varies how the server under test is assembled.
type testConfig struct {
	// layout is where Wrap sits relative to http.StripPrefix: "outside"
	// (default), "inside" (StripPrefix("/files/")) or "inside-noslash"
	// (StripPrefix("/files"), as pkg/server mounts it).
	layout string
	// compose replaces the default store setup (filestore + memorylocker).
	compose func(c *handler.StoreComposer, dir string)
}

type bundle struct {
	srv  *httptest.Server
	dir  string // filestore directory
	base string // creation URL
	logs *lockedBuffer
	// served receives "METHOD path" after each request has been handled.
	served chan string
}

func setup(t *testing.T) *bundle { return setupWith(t, testConfig{}) }

func setupWith(t *testing.T, cfg testConfig) *bundle {
	t.Helper()
	dir := t.TempDir()
	composer := handler.NewStoreComposer()
	if cfg.compose != nil {
		cfg.compose(composer, dir)
	} else {
		filestore.New(dir).UseIn(composer)
		memorylocker.New().UseIn(composer)
	}
	tusd, err := handler.NewHandler(handler.Config{
		StoreComposer: composer,
		BasePath:      "/files/",
		MaxSize:       maxSize,
		Logger:        xslog.New(xslog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}

	b := &bundle{dir: dir, logs: &lockedBuffer{}, served: make(chan string, 64)}
	opts := Options{Logger: slog.New(slog.NewTextHandler(b.logs, nil))}
	mux := http.NewServeMux()
	switch cfg.layout {
	case "inside":
		mux.Handle("/files/", http.StripPrefix("/files/", Wrap(tusd, opts)))
	case "inside-noslash":
		mux.Handle("/files/", http.StripPrefix("/files", Wrap(tusd, opts)))
	default:
		mux.Handle("/files/", Wrap(http.StripPrefix("/files/", tusd), opts))
	}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mux.ServeHTTP(w, r)
		select {
		case b.served <- r.Method + " " + r.URL.Path:
		default:
		}
	}))
	t.Cleanup(b.srv.Close)
	b.base = b.srv.URL + "/files/"
	return b
}

type result struct {
	status int
	header http.Header
	body   []byte
}

// hdr builds request headers from name/value pairs, with Tus-Resumable
// unless the pairs name it. A repeated name adds a field line; an empty
// value removes the header.
func hdr(kv ...string) http.Header {
	h := http.Header{"Tus-Resumable": {tusVersion}}
	seen := map[string]bool{}
	for i := 0; i+1 < len(kv); i += 2 {
		k := http.CanonicalHeaderKey(kv[i])
		if !seen[k] {
			h.Del(k)
			seen[k] = true
		}
		if kv[i+1] != "" {
			h.Add(k, kv[i+1])
		}
	}
	return h
}

// do sends a request; a target without a scheme is relative to the server.
func (b *bundle) do(t *testing.T, method, target string, h http.Header, body io.Reader) result {
	t.Helper()
	if !strings.HasPrefix(target, "http") {
		target = b.srv.URL + target
	}
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	res, err := b.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, target, err)
	}
	return result{status: res.StatusCode, header: res.Header, body: data}
}

// create makes an upload of the given length and returns its URL.
func (b *bundle) create(t *testing.T, length int, kv ...string) string {
	t.Helper()
	res := b.do(t, http.MethodPost, b.base, hdr(append([]string{"Upload-Length", strconv.Itoa(length)}, kv...)...), nil)
	if res.status != http.StatusCreated {
		t.Fatalf("create: got %d %s; want 201", res.status, res.body)
	}
	loc := res.header.Get("Location")
	if loc == "" {
		t.Fatal("create: no Location")
	}
	return loc
}

func (b *bundle) patch(t *testing.T, url string, offset int, data string, kv ...string) result {
	t.Helper()
	h := hdr(append([]string{"Content-Type", offsetMediaType, "Upload-Offset", strconv.Itoa(offset)}, kv...)...)
	return b.do(t, http.MethodPatch, url, h, strings.NewReader(data))
}

func (b *bundle) mustPatch(t *testing.T, url string, offset int, data string, kv ...string) {
	t.Helper()
	res := b.patch(t, url, offset, data, kv...)
	if res.status != http.StatusNoContent {
		t.Fatalf("PATCH %s at %d: got %d %s; want 204", url, offset, res.status, res.body)
	}
	if got, want := res.header.Get("Upload-Offset"), strconv.Itoa(offset+len(data)); got != want {
		t.Fatalf("PATCH Upload-Offset: got %q; want %q", got, want)
	}
}

func (b *bundle) head(t *testing.T, url string) result {
	t.Helper()
	return b.do(t, http.MethodHead, url, hdr(), nil)
}

// offset returns the Upload-Offset HEAD reports for url.
func (b *bundle) offset(t *testing.T, url string) string {
	t.Helper()
	res := b.head(t, url)
	if res.status != http.StatusOK {
		t.Fatalf("HEAD %s: got %d; want 200", url, res.status)
	}
	return res.header.Get("Upload-Offset")
}

// uploads counts the uploads in the filestore directory.
func (b *bundle) uploads(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir(b.dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".info") {
			n++
		}
	}
	return n
}

// assertError checks that res is a JSON error with the given status and
// code, carrying the tus headers every response needs.
func assertError(t *testing.T, method string, res result, status int, code string) {
	t.Helper()
	if res.status != status {
		t.Errorf("status: got %d (%s); want %d", res.status, res.body, status)
	}
	if res.status >= 500 && status < 500 {
		t.Errorf("bad input answered with %d", res.status)
	}
	if got := res.header.Get("Tus-Resumable"); got != tusVersion {
		t.Errorf("Tus-Resumable: got %q; want %q", got, tusVersion)
	}
	if got := res.header.Get("Content-Type"); !strings.HasPrefix(got, "application/json") {
		t.Errorf("Content-Type: got %q; want application/json", got)
	}
	if status == http.StatusPreconditionFailed && res.header.Get("Tus-Version") == "" {
		t.Error("412 without Tus-Version")
	}
	if method == http.MethodHead {
		if len(res.body) != 0 {
			t.Errorf("HEAD response has a body: %q", res.body)
		}
		return
	}
	var body jsonerr.Body
	if err := json.Unmarshal(res.body, &body); err != nil {
		t.Fatalf("body %q is not JSON: %v", res.body, err)
	}
	if body.Error.Code != code {
		t.Errorf("code: got %q (message %q); want %q", body.Error.Code, body.Error.Message, code)
	}
	if body.Error.Message == "" {
		t.Error("empty message")
	}
}

// lockedBuffer is a log sink safe for the server's goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}
