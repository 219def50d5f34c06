package server_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/tus/tusd/v2/pkg/filestore"
	"github.com/tus/tusd/v2/pkg/handler"
	"github.com/tus/tusd/v2/pkg/memorylocker"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/intake-dev/intake/internal/s3test"
	bucketpkg "github.com/intake-dev/intake/pkg/bucket"
	"github.com/intake-dev/intake/pkg/client"
	"github.com/intake-dev/intake/pkg/logging"
)

// patternReader yields n bytes cycling through a fixed random block, so a
// 1 GiB body costs no allocation and no generation time in the client.
type patternReader struct {
	block []byte
	n     int64
	off   int64
}

func (r *patternReader) Read(p []byte) (int, error) {
	if r.off >= r.n {
		return 0, io.EOF
	}
	i := int(r.off % int64(len(r.block)))
	m := copy(p, r.block[i:])
	if rest := r.n - r.off; int64(m) > rest {
		m = int(rest)
	}
	r.off += int64(m)
	return m, nil
}

// bareTusd serves tusd's handler over a file store exactly as its own
// binary would, without intake's layers: the baseline.
func bareTusd(b *testing.B) (endpoint, dir string) {
	dir = b.TempDir()
	return serveTusd(b, filestore.New(dir).UseIn), dir
}

// serveTusd serves tusd's handler, with the in-memory locker and its log
// discarded, over the store that useIn adds to the composer, and returns
// the tus endpoint.
func serveTusd(b *testing.B, useIn func(*handler.StoreComposer)) (endpoint string) {
	composer := handler.NewStoreComposer()
	useIn(composer)
	memorylocker.New().UseIn(composer)
	quiet := logging.Tusd(slog.NewTextHandler(io.Discard, nil))
	h, err := handler.NewHandler(handler.Config{BasePath: "/files/", StoreComposer: composer, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/files/", http.StripPrefix("/files/", h))
	srv := httptest.NewServer(mux)
	b.Cleanup(srv.Close)
	return srv.URL + "/files/"
}

// BenchmarkUpload1GiB compares one 1 GiB upload in a single PATCH through
// intake and through bare tusd on the same file store. Report the ratio of
// the MB/s columns; intake's catalog is touched once per PATCH, never per
// byte, so the ratio should be near 1 with file-sync off. With file-sync on
// (the default) intake also fsyncs the bytes before acknowledging them.
func BenchmarkUpload1GiB(b *testing.B) {
	const size = 1 << 30
	block := randomBytes(b, 1<<20)
	run := func(b *testing.B, endpoint, dir string) {
		c := &client.Client{Endpoint: endpoint}
		ctx := context.Background()
		b.SetBytes(size)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			url, _, err := c.Create(ctx, client.Upload{Size: size}, nil, 0)
			if err != nil {
				b.Fatal(err)
			}
			off, err := c.Patch(ctx, url, 0, &patternReader{block: block, n: size}, size, -1)
			if err != nil || off != size {
				b.Fatalf("PATCH: offset %d, %v", off, err)
			}
			b.StopTimer()
			st, err := os.Stat(filepath.Join(dir, idOf(url)))
			if err != nil || st.Size() != size {
				b.Fatalf("stored %v bytes, %v; want %d", st.Size(), err, size)
			}
			if err := c.Delete(ctx, url); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	}
	b.Run("tusd", func(b *testing.B) {
		endpoint, dir := bareTusd(b)
		run(b, endpoint, dir)
	})
	for _, sync := range []bool{false, true} {
		name := "intake/file-sync=false"
		if sync {
			name = "intake/file-sync=true"
		}
		b.Run(name, func(b *testing.B) {
			cfg := testConfig(b, "sqlite")
			cfg.FileSync = sync
			ts := startServer(b, cfg)
			run(b, ts.client.Endpoint, cfg.UploadsDir())
		})
	}
}

// bareTusdS3 serves tusd's handler over its S3 store on bucket, with the
// same client settings intake uses: the baseline for S3.
func bareTusdS3(b *testing.B, s3 *s3test.Server, bucket string) string {
	cfg := s3Config(b, s3, "sqlite", bucket)
	bk, err := bucketpkg.New(context.Background(), bucketpkg.Options{
		Bucket: bucket, Endpoint: cfg.S3Endpoint, Region: cfg.S3Region, PathStyle: true, Prefix: cfg.S3Prefix,
		PartSize: int64(cfg.S3PartSize), MinPartSize: int64(cfg.S3MinPartSize),
		MaxBufferedParts: cfg.S3MaxBufferedParts, ConcurrentParts: cfg.S3ConcurrentParts,
		TempDir:     b.TempDir(),
		Credentials: credentials.NewStaticCredentialsProvider(s3.AccessKey, s3.SecretKey, ""),
	})
	if err != nil {
		b.Fatal(err)
	}
	return serveTusd(b, bk.Store().UseIn)
}

// BenchmarkS3Upload compares 256 MiB uploads to versitygw through bare
// tusd's S3 store and through intake (same part settings), in one PATCH and
// in 8 MiB PATCHes. Every upload is checked for its size in the bucket; the
// first one of each run is compared byte for byte.
func BenchmarkS3Upload(b *testing.B) {
	const size = 256 << 20
	block := randomBytes(b, 1<<20)
	s3 := s3test.Shared(b)
	for _, chunk := range []int64{size, 8 << 20} {
		run := func(b *testing.B, endpoint string) {
			c := &client.Client{Endpoint: endpoint}
			ctx := context.Background()
			b.SetBytes(size)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				url, _, err := c.Create(ctx, client.Upload{Size: size}, nil, 0)
				if err != nil {
					b.Fatal(err)
				}
				src := &patternReader{block: block, n: size}
				for off := int64(0); off < size; off += chunk {
					n := min(chunk, size-off)
					if _, err := c.Patch(ctx, url, off, io.LimitReader(src, n), n, -1); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				if i == 0 {
					resp, err := http.Get(url)
					if err != nil {
						b.Fatal(err)
					}
					got, err := io.ReadAll(resp.Body)
					resp.Body.Close()
					if err != nil || !bytes.Equal(got, bytes.Repeat(block, size/len(block))) {
						b.Fatalf("download of %d bytes differs (%v)", len(got), err)
					}
				}
				if err := c.Delete(ctx, url); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		}
		name := fmt.Sprintf("patch=%dMiB", chunk>>20)
		b.Run(name+"/tusd", func(b *testing.B) {
			run(b, bareTusdS3(b, s3, s3.NewBucket(b)))
		})
		b.Run(name+"/intake", func(b *testing.B) {
			ts := startServer(b, s3Config(b, s3, "sqlite", s3.NewBucket(b)), s3Creds(s3))
			run(b, ts.client.Endpoint)
		})
	}
}

// BenchmarkCreate measures upload creation (POST, 16 at a time) through
// bare tusd and through intake on the file store, with each catalog. An
// intake create also writes the session row.
func BenchmarkCreate(b *testing.B) {
	run := func(b *testing.B, endpoint string) {
		// Keep-alive for all 16 workers: http.DefaultClient keeps only 2
		// idle connections per host, and new connections would dominate.
		tr := &http.Transport{MaxIdleConnsPerHost: 32}
		defer tr.CloseIdleConnections()
		c := &client.Client{Endpoint: endpoint, HTTP: &http.Client{Transport: tr}}
		ctx := context.Background()
		b.SetParallelism(8) // 8 × GOMAXPROCS(2) = 16 concurrent creates
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, _, err := c.Create(ctx, client.Upload{Size: 1}, nil, 0); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	b.Run("tusd", func(b *testing.B) {
		endpoint, _ := bareTusd(b)
		run(b, endpoint)
	})
	for _, backend := range backends {
		b.Run("intake/"+backend, func(b *testing.B) {
			ts := startServer(b, testConfig(b, backend))
			run(b, ts.client.Endpoint)
		})
	}
}

// BenchmarkConcurrentUploads sends 32 uploads of 32 MiB at once, each in a
// single PATCH, through bare tusd and through intake on the file store.
func BenchmarkConcurrentUploads(b *testing.B) {
	const (
		uploads = 32
		size    = 32 << 20
	)
	block := randomBytes(b, 1<<20)
	run := func(b *testing.B, endpoint string) {
		tr := &http.Transport{MaxIdleConnsPerHost: uploads}
		defer tr.CloseIdleConnections()
		c := &client.Client{Endpoint: endpoint, HTTP: &http.Client{Transport: tr}}
		ctx := context.Background()
		b.SetBytes(uploads * size)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			urls := make([]string, uploads)
			errs := make(chan error, uploads)
			for j := range uploads {
				go func() {
					u, _, err := c.Create(ctx, client.Upload{Size: size}, nil, 0)
					if err == nil {
						urls[j] = u
						_, err = c.Patch(ctx, u, 0, &patternReader{block: block, n: size}, size, -1)
					}
					errs <- err
				}()
			}
			for range uploads {
				if err := <-errs; err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			for _, u := range urls {
				if err := c.Delete(ctx, u); err != nil {
					b.Fatal(err)
				}
			}
			b.StartTimer()
		}
	}
	b.Run("tusd", func(b *testing.B) {
		endpoint, _ := bareTusd(b)
		run(b, endpoint)
	})
	b.Run("intake", func(b *testing.B) {
		cfg := testConfig(b, "sqlite")
		cfg.FileSync = false
		ts := startServer(b, cfg)
		run(b, ts.client.Endpoint)
	})
}
