package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/intake-dev/intake/internal/jsclient"
	"github.com/intake-dev/intake/pkg/catalog"
	"github.com/intake-dev/intake/pkg/config"
	"github.com/intake-dev/intake/pkg/jsonerr"
)

// TestJSClient uploads with the real tus-js-client (internal/jsclient) on
// the file store and on S3: in one PATCH, in 5 MiB chunks, and as four
// parallel partial uploads concatenated into one. Each download is
// byte-exact and the catalog holds the finished session with its metadata.
// An upload over the maximum size fails in the client with intake's JSON
// error in its message.
func TestJSClient(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Node.js, and npm ci on first use")
	}
	// Skip (or fail in CI) before any server starts when there is no node.
	jsclient.Install(t)

	const maxSize = 32 << 20
	// Over 5 MiB per part when split in four, so that S3 concatenates the
	// partial uploads by copying parts server-side; the odd tail makes the
	// last part and chunk short.
	const size = 20<<20 + 12345
	stores := []struct {
		name  string
		start func(t *testing.T) *testServer
	}{
		{"file", func(t *testing.T) *testServer {
			cfg := testConfig(t, "sqlite")
			cfg.MaxSize = maxSize
			return startServer(t, cfg)
		}},
		{"s3", func(t *testing.T) *testServer {
			return startS3(t, "postgres", func(c *config.Config) { c.MaxSize = maxSize }).testServer
		}},
	}
	uploads := []struct {
		name string
		opts jsclient.Options
	}{
		{"defaults", jsclient.Options{}},
		{"chunks", jsclient.Options{ChunkSize: 5 << 20}},
		{"parallel", jsclient.Options{ParallelUploads: 4}},
	}

	for _, store := range stores {
		t.Run(store.name, func(t *testing.T) {
			t.Parallel()
			// One server for the store; it stops after all subtests.
			ts := store.start(t)
			endpoint := ts.base + ts.cfg.BasePath

			for _, u := range uploads {
				t.Run(u.name, func(t *testing.T) {
					t.Parallel()
					data := randomBytes(t, size)
					name := "js-" + u.name + ".bin"
					file := filepath.Join(t.TempDir(), name)
					if err := os.WriteFile(file, data, 0o600); err != nil {
						t.Fatal(err)
					}
					opts := u.opts
					opts.Endpoint, opts.File = endpoint, file
					opts.Metadata = map[string]string{"filename": name, "filetype": "application/octet-stream"}
					res := jsclient.Upload(t, opts)

					if len(res.Retries) != 0 {
						t.Errorf("tus-js-client retried after %q; want no 5xx or dropped connection", res.Retries)
					}
					if !strings.HasPrefix(res.URL, endpoint) {
						t.Fatalf("upload URL %q; want one under %s", res.URL, endpoint)
					}
					if got := ts.download(res.URL); !bytes.Equal(got, data) {
						t.Fatalf("download: got %d bytes; want the %d uploaded, byte for byte", len(got), len(data))
					}
					sess, err := ts.srv.Catalog().Get(context.Background(), idOf(res.URL))
					if err != nil {
						t.Fatal(err)
					}
					if sess.State != catalog.StateComplete || sess.Offset != size || sess.Size == nil || *sess.Size != size || sess.Metadata["filename"] != name {
						t.Errorf("session = %+v; want complete, %d of %d bytes, filename %s", sess, sess.Offset, size, name)
					}
					if parallel := u.opts.ParallelUploads > 1; sess.IsFinal != parallel || parallel && len(sess.PartialIDs) != u.opts.ParallelUploads {
						t.Errorf("session final %v with partial uploads %q; want final %v with %d", sess.IsFinal, sess.PartialIDs, parallel, u.opts.ParallelUploads)
					}
				})
			}

			t.Run("over max size", func(t *testing.T) {
				t.Parallel()
				file := filepath.Join(t.TempDir(), "big.bin")
				// Sparse: the POST is refused on its Upload-Length, before
				// a byte is read.
				if err := os.WriteFile(file, nil, 0o600); err != nil {
					t.Fatal(err)
				}
				if err := os.Truncate(file, maxSize+1); err != nil {
					t.Fatal(err)
				}
				_, err := jsclient.TryUpload(t, jsclient.Options{Endpoint: endpoint, File: file})
				var ce *jsclient.ClientError
				if !errors.As(err, &ce) {
					t.Fatalf("upload over the maximum: %v; want tus-js-client's error", err)
				}
				// tus-js-client quotes the response as "response code: 413,
				// response text: <body>, request id: ...".
				_, text, _ := strings.Cut(ce.Message, "response code: 413, response text: ")
				text, _, _ = strings.Cut(text, ", request id: ")
				var body jsonerr.Body
				if err := json.Unmarshal([]byte(text), &body); err != nil || body.Error.Code != "max_size_exceeded" || !strings.Contains(body.Error.Message, "maximum") {
					t.Errorf("tus-js-client's message %q; want it to quote the 413's JSON body with code max_size_exceeded (%v)", ce.Message, err)
				}
				if len(ce.Retries) != 0 {
					t.Errorf("tus-js-client retried after %q; a 413 is final", ce.Retries)
				}
			})
		})
	}
}
