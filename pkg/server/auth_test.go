package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/intake-dev/intake/pkg/catalog"
	"github.com/intake-dev/intake/pkg/client"
	"github.com/intake-dev/intake/pkg/config"
	"github.com/intake-dev/intake/pkg/server"
)

// jwtSecret is the HS256 key of the servers in these tests.
const jwtSecret = "intake-test-jwt-secret-0123456789abcdef"

// missingID is an upload id no server here ever hands out.
const missingID = "ffffffffffffffffffffffffffffffff"

// withJWT turns on --auth jwt.
func withJWT(cfg config.Config) config.Config {
	cfg.Auth = "jwt"
	cfg.JWTSecret = jwtSecret
	return cfg
}

// mint returns a token for sub valid for an hour, with extra claims merged
// in (nil deletes one).
func mint(t testing.TB, sub string, extra jwt.MapClaims) string {
	t.Helper()
	c := jwt.MapClaims{"sub": sub, "iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
			continue
		}
		c[k] = v
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(jwtSecret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// as returns a tus client that sends token.
func (ts *testServer) as(token string) *client.Client {
	return &client.Client{Endpoint: ts.client.Endpoint, Header: http.Header{"Authorization": {"Bearer " + token}}}
}

// bearerHeader returns request headers carrying token, plus kv pairs.
func bearerHeader(token string, kv ...string) map[string]string {
	h := map[string]string{"Authorization": "Bearer " + token}
	for i := 0; i+1 < len(kv); i += 2 {
		h[kv[i]] = kv[i+1]
	}
	return h
}

// downloadAs GETs a complete upload with token.
func (ts *testServer) downloadAs(token, url string) []byte {
	ts.t.Helper()
	resp, body := ts.do(http.MethodGet, url, nil, bearerHeader(token))
	if resp.StatusCode != http.StatusOK {
		ts.t.Fatalf("GET %s: %d %s", url, resp.StatusCode, body)
	}
	return body
}

// session returns an upload's session from the catalog.
func (ts *testServer) session(t *testing.T, url string) catalog.Session {
	t.Helper()
	sess, err := ts.srv.Catalog().Get(context.Background(), idOf(url))
	if err != nil {
		t.Fatalf("catalog Get %s: %v", idOf(url), err)
	}
	return sess
}

// fileSize is the size of an upload's bytes on disk.
func (ts *testServer) fileSize(t *testing.T, url string) int64 {
	t.Helper()
	st, err := os.Stat(filepath.Join(ts.cfg.UploadsDir(), idOf(url)))
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// wantError checks a JSON error response.
func wantError(t *testing.T, what string, resp *http.Response, body []byte, status int, code string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Errorf("%s: status %d (%s); want %d %s", what, resp.StatusCode, bytes.TrimSpace(body), status, code)
		return
	}
	if resp.Request.Method == http.MethodHead {
		return
	}
	if got := errorCode(body); got != code {
		t.Errorf("%s: code %q (%s); want %q", what, got, bytes.TrimSpace(body), code)
	}
}

// patchHeader is what a PATCH at offset sends.
func patchHeader(token string, offset int64) map[string]string {
	return bearerHeader(token, "Content-Type", "application/offset+octet-stream", "Upload-Offset", strconv.FormatInt(offset, 10))
}

// TestOwnerIsolation: another owner's upload does not exist for bob, on
// every method, and his attempts change nothing of alice's.
func TestOwnerIsolation(t *testing.T) {
	forEachBackend(t, func(t *testing.T, cfg config.Config) {
		ts := startServer(t, withJWT(cfg))
		ctx := context.Background()
		alice, bob := mint(t, "alice", nil), mint(t, "bob", nil)
		data := randomBytes(t, 1000)

		inProgress, _, err := ts.as(alice).Create(ctx, client.Upload{Size: 1000, Metadata: map[string]string{"filename": "a.bin"}}, bytes.NewReader(data[:400]), 400)
		if err != nil {
			t.Fatal(err)
		}
		complete, _, err := ts.as(alice).Create(ctx, client.Upload{Size: 1000}, bytes.NewReader(data), 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range []string{inProgress, complete} {
			if got := ts.session(t, u).Owner; got != "alice" {
				t.Fatalf("owner of %s = %q; want alice (the token's sub)", idOf(u), got)
			}
		}
		before := ts.snapshot(t)

		missing := ts.client.Endpoint + missingID
		requests := []struct {
			name   string
			method string
			url    func(upload string) string
			body   []byte
			hdr    func(upload string) map[string]string
		}{
			{"HEAD", http.MethodHead, tusURL, nil, func(string) map[string]string { return bearerHeader(bob) }},
			{"PATCH", http.MethodPatch, tusURL, []byte("0123456789"), func(u string) map[string]string {
				off := int64(400)
				if u == complete {
					off = 1000
				}
				return patchHeader(bob, off)
			}},
			{"PATCH declaring a length", http.MethodPatch, tusURL, nil, func(string) map[string]string {
				h := patchHeader(bob, 400)
				h["Upload-Length"] = "500"
				return h
			}},
			{"GET", http.MethodGet, tusURL, nil, func(string) map[string]string { return bearerHeader(bob) }},
			{"DELETE", http.MethodDelete, tusURL, nil, func(string) map[string]string { return bearerHeader(bob) }},
			{"GET /v1/uploads", http.MethodGet, func(u string) string { return ts.base + "/v1/uploads/" + idOf(u) },
				nil, func(string) map[string]string { return bearerHeader(bob) }},
		}
		for _, rq := range requests {
			// The answer for an unknown id is the answer for alice's.
			notThere, notThereBody := ts.do(rq.method, rq.url(missing), rq.body, rq.hdr(missing))
			if notThere.StatusCode != http.StatusNotFound {
				t.Fatalf("%s of an unknown upload: %d %s; want 404", rq.name, notThere.StatusCode, notThereBody)
			}
			for _, u := range []string{inProgress, complete} {
				resp, body := ts.do(rq.method, rq.url(u), rq.body, rq.hdr(u))
				wantError(t, "bob's "+rq.name+" of alice's upload", resp, body, http.StatusNotFound, errorCode(notThereBody))
				if rq.method != http.MethodHead && string(body) != string(notThereBody) {
					t.Errorf("bob's %s of alice's upload: body %s; want the unknown upload's %s", rq.name, body, notThereBody)
				}
			}
		}

		if d := before.diff(ts.snapshot(t)); d != "" {
			t.Fatalf("bob's requests changed alice's uploads:\n%s", d)
		}
		info, err := ts.as(alice).Head(ctx, inProgress)
		if err != nil || info.Offset != 400 || info.Size != 1000 {
			t.Fatalf("alice's HEAD = %+v, %v; want offset 400 of 1000", info, err)
		}
		if err := ts.as(alice).Resume(ctx, inProgress, bytes.NewReader(data), 1000, 0, 0); err != nil {
			t.Fatal(err)
		}
		for _, u := range []string{inProgress, complete} {
			if got := ts.downloadAs(alice, u); !bytes.Equal(got, data) {
				t.Fatalf("alice's %s: %d bytes differ from the %d uploaded", idOf(u), len(got), len(data))
			}
		}
		resp, body := ts.do(http.MethodGet, ts.base+"/v1/uploads/"+idOf(complete), nil, bearerHeader(alice))
		var v server.UploadView
		if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &v) != nil || v.Owner != "alice" {
			t.Fatalf("alice's GET /v1/uploads: %d %s; want 200 with owner alice", resp.StatusCode, body)
		}
		// And alice cannot delete what bob would have created either way:
		// bob's DELETE did nothing, alice's works.
		if err := ts.as(alice).Delete(ctx, inProgress); err != nil {
			t.Fatalf("alice's DELETE: %v", err)
		}
	})
}

func tusURL(u string) string { return u }

// TestNoTokenIs401: every tus method and /v1 needs a token; the refusal is
// a 401 challenge and changes nothing. OPTIONS (tus discovery, CORS
// preflights) and the health endpoints stay open.
func TestNoTokenIs401(t *testing.T) {
	forEachBackend(t, func(t *testing.T, cfg config.Config) {
		ts := startServer(t, withJWT(cfg))
		ctx := context.Background()
		alice := mint(t, "alice", nil)
		url, _, err := ts.as(alice).Create(ctx, client.Upload{Size: 100}, bytes.NewReader([]byte("hello")), 5)
		if err != nil {
			t.Fatal(err)
		}
		before := ts.snapshot(t)

		forged, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "alice", "exp": time.Now().Add(time.Hour).Unix()}).
			SignedString([]byte("not-the-server-secret-0123456789abcdef"))
		if err != nil {
			t.Fatal(err)
		}
		creation := map[string]string{"Upload-Length": "5", "Content-Type": "application/offset+octet-stream"}
		requests := []struct {
			method, url string
			body        []byte
			hdr         map[string]string
		}{
			{http.MethodPost, ts.client.Endpoint, []byte("12345"), creation},
			{http.MethodPost, ts.client.Endpoint, nil, map[string]string{"Upload-Defer-Length": "1"}},
			{http.MethodHead, url, nil, nil},
			{http.MethodPatch, url, []byte("world"), map[string]string{"Content-Type": "application/offset+octet-stream", "Upload-Offset": "5"}},
			{http.MethodGet, url, nil, nil},
			{http.MethodDelete, url, nil, nil},
			{http.MethodPost, url, nil, map[string]string{"X-HTTP-Method-Override": "DELETE"}},
			{http.MethodGet, ts.base + "/v1/uploads/" + idOf(url), nil, nil},
		}
		for _, rq := range requests {
			what := rq.method + " " + strings.TrimPrefix(rq.url, ts.base)
			for _, cred := range []struct{ name, authz, challenge, code string }{
				{"no token", "", `Bearer realm="intake"`, "missing_token"},
				{"forged token", "Bearer " + forged, `Bearer realm="intake", error="invalid_token"`, "invalid_token"},
			} {
				hdr := map[string]string{}
				for k, v := range rq.hdr {
					hdr[k] = v
				}
				if cred.authz != "" {
					hdr["Authorization"] = cred.authz
				}
				resp, body := ts.do(rq.method, rq.url, rq.body, hdr)
				wantError(t, what+" with "+cred.name, resp, body, http.StatusUnauthorized, cred.code)
				got := resp.Header.Get("WWW-Authenticate")
				if cred.authz == "" && got != cred.challenge || cred.authz != "" && !strings.HasPrefix(got, cred.challenge) {
					t.Errorf("%s with %s: WWW-Authenticate %q; want %q", what, cred.name, got, cred.challenge)
				}
			}
		}
		if d := before.diff(ts.snapshot(t)); d != "" {
			t.Fatalf("unauthenticated requests changed something:\n%s", d)
		}

		resp, _ := ts.do(http.MethodOptions, ts.client.Endpoint, nil, nil)
		if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNoContent || resp.Header.Get("Tus-Version") != "1.0.0" ||
			!strings.Contains(resp.Header.Get("Tus-Extension"), "creation") {
			t.Errorf("OPTIONS without a token: %d, Tus-Version %q, Tus-Extension %q; want tus discovery",
				resp.StatusCode, resp.Header.Get("Tus-Version"), resp.Header.Get("Tus-Extension"))
		}
		for _, p := range []string{"/healthz", "/readyz"} {
			if resp, body := ts.do(http.MethodGet, ts.base+p, nil, nil); resp.StatusCode != http.StatusOK {
				t.Errorf("GET %s without a token: %d %s; want 200", p, resp.StatusCode, body)
			}
		}
	})
}

// TestTokenRefreshMidUpload: a token that expires between two PATCHes gets
// a 401 challenge and moves nothing; a fresh token for the same sub resumes
// from the offset HEAD reports and the upload completes byte-exact.
func TestTokenRefreshMidUpload(t *testing.T) {
	forEachBackend(t, func(t *testing.T, cfg config.Config) {
		ts := startServer(t, withJWT(cfg))
		ctx := context.Background()
		data := randomBytes(t, 300000)
		first := mint(t, "carol", nil)
		url, _, err := ts.as(first).Create(ctx, client.Upload{Size: int64(len(data))}, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		if off, err := ts.as(first).Patch(ctx, url, 0, bytes.NewReader(data[:100000]), 100000, -1); err != nil || off != 100000 {
			t.Fatalf("first PATCH: %d, %v", off, err)
		}

		// The same token, as it is a little later: expired beyond the
		// server's 30s leeway.
		expired := mint(t, "carol", jwt.MapClaims{
			"iat": time.Now().Add(-time.Hour).Unix(),
			"exp": time.Now().Add(-2 * time.Minute).Unix(),
		})
		resp, body := ts.do(http.MethodPatch, url, data[100000:200000], patchHeader(expired, 100000))
		wantError(t, "PATCH with an expired token", resp, body, http.StatusUnauthorized, "invalid_token")
		if ch := resp.Header.Get("WWW-Authenticate"); !strings.Contains(ch, `error="invalid_token"`) || !strings.Contains(ch, "expired") {
			t.Errorf("WWW-Authenticate = %q; want an invalid_token challenge saying the token expired", ch)
		}
		if strings.Contains(string(body), expired) || strings.Contains(resp.Header.Get("WWW-Authenticate"), expired) {
			t.Error("the 401 echoes the token")
		}
		if sess := ts.session(t, url); sess.Offset != 100000 || sess.State != catalog.StateReceiving {
			t.Fatalf("session after the 401 = offset %d, %s; want 100000, receiving", sess.Offset, sess.State)
		}
		if n := ts.fileSize(t, url); n != 100000 {
			t.Fatalf("%d bytes on disk after the 401; want 100000", n)
		}

		fresh := mint(t, "carol", nil)
		info, err := ts.as(fresh).Head(ctx, url)
		if err != nil || info.Offset != 100000 {
			t.Fatalf("HEAD with a fresh token = %+v, %v; want offset 100000", info, err)
		}
		if err := ts.as(fresh).Resume(ctx, url, bytes.NewReader(data), int64(len(data)), 150000, 0); err != nil {
			t.Fatal(err)
		}
		if got := ts.downloadAs(fresh, url); !bytes.Equal(got, data) {
			t.Fatalf("resumed upload: %d bytes differ from the %d sent", len(got), len(data))
		}
		if sess := ts.session(t, url); sess.State != catalog.StateComplete || sess.Owner != "carol" {
			t.Fatalf("session = %s, owner %q; want complete, carol", sess.State, sess.Owner)
		}
	})
}

// TestConcatenationAcrossOwners: a final upload may only name its owner's
// partial uploads; naming anyone else's is 404 and creates nothing.
func TestConcatenationAcrossOwners(t *testing.T) {
	forEachBackend(t, func(t *testing.T, cfg config.Config) {
		ts := startServer(t, withJWT(cfg))
		ctx := context.Background()
		alice, bob := mint(t, "alice", nil), mint(t, "bob", nil)
		partial := func(token string, p []byte) string {
			u, _, err := ts.as(token).Create(ctx, client.Upload{Size: int64(len(p)), Partial: true}, bytes.NewReader(p), int64(len(p)))
			if err != nil {
				t.Fatal(err)
			}
			return u
		}
		a, b1, b2 := randomBytes(t, 30000), randomBytes(t, 20000), randomBytes(t, 10001)
		pa, pb1, pb2 := partial(alice, a), partial(bob, b1), partial(bob, b2)
		before := ts.snapshot(t)

		for _, tc := range []struct {
			name  string
			token string
			parts []string
		}{
			{"bob's final with alice's partial", bob, []string{pb1, pa}},
			{"bob's final of alice's partial only", bob, []string{pa}},
			{"alice's final with bob's partial", alice, []string{pa, pb2}},
		} {
			_, _, err := ts.as(tc.token).Create(ctx, client.Upload{Final: tc.parts}, nil, 0)
			if !client.IsStatus(err, http.StatusNotFound) {
				t.Errorf("%s: %v; want 404", tc.name, err)
			}
		}
		if d := before.diff(ts.snapshot(t)); d != "" {
			t.Fatalf("refused concatenations changed something:\n%s", d)
		}

		final, _, err := ts.as(bob).Create(ctx, client.Upload{Final: []string{pb1, pb2}}, nil, 0)
		if err != nil {
			t.Fatalf("bob's final of his own partials: %v", err)
		}
		if got, want := ts.downloadAs(bob, final), append(append([]byte{}, b1...), b2...); !bytes.Equal(got, want) {
			t.Fatal("bob's concatenated bytes differ")
		}
		if sess := ts.session(t, final); sess.Owner != "bob" || !sess.IsFinal || sess.State != catalog.StateComplete {
			t.Fatalf("final session = %+v; want bob's, final, complete", sess)
		}
	})
}

// TestTokenMaxSize: max_size caps a declared size at creation, a deferred
// upload as it grows (keeping the bytes up to the cap) and a length
// declared later.
func TestTokenMaxSize(t *testing.T) {
	forEachBackend(t, func(t *testing.T, cfg config.Config) {
		ts := startServer(t, withJWT(cfg))
		ctx := context.Background()
		const max = 1000
		tok := mint(t, "dave", jwt.MapClaims{"max_size": max})
		data := randomBytes(t, 2*max)

		before := ts.snapshot(t)
		for _, tc := range []struct {
			name string
			hdr  map[string]string
			body []byte
		}{
			{"Upload-Length over", bearerHeader(tok, "Upload-Length", strconv.Itoa(max+1)), nil},
			{"Upload-Length over with a body", bearerHeader(tok, "Upload-Length", strconv.Itoa(max+1), "Content-Type", "application/offset+octet-stream"), data[:10]},
			{"partial upload over", bearerHeader(tok, "Upload-Length", strconv.Itoa(max+1), "Upload-Concat", "partial"), nil},
			// tusd would create this one and then fail its body, leaving
			// an upload whose URL the client never gets.
			{"deferred with a body over", bearerHeader(tok, "Upload-Defer-Length", "1", "Content-Type", "application/offset+octet-stream"), data[:max+1]},
		} {
			resp, body := ts.do(http.MethodPost, ts.client.Endpoint, tc.body, tc.hdr)
			wantError(t, "POST "+tc.name, resp, body, http.StatusRequestEntityTooLarge, "max_size_exceeded")
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("POST %s: Content-Type %q; want JSON", tc.name, ct)
			}
		}
		if d := before.diff(ts.snapshot(t)); d != "" {
			t.Fatalf("refused creations stored something:\n%s", d)
		}

		// Exactly the maximum is fine.
		url, off, err := ts.as(tok).Create(ctx, client.Upload{Size: max}, bytes.NewReader(data[:max]), max)
		if err != nil || off != max {
			t.Fatalf("creation of exactly max_size: %d, %v", off, err)
		}

		// A deferred upload grows up to the maximum, and no further.
		url, _, err = ts.as(tok).Create(ctx, client.Upload{Defer: true}, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		if off, err := ts.as(tok).Patch(ctx, url, 0, bytes.NewReader(data[:max-100]), max-100, -1); err != nil || off != max-100 {
			t.Fatalf("PATCH under max_size: %d, %v", off, err)
		}
		resp, body := ts.do(http.MethodPatch, url, data[max-100:max+100], patchHeader(tok, max-100))
		wantError(t, "PATCH growing past max_size", resp, body, http.StatusRequestEntityTooLarge, "max_size_exceeded")
		info, err := ts.as(tok).Head(ctx, url)
		if err != nil || info.Offset != max || info.Size != -1 {
			t.Fatalf("HEAD after the 413 = %+v, %v; want offset %d, length still deferred", info, err, max)
		}
		if sess := ts.session(t, url); sess.Offset != max || !sess.SizeDeferred() || sess.State != catalog.StateReceiving {
			t.Fatalf("session after the 413 = offset %d, size %v, %s; want %d, deferred, receiving", sess.Offset, sess.Size, sess.State, max)
		}
		if n := ts.fileSize(t, url); n != max {
			t.Fatalf("%d bytes on disk after the 413; want %d", n, max)
		}
		// Not one byte more, even alone.
		resp, body = ts.do(http.MethodPatch, url, data[max:max+1], patchHeader(tok, max))
		wantError(t, "PATCH one byte past max_size", resp, body, http.StatusRequestEntityTooLarge, "max_size_exceeded")
		if off, err := ts.as(tok).Patch(ctx, url, max, nil, 0, max); err != nil || off != max {
			t.Fatalf("declaring the length at max_size: %d, %v", off, err)
		}
		if got := ts.downloadAs(tok, url); !bytes.Equal(got, data[:max]) {
			t.Fatal("the deferred upload's bytes differ from the first max_size bytes sent")
		}

		// Declaring a length over the maximum.
		url, _, err = ts.as(tok).Create(ctx, client.Upload{Defer: true}, bytes.NewReader(data[:10]), 10)
		if err != nil {
			t.Fatal(err)
		}
		before = ts.snapshot(t)
		for _, tc := range []struct {
			name string
			body []byte
		}{{"alone", nil}, {"with bytes", data[10:20]}} {
			hdr := patchHeader(tok, 10)
			hdr["Upload-Length"] = strconv.Itoa(max + 1)
			resp, body := ts.do(http.MethodPatch, url, tc.body, hdr)
			wantError(t, "PATCH declaring a length over max_size "+tc.name, resp, body, http.StatusRequestEntityTooLarge, "max_size_exceeded")
		}
		if d := before.diff(ts.snapshot(t)); d != "" {
			t.Fatalf("refused length declarations changed something:\n%s", d)
		}
		if info, err := ts.as(tok).Head(ctx, url); err != nil || info.Size != -1 || info.Offset != 10 {
			t.Fatalf("HEAD = %+v, %v; want offset 10, length deferred", info, err)
		}
	})
}

// TestTokenAllowedTypes: allowed_types decides which filetype a token may
// declare.
func TestTokenAllowedTypes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, cfg config.Config) {
		ts := startServer(t, withJWT(cfg))
		ctx := context.Background()
		tok := mint(t, "erin", jwt.MapClaims{"allowed_types": []string{"image/*", "application/pdf"}})
		before := ts.snapshot(t)
		for _, md := range []map[string]string{
			{"filetype": "video/mp4"},
			{"filetype": "imagex/png"},
			{"filetype": "application/pdfx"},
			{"filename": "no-type.bin"},
			nil,
		} {
			_, _, err := ts.as(tok).Create(ctx, client.Upload{Size: 10, Metadata: md}, nil, 0)
			var se *client.StatusError
			if !asStatus(err, &se) || se.Status != http.StatusUnsupportedMediaType || se.Code != "type_not_allowed" {
				t.Errorf("creation with metadata %v: %v; want 415 type_not_allowed", md, err)
			}
		}
		if d := before.diff(ts.snapshot(t)); d != "" {
			t.Fatalf("refused creations stored something:\n%s", d)
		}
		// Concatenation: the partials are checked; the final needs no type,
		// but one it declares is checked like any other.
		var parts []string
		for range 2 {
			u, _, err := ts.as(tok).Create(ctx, client.Upload{Size: 3, Partial: true, Metadata: map[string]string{"filetype": "image/png"}}, bytes.NewReader([]byte("abc")), 3)
			if err != nil {
				t.Fatal(err)
			}
			parts = append(parts, u)
		}
		before = ts.snapshot(t)
		_, _, err := ts.as(tok).Create(ctx, client.Upload{Final: parts, Metadata: map[string]string{"filetype": "video/mp4"}}, nil, 0)
		var se *client.StatusError
		if !asStatus(err, &se) || se.Status != http.StatusUnsupportedMediaType || se.Code != "type_not_allowed" {
			t.Errorf("final upload declaring video/mp4: %v; want 415 type_not_allowed", err)
		}
		if d := before.diff(ts.snapshot(t)); d != "" {
			t.Fatalf("a refused final upload stored something:\n%s", d)
		}
		for _, md := range []map[string]string{nil, {"filetype": "image/png"}} {
			if _, _, err := ts.as(tok).Create(ctx, client.Upload{Final: parts, Metadata: md}, nil, 0); err != nil {
				t.Errorf("final upload with metadata %v: %v; want 201", md, err)
			}
		}

		for _, typ := range []string{"image/png", "IMAGE/JPEG", "application/pdf", "application/pdf; charset=binary"} {
			url, _, err := ts.as(tok).Create(ctx, client.Upload{Size: 3, Metadata: map[string]string{"filetype": typ}}, bytes.NewReader([]byte("abc")), 3)
			if err != nil {
				t.Errorf("creation with filetype %q: %v; want 201", typ, err)
				continue
			}
			if sess := ts.session(t, url); sess.Owner != "erin" || sess.Metadata["filetype"] != typ {
				t.Errorf("session = owner %q, metadata %v", sess.Owner, sess.Metadata)
			}
		}
	})
}

// TestTokenScopedToOneUpload: a token with upload_id may resume that upload
// and nothing else: other uploads of the same owner are 404, creating is
// 403.
func TestTokenScopedToOneUpload(t *testing.T) {
	forEachBackend(t, func(t *testing.T, cfg config.Config) {
		ts := startServer(t, withJWT(cfg))
		ctx := context.Background()
		owner := mint(t, "frank", nil)
		data := randomBytes(t, 5000)
		x, _, err := ts.as(owner).Create(ctx, client.Upload{Size: 5000}, bytes.NewReader(data[:1000]), 1000)
		if err != nil {
			t.Fatal(err)
		}
		y, _, err := ts.as(owner).Create(ctx, client.Upload{Size: 5000}, bytes.NewReader(data[:1000]), 1000)
		if err != nil {
			t.Fatal(err)
		}
		scoped := mint(t, "frank", jwt.MapClaims{"upload_id": idOf(x)})
		// A scope naming another owner's upload gives nothing either.
		stranger := mint(t, "grace", jwt.MapClaims{"upload_id": idOf(x)})

		before := ts.snapshot(t)
		for _, tc := range []struct {
			name, method, url string
			hdr               map[string]string
			body              []byte
			status            int
			code              string
		}{
			{"HEAD Y", http.MethodHead, y, bearerHeader(scoped), nil, http.StatusNotFound, ""},
			{"PATCH Y", http.MethodPatch, y, patchHeader(scoped, 1000), data[1000:2000], http.StatusNotFound, "upload_not_found"},
			{"DELETE Y", http.MethodDelete, y, bearerHeader(scoped), nil, http.StatusNotFound, "upload_not_found"},
			{"GET /v1/uploads/Y", http.MethodGet, ts.base + "/v1/uploads/" + idOf(y), bearerHeader(scoped), nil, http.StatusNotFound, "upload_not_found"},
			{"POST", http.MethodPost, ts.client.Endpoint, bearerHeader(scoped, "Upload-Length", "10"), nil, http.StatusForbidden, "token_scope"},
			{"POST deferred", http.MethodPost, ts.client.Endpoint, bearerHeader(scoped, "Upload-Defer-Length", "1"), nil, http.StatusForbidden, "token_scope"},
			{"POST partial", http.MethodPost, ts.client.Endpoint, bearerHeader(scoped, "Upload-Length", "10", "Upload-Concat", "partial"), nil, http.StatusForbidden, "token_scope"},
			{"another owner's HEAD X", http.MethodHead, x, bearerHeader(stranger), nil, http.StatusNotFound, ""},
			{"another owner's PATCH X", http.MethodPatch, x, patchHeader(stranger, 1000), data[1000:2000], http.StatusNotFound, "upload_not_found"},
			{"another owner's GET /v1/uploads/X", http.MethodGet, ts.base + "/v1/uploads/" + idOf(x), bearerHeader(stranger), nil, http.StatusNotFound, "upload_not_found"},
		} {
			resp, body := ts.do(tc.method, tc.url, tc.body, tc.hdr)
			wantError(t, "scoped "+tc.name, resp, body, tc.status, tc.code)
		}
		if d := before.diff(ts.snapshot(t)); d != "" {
			t.Fatalf("refused requests of a scoped token changed something:\n%s", d)
		}

		sc := ts.as(scoped)
		if info, err := sc.Head(ctx, x); err != nil || info.Offset != 1000 {
			t.Fatalf("scoped HEAD X = %+v, %v; want offset 1000", info, err)
		}
		if resp, body := ts.do(http.MethodGet, ts.base+"/v1/uploads/"+idOf(x), nil, bearerHeader(scoped)); resp.StatusCode != http.StatusOK {
			t.Fatalf("scoped GET /v1/uploads/X: %d %s; want 200", resp.StatusCode, body)
		}
		if off, err := sc.Patch(ctx, x, 1000, bytes.NewReader(data[1000:]), 4000, -1); err != nil || off != 5000 {
			t.Fatalf("scoped PATCH X: %d, %v", off, err)
		}
		if got := ts.downloadAs(scoped, x); !bytes.Equal(got, data) {
			t.Fatal("X's bytes differ")
		}
		if sess := ts.session(t, y); sess.Offset != 1000 || sess.State != catalog.StateReceiving {
			t.Fatalf("Y = offset %d, %s; want untouched", sess.Offset, sess.State)
		}
	})
}

// get sends a GET with an optional Authorization header.
func get(t *testing.T, url, authz string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// adminList GETs an /admin/v1/uploads list and returns its owners by id.
func adminList(t *testing.T, url, authz string) map[string]string {
	t.Helper()
	resp, body := get(t, url, authz)
	var list struct{ Uploads []server.UploadView }
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &list) != nil {
		t.Fatalf("GET /admin/v1/uploads: %d %s; want a 200 list", resp.StatusCode, body)
	}
	owners := map[string]string{}
	for _, u := range list.Uploads {
		owners[u.ID] = u.Owner
	}
	return owners
}

// TestAdminEndpoints: where /metrics and the admin API are served, and
// what protects them.
func TestAdminEndpoints(t *testing.T) {
	t.Parallel()
	const adminToken = "admin-token-0123456789abcdef"
	setup := func(t *testing.T, adminListen bool, token string) (ts *testServer, admin string, ids map[string]string) {
		t.Helper()
		cfg := withJWT(testConfig(t, "sqlite"))
		if adminListen {
			cfg.AdminListen = "127.0.0.1:0"
		}
		cfg.AdminToken = token
		ts = startServer(t, cfg)
		admin = ts.base
		if a := ts.srv.AdminAddr(); a != nil {
			admin = "http://" + a.String()
		} else if adminListen {
			t.Fatal("AdminAddr is nil with AdminListen set")
		}
		ids = map[string]string{}
		for _, owner := range []string{"alice", "bob"} {
			u, _, err := ts.as(mint(t, owner, nil)).Create(context.Background(), client.Upload{Size: 1}, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			ids[idOf(u)] = owner
		}
		return ts, admin, ids
	}
	checkList := func(t *testing.T, got, want map[string]string) {
		t.Helper()
		for id, owner := range want {
			if got[id] != owner {
				t.Errorf("admin list has %s as %q; want owner %s (list %v)", id, got[id], owner, got)
			}
		}
	}

	t.Run("admin listener", func(t *testing.T) {
		t.Parallel()
		ts, admin, ids := setup(t, true, "")
		if admin == ts.base {
			t.Fatal("the admin address is the public one")
		}
		if resp, body := get(t, admin+"/metrics", ""); resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "intake_uploads_created_total 2") {
			t.Errorf("admin /metrics: %d; want 200 with the upload counters", resp.StatusCode)
		}
		checkList(t, adminList(t, admin+"/admin/v1/uploads", ""), ids)
		for id, owner := range ids {
			resp, body := get(t, admin+"/admin/v1/uploads/"+id, "")
			var v server.UploadView
			if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &v) != nil || v.Owner != owner {
				t.Errorf("admin GET %s: %d %s; want owner %s", id, resp.StatusCode, body, owner)
			}
		}
		// Nothing of it on the public address, with or without a token.
		for _, p := range []string{"/metrics", "/admin/v1/uploads", "/admin/v1/uploads/" + missingID} {
			for _, authz := range []string{"", "Bearer " + mint(t, "alice", nil)} {
				resp, body := get(t, ts.base+p, authz)
				wantError(t, "public GET "+p, resp, body, http.StatusNotFound, "not_found")
			}
		}
		// And no tus or /v1 on the admin address.
		for _, p := range []string{ts.cfg.BasePath, "/v1/uploads/" + missingID} {
			resp, body := get(t, admin+p, "")
			wantError(t, "admin GET "+p, resp, body, http.StatusNotFound, "not_found")
		}
	})

	t.Run("admin listener with token", func(t *testing.T) {
		t.Parallel()
		ts, admin, ids := setup(t, true, adminToken)
		userToken := "Bearer " + mint(t, "alice", nil)
		var message string
		for _, p := range []string{"/metrics", "/admin/v1/uploads"} {
			for _, authz := range []string{"", "Bearer wrong", "Bearer " + adminToken + "x", adminToken, "Basic " + adminToken, userToken} {
				resp, body := get(t, admin+p, authz)
				wantError(t, "admin GET "+p+" with "+strconv.Quote(authz), resp, body, http.StatusUnauthorized, "admin_token_required")
				if resp.Header.Get("WWW-Authenticate") == "" {
					t.Errorf("admin GET %s: 401 without WWW-Authenticate", p)
				}
				var e struct{ Error struct{ Message string } }
				_ = json.Unmarshal(body, &e)
				if message == "" {
					message = e.Error.Message
				}
				if e.Error.Message != message || strings.Contains(string(body), adminToken) {
					t.Errorf("admin 401 message %q; want the constant %q, never the token", e.Error.Message, message)
				}
			}
		}
		if resp, _ := get(t, admin+"/metrics", "Bearer "+adminToken); resp.StatusCode != http.StatusOK {
			t.Errorf("admin /metrics with the token: %d; want 200", resp.StatusCode)
		}
		checkList(t, adminList(t, admin+"/admin/v1/uploads", "Bearer "+adminToken), ids)
		resp, body := get(t, ts.base+"/admin/v1/uploads", "Bearer "+adminToken)
		wantError(t, "public /admin/v1/uploads with the admin token", resp, body, http.StatusNotFound, "not_found")
	})

	t.Run("public with token", func(t *testing.T) {
		t.Parallel()
		ts, admin, ids := setup(t, false, adminToken)
		if admin != ts.base {
			t.Fatal("an admin address without AdminListen")
		}
		for _, p := range []string{"/metrics", "/admin/v1/uploads"} {
			for _, authz := range []string{"", "Bearer " + mint(t, "alice", nil)} {
				resp, body := get(t, ts.base+p, authz)
				wantError(t, "public GET "+p, resp, body, http.StatusUnauthorized, "admin_token_required")
			}
		}
		if resp, _ := get(t, ts.base+"/metrics", "Bearer "+adminToken); resp.StatusCode != http.StatusOK {
			t.Errorf("public /metrics with the token: %d; want 200", resp.StatusCode)
		}
		checkList(t, adminList(t, ts.base+"/admin/v1/uploads", "Bearer "+adminToken), ids)
	})

	t.Run("public without token", func(t *testing.T) {
		t.Parallel()
		ts, _, _ := setup(t, false, "")
		if resp, _ := get(t, ts.base+"/metrics", ""); resp.StatusCode != http.StatusOK {
			t.Errorf("public /metrics: %d; want 200", resp.StatusCode)
		}
		// Without a listener or a token of its own, the admin API would
		// hand every owner's uploads to anyone: it does not exist.
		for _, p := range []string{"/admin/v1/uploads", "/admin/v1/uploads/" + missingID, "/admin/"} {
			for _, authz := range []string{"", "Bearer " + mint(t, "alice", nil)} {
				resp, body := get(t, ts.base+p, authz)
				wantError(t, "public GET "+p, resp, body, http.StatusNotFound, "not_found")
				if strings.Contains(string(body), "alice") || strings.Contains(string(body), "bob") {
					t.Errorf("public GET %s leaks owners: %s", p, body)
				}
			}
		}
	})
}

// TestCORSThroughServer: browsers on the listed origin may call intake
// with a bearer token and read its refusals; other origins are refused
// before anything is stored.
func TestCORSThroughServer(t *testing.T) {
	t.Parallel()
	const app, evil = "https://app.example.com", "https://evil.example"
	cfg := withJWT(testConfig(t, "sqlite"))
	cfg.CORSOrigins = app
	ts := startServer(t, cfg)
	tok := mint(t, "alice", nil)

	resp, body := ts.do(http.MethodOptions, ts.client.Endpoint, nil, map[string]string{
		"Origin":                         app,
		"Access-Control-Request-Method":  "POST",
		"Access-Control-Request-Headers": "authorization, tus-resumable, upload-length, upload-metadata",
	})
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("preflight: %d %s; want 204", resp.StatusCode, body)
	}
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != app {
		t.Errorf("preflight Allow-Origin %q; want %q", got, app)
	}
	allowed := strings.Split(resp.Header.Get("Access-Control-Allow-Headers"), ",")
	for _, want := range []string{"authorization", "tus-resumable", "upload-length", "upload-metadata", "upload-offset"} {
		found := false
		for _, h := range allowed {
			found = found || strings.EqualFold(strings.TrimSpace(h), want)
		}
		if !found {
			t.Errorf("preflight Allow-Headers %q lacks %s", resp.Header.Get("Access-Control-Allow-Headers"), want)
		}
	}
	if !strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "PATCH") {
		t.Errorf("preflight Allow-Methods %q lacks PATCH", resp.Header.Get("Access-Control-Allow-Methods"))
	}

	before := ts.snapshot(t)
	for _, hdr := range []map[string]string{
		bearerHeader(tok, "Origin", evil, "Upload-Length", "5", "Content-Type", "application/offset+octet-stream"),
		bearerHeader(tok, "Origin", "https://app.example.com.evil.example", "Upload-Length", "5", "Content-Type", "application/offset+octet-stream"),
	} {
		resp, body := ts.do(http.MethodPost, ts.client.Endpoint, []byte("hello"), hdr)
		wantError(t, "POST from "+hdr["Origin"], resp, body, http.StatusForbidden, "origin_not_allowed")
		if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "" {
			t.Errorf("POST from %s: Allow-Origin %q; want none", hdr["Origin"], got)
		}
	}
	resp, body = ts.do(http.MethodOptions, ts.client.Endpoint, nil, map[string]string{"Origin": evil, "Access-Control-Request-Method": "POST"})
	if resp.StatusCode == http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight from %s: %d, Allow-Origin %q; want refused", evil, resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
	}
	if d := before.diff(ts.snapshot(t)); d != "" {
		t.Fatalf("a disallowed origin stored something:\n%s", d)
	}

	// A 401 to the allowed origin is readable by the page, challenge
	// included, so tus-js-client can refresh its token.
	resp, body = ts.do(http.MethodPost, ts.client.Endpoint, nil, map[string]string{"Origin": app, "Upload-Length": "5"})
	wantError(t, "POST from the app without a token", resp, body, http.StatusUnauthorized, "missing_token")
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != app {
		t.Errorf("401: Allow-Origin %q; want %q", got, app)
	}
	if !strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "WWW-Authenticate") {
		t.Errorf("401: Expose-Headers %q lacks WWW-Authenticate", resp.Header.Get("Access-Control-Expose-Headers"))
	}

	// And the real thing works, with every header a tus client reads
	// exposed.
	resp, body = ts.do(http.MethodPost, ts.client.Endpoint, []byte("hello"),
		bearerHeader(tok, "Origin", app, "Upload-Length", "5", "Content-Type", "application/offset+octet-stream"))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST from the app: %d %s; want 201", resp.StatusCode, body)
	}
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != app {
		t.Errorf("201: Allow-Origin %q; want %q", got, app)
	}
	exposed := resp.Header.Get("Access-Control-Expose-Headers")
	for _, h := range []string{"Location", "Upload-Offset", "Upload-Length", "Upload-Metadata", "Upload-Expires", "Tus-Resumable"} {
		if !strings.Contains(exposed, h) {
			t.Errorf("Expose-Headers %q lacks %s", exposed, h)
		}
	}
	if sess := ts.session(t, resp.Header.Get("Location")); sess.Owner != "alice" || sess.State != catalog.StateComplete {
		t.Errorf("session = owner %q, %s; want alice, complete", sess.Owner, sess.State)
	}
}
