package server_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/intake-dev/intake/pkg/client"
	"github.com/intake-dev/intake/pkg/config"
)

// A lock wait that times out is a 423 (which tus clients retry), for a
// HEAD too, whose error tusd sends without a body.
func TestLockTimeoutIs423(t *testing.T) {
	forEachBackend(t, func(t *testing.T, cfg config.Config) {
		cfg.LockTimeout = 300 * time.Millisecond
		ts := startServer(t, cfg)
		ctx := context.Background()
		u, _, err := ts.client.Create(ctx, client.Upload{Size: 10}, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		unlock := ts.srv.HoldLock(t, idOf(u))

		if resp, _ := ts.do("HEAD", u, nil, nil); resp.StatusCode != http.StatusLocked {
			t.Fatalf("HEAD on a held upload: %d, want 423", resp.StatusCode)
		}
		resp, body := ts.do("PATCH", u, []byte("0123456789"), map[string]string{
			"Upload-Offset": "0", "Content-Type": "application/offset+octet-stream",
		})
		if resp.StatusCode != http.StatusLocked || errorCode(body) != "lock_timeout" {
			t.Fatalf("PATCH on a held upload: %d %s, want 423 lock_timeout", resp.StatusCode, body)
		}
		unlock()
		if off, err := ts.client.Patch(ctx, u, 0, strings.NewReader("0123456789"), 10, -1); err != nil || off != 10 {
			t.Fatalf("PATCH after release: %d, %v", off, err)
		}
	})
}

// stalledPatch starts a PATCH that sends head and then stalls with the
// connection open, and waits until the server has stored head. The
// returned channel yields the PATCH's outcome once the server ends it.
func stalledPatch(t *testing.T, via *testServer, u string, head []byte) <-chan error {
	t.Helper()
	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.Close() })
	done := make(chan error, 1)
	go func() {
		_, err := via.client.Patch(context.Background(), u, 0, pr, int64(len(head))*4, -1)
		done <- err
	}()
	if _, err := pw.Write(head); err != nil {
		t.Fatal(err)
	}
	// The file store writes what it reads as it goes.
	file := filepath.Join(via.cfg.UploadsDir(), idOf(u))
	deadline := time.Now().Add(10 * time.Second)
	for fi, err := os.Stat(file); err != nil || fi.Size() < int64(len(head)); fi, err = os.Stat(file) {
		if time.Now().After(deadline) {
			t.Fatalf("the server never read the %d bytes sent", len(head))
		}
		time.Sleep(10 * time.Millisecond)
	}
	return done
}

// A client whose PATCH stalls comes back with a HEAD: the stale PATCH
// yields at once (storing what it received), the HEAD reports it, and the
// upload completes from there.
func TestStalledPatchYieldsToHead(t *testing.T) {
	forEachBackend(t, func(t *testing.T, cfg config.Config) {
		ts := startServer(t, cfg)
		takeover(t, ts, ts)
	})
}

// The same across two instances sharing one database and one data
// directory: the release request reaches the other instance.
func TestInstancesShareLocks(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "postgres")
	a := startServer(t, cfg)
	b := startServer(t, cfg)
	takeover(t, a, b)
	if got := a.metric(t, `intake_lock_release_requests_total{direction="received"}`); got != 1 {
		t.Errorf("A received %v release requests, want 1", got)
	}
	if got := b.metric(t, `intake_lock_release_requests_total{direction="sent"}`); got < 1 {
		t.Errorf("B sent %v release requests, want at least 1", got)
	}

	for series, want := range map[string]float64{
		"intake_db_pool_max_connections": float64(cfg.DBMaxConns),
		"intake_locks_held":              0,
	} {
		if got := a.metric(t, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	if got := b.metric(t, `intake_lock_wait_seconds_count{outcome="acquired"}`); got < 1 {
		t.Errorf("B counted %v acquired lock waits", got)
	}

	// A holder that does not yield keeps the other instance out: 423.
	u, _, err := a.client.Create(context.Background(), client.Upload{Size: 10}, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	unlock := a.srv.HoldLock(t, idOf(u))
	cfgB := cfg
	cfgB.LockTimeout = 300 * time.Millisecond
	c := startServer(t, cfgB)
	if resp, _ := c.do("HEAD", strings.Replace(u, a.base, c.base, 1), nil, nil); resp.StatusCode != http.StatusLocked {
		t.Fatalf("HEAD on another instance's held upload: %d, want 423", resp.StatusCode)
	}
	unlock()
	if resp, _ := c.do("HEAD", strings.Replace(u, a.base, c.base, 1), nil, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("HEAD after release: %d, want 200", resp.StatusCode)
	}
}

// takeover stalls a PATCH on a, takes the upload over with a HEAD on b and
// finishes it there; a's --lock-timeout is the default 20s, so a HEAD that
// answers 200 was handed the lock, not timed out.
func takeover(t *testing.T, a, b *testServer) {
	t.Helper()
	ctx := context.Background()
	const size = 4 << 20
	data := randomBytes(t, size)
	u, _, err := a.client.Create(ctx, client.Upload{Size: size}, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	stale := stalledPatch(t, a, u, data[:size/4])

	ub := strings.Replace(u, a.base, b.base, 1)
	info, err := b.client.Head(ctx, ub)
	if err != nil {
		t.Fatalf("HEAD while a PATCH stalls: %v", err)
	}
	if info.Offset != size/4 {
		t.Fatalf("HEAD offset %d, want the %d bytes the stale PATCH received", info.Offset, size/4)
	}
	select {
	case err := <-stale:
		var se *client.StatusError
		if !errors.As(err, &se) || se.Status != http.StatusBadRequest || se.Code != "upload_interrupted" {
			t.Fatalf("the stale PATCH ended with %v, want 400 upload_interrupted", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the stale PATCH was not ended")
	}
	if err := b.client.Resume(ctx, ub, bytes.NewReader(data), size, 1<<20, 0); err != nil {
		t.Fatalf("resuming on the other instance: %v", err)
	}
	if got := a.download(u); string(got) != string(data) {
		t.Fatal("the upload differs from what was sent")
	}
}

// When the lock session dies under a PATCH (a database restart, a
// terminated backend), the lock is gone: the PATCH is interrupted at once,
// keeping what it stored, and the upload resumes on a new session.
func TestLostLockSessionInterruptsPatch(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "postgres")
	app := fmt.Sprintf("intake-test-%x", randomBytes(t, 6))
	cfg.DatabaseURL += "&application_name=" + app // pgtest's URL has a query (search_path)
	ts := startServer(t, cfg)
	ctx := context.Background()
	const size = 2 << 20
	data := randomBytes(t, size)
	u, _, err := ts.client.Create(ctx, client.Upload{Size: size}, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	stale := stalledPatch(t, ts, u, data[:size/4])

	admin, err := pgx.Connect(ctx, cfg.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	var killed int
	err = admin.QueryRow(ctx, `SELECT count(pg_terminate_backend(a.pid)) FROM pg_stat_activity a
		WHERE a.application_name = $1 AND EXISTS (
			SELECT 1 FROM pg_locks l WHERE l.pid = a.pid AND l.locktype = 'advisory' AND l.granted)`, app).Scan(&killed)
	if err != nil || killed != 1 {
		t.Fatalf("terminating the lock session: %d backends, %v; want 1", killed, err)
	}
	select {
	case err := <-stale:
		var se *client.StatusError
		if !errors.As(err, &se) || se.Status != http.StatusBadRequest || se.Code != "upload_interrupted" {
			t.Fatalf("the PATCH whose lock was lost ended with %v, want 400 upload_interrupted", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the PATCH whose lock was lost went on")
	}
	if got := ts.metric(t, "intake_locks_lost_total"); got != 1 {
		t.Errorf("intake_locks_lost_total = %v, want 1", got)
	}
	if err := ts.client.Resume(ctx, u, bytes.NewReader(data), size, 1<<20, 0); err != nil {
		t.Fatalf("resuming on a new lock session: %v", err)
	}
	if got := ts.download(u); !bytes.Equal(got, data) {
		t.Fatal("the upload differs from what was sent")
	}
}
