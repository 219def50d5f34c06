package server_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"testing"

	"github.com/intake-dev/intake/internal/pgtest"
	"github.com/intake-dev/intake/pkg/client"
	"github.com/intake-dev/intake/pkg/config"
	"github.com/intake-dev/intake/pkg/server"
)

// testServer is one intake instance on a loopback port.
type testServer struct {
	t      testing.TB
	cfg    config.Config
	srv    *server.Server
	base   string // http://127.0.0.1:port
	client *client.Client
	cancel context.CancelFunc
	done   chan error
}

// backends are the catalogs every behaviour test runs against.
var backends = []string{"sqlite", "postgres"}

// testConfig returns a config for backend with a fresh data directory and,
// for postgres, a fresh schema.
func testConfig(t testing.TB, backend string) config.Config {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Listen = "127.0.0.1:0"
	cfg.LogLevel = "warn"
	if backend == "postgres" {
		cfg.DatabaseURL = pgtest.URL(t)
	}
	return cfg
}

func forEachBackend(t *testing.T, f func(t *testing.T, cfg config.Config)) {
	for _, b := range backends {
		t.Run(b, func(t *testing.T) {
			t.Parallel()
			f(t, testConfig(t, b))
		})
	}
}

func startServer(t testing.TB, cfg config.Config, opts ...server.Option) *testServer {
	t.Helper()
	return startServerLogging(t, cfg, os.Stderr, opts...)
}

// startServerLogging is startServer with the server's log (warnings and
// up) going to w.
func startServerLogging(t testing.TB, cfg config.Config, w io.Writer, opts ...server.Option) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		t.Fatal(err)
	}
	return serveOn(t, cfg, ln, w, opts...)
}

// serveOn is startServerLogging on a listener of the caller's, which the
// server closes when it stops.
func serveOn(t testing.TB, cfg config.Config, ln net.Listener, w io.Writer, opts ...server.Option) *testServer {
	t.Helper()
	log := slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv, err := server.New(context.Background(), cfg, log, opts...)
	if err != nil {
		ln.Close()
		t.Fatalf("server.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{
		t: t, cfg: cfg, srv: srv, cancel: cancel, done: make(chan error, 1),
		base: "http://" + ln.Addr().String(),
	}
	ts.client = &client.Client{Endpoint: ts.base + cfg.BasePath}
	go func() { ts.done <- srv.Serve(ctx, ln) }()
	t.Cleanup(ts.stop)
	return ts
}

// stop shuts the server down gracefully; calling it again is harmless.
func (ts *testServer) stop() {
	if ts.cancel == nil {
		return
	}
	ts.cancel()
	ts.cancel = nil
	if err := <-ts.done; err != nil {
		ts.t.Errorf("Serve: %v", err)
	}
	if err := ts.srv.Close(); err != nil {
		ts.t.Errorf("Close: %v", err)
	}
}

func randomBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// do sends a request with tus headers and returns the response with its body read.
func (ts *testServer) do(method, url string, body []byte, hdr map[string]string) (*http.Response, []byte) {
	ts.t.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		ts.t.Fatal(err)
	}
	req.Header.Set("Tus-Resumable", "1.0.0")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		ts.t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		ts.t.Fatal(err)
	}
	return resp, b
}

func (ts *testServer) download(url string) []byte {
	ts.t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		ts.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		ts.t.Fatalf("GET %s: status %d", url, resp.StatusCode)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		ts.t.Fatal(err)
	}
	return b
}

func idOf(url string) string {
	for i := len(url) - 1; i >= 0; i-- {
		if url[i] == '/' {
			return url[i+1:]
		}
	}
	return url
}
