package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/intake-dev/intake/pkg/catalog"
	"github.com/intake-dev/intake/pkg/client"
	"github.com/intake-dev/intake/pkg/config"
	"github.com/intake-dev/intake/pkg/server"
)

// TestUploadInThreePatches: the acceptance walk-through, in process. After
// every PATCH the offset HEAD reports, the catalog's committed offset and the
// bytes on disk agree; GET returns the same bytes; the session is complete.
func TestUploadInThreePatches(t *testing.T) {
	forEachBackend(t, func(t *testing.T, cfg config.Config) {
		ts := startServer(t, cfg)
		ctx := context.Background()
		data := randomBytes(t, 3<<20+12345)
		url, _, err := ts.client.Create(ctx, client.Upload{Size: int64(len(data)), Metadata: map[string]string{"filename": "clip.mp4", "filetype": "video/mp4"}}, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		id := idOf(url)
		cuts := []int{0, 1 << 20, 2<<20 + 7, len(data)}
		for i := 0; i < 3; i++ {
			chunk := data[cuts[i]:cuts[i+1]]
			off, err := ts.client.Patch(ctx, url, int64(cuts[i]), bytes.NewReader(chunk), int64(len(chunk)), -1)
			if err != nil {
				t.Fatalf("PATCH %d: %v", i, err)
			}
			if off != int64(cuts[i+1]) {
				t.Fatalf("PATCH %d offset = %d; want %d", i, off, cuts[i+1])
			}
			info, err := ts.client.Head(ctx, url)
			if err != nil {
				t.Fatal(err)
			}
			sess, err := ts.srv.Catalog().Get(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			st, err := os.Stat(filepath.Join(cfg.UploadsDir(), id))
			if err != nil {
				t.Fatal(err)
			}
			if info.Offset != off || sess.Offset != off || st.Size() != off {
				t.Fatalf("after PATCH %d: HEAD %d, catalog %d, disk %d; want all %d", i, info.Offset, sess.Offset, st.Size(), off)
			}
		}
		if got := ts.download(url); !bytes.Equal(got, data) {
			t.Fatalf("downloaded %d bytes differ from the %d uploaded", len(got), len(data))
		}
		sess, err := ts.srv.Catalog().Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if sess.State != catalog.StateComplete || sess.CompletedAt == nil || *sess.Size != int64(len(data)) {
			t.Fatalf("session = %+v; want complete with size %d", sess, len(data))
		}
		if sess.Metadata["filename"] != "clip.mp4" || sess.Metadata["filetype"] != "video/mp4" {
			t.Errorf("metadata = %v", sess.Metadata)
		}

		resp, body := ts.do("GET", ts.base+"/v1/uploads/"+id, nil, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /v1/uploads: %d %s", resp.StatusCode, body)
		}
		var v server.UploadView
		if err := json.Unmarshal(body, &v); err != nil {
			t.Fatal(err)
		}
		if v.State != catalog.StateComplete || v.Offset != int64(len(data)) || v.Size == nil || *v.Size != int64(len(data)) || v.Metadata["filename"] != "clip.mp4" || v.CompletedAt == nil || v.ContentType != "application/octet-stream" {
			t.Errorf("upload view = %s", body)
		}
	})
}

func TestOptionsAdvertisesProtocol(t *testing.T) {
	cfg := testConfig(t, "sqlite")
	cfg.MaxSize = 5 << 30
	ts := startServer(t, cfg)
	resp, _ := ts.do("OPTIONS", ts.client.Endpoint, nil, nil)
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNoContent {
		t.Fatalf("OPTIONS status %d", resp.StatusCode)
	}
	if got := resp.Header.Get("Tus-Version"); got != "1.0.0" {
		t.Errorf("Tus-Version = %q", got)
	}
	if got := resp.Header.Get("Tus-Max-Size"); got != strconv.FormatInt(5<<30, 10) {
		t.Errorf("Tus-Max-Size = %q; want %d", got, int64(5<<30))
	}
	ext := strings.Split(resp.Header.Get("Tus-Extension"), ",")
	for _, want := range []string{"creation", "creation-with-upload", "creation-defer-length", "termination", "concatenation"} {
		found := false
		for _, e := range ext {
			found = found || e == want
		}
		if !found {
			t.Errorf("Tus-Extension %v lacks %s", ext, want)
		}
	}
}

func TestCreationWithUploadAndDeferredLength(t *testing.T) {
	forEachBackend(t, func(t *testing.T, cfg config.Config) {
		ts := startServer(t, cfg)
		ctx := context.Background()
		data := randomBytes(t, 300000)

		// creation-with-upload: the POST carries the first 100000 bytes.
		url, off, err := ts.client.Create(ctx, client.Upload{Size: int64(len(data))}, bytes.NewReader(data[:100000]), 100000)
		if err != nil || off != 100000 {
			t.Fatalf("Create with body: off %d, %v", off, err)
		}
		if _, err := ts.client.Patch(ctx, url, off, bytes.NewReader(data[off:]), int64(len(data))-off, -1); err != nil {
			t.Fatal(err)
		}
		if got := ts.download(url); !bytes.Equal(got, data) {
			t.Fatal("creation-with-upload bytes differ")
		}

		// Deferred length: two PATCHes, then an empty one that only declares the length.
		url, _, err = ts.client.Create(ctx, client.Upload{Defer: true}, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		id := idOf(url)
		if sess, _ := ts.srv.Catalog().Get(ctx, id); !sess.SizeDeferred() {
			t.Fatalf("session size = %v; want deferred", sess.Size)
		}
		if _, err := ts.client.Patch(ctx, url, 0, bytes.NewReader(data[:200000]), 200000, -1); err != nil {
			t.Fatal(err)
		}
		if _, err := ts.client.Patch(ctx, url, 200000, bytes.NewReader(data[200000:]), 100000, -1); err != nil {
			t.Fatal(err)
		}
		if _, err := ts.client.Patch(ctx, url, 300000, nil, 0, 300000); err != nil {
			t.Fatal(err)
		}
		sess, err := ts.srv.Catalog().Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if sess.State != catalog.StateComplete || sess.Size == nil || *sess.Size != 300000 {
			t.Fatalf("deferred session = %+v; want complete, size 300000", sess)
		}
		if got := ts.download(url); !bytes.Equal(got, data) {
			t.Fatal("deferred-length bytes differ")
		}
	})
}

func TestTermination(t *testing.T) {
	forEachBackend(t, func(t *testing.T, cfg config.Config) {
		ts := startServer(t, cfg)
		ctx := context.Background()
		url, _, err := ts.client.Create(ctx, client.Upload{Size: 1000}, bytes.NewReader(make([]byte, 10)), 10)
		if err != nil {
			t.Fatal(err)
		}
		if err := ts.client.Delete(ctx, url); err != nil {
			t.Fatal(err)
		}
		id := idOf(url)
		sess, err := ts.srv.Catalog().Get(ctx, id)
		if err != nil || sess.State != catalog.StateTerminated {
			t.Fatalf("session after DELETE = %+v, %v; want terminated", sess, err)
		}
		if _, err := os.Stat(filepath.Join(cfg.UploadsDir(), id)); !os.IsNotExist(err) {
			t.Errorf("upload file still there after DELETE: %v", err)
		}
		if _, err := ts.client.Head(ctx, url); !client.IsStatus(err, http.StatusNotFound) {
			t.Errorf("HEAD after DELETE: %v; want 404", err)
		}
		if _, err := ts.client.Patch(ctx, url, 10, bytes.NewReader([]byte("x")), 1, -1); !client.IsStatus(err, http.StatusNotFound) {
			t.Errorf("PATCH after DELETE: %v; want 404", err)
		}
	})
}

func TestConcatenation(t *testing.T) {
	forEachBackend(t, func(t *testing.T, cfg config.Config) {
		ts := startServer(t, cfg)
		ctx := context.Background()
		a, b := randomBytes(t, 70000), randomBytes(t, 50001)
		var parts []string
		for _, p := range [][]byte{a, b} {
			u, _, err := ts.client.Create(ctx, client.Upload{Size: int64(len(p)), Partial: true}, bytes.NewReader(p), int64(len(p)))
			if err != nil {
				t.Fatal(err)
			}
			parts = append(parts, u)
		}
		final, _, err := ts.client.Create(ctx, client.Upload{Final: parts}, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		want := append(append([]byte{}, a...), b...)
		if got := ts.download(final); !bytes.Equal(got, want) {
			t.Fatal("concatenated bytes differ")
		}
		sess, err := ts.srv.Catalog().Get(ctx, idOf(final))
		if err != nil {
			t.Fatal(err)
		}
		if !sess.IsFinal || sess.State != catalog.StateComplete || len(sess.PartialIDs) != 2 || sess.PartialIDs[0] != idOf(parts[0]) {
			t.Fatalf("final session = %+v", sess)
		}

		// A final upload may only concatenate partial uploads.
		plain, _, err := ts.client.Create(ctx, client.Upload{Size: 3}, bytes.NewReader([]byte("abc")), 3)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := ts.client.Create(ctx, client.Upload{Final: []string{parts[0], plain}}, nil, 0); !client.IsStatus(err, http.StatusBadRequest) {
			t.Fatalf("final of a non-partial upload: %v; want 400", err)
		}
	})
}

// TestBodyEndsEarly: a PATCH whose body stops short commits exactly what
// arrived, in the store and the catalog, and the upload resumes from there.
func TestBodyEndsEarly(t *testing.T) {
	forEachBackend(t, func(t *testing.T, cfg config.Config) {
		ts := startServer(t, cfg)
		ctx := context.Background()
		data := randomBytes(t, 1<<20)
		url, _, err := ts.client.Create(ctx, client.Upload{Size: int64(len(data))}, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		sent := 300000
		// Claims the whole body but the reader ends after `sent` bytes.
		_, err = ts.client.Patch(ctx, url, 0, bytes.NewReader(data[:sent]), int64(len(data)), -1)
		if err == nil {
			t.Fatal("short body accepted")
		}
		// The client gives up before the server has read what was sent;
		// wait for the server to record it.
		waitFor(t, func() bool {
			sess, err := ts.srv.Catalog().Get(ctx, idOf(url))
			return err == nil && sess.Offset == int64(sent)
		})
		info, err := ts.client.Head(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		if info.Offset != int64(sent) {
			t.Fatalf("offset after short body = %d; want %d", info.Offset, sent)
		}
		if err := ts.client.Resume(ctx, url, bytes.NewReader(data), int64(len(data)), 0, 0); err != nil {
			t.Fatal(err)
		}
		if got := ts.download(url); !bytes.Equal(got, data) {
			t.Fatal("resumed upload differs")
		}
	})
}

func TestDownloadOfIncompleteUploadIsRefused(t *testing.T) {
	ts := startServer(t, testConfig(t, "sqlite"))
	url, _, err := ts.client.Create(context.Background(), client.Upload{Size: 100}, bytes.NewReader([]byte("hello")), 5)
	if err != nil {
		t.Fatal(err)
	}
	resp, body := ts.do("GET", url, nil, nil)
	if resp.StatusCode != http.StatusConflict || !strings.Contains(string(body), `"code":"upload_incomplete"`) {
		t.Fatalf("GET incomplete: %d %s; want 409 upload_incomplete", resp.StatusCode, body)
	}
}

func TestV1UploadsNotFound(t *testing.T) {
	ts := startServer(t, testConfig(t, "sqlite"))
	resp, body := ts.do("GET", ts.base+"/v1/uploads/nope", nil, nil)
	var e struct {
		Error struct{ Code, Message string }
	}
	if resp.StatusCode != http.StatusNotFound || json.Unmarshal(body, &e) != nil || e.Error.Code != "upload_not_found" {
		t.Fatalf("got %d %s; want 404 upload_not_found JSON", resp.StatusCode, body)
	}
}

func TestHealthReadyMetrics(t *testing.T) {
	forEachBackend(t, func(t *testing.T, cfg config.Config) {
		ts := startServer(t, cfg)
		if resp, body := ts.do("GET", ts.base+"/healthz", nil, nil); resp.StatusCode != 200 {
			t.Fatalf("healthz %d %s", resp.StatusCode, body)
		}
		if resp, body := ts.do("GET", ts.base+"/readyz", nil, nil); resp.StatusCode != 200 || !strings.Contains(string(body), `"database": "ok"`) {
			t.Fatalf("readyz %d %s", resp.StatusCode, body)
		}
		data := randomBytes(t, 4096)
		if _, err := ts.client.Upload(context.Background(), bytes.NewReader(data), 4096, 0, nil, 0); err != nil {
			t.Fatal(err)
		}
		_, body := ts.do("GET", ts.base+"/metrics", nil, nil)
		for _, want := range []string{
			"intake_uploads_created_total 1",
			"intake_uploads_completed_total 1",
			"intake_bytes_received_total 4096",
			"tusd_uploads_created 1",
			"go_goroutines",
		} {
			if !strings.Contains(string(body), want) {
				t.Errorf("/metrics lacks %q", want)
			}
		}
	})
}

// TestReadyzReportsStorage: a storage directory that cannot be written makes
// the instance unready.
func TestReadyzReportsStorage(t *testing.T) {
	// A file where the directory should be fails even for root.
	cfg := testConfig(t, "sqlite")
	ts := startServer(t, cfg)
	if err := os.RemoveAll(cfg.UploadsDir()); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg.UploadsDir(), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	resp, body := ts.do("GET", ts.base+"/readyz", nil, nil)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), `"storage": "unavailable"`) {
		t.Fatalf("readyz with broken storage: %d %s", resp.StatusCode, body)
	}
}

// TestMigrateFalse: with --migrate=false intake neither touches the schema
// nor serves on one that lacks migrations; once migrated it starts.
func TestMigrateFalse(t *testing.T) {
	forEachBackend(t, func(t *testing.T, cfg config.Config) {
		cfg.Migrate = false
		ctx := context.Background()
		_, err := server.New(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err == nil || !strings.Contains(err.Error(), "intake migrate up") {
			t.Fatalf("New on an empty schema with migrate=false: %v; want a hint to migrate", err)
		}
		cat, err := server.OpenCatalog(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer cat.Close()
		list, err := cat.MigrationStatus(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range list {
			if m.AppliedAt != nil {
				t.Fatalf("migration %d applied despite migrate=false", m.Version)
			}
		}
		if _, err := cat.MigrateUp(ctx); err != nil {
			t.Fatal(err)
		}
		ts := startServer(t, cfg)
		if _, err := ts.client.Upload(ctx, bytes.NewReader([]byte("ok")), 2, 0, nil, 0); err != nil {
			t.Fatal(err)
		}
	})
}
