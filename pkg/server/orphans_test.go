package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/tus/tusd/v2/pkg/filestore"
	"github.com/tus/tusd/v2/pkg/handler"

	"github.com/intake-dev/intake/internal/s3test"
	"github.com/intake-dev/intake/pkg/client"
	"github.com/intake-dev/intake/pkg/server"
)

// skewed is a clock a test moves forward.
type skewed struct{ d atomic.Int64 }

func (s *skewed) now() time.Time      { return time.Now().Add(time.Duration(s.d.Load())) }
func (s *skewed) add(d time.Duration) { s.d.Add(int64(d)) }

// orphanMetric reads intake_orphans_removed_total{kind} from /metrics.
func (ts *testServer) orphanMetric(kind string) float64 {
	ts.t.Helper()
	_, body := ts.do("GET", ts.base+"/metrics", nil, nil)
	series := `intake_orphans_removed_total{kind="` + kind + `"} `
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, series); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				ts.t.Fatalf("/metrics: %q: %v", line, err)
			}
			return f
		}
	}
	ts.t.Fatalf("/metrics has no %s", series)
	return 0
}

// TestS3OrphanSweep: a multipart upload created behind intake's back under
// the prefix (with tusd's .info, as a crash before the session row leaves
// it) is aborted and its .info deleted, but only once older than the TTL;
// a known incomplete upload, a complete one, a blob holder whose session
// was terminated while another references the blob, and everything
// outside the prefix survive.
func TestS3OrphanSweep(t *testing.T) {
	s3 := s3test.Shared(t)
	bucket := s3.NewBucket(t)
	cfg := s3Config(t, s3, "sqlite", bucket)
	cfg.UploadTTL = time.Hour
	cfg.ReapInterval = 0 // passes run by the test only
	clk := &skewed{}
	ts := startServer(t, cfg, s3Creds(s3), server.WithClock(clk.now))
	ctx := context.Background()
	mc := s3.Client()
	core := minio.Core{Client: mc}

	partial, _, err := ts.client.Create(ctx, client.Upload{Size: 100}, bytes.NewReader(make([]byte, 10)), 10)
	if err != nil {
		t.Fatal(err)
	}
	done, err := ts.client.Upload(ctx, bytes.NewReader([]byte("complete")), 8, 0, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	shared := randomBytes(t, 1000)
	holder, err := ts.client.Upload(ctx, bytes.NewReader(shared), int64(len(shared)), 0, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	referrer, err := ts.client.Upload(ctx, bytes.NewReader(shared), int64(len(shared)), 0, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(shared)
	if blob, err := ts.srv.Catalog().GetBlob(ctx, hex.EncodeToString(sum[:])); err != nil || blob.UploadID != idOf(holder) {
		t.Fatalf("blob = %+v, %v; want held by %s", blob, err, idOf(holder))
	}
	if err := ts.client.Delete(ctx, holder); err != nil {
		t.Fatal(err)
	}

	// Behind intake's back: what tusd's S3 store does before intake writes
	// the session, and the same outside the prefix.
	behind := func(key string) string {
		t.Helper()
		uploadID, err := core.NewMultipartUpload(ctx, bucket, key, minio.PutObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		objectID := key[strings.LastIndex(key, "/")+1:]
		info := `{"ID":"` + objectID + "+" + uploadID + `","Size":100}`
		if _, err := mc.PutObject(ctx, bucket, key+".info", strings.NewReader(info), int64(len(info)), minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
		return uploadID
	}
	orphanKey := "uploads/" + hex.EncodeToString(randomBytes(t, 16))
	behind(orphanKey)
	outsideKey := "elsewhere/" + hex.EncodeToString(randomBytes(t, 16))
	behind(outsideKey)

	objects := s3.ListObjects(t, bucket)
	multiparts := s3.ListMultipartUploads(t, bucket)
	if !slices.Contains(multiparts, orphanKey) {
		t.Fatalf("multipart uploads %v lack the orphan %s", multiparts, orphanKey)
	}
	res, err := ts.srv.SweepOrphans(ctx)
	if err != nil || res.Multipart+res.Objects != 0 {
		t.Fatalf("sweep within the TTL: %+v, %v; want nothing removed", res, err)
	}
	if got := s3.ListMultipartUploads(t, bucket); !slices.Equal(got, multiparts) {
		t.Fatalf("multipart uploads after a sweep within the TTL: %v; want %v", got, multiparts)
	}

	clk.add(2 * time.Hour)
	res, err = ts.srv.SweepOrphans(ctx)
	if err != nil || res.Multipart != 1 || res.Objects != 1 {
		t.Fatalf("sweep after the TTL: %+v, %v; want the orphan's multipart upload and .info", res, err)
	}
	wantMPs := slices.DeleteFunc(slices.Clone(multiparts), func(k string) bool { return k == orphanKey })
	if got := s3.ListMultipartUploads(t, bucket); !slices.Equal(got, wantMPs) {
		t.Errorf("multipart uploads left: %v; want %v", got, wantMPs)
	}
	wantObjs := slices.DeleteFunc(slices.Clone(objects), func(k string) bool { return k == orphanKey+".info" })
	if got := s3.ListObjects(t, bucket); !slices.Equal(got, wantObjs) {
		t.Errorf("objects left: %v; want %v", got, wantObjs)
	}
	for _, key := range []string{outsideKey, outsideKey + ".info"} {
		if !slices.Contains(s3.ListObjects(t, bucket), key) && !slices.Contains(s3.ListMultipartUploads(t, bucket), key) {
			t.Errorf("%s outside the prefix is gone", key)
		}
	}
	holderKey := "uploads/" + strings.SplitN(idOf(holder), "+", 2)[0]
	if !slices.Contains(s3.ListObjects(t, bucket), holderKey) {
		t.Errorf("the blob holder's object %s is gone", holderKey)
	}
	if got := ts.download(referrer); !bytes.Equal(got, shared) {
		t.Error("the referrer's content did not survive")
	}
	if got := ts.download(done); string(got) != "complete" {
		t.Error("the complete upload did not survive")
	}
	if sess, err := ts.srv.Catalog().Get(ctx, idOf(partial)); err != nil || sess.Offset != 10 {
		t.Errorf("known partial upload: %+v, %v", sess, err)
	}
	if got := ts.orphanMetric("multipart"); got != 1 {
		t.Errorf("intake_orphans_removed_total{kind=multipart} = %v; want 1", got)
	}
	if got := ts.orphanMetric("object"); got != 1 {
		t.Errorf("intake_orphans_removed_total{kind=object} = %v; want 1", got)
	}
}

// TestReaperLoopSweepsOrphans: the server's own loop sweeps after each
// reaper pass: files of an upload created behind intake's back on the file
// store go once older than the TTL, a known upload's stay.
func TestReaperLoopSweepsOrphans(t *testing.T) {
	cfg := testConfig(t, "sqlite")
	cfg.UploadTTL = time.Hour
	cfg.ReapInterval = 20 * time.Millisecond
	clk := &skewed{}
	ts := startServer(t, cfg, server.WithClock(clk.now))
	ctx := context.Background()

	done, err := ts.client.Upload(ctx, bytes.NewReader([]byte("keep me")), 7, 0, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	up, err := filestore.New(cfg.UploadsDir()).NewUpload(ctx, handler.FileInfo{Size: 100})
	if err != nil {
		t.Fatal(err)
	}
	info, _ := up.GetInfo(ctx)
	orphan := filepath.Join(cfg.UploadsDir(), info.ID)

	time.Sleep(100 * time.Millisecond) // a few passes within the TTL
	if _, err := os.Stat(orphan + ".info"); err != nil {
		t.Fatalf("orphan removed within the TTL: %v", err)
	}
	clk.add(2 * time.Hour)
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err1 := os.Stat(orphan)
		_, err2 := os.Stat(orphan + ".info")
		if os.IsNotExist(err1) && os.IsNotExist(err2) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("orphan files still there after 10s: %v, %v", err1, err2)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := ts.download(done); string(got) != "keep me" {
		t.Error("the known upload did not survive")
	}
	if got := ts.orphanMetric("file"); got != 2 {
		t.Errorf("intake_orphans_removed_total{kind=file} = %v; want 2", got)
	}
}

// TestStaleS3PartFilesRemovedAtStart: part files a killed process left in
// the S3 temp directory are gone once the server is up; other files stay.
func TestStaleS3PartFilesRemovedAtStart(t *testing.T) {
	s3 := s3test.Shared(t)
	cfg := s3Config(t, s3, "sqlite", s3.NewBucket(t))
	tmp := cfg.S3TempDirPath()
	if err := os.MkdirAll(tmp, 0o750); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"tusd-s3-tmp-123", "tusd-s3-concat-tmp-456", "operator-notes"} {
		if err := os.WriteFile(filepath.Join(tmp, name), []byte("stale"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ts := startServer(t, cfg, s3Creds(s3))
	entries, err := os.ReadDir(tmp)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "operator-notes" {
		t.Fatalf("temp directory holds %v; want only operator-notes", entries)
	}
	if got := ts.orphanMetric("temp"); got != 2 {
		t.Errorf("intake_orphans_removed_total{kind=temp} = %v; want 2", got)
	}
	// The server still uploads through the directory.
	if _, err := ts.client.Upload(context.Background(), bytes.NewReader([]byte("hello")), 5, 0, nil, 0); err != nil {
		t.Fatal(err)
	}
}
