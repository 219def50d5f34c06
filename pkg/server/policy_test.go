package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/intake-dev/intake/internal/jsclient"
	"github.com/intake-dev/intake/pkg/client"
	"github.com/intake-dev/intake/pkg/config"
	"github.com/intake-dev/intake/pkg/jsonerr"
	"github.com/intake-dev/intake/pkg/server"
)

// refusal sends a creation that must be refused with status and code, and
// returns the JSON error's message.
func (ts *testServer) refusal(t *testing.T, what string, hdr map[string]string, body []byte, status int, code string) string {
	t.Helper()
	resp, b := ts.do(http.MethodPost, ts.client.Endpoint, body, hdr)
	wantError(t, what, resp, b, status, code)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: Content-Type %q; want JSON", what, ct)
	}
	if resp.Header.Get("Location") != "" {
		t.Errorf("%s: refused, yet Location %q", what, resp.Header.Get("Location"))
	}
	var e jsonerr.Body
	if err := json.Unmarshal(b, &e); err != nil || e.Error.Message == "" {
		t.Errorf("%s: body %q; want a JSON error with a message", what, b)
	}
	return e.Error.Message
}

// uploadView GETs /v1/uploads/{id} with token.
func (ts *testServer) uploadView(t *testing.T, url, token string) server.UploadView {
	t.Helper()
	authz := ""
	if token != "" {
		authz = "Bearer " + token
	}
	resp, body := get(t, ts.base+"/v1/uploads/"+idOf(url), authz)
	var v server.UploadView
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &v) != nil {
		t.Fatalf("GET /v1/uploads/%s: %d %s", idOf(url), resp.StatusCode, body)
	}
	return v
}

// TestQuota: one owner's complete uploads and the declared sizes of its
// uploads in flight count against --quota-bytes; a creation that would pass
// it is refused before anything is stored, with how much is left; another
// owner is unaffected; deleting an upload frees its share.
func TestQuota(t *testing.T) {
	forEachBackend(t, func(t *testing.T, cfg config.Config) {
		cfg = withJWT(cfg)
		cfg.QuotaBytes = 10_000
		ts := startServer(t, cfg)
		ctx := context.Background()
		alice, bob := mint(t, "alice", nil), mint(t, "bob", nil)
		data := randomBytes(t, 10_000)

		// 4000 stored, 5000 declared by an upload in flight (1000 sent).
		if _, _, err := ts.as(alice).Create(ctx, client.Upload{Size: 4000}, bytes.NewReader(data[:4000]), 4000); err != nil {
			t.Fatal(err)
		}
		inFlight, _, err := ts.as(alice).Create(ctx, client.Upload{Size: 5000}, bytes.NewReader(data[:1000]), 1000)
		if err != nil {
			t.Fatal(err)
		}

		before := ts.snapshot(t)
		msg := ts.refusal(t, "alice's upload one byte over", bearerHeader(alice, "Upload-Length", "1001"), nil,
			http.StatusRequestEntityTooLarge, "quota_exceeded")
		if !strings.Contains(msg, "only 1000 bytes of your 9.8 KiB (10000 bytes) quota is left") {
			t.Errorf("quota message %q; want it to say that 1000 of 10000 bytes are left", msg)
		}
		// A deferred upload counts the data its creation carries.
		ts.refusal(t, "alice's deferred upload with a body over", bearerHeader(alice, "Upload-Defer-Length", "1",
			"Content-Type", "application/offset+octet-stream"), data[:1001], http.StatusRequestEntityTooLarge, "quota_exceeded")
		if d := before.diff(ts.snapshot(t)); d != "" {
			t.Fatalf("refused creations stored something:\n%s", d)
		}

		if _, _, err := ts.as(bob).Create(ctx, client.Upload{Size: 10_000}, bytes.NewReader(data), 10_000); err != nil {
			t.Fatalf("bob's upload of his whole quota: %v; want 201, alice's usage is hers", err)
		}
		if _, _, err := ts.as(bob).Create(ctx, client.Upload{Size: 1}, nil, 0); !client.IsStatus(err, http.StatusRequestEntityTooLarge) {
			t.Errorf("bob's upload past his quota: %v; want 413", err)
		}

		if _, _, err := ts.as(alice).Create(ctx, client.Upload{Size: 1000}, nil, 0); err != nil {
			t.Fatalf("alice's upload of exactly what is left: %v; want 201", err)
		}
		msg = ts.refusal(t, "alice's deferred upload with nothing left", bearerHeader(alice, "Upload-Defer-Length", "1"), nil,
			http.StatusRequestEntityTooLarge, "quota_exceeded")
		if !strings.Contains(msg, "used up") {
			t.Errorf("quota message %q; want it to say the quota is used up", msg)
		}
		if _, _, err := ts.as(alice).Create(ctx, client.Upload{Size: 0}, nil, 0); err != nil {
			t.Errorf("alice's empty upload at her quota: %v; want 201", err)
		}

		// Deleting the upload in flight frees what it declared.
		if err := ts.as(alice).Delete(ctx, inFlight); err != nil {
			t.Fatal(err)
		}
		if _, _, err := ts.as(alice).Create(ctx, client.Upload{Size: 5000}, bytes.NewReader(data[:5000]), 5000); err != nil {
			t.Errorf("alice's upload after deleting one: %v; want 201", err)
		}
	})
}

// TestRequireMetadata: --require-metadata keys must be declared with a
// value; the refusal names the missing ones. Partial uploads are exempt,
// the final upload joining them is not.
func TestRequireMetadata(t *testing.T) {
	forEachBackend(t, func(t *testing.T, cfg config.Config) {
		cfg.RequireMetadata = "filename,project"
		ts := startServer(t, cfg)
		ctx := context.Background()

		before := ts.snapshot(t)
		for _, tc := range []struct {
			md      map[string]string
			missing string
		}{
			{nil, "lacks filename, project;"},
			{map[string]string{"filename": "a.txt"}, "lacks project;"},
			{map[string]string{"filename": "a.txt", "project": ""}, "lacks project;"},
		} {
			hdr := map[string]string{"Upload-Length": "3"}
			if tc.md != nil {
				hdr["Upload-Metadata"] = client.EncodeMetadata(tc.md)
			}
			msg := ts.refusal(t, "creation with metadata "+client.EncodeMetadata(tc.md), hdr, nil, http.StatusBadRequest, "metadata_missing")
			if !strings.Contains(msg, tc.missing) || !strings.Contains(msg, "filename, project") {
				t.Errorf("metadata %v: message %q; want it to name what is missing (%q) and what is required", tc.md, msg, tc.missing)
			}
		}
		if d := before.diff(ts.snapshot(t)); d != "" {
			t.Fatalf("refused creations stored something:\n%s", d)
		}

		ok := map[string]string{"filename": "a.txt", "project": "apollo"}
		if _, _, err := ts.client.Create(ctx, client.Upload{Size: 3, Metadata: ok}, bytes.NewReader([]byte("abc")), 3); err != nil {
			t.Errorf("creation with every required key: %v; want 201", err)
		}
		part, _, err := ts.client.Create(ctx, client.Upload{Size: 3, Partial: true}, bytes.NewReader([]byte("abc")), 3)
		if err != nil {
			t.Fatalf("partial upload without metadata: %v; want 201", err)
		}
		if _, _, err := ts.client.Create(ctx, client.Upload{Final: []string{part}}, nil, 0); !client.IsStatus(err, http.StatusBadRequest) {
			t.Errorf("final upload without metadata: %v; want 400", err)
		}
		if _, _, err := ts.client.Create(ctx, client.Upload{Final: []string{part}, Metadata: ok}, nil, 0); err != nil {
			t.Errorf("final upload with the required metadata: %v; want 201", err)
		}
	})
}

// TestFilenameSanitized: an unsafe filename is stored sanitized, the
// declared one beside it, and both show in the session and in HEAD; a
// safe one is left alone.
func TestFilenameSanitized(t *testing.T) {
	forEachBackend(t, func(t *testing.T, cfg config.Config) {
		ts := startServer(t, withJWT(cfg))
		ctx := context.Background()
		tok := mint(t, "alice", nil)
		for _, tc := range []struct {
			declared, want, original string
		}{
			{"../../etc/con.txt", "_con.txt", "../../etc/con.txt"},
			{`C:\Users\me\report.pdf`, "report.pdf", `C:\Users\me\report.pdf`},
			{"invoice\u202efdp.exe", "invoicefdp.exe", "invoice\u202efdp.exe"},
			{"..", "upload", ".."},
			{strings.Repeat("é", 200) + ".mp4", strings.Repeat("é", 125) + ".mp4", strings.Repeat("é", 200) + ".mp4"},
			{"Überweisung – 日本語 🎉.pdf", "Überweisung – 日本語 🎉.pdf", ""},
		} {
			md := map[string]string{"filename": tc.declared, "filetype": "application/pdf"}
			url, _, err := ts.as(tok).Create(ctx, client.Upload{Size: 3, Metadata: md}, bytes.NewReader([]byte("abc")), 3)
			if err != nil {
				t.Errorf("creation with filename %q: %v; want 201", tc.declared, err)
				continue
			}
			v := ts.uploadView(t, url, tok)
			orig, kept := v.Metadata["filename_original"]
			if v.Metadata["filename"] != tc.want || orig != tc.original || kept != (tc.original != "") || v.Metadata["filetype"] != "application/pdf" {
				t.Errorf("filename %q: metadata %q; want filename %q, filename_original %q, filetype kept", tc.declared, v.Metadata, tc.want, tc.original)
			}
			info, err := ts.as(tok).Head(ctx, url)
			if err != nil {
				t.Fatal(err)
			}
			if got := decodeMetadata(t, info.Metadata); got["filename"] != tc.want || got["filename_original"] != tc.original {
				t.Errorf("filename %q: HEAD Upload-Metadata %q; want the sanitized filename and the original", tc.declared, got)
			}
		}
	})
}

// TestAllowedTypes: --allowed-types refuses a declared filetype outside
// the list before anything is stored; the pieces and the final upload of a
// parallel upload need not declare one.
func TestAllowedTypes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, cfg config.Config) {
		cfg.AllowedTypes = "image/*,application/pdf"
		ts := startServer(t, cfg)
		ctx := context.Background()

		before := ts.snapshot(t)
		msg := ts.refusal(t, "text/plain", map[string]string{
			"Upload-Length": "3", "Upload-Metadata": client.EncodeMetadata(map[string]string{"filetype": "text/plain"}),
		}, nil, http.StatusUnsupportedMediaType, "type_not_allowed")
		if want := "file type text/plain is not allowed; this server accepts only image/*, application/pdf"; msg != want {
			t.Errorf("message %q; want %q", msg, want)
		}
		ts.refusal(t, "no filetype", map[string]string{"Upload-Length": "3"}, nil, http.StatusUnsupportedMediaType, "type_not_allowed")
		ts.refusal(t, "text/plain with a body", map[string]string{
			"Upload-Length": "3", "Upload-Metadata": client.EncodeMetadata(map[string]string{"filetype": "text/plain"}),
			"Content-Type": "application/offset+octet-stream",
		}, []byte("abc"), http.StatusUnsupportedMediaType, "type_not_allowed")
		if d := before.diff(ts.snapshot(t)); d != "" {
			t.Fatalf("refused creations stored something:\n%s", d)
		}

		// The bytes must really be of the type: finalization sniffs them
		// (pkg/storage) and rejects what --allowed-types does not allow.
		pngBytes := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
		for typ, body := range map[string][]byte{
			"image/png":       pngBytes,
			"IMAGE/JPEG":      []byte("\xff\xd8\xff\xe0\x00\x10JFIF\x00"),
			"application/pdf": []byte("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"),
		} {
			if _, _, err := ts.client.Create(ctx, client.Upload{Size: int64(len(body)), Metadata: map[string]string{"filetype": typ}}, bytes.NewReader(body), int64(len(body))); err != nil {
				t.Errorf("filetype %s: %v; want 201", typ, err)
			}
		}
		part, _, err := ts.client.Create(ctx, client.Upload{Size: int64(len(pngBytes)), Partial: true}, bytes.NewReader(pngBytes), int64(len(pngBytes)))
		if err != nil {
			t.Fatalf("partial upload without a type: %v; want 201", err)
		}
		if _, _, err := ts.client.Create(ctx, client.Upload{Final: []string{part}}, nil, 0); err != nil {
			t.Errorf("final upload without a type: %v; want 201", err)
		}
	})
}

// TestMaxMetadataBytes: --max-metadata-bytes caps the Upload-Metadata
// header with a JSON 431.
func TestMaxMetadataBytes(t *testing.T) {
	cfg := testConfig(t, "sqlite")
	cfg.MaxMetadataBytes = 64
	ts := startServer(t, cfg)
	small := client.EncodeMetadata(map[string]string{"filename": "a.txt"})
	big := client.EncodeMetadata(map[string]string{"filename": strings.Repeat("a", 60)})
	if len(small) > 64 || len(big) <= 64 {
		t.Fatalf("test metadata of %d and %d bytes; want one under 64 and one over", len(small), len(big))
	}
	msg := ts.refusal(t, "metadata over the cap", map[string]string{"Upload-Length": "3", "Upload-Metadata": big}, nil,
		http.StatusRequestHeaderFieldsTooLarge, "metadata_too_large")
	if !strings.Contains(msg, "64 bytes") {
		t.Errorf("message %q; want it to state the cap", msg)
	}
	if _, _, err := ts.client.Create(context.Background(), client.Upload{Size: 3, Metadata: map[string]string{"filename": "a.txt"}}, nil, 0); err != nil {
		t.Errorf("metadata under the cap: %v; want 201", err)
	}
}

// TestJSClientShowsPolicyMessage: tus-js-client's onError carries the
// human message of a policy refusal, and does not retry it.
func TestJSClientShowsPolicyMessage(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Node.js, and npm ci on first use")
	}
	jsclient.Install(t)
	cfg := testConfig(t, "sqlite")
	cfg.AllowedTypes = "image/*"
	ts := startServer(t, cfg)

	file := filepath.Join(t.TempDir(), "notes.txt")
	if err := os.WriteFile(file, []byte("plain text, not an image\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := jsclient.TryUpload(t, jsclient.Options{
		Endpoint: ts.base + cfg.BasePath, File: file,
		Metadata: map[string]string{"filename": "notes.txt", "filetype": "text/plain"},
	})
	var ce *jsclient.ClientError
	if !errors.As(err, &ce) {
		t.Fatalf("upload of text/plain: %v; want tus-js-client's error", err)
	}
	const human = "file type text/plain is not allowed; this server accepts only image/*"
	if !strings.Contains(ce.Message, human) || !strings.Contains(ce.Message, "415") {
		t.Errorf("tus-js-client's message %q; want the 415 and %q", ce.Message, human)
	}
	if len(ce.Retries) != 0 {
		t.Errorf("tus-js-client retried after %q; a 415 is final", ce.Retries)
	}
}
