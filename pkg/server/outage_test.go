package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/intake-dev/intake/pkg/catalog"
	"github.com/intake-dev/intake/pkg/client"
)

// TestDatabaseOutage: while PostgreSQL is unreachable intake answers 503
// (never a 500, never the DSN) and keeps no half-created upload; once the
// database is back, the same process becomes ready again and uploads resume
// and complete without a restart.
func TestDatabaseOutage(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "postgres")
	u, err := url.Parse(cfg.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	if u.Query().Get("host") != "" || u.Hostname() == "" {
		t.Skip("the proxy needs TEST_DATABASE_URL to name a TCP host")
	}
	target := u.Host
	if u.Port() == "" {
		target = net.JoinHostPort(u.Hostname(), "5432")
	}
	proxy := startProxy(t, target)
	u.Host = proxy.addr()
	cfg.DatabaseURL = u.String()
	ts := startServer(t, cfg)
	ctx := context.Background()

	// Anything that could identify the database must stay out of bodies.
	secrets := []string{proxy.addr(), target, "postgres://", u.Query().Get("search_path")}
	if u.User != nil {
		secrets = append(secrets, u.User.Username())
	}
	noSecrets := func(what string, body []byte) {
		t.Helper()
		for _, s := range secrets {
			if s != "" && strings.Contains(string(body), s) {
				t.Errorf("%s body reveals %q: %s", what, s, body)
			}
		}
	}

	const size = 1 << 20
	data := randomBytes(t, size)
	upURL, _, err := ts.client.Create(ctx, client.Upload{Size: size}, bytes.NewReader(data[:size/2]), size/2)
	if err != nil {
		t.Fatal(err)
	}
	id := idOf(upURL)
	filesBefore := countFiles(t, cfg.UploadsDir())

	proxy.cut()

	resp, body := ts.do("GET", ts.base+"/readyz", nil, nil)
	var ready struct {
		Status string
		Checks map[string]string
	}
	if resp.StatusCode != http.StatusServiceUnavailable || json.Unmarshal(body, &ready) != nil ||
		ready.Checks["database"] != "unavailable" || ready.Checks["storage"] != "ok" {
		t.Fatalf("readyz while cut: %d %s; want 503 with database unavailable, storage ok", resp.StatusCode, body)
	}
	noSecrets("readyz", body)

	resp, body = ts.do("POST", ts.client.Endpoint, nil, map[string]string{"Upload-Length": "10"})
	if code := errorCode(body); resp.StatusCode != http.StatusServiceUnavailable || code != "catalog_unavailable" || !strings.Contains(string(body), "retry later") {
		t.Fatalf("POST while cut: %d %s; want 503 catalog_unavailable telling the client to retry", resp.StatusCode, body)
	}
	noSecrets("POST", body)
	if n := countFiles(t, cfg.UploadsDir()); n != filesBefore {
		t.Errorf("POST while cut left files: %d before, %d after", filesBefore, n)
	}

	if resp, _ := ts.do("HEAD", upURL, nil, nil); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("HEAD while cut: %d; want 503", resp.StatusCode)
	}
	resp, body = ts.do("PATCH", upURL, data[size/2:], map[string]string{
		"Upload-Offset": "524288", "Content-Type": "application/offset+octet-stream",
	})
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("PATCH while cut: %d %s; want 503", resp.StatusCode, body)
	}
	noSecrets("PATCH", body)
	resp, body = ts.do("GET", ts.base+"/v1/uploads/"+id, nil, nil)
	if code := errorCode(body); resp.StatusCode != http.StatusServiceUnavailable || code != "catalog_unavailable" {
		t.Fatalf("GET /v1/uploads while cut: %d %s; want 503 catalog_unavailable", resp.StatusCode, body)
	}

	proxy.restore()

	// The pool must find its way back on its own.
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, body := ts.do("GET", ts.base+"/readyz", nil, nil)
		if resp.StatusCode == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("readyz after restore still %d %s after 10s", resp.StatusCode, body)
		}
		time.Sleep(20 * time.Millisecond)
	}

	info, err := ts.client.Head(ctx, upURL)
	if err != nil || info.Offset != size/2 {
		t.Fatalf("HEAD after restore = %+v, %v; want offset %d", info, err, size/2)
	}
	if off, err := ts.client.Patch(ctx, upURL, size/2, bytes.NewReader(data[size/2:]), size/2, -1); err != nil || off != size {
		t.Fatalf("PATCH after restore = %d, %v; want %d", off, err, size)
	}
	if got := ts.download(upURL); !bytes.Equal(got, data) {
		t.Fatal("resumed upload differs from what was sent")
	}
	sess, err := ts.srv.Catalog().Get(ctx, id)
	if err != nil || sess.State != catalog.StateComplete || sess.Offset != size {
		t.Fatalf("session after restore = %s at %d, %v; want complete at %d", sess.State, sess.Offset, err, size)
	}

	fresh := randomBytes(t, 100000)
	freshURL, err := ts.client.Upload(ctx, bytes.NewReader(fresh), int64(len(fresh)), 40000, nil, 0)
	if err != nil {
		t.Fatalf("new upload after restore: %v", err)
	}
	if got := ts.download(freshURL); !bytes.Equal(got, fresh) {
		t.Fatal("new upload after restore differs")
	}
}

func errorCode(body []byte) string {
	var e struct {
		Error struct{ Code string }
	}
	_ = json.Unmarshal(body, &e)
	return e.Error.Code
}

func countFiles(t *testing.T, dir string) int {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

// tcpProxy forwards connections to a target and can cut them all, like a
// database host dropping off the network and coming back.
type tcpProxy struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup

	mu    sync.Mutex
	down  bool
	conns map[net.Conn]struct{}
}

// startProxy listens on a loopback port; the proxy is closed, and all its
// goroutines have ended, when the test's cleanups run.
func startProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{ln: ln, target: target, conns: make(map[net.Conn]struct{})}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *tcpProxy) addr() string { return p.ln.Addr().String() }

func (p *tcpProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // listener closed
		}
		p.wg.Add(1)
		go p.serve(c)
	}
}

func (p *tcpProxy) serve(c net.Conn) {
	defer p.wg.Done()
	if !p.track(c) {
		c.Close()
		return
	}
	defer p.untrack(c)
	up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		return
	}
	if !p.track(up) {
		up.Close()
		return
	}
	defer p.untrack(up)
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		done <- struct{}{}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done
	// One side ended: end both, which also ends the other copy.
	c.Close()
	up.Close()
	<-done
}

// track registers a connection unless the proxy is cut.
func (p *tcpProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *tcpProxy) untrack(c net.Conn) {
	c.Close()
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

// cut closes every connection and closes new ones as they arrive.
func (p *tcpProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		c.Close()
	}
}

func (p *tcpProxy) restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = false
}

func (p *tcpProxy) close() {
	p.ln.Close()
	p.cut()
	p.wg.Wait()
}
