package server_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/intake-dev/intake/internal/s3test"
	"github.com/intake-dev/intake/pkg/client"
	"github.com/intake-dev/intake/pkg/server"
)

// TestS3UnreachableAtStart: intake starts while the S3 server is down,
// reports itself unready and refuses uploads with 503; once S3 answers it
// becomes ready and works, without a restart.
func TestS3UnreachableAtStart(t *testing.T) {
	s3 := s3test.Start(t)
	bucket := s3.NewBucket(t)
	s3.Stop()
	ts := startServer(t, s3Config(t, s3, "sqlite", bucket), s3Creds(s3))

	resp, body := ts.do("GET", ts.base+"/readyz", nil, nil)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), `"storage": "unavailable"`) {
		t.Fatalf("readyz with S3 down: %d %s", resp.StatusCode, body)
	}
	ctx := context.Background()
	if _, err := ts.client.Upload(ctx, bytes.NewReader([]byte("hello")), 5, 0, nil, 0); !client.IsStatus(err, http.StatusServiceUnavailable) {
		t.Fatalf("upload with S3 down: %v; want 503", err)
	}

	s3.Restart(t)
	waitFor(t, func() bool {
		resp, _ := ts.do("GET", ts.base+"/readyz", nil, nil)
		return resp.StatusCode == http.StatusOK
	})
	data := randomBytes(t, 1<<20)
	url, err := ts.client.Upload(ctx, bytes.NewReader(data), int64(len(data)), 0, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := ts.download(url); !bytes.Equal(got, data) {
		t.Fatal("download differs")
	}
}

// TestS3FailsMidPatch: the S3 server dies while a PATCH streams. The client
// gets a 5xx; HEAD never reports more than S3 holds; once S3 is back the
// upload resumes from HEAD's offset and completes byte-exact.
func TestS3FailsMidPatch(t *testing.T) {
	s3 := s3test.Start(t)
	bucket := s3.NewBucket(t)
	ts := startServer(t, s3Config(t, s3, "postgres", bucket), s3Creds(s3))
	ctx := context.Background()
	const size = 24 << 20
	data := randomBytes(t, size)
	url, _, err := ts.client.Create(ctx, client.Upload{Size: size}, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	// A first PATCH lands, so there is committed state in S3 to keep.
	first := int64(6 << 20)
	if _, err := ts.client.Patch(ctx, url, 0, bytes.NewReader(data[:first]), first, -1); err != nil {
		t.Fatal(err)
	}

	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		_, err := ts.client.Patch(ctx, url, first, pr, size-first, -1)
		errc <- err
	}()
	if _, err := pw.Write(data[first : first+(8<<20)]); err != nil {
		t.Fatal(err)
	}
	s3.Stop()
	go func() { _, _ = pw.Write(data[first+(8<<20):]); pw.Close() }()
	select {
	case err := <-errc:
		var se *client.StatusError
		if err == nil || (asStatus(err, &se) && se.Status < 500) {
			t.Fatalf("PATCH while S3 died: %v; want a 5xx", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("PATCH did not end after S3 died")
	}
	pr.CloseWithError(io.ErrClosedPipe)

	if _, err := ts.client.Head(ctx, url); !client.IsStatus(err, http.StatusServiceUnavailable) {
		t.Errorf("HEAD while S3 is down: %v; want 503", err)
	}
	s3.Restart(t)
	info, err := ts.client.Head(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	if info.Offset < first || info.Offset > size {
		t.Fatalf("offset after the outage = %d; want between %d and %d", info.Offset, first, size)
	}
	if err := ts.client.Resume(ctx, url, bytes.NewReader(data), size, 0, 0); err != nil {
		t.Fatal(err)
	}
	if got := ts.download(url); !bytes.Equal(got, data) {
		t.Fatal("upload resumed after the S3 outage differs")
	}
	sess, err := ts.srv.Catalog().Get(ctx, idOf(url))
	if err != nil || sess.State != "complete" || sess.Offset != size {
		t.Fatalf("session = %+v, %v", sess, err)
	}
}

func asStatus(err error, se **client.StatusError) bool {
	return errors.As(err, se)
}

// TestS3WrongCredentials: a wrong secret makes intake unready with a log
// line that says the credentials were refused, never the secret itself.
func TestS3WrongCredentials(t *testing.T) {
	s3 := s3test.Shared(t)
	bucket := s3.NewBucket(t)
	const secret = "definitely-not-the-secret-0123456789"
	var logs bytes.Buffer
	ts := startServerLogging(t, s3Config(t, s3, "sqlite", bucket), &logs,
		server.WithS3Credentials(credentials.NewStaticCredentialsProvider(s3.AccessKey, secret, "")))
	resp, body := ts.do("GET", ts.base+"/readyz", nil, nil)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("readyz with a wrong secret: %d %s", resp.StatusCode, body)
	}
	out := logs.String()
	if !strings.Contains(out, "refused the credentials") {
		t.Errorf("log does not say the credentials were refused:\n%s", out)
	}
	if strings.Contains(out, secret) || strings.Contains(string(body), secret) {
		t.Error("the secret key appears in the log or the response")
	}
}
