package jsclient

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// TestLockfile: tus-js-client is pinned to an exact version, the lockfile
// agrees with package.json, and every package comes from the npm registry
// with an integrity hash, so npm ci installs exactly what was reviewed.
func TestLockfile(t *testing.T) {
	t.Parallel()
	if err := spec.CheckLockfile(); err != nil {
		t.Error(err)
	}
	if pins, err := spec.Pins(); err != nil || pins["tus-js-client"] == "" {
		t.Errorf("package.json pins %v (%v); want tus-js-client among them", pins, err)
	}
}

// fakeTus is just enough of a tus server for one upload: POST creates,
// PATCH appends. fail5xx makes the first POST a 500 and refuse413 makes
// every POST a 413 with a JSON body.
type fakeTus struct {
	fail5xx, refuse413 bool

	mu    sync.Mutex
	posts int
	meta  string
	body  bytes.Buffer
}

func (f *fakeTus) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w.Header().Set("Tus-Resumable", "1.0.0")
	switch r.Method {
	case http.MethodPost:
		f.posts++
		switch {
		case f.fail5xx && f.posts == 1:
			http.Error(w, "try again", http.StatusInternalServerError)
		case f.refuse413:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusRequestEntityTooLarge)
			io.WriteString(w, `{"error":{"code":"max_size_exceeded","message":"too big for the fake"}}`)
		default:
			f.meta = r.Header.Get("Upload-Metadata")
			w.Header().Set("Location", "/files/one")
			w.WriteHeader(http.StatusCreated)
		}
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

// TestUpload checks the harness against a fake server: options reach
// tus-js-client, the URL and retries come back, and onError's message is
// returned as a *ClientError quoting the response body.
func TestUpload(t *testing.T) {
	t.Parallel()
	data := bytes.Repeat([]byte("tus-js-client "), 100_000)
	file := filepath.Join(t.TempDir(), "data.bin")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}

	t.Run("success after a retry", func(t *testing.T) {
		t.Parallel()
		fake := &fakeTus{fail5xx: true}
		srv := httptest.NewServer(fake)
		defer srv.Close()
		res := Upload(t, Options{Endpoint: srv.URL + "/files/", File: file, ChunkSize: 256 << 10, Metadata: map[string]string{"filename": "data.bin"}})
		if res.URL != srv.URL+"/files/one" {
			t.Errorf("URL = %q; want %q", res.URL, srv.URL+"/files/one")
		}
		if len(res.Retries) != 1 || !strings.Contains(res.Retries[0], "response code: 500") {
			t.Errorf("Retries = %q; want the one after the 500", res.Retries)
		}
		fake.mu.Lock()
		defer fake.mu.Unlock()
		if !bytes.Equal(fake.body.Bytes(), data) {
			t.Errorf("the fake received %d bytes; want the %d of the file", fake.body.Len(), len(data))
		}
		if fake.meta != "filename ZGF0YS5iaW4=" {
			t.Errorf("Upload-Metadata = %q; want filename ZGF0YS5iaW4=", fake.meta)
		}
	})

	t.Run("error", func(t *testing.T) {
		t.Parallel()
		srv := httptest.NewServer(&fakeTus{refuse413: true})
		defer srv.Close()
		_, err := TryUpload(t, Options{Endpoint: srv.URL + "/files/", File: file})
		var ce *ClientError
		if !errors.As(err, &ce) || !strings.Contains(ce.Message, "response code: 413") || !strings.Contains(ce.Message, "too big for the fake") {
			t.Fatalf("TryUpload error = %v; want a ClientError quoting the 413 and its body", err)
		}
		if len(ce.Retries) != 0 {
			t.Errorf("Retries = %q; want none for a 413", ce.Retries)
		}
	})
}
