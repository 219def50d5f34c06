package browser

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// TestLockfile: Uppy, its core and tus plugin, and playwright-core are
// pinned to exact versions, the lockfile agrees with package.json, and
// every package comes from the npm registry with an integrity hash.
func TestLockfile(t *testing.T) {
	t.Parallel()
	if err := spec.CheckLockfile(); err != nil {
		t.Error(err)
	}
	pins, err := spec.Pins()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"uppy", "@uppy/core", "@uppy/tus", "playwright-core"} {
		if pins[name] == "" {
			t.Errorf("package.json does not pin %s", name)
		}
	}
}

// Only what a tus upload needs: a server that allows and exposes no more
// than this proves these are enough for Uppy.
const (
	allowHeaders  = "Authorization, Content-Type, Tus-Resumable, Upload-Length, Upload-Metadata, Upload-Offset"
	exposeHeaders = "Location, Upload-Offset"
)

// fakeTus is just enough of a tus server with CORS for one upload by the
// browser: POST creates, PATCH appends. It allows the one origin it is
// given; status, when set, is the answer to every POST.
type fakeTus struct {
	origin string
	status int

	mu         sync.Mutex
	preflights []string // "METHOD header,header"
	posts      int
	auth, meta string
	body       bytes.Buffer
}

func (f *fakeTus) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	allowed := r.Header.Get("Origin") == f.origin
	if allowed {
		w.Header().Set("Access-Control-Allow-Origin", f.origin)
		w.Header().Set("Access-Control-Expose-Headers", exposeHeaders)
	}
	w.Header().Add("Vary", "Origin")
	if r.Method == http.MethodOptions {
		f.preflights = append(f.preflights, r.Header.Get("Access-Control-Request-Method")+" "+r.Header.Get("Access-Control-Request-Headers"))
		if allowed {
			w.Header().Set("Access-Control-Allow-Methods", "POST, HEAD, PATCH")
			w.Header().Set("Access-Control-Allow-Headers", allowHeaders)
		}
		w.WriteHeader(http.StatusNoContent)
		return
	}
	w.Header().Set("Tus-Resumable", "1.0.0")
	switch r.Method {
	case http.MethodPost:
		f.posts++
		if f.status != 0 {
			http.Error(w, "the fake says no", f.status)
			return
		}
		f.auth, f.meta = r.Header.Get("Authorization"), r.Header.Get("Upload-Metadata")
		w.Header().Set("Location", "/files/one")
		w.WriteHeader(http.StatusCreated)
	case http.MethodPatch:
		if _, err := io.Copy(&f.body, r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Upload-Offset", strconv.Itoa(f.body.Len()))
		w.WriteHeader(http.StatusNoContent)
	default:
		http.Error(w, "unexpected", http.StatusMethodNotAllowed)
	}
}

// TestUpload checks the harness against a fake server on another origin:
// the options reach Uppy, the upload crosses CORS in chunks, Uppy's URL and
// errors come back, and a refusal by CORS is told apart from an HTTP error.
func TestUpload(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("runs Chromium, and npm ci on first use")
	}
	page := NewPage(t)
	data := bytes.Repeat([]byte("uppy in chromium "), 150_000) // 2.4 MiB
	opts := Options{
		Data:      data,
		Name:      "data.bin",
		ChunkSize: 1 << 20,
		Headers:   map[string]string{"Authorization": "Bearer fake"},
	}

	t.Run("allowed origin", func(t *testing.T) {
		t.Parallel()
		fake := &fakeTus{origin: page.Origin}
		srv := httptest.NewServer(fake)
		defer srv.Close()
		o := opts
		o.Endpoint = srv.URL + "/files/"
		res := page.Upload(t, o)
		if res.URL != srv.URL+"/files/one" {
			t.Errorf("URL = %q; want %q", res.URL, srv.URL+"/files/one")
		}
		if len(res.Retries) != 0 {
			t.Errorf("Retries = %q; want none", res.Retries)
		}
		var patches int
		for _, r := range res.Requests {
			if r.Method == http.MethodPatch && r.URL == res.URL && r.Status == http.StatusNoContent {
				patches++
			}
		}
		if patches != 3 {
			t.Errorf("requests %+v; want 3 PATCHes of 1 MiB or less answered 204", res.Requests)
		}
		fake.mu.Lock()
		defer fake.mu.Unlock()
		if !bytes.Equal(fake.body.Bytes(), data) {
			t.Errorf("the fake received %d bytes; want the %d of the file", fake.body.Len(), len(data))
		}
		if fake.auth != "Bearer fake" {
			t.Errorf("Authorization = %q; want Bearer fake", fake.auth)
		}
		// "filename" base64-encoded is ZGF0YS5iaW4=.
		if !slices.Contains(strings.Split(fake.meta, ","), "filename ZGF0YS5iaW4=") {
			t.Errorf("Upload-Metadata = %q; want filename data.bin among it", fake.meta)
		}
		t.Logf("preflights (method, requested headers): %q", fake.preflights)
	})

	t.Run("other origin", func(t *testing.T) {
		t.Parallel()
		fake := &fakeTus{origin: "http://127.0.0.1:1"}
		srv := httptest.NewServer(fake)
		defer srv.Close()
		o := opts
		o.Endpoint = srv.URL + "/files/"
		res, err := page.TryUpload(t, o)
		var ue *UploadError
		if !errors.As(err, &ue) || ue.Status != 0 {
			t.Fatalf("TryUpload error = %v; want an UploadError without a status", err)
		}
		if !slices.ContainsFunc(res.Console, func(s string) bool { return strings.Contains(s, "blocked by CORS policy") }) {
			t.Errorf("console %q; want Chromium's CORS refusal", res.Console)
		}
		fake.mu.Lock()
		defer fake.mu.Unlock()
		if fake.posts != 0 || len(fake.preflights) == 0 {
			t.Errorf("the fake got %d POSTs after %d preflights; want preflights only", fake.posts, len(fake.preflights))
		}
	})

	t.Run("HTTP error", func(t *testing.T) {
		t.Parallel()
		fake := &fakeTus{origin: page.Origin, status: http.StatusUnauthorized}
		srv := httptest.NewServer(fake)
		defer srv.Close()
		o := opts
		o.Endpoint = srv.URL + "/files/"
		res, err := page.TryUpload(t, o)
		var ue *UploadError
		if !errors.As(err, &ue) || ue.Status != http.StatusUnauthorized || !strings.Contains(ue.Message, "the fake says no") {
			t.Fatalf("TryUpload error = %v; want an UploadError with status 401 quoting the body", err)
		}
		if len(res.Retries) != 0 {
			t.Errorf("Retries = %q; want none after a 401", res.Retries)
		}
	})
}
