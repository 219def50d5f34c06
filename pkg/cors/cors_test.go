package cors

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestAllowed(t *testing.T) {
	t.Parallel()
	p := New(Options{Origins: []string{"https://app.example.com", "https://*.example.org", "http://127.0.0.1:*"}})
	for origin, want := range map[string]bool{
		"https://app.example.com":         true,
		"https://APP.example.com":         true,
		"http://app.example.com":          false,
		"https://app.example.com:8443":    false,
		"https://evil.com":                false,
		"https://a.example.org":           true,
		"https://a.b.example.org":         true,
		"https://example.org":             false,
		"https://evil.com/.example.org":   false,
		"https://evil.com?.example.org":   false,
		"http://127.0.0.1:3000":           true,
		"http://127.0.0.1":                false,
		"http://127.0.0.1:3000.evil.com":  false,
		"null":                            false,
		"https://app.example.com.evil.io": false,
	} {
		if got := p.Allowed(origin); got != want {
			t.Errorf("Allowed(%q) = %v; want %v", origin, got, want)
		}
	}
	if !New(Options{Origins: []string{"*"}}).Allowed("https://anything.test") {
		t.Error(`"*" does not allow every origin`)
	}
}

func TestHandler(t *testing.T) {
	t.Parallel()
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", "/files/x")
		w.WriteHeader(http.StatusCreated)
	})
	h := New(Options{Origins: []string{"https://app.example.com"}, MaxAge: time.Hour}).Handler(next)

	do := func(method, origin string, hdr map[string]string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, "/files/", nil)
		if origin != "" {
			r.Header.Set("Origin", origin)
		}
		for k, v := range hdr {
			r.Header.Set(k, v)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}

	// Preflight from an allowed origin: answered here, tus headers allowed.
	w := do("OPTIONS", "https://app.example.com", map[string]string{"Access-Control-Request-Method": "PATCH", "Access-Control-Request-Headers": "authorization,upload-offset"})
	if w.Code != http.StatusNoContent || w.Header().Get("Access-Control-Allow-Origin") != "https://app.example.com" ||
		!strings.Contains(w.Header().Get("Access-Control-Allow-Headers"), "Authorization") ||
		!strings.Contains(w.Header().Get("Access-Control-Allow-Methods"), "PATCH") ||
		w.Header().Get("Access-Control-Max-Age") != "3600" {
		t.Fatalf("preflight: %d %v", w.Code, w.Header())
	}
	// A request from an allowed origin reaches next, with the tus headers exposed.
	w = do("POST", "https://app.example.com", nil)
	expose := w.Header().Get("Access-Control-Expose-Headers")
	if w.Code != http.StatusCreated || w.Header().Get("Access-Control-Allow-Credentials") != "" {
		t.Fatalf("allowed POST: %d %v", w.Code, w.Header())
	}
	for _, hdr := range []string{"Location", "Upload-Offset", "Upload-Length", "Upload-Metadata", "Upload-Expires", "Tus-Resumable", "Tus-Version", "Tus-Max-Size", "Tus-Extension", "WWW-Authenticate"} {
		if !strings.Contains(expose, hdr) {
			t.Errorf("Access-Control-Expose-Headers %q lacks %s", expose, hdr)
		}
	}
	// A disallowed origin is refused with JSON, preflight or not, and next never runs.
	for _, method := range []string{"OPTIONS", "POST"} {
		w = do(method, "https://evil.example", map[string]string{"Access-Control-Request-Method": "POST"})
		if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), `"code":"origin_not_allowed"`) || w.Header().Get("Location") != "" {
			t.Errorf("%s from a disallowed origin: %d %s", method, w.Code, w.Body)
		}
	}
	// No Origin: not a browser; passes through without CORS headers.
	w = do("POST", "", nil)
	if w.Code != http.StatusCreated || w.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("request without Origin: %d %v", w.Code, w.Header())
	}
}
