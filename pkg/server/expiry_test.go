package server_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/intake-dev/intake/internal/s3test"
	"github.com/intake-dev/intake/pkg/catalog"
	"github.com/intake-dev/intake/pkg/client"
	"github.com/intake-dev/intake/pkg/config"
	"github.com/intake-dev/intake/pkg/server"
)

// TestUploadExpiresHeader: the tus expiration extension is advertised, and
// POST, PATCH and HEAD of an incomplete upload carry Upload-Expires about
// one TTL after the last activity; a complete upload carries none.
func TestUploadExpiresHeader(t *testing.T) {
	cfg := testConfig(t, "sqlite")
	cfg.UploadTTL = 2 * time.Hour
	ts := startServer(t, cfg)

	resp, _ := ts.do("OPTIONS", ts.client.Endpoint, nil, nil)
	if !strings.Contains(resp.Header.Get("Tus-Extension"), "expiration") {
		t.Fatalf("Tus-Extension %q lacks expiration", resp.Header.Get("Tus-Extension"))
	}
	check := func(what string, resp *http.Response, want bool) {
		t.Helper()
		h := resp.Header.Get("Upload-Expires")
		if !want {
			if h != "" {
				t.Errorf("%s: Upload-Expires %q on a complete upload", what, h)
			}
			return
		}
		at, err := http.ParseTime(h)
		if err != nil {
			t.Fatalf("%s: Upload-Expires %q: %v", what, h, err)
		}
		if d := time.Until(at); d < 2*time.Hour-time.Minute || d > 2*time.Hour+time.Minute {
			t.Errorf("%s: Upload-Expires in %s; want about 2h", what, d)
		}
	}
	resp, _ = ts.do("POST", ts.client.Endpoint, nil, map[string]string{"Upload-Length": "10"})
	check("POST", resp, true)
	url := resp.Header.Get("Location")
	resp, _ = ts.do("PATCH", url, []byte("hello"), map[string]string{"Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"})
	check("PATCH", resp, true)
	resp, _ = ts.do("HEAD", url, nil, nil)
	check("HEAD", resp, true)
	resp, _ = ts.do("PATCH", url, []byte("world"), map[string]string{"Upload-Offset": "5", "Content-Type": "application/offset+octet-stream"})
	check("last PATCH", resp, false)
	resp, _ = ts.do("HEAD", url, nil, nil)
	check("HEAD of the complete upload", resp, false)
}

// TestS3ReaperLeavesNothing: partial uploads on S3 (one with a pending
// .part, one with uploaded parts) expire: HEAD answers 410, the reaper
// aborts their multipart uploads and deletes their objects, and the
// complete upload survives.
func TestS3ReaperLeavesNothing(t *testing.T) {
	s3 := s3test.Shared(t)
	bucket := s3.NewBucket(t)
	cfg := s3Config(t, s3, "postgres", bucket)
	cfg.UploadTTL = time.Hour
	var skew atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	ts := startServer(t, cfg, s3Creds(s3), server.WithClock(clock))
	ctx := context.Background()

	data := randomBytes(t, 12<<20)
	var partial []string
	for _, sent := range []int{1 << 20, 6 << 20} {
		u, _, err := ts.client.Create(ctx, client.Upload{Size: int64(len(data))}, bytes.NewReader(data[:sent]), int64(sent))
		if err != nil {
			t.Fatal(err)
		}
		partial = append(partial, u)
	}
	done, err := ts.client.Upload(ctx, bytes.NewReader(data[:3<<20]), 3<<20, 0, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(s3.ListMultipartUploads(t, bucket)) != 2 {
		t.Fatalf("multipart uploads before expiry: %v; want 2", s3.ListMultipartUploads(t, bucket))
	}

	skew.Store(int64(2 * time.Hour))
	for _, u := range partial {
		if _, err := ts.client.Head(ctx, u); !client.IsStatus(err, http.StatusGone) {
			t.Fatalf("HEAD of an expired upload: %v; want 410", err)
		}
	}
	res, err := ts.srv.Reap(ctx)
	if err != nil || res.Expired != 2 {
		t.Fatalf("reaper: %+v, %v; want 2 expired", res, err)
	}
	if mps := s3.ListMultipartUploads(t, bucket); len(mps) != 0 {
		t.Errorf("multipart uploads left: %v", mps)
	}
	for _, u := range partial {
		sess, err := ts.srv.Catalog().Get(ctx, idOf(u))
		if err != nil || sess.State != catalog.StateExpired {
			t.Errorf("session %s: %v, %v; want expired", idOf(u), sess.State, err)
		}
	}
	objs := s3.ListObjects(t, bucket)
	for _, o := range objs {
		for _, u := range partial {
			if objectID := strings.SplitN(idOf(u), "+", 2)[0]; strings.Contains(o, objectID) {
				t.Errorf("object %s of an expired upload left", o)
			}
		}
	}
	if got := ts.download(done); !bytes.Equal(got, data[:3<<20]) {
		t.Fatal("the complete upload did not survive")
	}
}

// TestFileReaperLeavesNothing: on the file store, an expired upload's
// files go, and the data directory keeps only the complete upload's.
func TestFileReaperLeavesNothing(t *testing.T) {
	forEachBackend(t, func(t *testing.T, cfg config.Config) {
		cfg.UploadTTL = time.Hour
		var skew atomic.Int64
		ts := startServer(t, cfg, server.WithClock(func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }))
		ctx := context.Background()
		stale, _, err := ts.client.Create(ctx, client.Upload{Size: 100}, bytes.NewReader(make([]byte, 30)), 30)
		if err != nil {
			t.Fatal(err)
		}
		done, err := ts.client.Upload(ctx, bytes.NewReader([]byte("keep me")), 7, 0, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		skew.Store(int64(2 * time.Hour))
		if res, err := ts.srv.Reap(ctx); err != nil || res.Expired != 1 || res.BytesReleased != 30 {
			t.Fatalf("reaper: %+v, %v; want 1 upload, 30 bytes", res, err)
		}
		entries, _ := os.ReadDir(cfg.UploadsDir())
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), idOf(stale)) {
				t.Errorf("file %s of the expired upload left", e.Name())
			}
		}
		if got := ts.download(done); string(got) != "keep me" {
			t.Fatalf("complete upload: %q", got)
		}
	})
}

// TestReaperRacingPatch: the reaper comes for an upload (it looks
// abandoned) while a PATCH is streaming into it. It passes over an upload a
// request holds, so the PATCH completes and the upload with it; the next
// pass finds nothing to do. Never are files deleted under a writing PATCH,
// nor a session expired with its bytes kept or the other way round.
func TestReaperRacingPatch(t *testing.T) {
	cfg := testConfig(t, "sqlite")
	cfg.UploadTTL = time.Hour
	var skew atomic.Int64
	ts := startServer(t, cfg, server.WithClock(func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }))
	ctx := context.Background()
	const size = 4 << 20
	url, _, err := ts.client.Create(ctx, client.Upload{Size: size}, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	id := idOf(url)
	pr, pw := io.Pipe()
	patched := make(chan error, 1)
	go func() {
		_, err := ts.client.Patch(ctx, url, 0, pr, size, -1)
		patched <- err
	}()
	if _, err := pw.Write(make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		st, err := os.Stat(cfg.UploadsDir() + "/" + id)
		return err == nil && st.Size() >= 1<<20
	})

	skew.Store(int64(2 * time.Hour)) // the upload now looks abandoned
	if res, err := ts.srv.Reap(ctx); err != nil || res.Expired != 0 {
		t.Fatalf("reaper during the PATCH: %+v, %v; want the held upload passed over", res, err)
	}
	if _, err := pw.Write(make([]byte, size-(1<<20))); err != nil {
		t.Fatalf("the PATCH was cut short: %v", err)
	}
	pw.Close()
	if err := <-patched; err != nil {
		t.Fatalf("the PATCH failed: %v", err)
	}
	sess, err := ts.srv.Catalog().Get(ctx, id)
	if err != nil || sess.State != catalog.StateComplete || sess.Offset != size {
		t.Fatalf("session after the PATCH = %s at %d, %v; want complete", sess.State, sess.Offset, err)
	}
	if res, err := ts.srv.Reap(ctx); err != nil || res.Expired != 0 {
		t.Fatalf("reaper after completion: %+v, %v; want nothing", res, err)
	}
	if got := ts.download(url); len(got) != size {
		t.Fatalf("download of %d bytes; want %d", len(got), size)
	}
}
