package bucket_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/minio/minio-go/v7"
	"github.com/tus/tusd/v2/pkg/handler"

	"github.com/intake-dev/intake/internal/s3test"
	"github.com/intake-dev/intake/pkg/bucket"
)

func TestMain(m *testing.M) { os.Exit(s3test.Main(m)) }

// newBucket is a Bucket on a fresh bucket of the shared versitygw, with
// prefix as --s3-prefix.
func newBucket(t *testing.T, s3 *s3test.Server, name, prefix string) *bucket.Bucket {
	t.Helper()
	b, err := bucket.New(t.Context(), bucket.Options{
		Bucket: name, Endpoint: s3.Endpoint, Region: s3.Region, PathStyle: true, Prefix: prefix,
		PartSize: 5 << 20, MinPartSize: 5 << 20, MaxBufferedParts: 2, ConcurrentParts: 2,
		TempDir:     t.TempDir(),
		Credentials: credentials.NewStaticCredentialsProvider(s3.AccessKey, s3.SecretKey, ""),
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// knownSet is the catalog's Known over a fixed set of ids, counting calls.
type knownSet struct {
	mu    sync.Mutex
	ids   map[string]bool
	calls int
}

func (k *knownSet) known(_ context.Context, ids []string) (map[string]bool, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.calls++
	got := map[string]bool{}
	for _, id := range ids {
		if k.ids[id] {
			got[id] = true
		}
	}
	return got, nil
}

func storeID(t *testing.T) string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// TestSweepOrphans: on a real S3 server, the sweep aborts the multipart
// uploads and deletes the .info and .part objects of uploads no session
// knows, once older than the cutoff; it keeps known uploads (incomplete
// and complete), every finished object, a .part it cannot attribute, and
// anything outside the prefix or not of tusd's shape. A dry run and a
// failing catalog change nothing.
func TestSweepOrphans(t *testing.T) {
	t.Parallel()
	s3 := s3test.Shared(t)
	name := s3.NewBucket(t)
	// No trailing slash: tusd adds one, and so must the sweep.
	b := newBucket(t, s3, name, "uploads")
	store := b.Store()
	mc := s3.Client()
	core := minio.Core{Client: mc}
	ctx := t.Context()

	create := func(size int64, data []byte, finish bool) string {
		t.Helper()
		up, err := store.NewUpload(ctx, handler.FileInfo{Size: size})
		if err != nil {
			t.Fatal(err)
		}
		info, err := up.GetInfo(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(data) > 0 {
			if _, err := up.WriteChunk(ctx, 0, bytes.NewReader(data)); err != nil {
				t.Fatal(err)
			}
		}
		if finish {
			if err := up.FinishUpload(ctx); err != nil {
				t.Fatal(err)
			}
		}
		return info.ID
	}
	knownPartial := create(100, make([]byte, 10), false)
	knownDone := create(10, []byte("0123456789"), true)
	orphan := create(100, nil, false)
	orphanPart := create(100, make([]byte, 10), false)
	unknownDone := create(5, []byte("hello"), true)

	put := func(key, body string) {
		t.Helper()
		if _, err := mc.PutObject(ctx, name, key, strings.NewReader(body), int64(len(body)), minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// Behind intake's back: a multipart upload under the prefix with no
	// .info (a crash between tusd's two requests), a .part alone, and
	// lookalikes outside the prefix, below it, or of another shape.
	bareMultipart := "uploads/" + storeID(t)
	if _, err := core.NewMultipartUpload(ctx, name, bareMultipart, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	barePart := "uploads/" + storeID(t) + ".part"
	put(barePart, "stray bytes")
	outside := storeID(t)
	if _, err := core.NewMultipartUpload(ctx, name, "other/"+outside, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	put("other/"+outside+".info", `{"ID":"`+outside+`+x"}`)
	put("uploadsx/"+outside+".info", `{"ID":"`+outside+`+x"}`)
	nested := storeID(t)
	put("uploads/deeper/"+nested+".info", `{"ID":"`+nested+`+x"}`)
	put("uploads/readme.txt", "not an upload")

	k := &knownSet{ids: map[string]bool{knownPartial: true, knownDone: true}}
	sweep := b.Orphans(slog.New(slog.NewTextHandler(t.Output(), nil)))
	objects, multiparts := s3.ListObjects(t, name), s3.ListMultipartUploads(t, name)

	res, err := sweep.SweepOrphans(ctx, k.known, time.Now().Add(-time.Hour), false)
	if err != nil || res.Multipart+res.Objects+res.Kept != 0 {
		t.Fatalf("sweep of young storage: %+v, %v; want nothing touched", res, err)
	}

	later := time.Now().Add(time.Minute)
	down := func(context.Context, []string) (map[string]bool, error) { return nil, errors.New("catalog down") }
	if res, err := sweep.SweepOrphans(ctx, down, later, false); err == nil || res.Multipart+res.Objects != 0 {
		t.Fatalf("sweep with the catalog down: %+v, %v; want an error and nothing removed", res, err)
	}

	const wantMultipart, wantObjects = 3, 3 // orphan, orphanPart, bare; .info, .info and .part
	res, err = sweep.SweepOrphans(ctx, k.known, later, true)
	if err != nil || res.Multipart != wantMultipart || res.Objects != wantObjects || res.Kept != 1 {
		t.Fatalf("dry run: %+v, %v; want %d multipart uploads, %d objects, 1 kept", res, err, wantMultipart, wantObjects)
	}
	if got := s3.ListObjects(t, name); !slices.Equal(got, objects) {
		t.Fatalf("dry run changed the objects: %v; want %v", got, objects)
	}
	if got := s3.ListMultipartUploads(t, name); !slices.Equal(got, multiparts) {
		t.Fatalf("dry run changed the multipart uploads: %v; want %v", got, multiparts)
	}

	k.calls = 0
	res, err = sweep.SweepOrphans(ctx, k.known, later, false)
	if err != nil || res.Multipart != wantMultipart || res.Objects != wantObjects || res.Kept != 1 {
		t.Fatalf("sweep: %+v, %v; want %d multipart uploads, %d objects, 1 kept", res, err, wantMultipart, wantObjects)
	}
	if k.calls != 2 {
		t.Errorf("%d catalog lookups; want 2 (one batch each for multipart uploads and objects)", k.calls)
	}
	key := func(id string) string { return "uploads/" + strings.SplitN(id, "+", 2)[0] }
	wantObjs := []string{
		key(knownPartial) + ".info", key(knownPartial) + ".part",
		key(knownDone), key(knownDone) + ".info",
		key(unknownDone), key(unknownDone) + ".info",
		barePart, "other/" + outside + ".info", "uploadsx/" + outside + ".info",
		"uploads/deeper/" + nested + ".info", "uploads/readme.txt",
	}
	slices.Sort(wantObjs)
	if got := s3.ListObjects(t, name); !slices.Equal(got, wantObjs) {
		t.Errorf("objects left: %v; want %v", got, wantObjs)
	}
	wantMPs := []string{key(knownPartial), "other/" + outside}
	slices.Sort(wantMPs)
	got := s3.ListMultipartUploads(t, name)
	slices.Sort(got)
	if !slices.Equal(got, wantMPs) {
		t.Errorf("multipart uploads left: %v; want %v (gone: %s, %s, %s)", got, wantMPs, orphan, orphanPart, bareMultipart)
	}
	if _, err := store.GetUpload(ctx, knownPartial); err != nil {
		t.Fatal(err)
	}
	up, _ := store.GetUpload(ctx, knownPartial)
	if info, err := up.GetInfo(ctx); err != nil || info.Offset != 10 {
		t.Errorf("known partial upload after the sweep: %+v, %v; want offset 10", info, err)
	}

	// A second pass finds nothing more (and the first's removals are no
	// error when another instance already made them).
	res, err = sweep.SweepOrphans(ctx, k.known, later, false)
	if err != nil || res.Multipart+res.Objects != 0 {
		t.Fatalf("second sweep: %+v, %v; want nothing", res, err)
	}
}

// TestRemoveTempFiles: tusd's part files go; anything else in the
// directory stays.
func TestRemoveTempFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, name := range []string{"tusd-s3-tmp-1", "tusd-s3-concat-tmp-2", "keep.txt"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	removed, err := bucket.RemoveTempFiles(dir)
	if err != nil || len(removed) != 2 {
		t.Fatalf("RemoveTempFiles = %v, %v; want 2 removed", removed, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != "keep.txt" {
		t.Fatalf("left: %v; want keep.txt", entries)
	}
	if removed, err := bucket.RemoveTempFiles(filepath.Join(dir, "missing")); err != nil || len(removed) != 0 {
		t.Fatalf("RemoveTempFiles of a missing directory = %v, %v; want nothing", removed, err)
	}
}
