package s3test

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

func TestServer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := Start(t)

	if !strings.HasPrefix(s.Endpoint, "http://127.0.0.1:") {
		t.Errorf("Endpoint = %s; want http://127.0.0.1:PORT", s.Endpoint)
	}
	bucket := s.NewBucket(t)
	if other := s.NewBucket(t); other == bucket {
		t.Fatalf("NewBucket twice = %s; want different buckets", bucket)
	}
	if fi, err := os.Stat(filepath.Join(s.Dir, bucket)); err != nil || !fi.IsDir() {
		t.Errorf("bucket %s is not a directory in Dir: %v", bucket, err)
	}

	want := []byte("hello, versitygw")
	c := s.Client()
	if _, err := c.PutObject(ctx, bucket, "a/b/object", bytes.NewReader(want), int64(len(want)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := getObject(t, c, bucket, "a/b/object"); !bytes.Equal(got, want) {
		t.Errorf("object = %q; want %q", got, want)
	}
	if _, err := c.PutObject(ctx, bucket, "top", bytes.NewReader(nil), 0, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	// The directories the posix backend made for a/b/object are not objects.
	if got, want := s.ListObjects(t, bucket), []string{"a/b/object", "top"}; !slices.Equal(got, want) {
		t.Errorf("ListObjects = %q; want %q", got, want)
	}

	env := s.Env()
	for _, want := range []string{"AWS_ACCESS_KEY_ID=" + s.AccessKey, "AWS_SECRET_ACCESS_KEY=" + s.SecretKey, "AWS_REGION=" + s.Region} {
		if !slices.Contains(env, want) {
			t.Errorf("Env() = %q; want it to contain %s", env, want)
		}
	}
}

func TestMultipartUploads(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := Start(t)
	bucket := s.NewBucket(t)
	core := minio.Core{Client: s.Client()}

	if got := s.ListMultipartUploads(t, bucket); len(got) != 0 {
		t.Fatalf("ListMultipartUploads of a new bucket = %q; want none", got)
	}
	id := startUpload(t, core, bucket, "dir/upload")
	if got, want := s.ListMultipartUploads(t, bucket), []string{"dir/upload"}; !slices.Equal(got, want) {
		t.Fatalf("ListMultipartUploads = %q; want %q", got, want)
	}
	if got := s.ListObjects(t, bucket); len(got) != 0 {
		t.Errorf("ListObjects during a multipart upload = %q; want none", got)
	}
	if err := core.AbortMultipartUpload(ctx, bucket, "dir/upload", id); err != nil {
		t.Fatal(err)
	}
	if got := s.ListMultipartUploads(t, bucket); len(got) != 0 {
		t.Errorf("ListMultipartUploads after abort = %q; want none", got)
	}
}

// TestStopRestart is the outage an S3 test simulates: requests fail while
// the server is down and find everything again after it comes back.
func TestStopRestart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := Start(t)
	bucket := s.NewBucket(t)
	c := s.Client()
	want := []byte("survives a restart")
	if _, err := c.PutObject(ctx, bucket, "kept", bytes.NewReader(want), int64(len(want)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	startUpload(t, minio.Core{Client: c}, bucket, "unfinished")
	endpoint, dir := s.Endpoint, s.Dir

	s.Stop()
	s.Stop() // a no-op, as a cleanup after a test's own Stop is
	reqCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := c.ListBuckets(reqCtx); err == nil {
		t.Fatal("ListBuckets after Stop succeeded; want an error")
	}

	s.Restart(t)
	if s.Endpoint != endpoint || s.Dir != dir {
		t.Errorf("after Restart Endpoint, Dir = %s, %s; want %s, %s", s.Endpoint, s.Dir, endpoint, dir)
	}
	if got := getObject(t, c, bucket, "kept"); !bytes.Equal(got, want) {
		t.Errorf("object after Restart = %q; want %q", got, want)
	}
	if got, want := s.ListMultipartUploads(t, bucket), []string{"unfinished"}; !slices.Equal(got, want) {
		t.Errorf("ListMultipartUploads after Restart = %q; want %q", got, want)
	}

	s.Restart(t) // while running: stops first
	if got := getObject(t, c, bucket, "kept"); !bytes.Equal(got, want) {
		t.Errorf("object after a second Restart = %q; want %q", got, want)
	}
}

// TestRegion checks why Region is not the default: a client that falls
// back to us-east-1 must be refused rather than pass unnoticed. versitygw,
// like AWS, checks the region on bucket and object requests, not on
// ListBuckets or CreateBucket.
func TestRegion(t *testing.T) {
	t.Parallel()
	s := Start(t)
	bucket := s.NewBucket(t)
	c, err := minio.New(strings.TrimPrefix(s.Endpoint, "http://"), &minio.Options{
		Creds:        credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""),
		Region:       "us-east-1",
		BucketLookup: minio.BucketLookupPath,
		MaxRetries:   1,
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.PutObject(context.Background(), bucket, "k", strings.NewReader("v"), 1, minio.PutObjectOptions{})
	if err == nil || !strings.Contains(err.Error(), "region") {
		t.Errorf("PutObject signed for us-east-1: err = %v; want a wrong-region error", err)
	}
}

func TestShared(t *testing.T) {
	t.Parallel()
	s := Shared(t)
	if again := Shared(t); again != s {
		t.Fatal("Shared twice returned different servers")
	}
	bucket := s.NewBucket(t)
	if got := s.ListObjects(t, bucket); len(got) != 0 {
		t.Errorf("ListObjects of a new bucket = %q; want none", got)
	}
	defer func() {
		if recover() == nil {
			t.Error("Stop on the Shared server did not panic")
		}
	}()
	s.Stop()
}

func TestBucketName(t *testing.T) {
	t.Parallel()
	for _, name := range []string{
		"TestX",
		"TestUpload/resume_after_outage",
		"Test--Odd__Name/#01",
		strings.Repeat("VeryLongName/", 20),
		"/",
	} {
		a, b := bucketName(name), bucketName(name)
		if a == b {
			t.Errorf("bucketName(%q) twice = %s; want unique names", name, a)
		}
		if !validBucketName(a) {
			t.Errorf("bucketName(%q) = %s; want a valid S3 bucket name", name, a)
		}
	}
}

// validBucketName checks the S3 naming rules bucketName promises, without
// the dots it never uses.
func validBucketName(s string) bool {
	if len(s) < 3 || len(s) > 63 || strings.Contains(s, "--") {
		return false
	}
	alnum := func(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }
	if !alnum(s[0]) || !alnum(s[len(s)-1]) {
		return false
	}
	return strings.Trim(s, "abcdefghijklmnopqrstuvwxyz0123456789-") == ""
}

// TestStartEnds runs this test binary again with a binary that is missing
// or broken, as a developer and as CI, and checks how the helper test ends:
// only a missing binary outside CI is a skip.
func TestStartEnds(t *testing.T) {
	t.Parallel()
	falseBin, err := exec.LookPath("false")
	if err != nil {
		t.Skip("no false(1) to stand in for a broken versitygw")
	}
	for _, tc := range []struct {
		bin, ci string
		want    string
	}{
		{filepath.Join(t.TempDir(), "versitygw"), "", "--- SKIP"},
		{filepath.Join(t.TempDir(), "versitygw"), "true", "--- FAIL"},
		{falseBin, "", "--- FAIL"},
		{falseBin, "true", "--- FAIL"},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperStart$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), "S3TEST_HELPER=1", "CI="+tc.ci, BinaryEnv+"="+tc.bin)
		out, _ := cmd.CombinedOutput()
		if !strings.Contains(string(out), tc.want+": TestHelperStart") {
			t.Errorf("%s=%s CI=%q: output:\n%s\nwant %s", BinaryEnv, tc.bin, tc.ci, out, tc.want)
		}
	}
}

func TestHelperStart(t *testing.T) {
	if os.Getenv("S3TEST_HELPER") != "1" {
		return // only meaningful when started by TestStartEnds
	}
	Start(t)
	t.Error("Start returned without a working versitygw")
}

func startUpload(t *testing.T, core minio.Core, bucket, key string) (uploadID string) {
	t.Helper()
	ctx := context.Background()
	id, err := core.NewMultipartUpload(ctx, bucket, key, minio.PutObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	part := []byte("first part")
	if _, err := core.PutObjectPart(ctx, bucket, key, id, 1, bytes.NewReader(part), int64(len(part)), minio.PutObjectPartOptions{}); err != nil {
		t.Fatal(err)
	}
	return id
}

func getObject(t *testing.T, c *minio.Client, bucket, key string) []byte {
	t.Helper()
	obj, err := c.GetObject(context.Background(), bucket, key, minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	b, err := io.ReadAll(obj)
	if err != nil {
		t.Fatalf("error reading %s/%s: %v", bucket, key, err)
	}
	return b
}

// TestLaunch is the harness's way in: no testing.TB, the caller's
// directory, and Close instead of a cleanup.
func TestLaunch(t *testing.T) {
	t.Parallel()
	if _, err := binary(); err != nil {
		unavailable(t, err)
	}
	s, err := Launch(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := s.Client().ListBuckets(ctx); err != nil {
		t.Fatalf("ListBuckets after Launch: %v", err)
	}
	s.Close()
	s.Close() // a no-op
	if _, err := s.Client().ListBuckets(ctx); err == nil {
		t.Fatal("ListBuckets after Close succeeded; want an error")
	}
}
