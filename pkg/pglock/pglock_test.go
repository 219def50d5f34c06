package pglock_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/tus/tusd/v2/pkg/handler"

	"github.com/intake-dev/intake/internal/pgtest"
	"github.com/intake-dev/intake/pkg/pglock"
)

// TestMain doubles as a helper process that takes a lock and holds it
// until killed (TestProcessDeathReleasesLocks).
func TestMain(m *testing.M) {
	if url := os.Getenv("PGLOCK_HOLD_URL"); url != "" {
		holdForever(url, os.Getenv("PGLOCK_HOLD_ID"))
		return
	}
	os.Exit(m.Run())
}

func holdForever(url, id string) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	l := pglock.New(cfg, pglock.Options{})
	lk, _ := l.NewLock(id)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// It never lets go, even when asked: only its death can release it.
	if err := lk.Lock(ctx, func() {}); err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("locked")
	select {}
}

// config returns a connection config on a fresh test database schema,
// with an application name unique to the test.
func config(t testing.TB) (*pgx.ConnConfig, string) {
	t.Helper()
	url := pgtest.URL(t)
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	app := "pglock-test-" + randomID(t)[:12]
	cfg.RuntimeParams["application_name"] = app
	return cfg, url
}

func newLocker(t testing.TB, cfg *pgx.ConnConfig, opts pglock.Options) *pglock.Locker {
	t.Helper()
	l := pglock.New(cfg, opts)
	t.Cleanup(func() { l.Close() })
	// Ready: the session connects and the listener receives release
	// requests (a request sent before is lost, and repeated only a second
	// later).
	deadline := time.Now().Add(10 * time.Second)
	for l.Ping(context.Background()) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("the locker is not ready after 10s: %v", l.Ping(context.Background()))
		}
		time.Sleep(5 * time.Millisecond)
	}
	return l
}

func randomID(t testing.TB) string {
	t.Helper()
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}

// held is a lock taken by a test, with a count of release requests.
type held struct {
	lock  handler.Lock
	asked atomic.Int32
	// askedCh is closed at the first release request.
	askedCh chan struct{}
	once    sync.Once
}

func lock(t testing.TB, l *pglock.Locker, id string, timeout time.Duration, onAsk func(*held)) (*held, error) {
	t.Helper()
	lk, err := l.NewLock(id)
	if err != nil {
		t.Fatal(err)
	}
	h := &held{lock: lk, askedCh: make(chan struct{})}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err = lk.Lock(ctx, func() {
		h.asked.Add(1)
		h.once.Do(func() { close(h.askedCh) })
		if onAsk != nil {
			onAsk(h)
		}
	})
	if err != nil {
		return nil, err
	}
	return h, nil
}

func mustLock(t testing.TB, l *pglock.Locker, id string, onAsk func(*held)) *held {
	t.Helper()
	h, err := lock(t, l, id, 10*time.Second, onAsk)
	if err != nil {
		t.Fatalf("locking %s: %v", id, err)
	}
	return h
}

func waitClosed(t *testing.T, c <-chan struct{}, within time.Duration, what string) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(within):
		t.Fatalf("%s did not happen within %v", what, within)
	}
}

func TestExclusiveAcrossInstances(t *testing.T) {
	cfg, _ := config(t)
	a := newLocker(t, cfg, pglock.Options{})
	b := newLocker(t, cfg, pglock.Options{})
	id := randomID(t)

	ha := mustLock(t, a, id, nil) // never lets go when asked
	start := time.Now()
	_, err := lock(t, b, id, 300*time.Millisecond, nil)
	if !errors.Is(err, pglock.ErrLockTimeout) {
		t.Fatalf("B locked an upload A holds: err = %v, want ErrLockTimeout", err)
	}
	var herr handler.Error
	if !errors.As(err, &herr) || herr.HTTPResponse.StatusCode != 423 {
		t.Fatalf("lock timeout is %#v, want a 423 handler.Error", err)
	}
	if waited := time.Since(start); waited < 250*time.Millisecond {
		t.Fatalf("B gave up after %v, before its deadline", waited)
	}
	waitClosed(t, ha.askedCh, 5*time.Second, "A being asked to release")

	// A different upload is independent.
	other := mustLock(t, b, randomID(t), nil)
	_ = other.lock.Unlock()

	// Once A lets go, B gets it.
	if err := ha.lock.Unlock(); err != nil {
		t.Fatal(err)
	}
	hb := mustLock(t, b, id, nil)
	_, err = lock(t, a, id, 200*time.Millisecond, nil)
	if !errors.Is(err, pglock.ErrLockTimeout) {
		t.Fatalf("A locked an upload B holds: %v", err)
	}
	_ = hb.lock.Unlock()
}

// Deployments sharing a database in different namespaces (schemas) do not
// exclude each other, and ignore each other's release requests.
func TestNamespacesAreSeparate(t *testing.T) {
	cfg, _ := config(t)
	a := newLocker(t, cfg, pglock.Options{Namespace: "one"})
	b := newLocker(t, cfg, pglock.Options{Namespace: "two"})
	a2 := newLocker(t, cfg, pglock.Options{Namespace: "one"})
	id := randomID(t)

	ha := mustLock(t, a, id, nil)
	hb := mustLock(t, b, id, nil)
	if _, err := lock(t, a2, id, 300*time.Millisecond, nil); !errors.Is(err, pglock.ErrLockTimeout) {
		t.Fatalf("the same namespace did not exclude: %v", err)
	}
	waitClosed(t, ha.askedCh, 5*time.Second, "the release request within the namespace")
	time.Sleep(100 * time.Millisecond)
	if n := hb.asked.Load(); n != 0 {
		t.Fatalf("another namespace's holder was asked to release %d times", n)
	}
	_ = ha.lock.Unlock()
	_ = hb.lock.Unlock()
}

// A holder that yields when asked (as a stale PATCH does) hands the lock
// to a waiter on another instance well within the waiter's deadline.
func TestReleaseRequestHandsOver(t *testing.T) {
	cfg, _ := config(t)
	reg := prometheus.NewRegistry()
	metricsA := pglock.NewMetrics(reg)
	a := newLocker(t, cfg, pglock.Options{Metrics: metricsA})
	b := newLocker(t, cfg, pglock.Options{Metrics: pglock.NewMetrics(prometheus.NewRegistry())})
	id := randomID(t)

	mustLock(t, a, id, func(h *held) { go h.lock.Unlock() })
	if _, err := lock(t, b, id, 5*time.Second, nil); err != nil {
		t.Fatalf("B did not get the lock A was asked to release: %v", err)
	}
	if got := testutil.ToFloat64(metricsCounter(t, reg, "received")); got != 1 {
		t.Fatalf("A counted %v release requests received, want 1", got)
	}
}

func metricsCounter(t *testing.T, reg *prometheus.Registry, direction string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "intake_lock_release_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "direction" && lp.GetValue() == direction {
					c := prometheus.NewCounter(prometheus.CounterOpts{Name: "x"})
					c.Add(m.GetCounter().GetValue())
					return c
				}
			}
		}
	}
	t.Fatalf("no release request counter for %s", direction)
	return nil
}

// Within one instance, a second request asks the first to release, as
// tusd's memory locker does, without a round trip through NOTIFY.
func TestExclusiveWithinInstance(t *testing.T) {
	cfg, _ := config(t)
	a := newLocker(t, cfg, pglock.Options{})
	id := randomID(t)

	h1 := mustLock(t, a, id, nil)
	if _, err := lock(t, a, id, 200*time.Millisecond, nil); !errors.Is(err, pglock.ErrLockTimeout) {
		t.Fatalf("a second local request got a held lock: %v", err)
	}
	waitClosed(t, h1.askedCh, time.Second, "the first holder being asked to release")
	_ = h1.lock.Unlock()
	h2 := mustLock(t, a, id, nil)
	_ = h2.lock.Unlock()
}

func TestTryLockPassesOverHeldUploads(t *testing.T) {
	cfg, _ := config(t)
	a := newLocker(t, cfg, pglock.Options{})
	b := newLocker(t, cfg, pglock.Options{})
	id := randomID(t)
	ctx := context.Background()

	h := mustLock(t, a, id, nil)
	for _, l := range []*pglock.Locker{a, b} {
		if _, err := l.TryLock(ctx, id); !errors.Is(err, pglock.ErrBusy) {
			t.Fatalf("TryLock on a held upload: %v, want ErrBusy", err)
		}
	}
	// A release request sent now is the first A sees: TryLock sent none.
	if _, err := lock(t, b, id, 200*time.Millisecond, nil); !errors.Is(err, pglock.ErrLockTimeout) {
		t.Fatal(err)
	}
	waitClosed(t, h.askedCh, 5*time.Second, "the release request")
	time.Sleep(100 * time.Millisecond)
	if n := h.asked.Load(); n != 1 {
		t.Fatalf("the holder was asked %d times, want once (by Lock, never by TryLock)", n)
	}
	_ = h.lock.Unlock()

	unlock, err := b.TryLock(ctx, id)
	if err != nil {
		t.Fatalf("TryLock on a free upload: %v", err)
	}
	if _, err := a.TryLock(ctx, id); !errors.Is(err, pglock.ErrBusy) {
		t.Fatalf("TryLock while another TryLock holds: %v", err)
	}
	unlock()
	unlock, err = a.TryLock(ctx, id)
	if err != nil {
		t.Fatalf("TryLock after release: %v", err)
	}
	unlock()
}

// No lock outlives its holder: a process killed with SIGKILL while holding
// a lock (and refusing every release request) loses it with its session.
func TestProcessDeathReleasesLocks(t *testing.T) {
	cfg, url := config(t)
	b := newLocker(t, cfg, pglock.Options{})
	id := randomID(t)

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "PGLOCK_HOLD_URL="+url, "PGLOCK_HOLD_ID="+id)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "locked" {
		t.Fatalf("helper process: %q, %v", line, err)
	}

	if _, err := lock(t, b, id, 500*time.Millisecond, nil); !errors.Is(err, pglock.ErrLockTimeout) {
		t.Fatalf("got the lock a live process holds: %v", err)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	h, err := lock(t, b, id, 10*time.Second, nil)
	if err != nil {
		t.Fatalf("the lock of a killed process was not released: %v", err)
	}
	_ = h.lock.Unlock()
}

// advisoryPIDs returns the backends holding id's advisory lock in l's
// namespace.
func advisoryPIDs(t *testing.T, conn *pgx.Conn, l *pglock.Locker, id string) []int32 {
	t.Helper()
	k := uint64(l.Key(id))
	rows, err := conn.Query(context.Background(), `SELECT pid FROM pg_locks
		WHERE locktype = 'advisory' AND granted AND objsubid = 1
		AND classid = $1::bigint::oid AND objid = $2::bigint::oid`, int64(k>>32), int64(k&0xffffffff))
	if err != nil {
		t.Fatal(err)
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		t.Fatal(err)
	}
	return pids
}

// A lock session that dies while its process lives releases its locks in
// PostgreSQL; every holder is then asked to release, since it no longer
// excludes anyone, and the Locker recovers on a new session.
func TestLostSessionAsksHoldersToRelease(t *testing.T) {
	cfg, _ := config(t)
	reg := prometheus.NewRegistry()
	a := newLocker(t, cfg, pglock.Options{CheckInterval: 50 * time.Millisecond, Metrics: pglock.NewMetrics(reg)})
	b := newLocker(t, cfg, pglock.Options{})
	id := randomID(t)
	h := mustLock(t, a, id, nil)

	admin, err := pgx.ConnectConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	pids := advisoryPIDs(t, admin, a, id)
	if len(pids) != 1 {
		t.Fatalf("the lock is held by backends %v, want exactly one", pids)
	}
	if _, err := admin.Exec(context.Background(), "SELECT pg_terminate_backend($1)", pids[0]); err != nil {
		t.Fatal(err)
	}

	waitClosed(t, h.askedCh, 5*time.Second, "the holder of a lost lock being asked to release")
	hb := mustLock(t, b, id, nil)
	_ = h.lock.Unlock() // must not release B's lock
	if pids := advisoryPIDs(t, admin, a, id); len(pids) != 1 {
		t.Fatalf("after the stale Unlock the lock is held by %v, want B's session alone", pids)
	}
	_ = hb.lock.Unlock()

	// A works again on a new session.
	h2 := mustLock(t, a, id, nil)
	_ = h2.lock.Unlock()
	for _, name := range []string{"intake_lock_sessions_lost_total", "intake_locks_lost_total"} {
		if n, err := testutil.GatherAndCount(reg, name); err != nil || n != 1 {
			t.Fatalf("%s: %d series, %v", name, n, err)
		}
	}
}

func TestUnreachableDatabaseIs503(t *testing.T) {
	cfg, err := pgx.ParseConfig("postgres://postgres@127.0.0.1:1/none?connect_timeout=2")
	if err != nil {
		t.Fatal(err)
	}
	l := pglock.New(cfg, pglock.Options{})
	t.Cleanup(func() { l.Close() })
	if err := l.Ping(context.Background()); !errors.Is(err, pglock.ErrUnavailable) {
		t.Fatalf("Ping without a database: %v, want ErrUnavailable", err)
	}
	_, err = lock(t, l, "x", 5*time.Second, nil)
	var herr handler.Error
	if !errors.Is(err, pglock.ErrUnavailable) || !errors.As(err, &herr) || herr.HTTPResponse.StatusCode != 503 {
		t.Fatalf("locking without a database: %v, want ErrUnavailable (503)", err)
	}
	// Within the retry interval it fails at once, without connecting.
	start := time.Now()
	if _, err := lock(t, l, "x", 5*time.Second, nil); !errors.Is(err, pglock.ErrUnavailable) {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Fatalf("a second attempt took %v; it should fail fast", d)
	}
}

// Every lock of an instance shares its one lock session: holding many
// costs no more connections.
func TestManyLocksTwoConnections(t *testing.T) {
	cfg, _ := config(t)
	a := newLocker(t, cfg, pglock.Options{})
	var locks []*held
	for range 200 {
		locks = append(locks, mustLock(t, a, randomID(t), nil))
	}
	if a.Held() != 200 {
		t.Fatalf("Held() = %d, want 200", a.Held())
	}
	admin, err := pgx.ConnectConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	var conns int
	deadline := time.Now().Add(5 * time.Second)
	for {
		// The listener connects in the background.
		err := admin.QueryRow(context.Background(), "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
			cfg.RuntimeParams["application_name"]).Scan(&conns)
		if err != nil {
			t.Fatal(err)
		}
		if conns == 3 || time.Now().After(deadline) { // the two of the Locker, and admin
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if conns != 3 {
		t.Fatalf("%d connections with 200 locks held, want the Locker's 2 (+ this test's)", conns-1)
	}
	for _, h := range locks {
		_ = h.lock.Unlock()
	}
	if a.Held() != 0 {
		t.Fatalf("Held() = %d after unlocking all", a.Held())
	}
}

// Many requests across two instances contending for a few uploads: at no
// time do two hold the same upload.
func TestContention(t *testing.T) {
	cfg, _ := config(t)
	lockers := []*pglock.Locker{newLocker(t, cfg, pglock.Options{}), newLocker(t, cfg, pglock.Options{})}
	ids := []string{randomID(t), randomID(t), randomID(t)}
	inside := make([]atomic.Int32, len(ids))
	var acquired atomic.Int32
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				k := (w + i) % len(ids)
				h, err := lock(t, lockers[w%2], ids[k], 10*time.Second, nil)
				if err != nil {
					t.Errorf("worker %d: %v", w, err)
					return
				}
				if n := inside[k].Add(1); n != 1 {
					t.Errorf("%d holders of upload %d at once", n, k)
				}
				acquired.Add(1)
				time.Sleep(time.Millisecond)
				inside[k].Add(-1)
				_ = h.lock.Unlock()
			}
		}()
	}
	wg.Wait()
	if acquired.Load() != 16*20 {
		t.Fatalf("%d acquisitions, want %d", acquired.Load(), 16*20)
	}
}

// The lock session shortens its server-side TCP keepalive, so the locks of
// a host that vanishes are released in about half a minute; a failure to
// do so is logged.
func TestSessionShortensKeepalive(t *testing.T) {
	cfg, _ := config(t)
	var log bytes.Buffer
	var mu sync.Mutex
	l := newLocker(t, cfg, pglock.Options{Logger: slog.New(slog.NewTextHandler(&lockedWriter{w: &log, mu: &mu}, nil))})
	h := mustLock(t, l, randomID(t), nil)
	_ = h.lock.Unlock()
	mu.Lock()
	defer mu.Unlock()
	if strings.Contains(log.String(), "keepalive") {
		t.Fatalf("the lock session kept the default keepalive:\n%s", log.String())
	}
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}
