package server_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/minio/minio-go/v7"

	"github.com/intake-dev/intake/internal/s3test"
	"github.com/intake-dev/intake/pkg/client"
	"github.com/intake-dev/intake/pkg/config"
	"github.com/intake-dev/intake/pkg/server"
)

func TestMain(m *testing.M) { os.Exit(s3test.Main(m)) }

// s3Setup is intake on a fresh bucket of an S3 server (versitygw).
type s3Setup struct {
	*testServer
	s3     *s3test.Server
	bucket string
}

func s3Config(t testing.TB, s3 *s3test.Server, backend, bucket string) config.Config {
	cfg := testConfig(t, backend)
	cfg.Store = "s3"
	cfg.S3Bucket = bucket
	cfg.S3Endpoint = s3.Endpoint
	cfg.S3Region = s3.Region
	cfg.S3PathStyle = true
	cfg.S3Prefix = "uploads/"
	return cfg
}

func s3Creds(s3 *s3test.Server) server.Option {
	return server.WithS3Credentials(credentials.NewStaticCredentialsProvider(s3.AccessKey, s3.SecretKey, ""))
}

// startS3 starts intake on a new bucket of the shared S3 server.
func startS3(t *testing.T, backend string, adjust ...func(*config.Config)) *s3Setup {
	s3 := s3test.Shared(t)
	bucket := s3.NewBucket(t)
	cfg := s3Config(t, s3, backend, bucket)
	for _, f := range adjust {
		f(&cfg)
	}
	return &s3Setup{testServer: startServer(t, cfg, s3Creds(s3)), s3: s3, bucket: bucket}
}

// object reads an object straight from the bucket.
func (s *s3Setup) object(t *testing.T, key string) []byte {
	t.Helper()
	obj, err := s.s3.Client().GetObject(context.Background(), s.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	b, err := io.ReadAll(obj)
	if err != nil {
		t.Fatalf("reading %s: %v", key, err)
	}
	return b
}

// nothingLeft asserts the bucket holds no object and no multipart upload.
func (s *s3Setup) nothingLeft(t *testing.T) {
	t.Helper()
	if objs := s.s3.ListObjects(t, s.bucket); len(objs) != 0 {
		t.Errorf("objects left in the bucket: %v", objs)
	}
	if mps := s.s3.ListMultipartUploads(t, s.bucket); len(mps) != 0 {
		t.Errorf("multipart uploads left in the bucket: %v", mps)
	}
}

// TestS3OddPatchSizes: 64 MiB and change in PATCHes below the 5 MiB minimum
// part and above one 50 MiB part; the object in the bucket and the download
// are byte-exact, and only the object (and tusd's .info) remain.
func TestS3OddPatchSizes(t *testing.T) {
	if testing.Short() {
		t.Skip("64 MiB through S3")
	}
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			s := startS3(t, backend)
			ctx := context.Background()
			sizes := []int{1<<20 + 7, 3<<20 + 1, 4 << 20, 5<<20 - 3, 51<<20 + 11, 9, 333333}
			total := 0
			for _, n := range sizes {
				total += n
			}
			data := randomBytes(t, total)
			url, _, err := s.client.Create(ctx, client.Upload{Size: int64(total), Metadata: map[string]string{"filename": "odd.bin"}}, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			off := 0
			for _, n := range sizes {
				got, err := s.client.Patch(ctx, url, int64(off), bytes.NewReader(data[off:off+n]), int64(n), -1)
				if err != nil {
					t.Fatalf("PATCH of %d at %d: %v", n, off, err)
				}
				off += n
				if got != int64(off) {
					t.Fatalf("offset %d; want %d", got, off)
				}
				if info, err := s.client.Head(ctx, url); err != nil || info.Offset != int64(off) {
					t.Fatalf("HEAD = %+v, %v; want offset %d", info, err, off)
				}
			}
			id := idOf(url)
			objectID, _, _ := strings.Cut(id, "+")
			if got := s.object(t, "uploads/"+objectID); !bytes.Equal(got, data) {
				t.Fatalf("object in the bucket (%d bytes) differs from the upload (%d)", len(got), len(data))
			}
			if got := s.download(url); !bytes.Equal(got, data) {
				t.Fatal("download differs")
			}
			sess, err := s.srv.Catalog().Get(ctx, id)
			if err != nil || sess.State != "complete" || sess.Storage["Key"] != "uploads/"+objectID || sess.Storage["Bucket"] != s.bucket {
				t.Fatalf("session = %+v, %v", sess, err)
			}
			if mps := s.s3.ListMultipartUploads(t, s.bucket); len(mps) != 0 {
				t.Errorf("multipart uploads left after completion: %v", mps)
			}
		})
	}
}

func TestS3CreationWithUploadAndDeferredLength(t *testing.T) {
	s := startS3(t, "sqlite")
	ctx := context.Background()
	data := randomBytes(t, 7<<20+5)

	url, off, err := s.client.Create(ctx, client.Upload{Size: int64(len(data))}, bytes.NewReader(data[:1<<20]), 1<<20)
	if err != nil || off != 1<<20 {
		t.Fatalf("creation-with-upload: %d, %v", off, err)
	}
	if _, err := s.client.Patch(ctx, url, off, bytes.NewReader(data[off:]), int64(len(data))-off, -1); err != nil {
		t.Fatal(err)
	}
	if got := s.download(url); !bytes.Equal(got, data) {
		t.Fatal("creation-with-upload download differs")
	}

	// Deferred length, ending with an empty PATCH that only declares it.
	url, _, err = s.client.Create(ctx, client.Upload{Defer: true}, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	half := int64(6<<20 + 1)
	if _, err := s.client.Patch(ctx, url, 0, bytes.NewReader(data[:half]), half, -1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.client.Patch(ctx, url, half, bytes.NewReader(data[half:]), int64(len(data))-half, -1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.client.Patch(ctx, url, int64(len(data)), nil, 0, int64(len(data))); err != nil {
		t.Fatalf("empty PATCH declaring the length: %v", err)
	}
	info, err := s.client.Head(ctx, url)
	if err != nil || info.Size != int64(len(data)) || info.Offset != int64(len(data)) {
		t.Fatalf("HEAD after declaring = %+v, %v", info, err)
	}
	if got := s.download(url); !bytes.Equal(got, data) {
		t.Fatal("deferred-length download differs")
	}
}

// TestS3ConcatenationOfParallelPartials uploads four partial uploads at
// once, each in 2 MiB PATCHes, and concatenates them.
func TestS3ConcatenationOfParallelPartials(t *testing.T) {
	s := startS3(t, "postgres")
	ctx := context.Background()
	parts := make([][]byte, 4)
	partials := make([]string, 4)
	errs := make(chan error, len(parts))
	for i := range parts {
		parts[i] = randomBytes(t, 5<<20+i*777)
		go func() {
			size := int64(len(parts[i]))
			u, _, err := s.client.Create(ctx, client.Upload{Size: size, Partial: true}, nil, 0)
			if err == nil {
				partials[i] = u
				err = s.client.Resume(ctx, u, bytes.NewReader(parts[i]), size, 2<<20, 0)
			}
			errs <- err
		}()
	}
	for range parts {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	final, _, err := s.client.Create(ctx, client.Upload{Final: partials}, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := bytes.Join(parts, nil)
	if got := s.download(final); !bytes.Equal(got, want) {
		t.Fatalf("concatenation: got %d bytes; want %d", len(got), len(want))
	}
	if info, err := s.client.Head(ctx, final); err != nil || info.Offset != int64(len(want)) || !strings.HasPrefix(info.Concat, "final;") {
		t.Fatalf("HEAD of the final upload = %+v, %v", info, err)
	}
}

// TestS3TerminationLeavesNothing: DELETE of an upload in every phase (no
// part yet, a .part pending, parts uploaded, complete) leaves no object and
// no multipart upload behind.
func TestS3TerminationLeavesNothing(t *testing.T) {
	s := startS3(t, "sqlite")
	ctx := context.Background()
	data := randomBytes(t, 12<<20)
	var urls []string
	for _, sent := range []int{0, 1 << 20, 6 << 20, len(data)} {
		u, _, err := s.client.Create(ctx, client.Upload{Size: int64(len(data))}, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		if sent > 0 {
			if _, err := s.client.Patch(ctx, u, 0, bytes.NewReader(data[:sent]), int64(sent), -1); err != nil {
				t.Fatal(err)
			}
		}
		urls = append(urls, u)
	}
	if len(s.s3.ListObjects(t, s.bucket)) == 0 || len(s.s3.ListMultipartUploads(t, s.bucket)) == 0 {
		t.Fatal("the uploads left no trace in the bucket to remove; the test proves nothing")
	}
	for _, u := range urls {
		if err := s.client.Delete(ctx, u); err != nil {
			t.Fatalf("DELETE %s: %v", u, err)
		}
		if _, err := s.client.Head(ctx, u); !client.IsStatus(err, http.StatusNotFound) {
			t.Errorf("HEAD after DELETE: %v; want 404", err)
		}
	}
	s.nothingLeft(t)
}

// TestS3RestartMidUpload: intake stops (gracefully) mid-upload; a new
// instance on the same catalog and bucket resumes byte-exact.
func TestS3RestartMidUpload(t *testing.T) {
	s3 := s3test.Shared(t)
	bucket := s3.NewBucket(t)
	cfg := s3Config(t, s3, "postgres", bucket)
	ts := startServer(t, cfg, s3Creds(s3))
	ctx := context.Background()
	data := randomBytes(t, 13<<20+3)
	url, _, err := ts.client.Create(ctx, client.Upload{Size: int64(len(data))}, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	sent := int64(7<<20 + 1)
	if _, err := ts.client.Patch(ctx, url, 0, bytes.NewReader(data[:sent]), sent, -1); err != nil {
		t.Fatal(err)
	}
	ts.stop()

	ts2 := startServer(t, cfg, s3Creds(s3))
	url = ts2.client.Endpoint + idOf(url)
	info, err := ts2.client.Head(ctx, url)
	if err != nil || info.Offset != sent {
		t.Fatalf("HEAD after restart = %+v, %v; want offset %d", info, err, sent)
	}
	if err := ts2.client.Resume(ctx, url, bytes.NewReader(data), int64(len(data)), 4<<20, 0); err != nil {
		t.Fatal(err)
	}
	if got := ts2.download(url); !bytes.Equal(got, data) {
		t.Fatal("resumed upload differs")
	}
}

// TestS3RangeAndRedirect: GET honours Range when streaming from the
// bucket; with --download-redirect it answers 302 to a presigned URL that
// serves the same bytes.
func TestS3RangeAndRedirect(t *testing.T) {
	for _, redirect := range []bool{false, true} {
		t.Run(fmt.Sprintf("redirect=%v", redirect), func(t *testing.T) {
			t.Parallel()
			s := startS3(t, "sqlite", func(c *config.Config) { c.DownloadRedirect = redirect })
			ctx := context.Background()
			data := randomBytes(t, 3<<20+17)
			url, err := s.client.Upload(ctx, bytes.NewReader(data), int64(len(data)), 0, map[string]string{"filename": "clip.mp4", "filetype": "video/mp4"}, 0)
			if err != nil {
				t.Fatal(err)
			}
			if redirect {
				noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
				resp, err := noFollow.Get(url)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				loc := resp.Header.Get("Location")
				if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, s.s3.Endpoint) || !strings.Contains(loc, "X-Amz-Signature=") {
					t.Fatalf("GET with redirect: %d Location %q; want 302 to a presigned URL", resp.StatusCode, loc)
				}
			}
			req, _ := http.NewRequest("GET", url, nil)
			req.Header.Set("Range", "bytes=1000-1999999")
			resp, err := http.DefaultClient.Do(req) // follows the redirect, Range and all
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, data[1000:2000000]) {
				t.Fatalf("ranged GET: %d, %d bytes; want 206 with bytes 1000-1999999", resp.StatusCode, len(body))
			}
			if ct := resp.Header.Get("Content-Type"); ct != "video/mp4" {
				t.Errorf("Content-Type = %q; want video/mp4", ct)
			}
			if got := s.download(url); !bytes.Equal(got, data) {
				t.Fatal("full download differs")
			}
		})
	}
}
