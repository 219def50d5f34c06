package protocol

import (
	"net/http"
	"strings"
	"testing"
)

// The wrapper must leave every working path of tusd working.

func TestCreationAndDownload(t *testing.T) {
	t.Parallel()
	b := setup(t)
	url := b.create(t, 11, "Upload-Metadata", "filename aGVsbG8udHh0,filetype dGV4dC9wbGFpbg==,empty")

	res := b.head(t, url)
	if res.status != http.StatusOK {
		t.Fatalf("HEAD: got %d; want 200", res.status)
	}
	for name, want := range map[string]string{
		"Upload-Offset": "0",
		"Upload-Length": "11",
		"Cache-Control": "no-store",
		"Tus-Resumable": "1.0.0",
	} {
		if got := res.header.Get(name); got != want {
			t.Errorf("HEAD %s: got %q; want %q", name, got, want)
		}
	}
	meta := res.header.Get("Upload-Metadata")
	for _, pair := range []string{"filename aGVsbG8udHh0", "filetype dGV4dC9wbGFpbg=="} {
		if !strings.Contains(meta, pair) {
			t.Errorf("HEAD Upload-Metadata %q lacks %q", meta, pair)
		}
	}

	b.mustPatch(t, url, 0, "hello")
	b.mustPatch(t, url, 5, " world")

	res = b.do(t, http.MethodGet, url, nil, nil)
	if res.status != http.StatusOK || string(res.body) != "hello world" {
		t.Errorf("GET: got %d %q; want 200 %q", res.status, res.body, "hello world")
	}
	res = b.do(t, http.MethodGet, url, http.Header{"Range": {"bytes=6-"}}, nil)
	if res.status != http.StatusPartialContent || string(res.body) != "world" {
		t.Errorf("GET Range: got %d %q; want 206 %q", res.status, res.body, "world")
	}
	res = b.do(t, http.MethodGet, url, http.Header{"Range": {"bytes=50-"}}, nil)
	assertError(t, http.MethodGet, res, http.StatusRequestedRangeNotSatisfiable, "requested_range_not_satisfiable")
	if res.header.Get("Content-Range") == "" {
		t.Error("416 lost its Content-Range")
	}
}

func TestCreationWithUpload(t *testing.T) {
	t.Parallel()
	b := setup(t)
	res := b.do(t, http.MethodPost, b.base, hdr("Upload-Length", "11", "Content-Type", offsetMediaType), strings.NewReader("hello"))
	if res.status != http.StatusCreated || res.header.Get("Upload-Offset") != "5" {
		t.Fatalf("POST with body: got %d %s, offset %q; want 201, 5", res.status, res.body, res.header.Get("Upload-Offset"))
	}
	url := res.header.Get("Location")
	b.mustPatch(t, url, 5, " world")
	if res := b.do(t, http.MethodGet, url, nil, nil); string(res.body) != "hello world" {
		t.Errorf("GET: got %q", res.body)
	}
}

func TestDeferredLength(t *testing.T) {
	t.Parallel()
	b := setup(t)
	res := b.do(t, http.MethodPost, b.base, hdr("Upload-Defer-Length", "1"), nil)
	if res.status != http.StatusCreated {
		t.Fatalf("POST: got %d %s; want 201", res.status, res.body)
	}
	url := res.header.Get("Location")

	res = b.head(t, url)
	if res.header.Get("Upload-Defer-Length") != "1" || res.header.Get("Upload-Length") != "" {
		t.Errorf("HEAD of deferred upload: Upload-Defer-Length %q, Upload-Length %q; want 1 and none",
			res.header.Get("Upload-Defer-Length"), res.header.Get("Upload-Length"))
	}
	b.mustPatch(t, url, 0, "hello")
	b.mustPatch(t, url, 5, " world", "Upload-Length", "11")

	res = b.head(t, url)
	if res.header.Get("Upload-Length") != "11" || res.header.Get("Upload-Defer-Length") != "" {
		t.Errorf("HEAD after declaring: Upload-Length %q, Upload-Defer-Length %q; want 11 and none",
			res.header.Get("Upload-Length"), res.header.Get("Upload-Defer-Length"))
	}
	if res := b.do(t, http.MethodGet, url, nil, nil); string(res.body) != "hello world" {
		t.Errorf("GET: got %q", res.body)
	}
}

func TestTermination(t *testing.T) {
	t.Parallel()
	b := setup(t)
	url := b.create(t, 5)
	b.mustPatch(t, url, 0, "he")

	res := b.do(t, http.MethodDelete, url, hdr(), nil)
	if res.status != http.StatusNoContent {
		t.Fatalf("DELETE: got %d %s; want 204", res.status, res.body)
	}
	assertError(t, http.MethodHead, b.head(t, url), http.StatusNotFound, "")
	assertError(t, http.MethodPatch, b.patch(t, url, 2, "llo"), http.StatusNotFound, "upload_not_found")
	if n := b.uploads(t); n != 0 {
		t.Errorf("uploads after termination: %d; want 0", n)
	}
}

func TestConcatenation(t *testing.T) {
	t.Parallel()
	for _, layout := range []string{"outside", "inside", "inside-noslash"} {
		t.Run(layout, func(t *testing.T) {
			t.Parallel()
			b := setupWith(t, testConfig{layout: layout})
			a := b.create(t, 5, "Upload-Concat", "partial")
			c := b.create(t, 6, "Upload-Concat", "partial")
			b.mustPatch(t, a, 0, "hello")
			b.mustPatch(t, c, 0, " world")
			if got := b.head(t, a).header.Get("Upload-Concat"); got != "partial" {
				t.Errorf("HEAD partial: Upload-Concat %q; want partial", got)
			}

			// One absolute and one relative URL, as the spec allows.
			relative := strings.TrimPrefix(c, b.srv.URL)
			res := b.do(t, http.MethodPost, b.base, hdr("Upload-Concat", "final;"+a+" "+relative, "Upload-Metadata", "filename aGVsbG8udHh0"), nil)
			if res.status != http.StatusCreated {
				t.Fatalf("final: got %d %s; want 201", res.status, res.body)
			}
			final := res.header.Get("Location")

			res = b.head(t, final)
			if res.header.Get("Upload-Length") != "11" || res.header.Get("Upload-Offset") != "11" {
				t.Errorf("HEAD final: length %q, offset %q; want 11, 11", res.header.Get("Upload-Length"), res.header.Get("Upload-Offset"))
			}
			if got := res.header.Get("Upload-Concat"); !strings.HasPrefix(got, "final;") {
				t.Errorf("HEAD final: Upload-Concat %q", got)
			}
			if res := b.do(t, http.MethodGet, final, nil, nil); string(res.body) != "hello world" {
				t.Errorf("GET final: got %q", res.body)
			}
			// "The Server MUST respond with the 403 Forbidden status to PATCH
			// requests against a final upload URL"
			assertError(t, http.MethodPatch, b.patch(t, final, 11, "!"), http.StatusForbidden, "modify_final")
		})
	}
}

func TestOptions(t *testing.T) {
	t.Parallel()
	b := setup(t)
	res := b.do(t, http.MethodOptions, b.base, nil, nil)
	if res.status != http.StatusOK && res.status != http.StatusNoContent {
		t.Fatalf("OPTIONS: got %d; want 200 or 204", res.status)
	}
	if got := res.header.Get("Tus-Version"); got != "1.0.0" {
		t.Errorf("Tus-Version: got %q", got)
	}
	if got := res.header.Get("Tus-Max-Size"); got != "1048576" {
		t.Errorf("Tus-Max-Size: got %q", got)
	}
	ext := "," + res.header.Get("Tus-Extension") + ","
	for _, e := range []string{"creation", "creation-with-upload", "creation-defer-length", "termination", "concatenation"} {
		if !strings.Contains(ext, ","+e+",") {
			t.Errorf("Tus-Extension %q lacks %s", ext, e)
		}
	}
}
