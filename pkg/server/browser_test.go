package server_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/intake-dev/intake/internal/browser"
	"github.com/intake-dev/intake/pkg/catalog"
)

// TestBrowser uploads with Uppy in headless Chromium (internal/browser) from
// a page on another origin, as a web app would: every request crosses CORS
// and carries a JWT. From an allowed origin the upload succeeds in several
// PATCHes, the download (with the token) is byte-exact and the session
// belongs to the token's subject. From an origin not in --cors-origins the
// browser refuses the upload before intake stores anything, and so it does
// for a token intake refuses, whose 401 Uppy must be able to read.
func TestBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Chromium, and npm ci on first use")
	}
	// Skip (or fail in CI) before any server starts when there is no
	// browser. Two pages, two origins: intake allows only the first.
	allowed := browser.NewPage(t)
	other := browser.NewPage(t)

	const (
		secret = "browser-test-hs256-secret-0123456789abcdef"
		owner  = "browser-user"
		// Four PATCHes of at most 1 MiB; the odd tail makes the last short.
		size      = 3<<20 + 4321
		chunkSize = 1 << 20
		name      = "browser.bin"
	)
	start := func(t *testing.T) (*testServer, string) {
		cfg := testConfig(t, "sqlite")
		cfg.Auth = "jwt"
		cfg.JWTSecret = secret
		cfg.CORSOrigins = allowed.Origin
		ts := startServer(t, cfg)
		return ts, ts.base + cfg.BasePath
	}
	options := func(t *testing.T, endpoint, token string) browser.Options {
		return browser.Options{
			Endpoint:  endpoint,
			Data:      randomBytes(t, size),
			Name:      name,
			Type:      "application/octet-stream",
			ChunkSize: chunkSize,
			Headers:   map[string]string{"Authorization": "Bearer " + token},
		}
	}
	// HS256, subject owner, valid for ten minutes.
	sign := func(t *testing.T, key string) string {
		token, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{
			Subject:   owner,
			ExpiresAt: jwt.NewNumericDate(time.Now().Add(10 * time.Minute)),
		}).SignedString([]byte(key))
		if err != nil {
			t.Fatal(err)
		}
		return token
	}
	token := sign(t, secret)
	nothingStored := func(t *testing.T, ts *testServer) {
		t.Helper()
		sessions, err := ts.srv.Catalog().List(context.Background(), catalog.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(sessions) != 0 {
			t.Errorf("the catalog holds %+v; want nothing", sessions)
		}
	}

	t.Run("allowed origin", func(t *testing.T) {
		t.Parallel()
		ts, endpoint := start(t)
		opts := options(t, endpoint, token)
		res := allowed.Upload(t, opts)

		if len(res.Retries) != 0 {
			t.Errorf("Uppy retried after %q; want no 5xx or dropped connection", res.Retries)
		}
		if !strings.HasPrefix(res.URL, endpoint) {
			t.Fatalf("upload URL %q; want one under %s", res.URL, endpoint)
		}
		var patches int
		for _, r := range res.Requests {
			if r.Method == http.MethodPatch && r.URL == res.URL && r.Status == http.StatusNoContent {
				patches++
			}
		}
		if want := (size + chunkSize - 1) / chunkSize; patches != want {
			t.Errorf("the page's requests %+v; want %d PATCHes answered 204", res.Requests, want)
		}
		// Downloads are the owner's: the token goes along.
		req, err := http.NewRequest(http.MethodGet, res.URL, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: status %d, %v: %.200s", res.URL, resp.StatusCode, err, got)
		}
		if !bytes.Equal(got, opts.Data) {
			t.Fatalf("download: got %d bytes; want the %d uploaded, byte for byte", len(got), size)
		}
		sess, err := ts.srv.Catalog().Get(context.Background(), idOf(res.URL))
		if err != nil {
			t.Fatal(err)
		}
		if sess.Owner != owner {
			t.Errorf("session owner %q; want %q, the token's subject", sess.Owner, owner)
		}
		if sess.State != catalog.StateComplete || sess.Offset != size || sess.Metadata["filename"] != name || sess.Metadata["filetype"] != opts.Type {
			t.Errorf("session = %+v; want complete, %d bytes, filename %s, filetype %s", sess, size, name, opts.Type)
		}
	})

	t.Run("other origin", func(t *testing.T) {
		t.Parallel()
		ts, endpoint := start(t)
		res, err := other.TryUpload(t, options(t, endpoint, token))
		var ue *browser.UploadError
		if !errors.As(err, &ue) || ue.Status != 0 {
			t.Fatalf("upload from %s, not in --cors-origins: %v; want Uppy's error without a response", other.Origin, err)
		}
		if !slices.ContainsFunc(res.Console, func(s string) bool { return strings.Contains(s, "blocked by CORS policy") }) {
			t.Errorf("console %q; want Chromium's CORS refusal", res.Console)
		}
		for _, r := range res.Requests {
			if strings.HasPrefix(r.URL, endpoint) && r.Failure == "" {
				t.Errorf("%s %s reached the page with status %d; want every request to intake refused", r.Method, r.URL, r.Status)
			}
		}
		nothingStored(t, ts)
	})

	t.Run("refused token", func(t *testing.T) {
		t.Parallel()
		ts, endpoint := start(t)
		res, err := allowed.TryUpload(t, options(t, endpoint, sign(t, "another-hs256-secret-0123456789abcdef")))
		// CORS headers on the 401 are what let Uppy see it; without them
		// it is a network error, retried and then reported with status 0.
		var ue *browser.UploadError
		if !errors.As(err, &ue) || ue.Status != http.StatusUnauthorized {
			t.Fatalf("upload with a token signed by another key: %v; want Uppy's error with status 401", err)
		}
		if len(res.Retries) != 0 {
			t.Errorf("Uppy retried after %q; a 401 is final", res.Retries)
		}
		nothingStored(t, ts)
	})
}
