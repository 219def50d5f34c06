package server_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/intake-dev/intake/pkg/client"
	"github.com/intake-dev/intake/pkg/config"
)

// TestGracefulShutdownKeepsBytes: shutting down during a PATCH stores and
// records every byte that arrived, answers the client, and leaves the upload
// resumable on the next start with the same data directory and catalog.
func TestGracefulShutdownKeepsBytes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, cfg config.Config) {
		ts := startServer(t, cfg)
		ctx := context.Background()
		const size = 4 << 20
		data := randomBytes(t, size)
		url, _, err := ts.client.Create(ctx, client.Upload{Size: size}, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		id := idOf(url)

		pr, pw := io.Pipe()
		req, _ := http.NewRequest("PATCH", url, pr)
		req.ContentLength = size
		req.Header.Set("Tus-Resumable", "1.0.0")
		req.Header.Set("Upload-Offset", "0")
		req.Header.Set("Content-Type", "application/offset+octet-stream")
		respc := make(chan *http.Response, 1)
		go func() {
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				respc <- nil
				return
			}
			resp.Body.Close()
			respc <- resp
		}()
		const sent = 1 << 20
		if _, err := pw.Write(data[:sent]); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(cfg.UploadsDir(), id)
		waitFor(t, func() bool { st, err := os.Stat(path); return err == nil && st.Size() == sent })

		stopped := make(chan struct{})
		go func() { ts.stop(); close(stopped) }()
		select {
		case <-stopped:
		case <-time.After(20 * time.Second):
			t.Fatal("graceful shutdown did not finish")
		}
		pw.CloseWithError(io.ErrClosedPipe)
		if resp := <-respc; resp != nil && resp.StatusCode < 400 {
			t.Errorf("interrupted PATCH answered %d; want an error status", resp.StatusCode)
		}

		ts2 := startServer(t, cfg)
		url = ts2.client.Endpoint + id
		sess, err := ts2.srv.Catalog().Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if sess.Offset != sent {
			t.Fatalf("catalog offset after shutdown = %d; want %d", sess.Offset, sent)
		}
		info, err := ts2.client.Head(ctx, url)
		if err != nil || info.Offset != sent {
			t.Fatalf("HEAD after restart = %+v, %v; want offset %d", info, err, sent)
		}
		if err := ts2.client.Resume(ctx, url, bytes.NewReader(data), size, 0, 0); err != nil {
			t.Fatal(err)
		}
		if got := ts2.download(url); !bytes.Equal(got, data) {
			t.Fatal("resumed upload differs")
		}
	})
}

func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
