package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/tus/tusd/v2/pkg/handler"
	"github.com/tus/tusd/v2/pkg/memorylocker"

	"github.com/intake-dev/intake/pkg/pglock"
	"github.com/intake-dev/intake/pkg/storage"
)

// uploadLocker is the lock provider tusd and the background work share:
// PostgreSQL advisory locks (pkg/pglock) when the catalog is PostgreSQL, so
// that instances sharing it exclude each other, and tusd's in-memory locker
// with the embedded SQLite catalog (one instance). Around either it
//   - makes every lock timeout a 423 handler.Error, which tusd sends even
//     for a HEAD (tusd's own ErrLockTimeout is a 500);
//   - asks a holder to release by ending its request body (see drainer)
//     instead of through tusd's context cancellation, which races in tusd
//     v2.10.1 with the handler on the request's body field;
//   - remembers which uploads this process holds, so background work can
//     pass over them; and counts waits and holds.
type uploadLocker struct {
	inner handler.Locker
	// pg is inner with a PostgreSQL catalog; nil with the memory locker,
	// where held is the whole truth (one instance).
	pg *pglock.Locker

	mu   sync.Mutex
	held map[string]int

	wait *prometheus.HistogramVec
}

// pooled is a catalog on a PostgreSQL pool.
type pooled interface{ Pool() *pgxpool.Pool }

// newUploadLocker picks the lock provider for cat: PostgreSQL advisory
// locks on the catalog's database, or memory.
func newUploadLocker(ctx context.Context, cat Catalog, log *slog.Logger, reg prometheus.Registerer) (*uploadLocker, error) {
	l := &uploadLocker{
		held: map[string]int{},
		wait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "intake_lock_wait_seconds",
			Help:    "Time requests waited for an upload's lock, by outcome (acquired, timeout, unavailable).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 20},
		}, []string{"outcome"}),
	}
	if p, ok := cat.(pooled); ok {
		pg, err := openPGLock(ctx, p, pglock.Options{
			Logger:  log.With("component", "locks"),
			Metrics: pglock.NewMetrics(reg),
		})
		if err != nil {
			return nil, err
		}
		l.inner, l.pg = pg, pg
		// Serve ready: the listener for release requests connects in the
		// background, within milliseconds of a database that just
		// answered. If it does not, /readyz says so until it does.
		for wait := time.Now().Add(5 * time.Second); pg.Ping(ctx) != nil && ctx.Err() == nil && time.Now().Before(wait); {
			time.Sleep(5 * time.Millisecond)
		}
	} else {
		l.inner = memorylocker.New()
	}
	reg.MustRegister(l.wait, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "intake_locks_held",
		Help: "Upload locks held by requests and background work of this instance.",
	}, func() float64 {
		l.mu.Lock()
		defer l.mu.Unlock()
		return float64(len(l.held))
	}))
	return l, nil
}

// openPGLock opens upload locks on the catalog's database, namespaced by
// the catalog's schema: instances of one deployment share it, and
// deployments in other schemas of the database lock apart.
func openPGLock(ctx context.Context, p pooled, opts pglock.Options) (*pglock.Locker, error) {
	if err := p.Pool().QueryRow(ctx, "SELECT coalesce(current_schema(), '')").Scan(&opts.Namespace); err != nil {
		return nil, fmt.Errorf("reading the catalog schema for upload locks: %w", err)
	}
	return pglock.New(p.Pool().Config().ConnConfig, opts), nil
}

// tryPG takes id's lock on pg only if nobody holds it on any instance,
// asking no one to release: storage.ErrBusy otherwise.
func tryPG(ctx context.Context, pg *pglock.Locker, id string) (func(), error) {
	unlock, err := pg.TryLock(ctx, id)
	if errors.Is(err, pglock.ErrBusy) {
		return nil, storage.ErrBusy
	}
	return unlock, err
}

// UseIn registers the locker with a composer.
func (l *uploadLocker) UseIn(c *handler.StoreComposer) { c.UseLocker(l) }

// Close releases the PostgreSQL lock session, if any.
func (l *uploadLocker) Close() error {
	if l.pg == nil {
		return nil
	}
	return l.pg.Close()
}

func (l *uploadLocker) NewLock(id string) (handler.Lock, error) {
	inner, err := l.inner.NewLock(id)
	if err != nil {
		return nil, err
	}
	return &uploadLock{l: l, id: id, inner: inner}, nil
}

func (l *uploadLocker) isHeld(id string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.held[id] > 0
}

func (l *uploadLocker) hold(id string, n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.held[id] += n; l.held[id] <= 0 {
		delete(l.held, id)
	}
}

// background takes id's lock for background work, only when no request
// holds it here or elsewhere (storage.ErrBusy): it never makes a request
// yield.
func (l *uploadLocker) background(ctx context.Context, id string) (func(), error) {
	if l.isHeld(id) {
		return nil, storage.ErrBusy
	}
	if l.pg != nil {
		unlock, err := tryPG(ctx, l.pg, id)
		if err != nil {
			return nil, err
		}
		l.hold(id, 1)
		return func() { l.hold(id, -1); unlock() }, nil
	}
	lk, err := l.NewLock(id)
	if err != nil {
		return nil, err
	}
	lctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := lk.Lock(lctx, func() {}); err != nil {
		return nil, storage.ErrBusy
	}
	return func() { _ = lk.Unlock() }, nil
}

// task takes the cluster-wide lock of a periodic task, so that one
// instance at a time runs it; ok is false when another instance is. With
// the memory locker there is one instance, and the task always runs.
func (l *uploadLocker) task(ctx context.Context, name string) (unlock func(), ok bool) {
	if l.pg == nil {
		return func() {}, true
	}
	// NUL never occurs in an upload id, so task names cannot collide.
	unlock, err := l.pg.TryLock(ctx, "\x00task:"+name)
	if err != nil {
		return nil, false
	}
	return unlock, true
}

// BackgroundLocker is the upload lock for background work run outside a
// server (intake gc): with a PostgreSQL catalog the instances' own locks,
// so that it passes over (storage.ErrBusy) any upload a request on any
// instance is using; with SQLite, whose locks live in the server's memory,
// none. Call close when done.
func BackgroundLocker(ctx context.Context, cat Catalog, log *slog.Logger) (lock storage.Locker, close func(), err error) {
	p, ok := cat.(pooled)
	if !ok {
		return func(context.Context, string) (func(), error) { return func() {}, nil }, func() {}, nil
	}
	pg, err := openPGLock(ctx, p, pglock.Options{Logger: log})
	if err != nil {
		return nil, nil, err
	}
	return func(ctx context.Context, id string) (func(), error) { return tryPG(ctx, pg, id) },
		func() { pg.Close() }, nil
}

type uploadLock struct {
	l     *uploadLocker
	id    string
	inner handler.Lock
}

func (k *uploadLock) Lock(ctx context.Context, requestRelease func()) error {
	start := time.Now()
	err := k.inner.Lock(ctx, releaseFunc(ctx, requestRelease))
	outcome := "acquired"
	switch {
	case err == nil:
		k.l.hold(k.id, 1)
	case errors.Is(err, pglock.ErrLockTimeout): // tusd's ErrLockTimeout too: same code
		outcome, err = "timeout", pglock.ErrLockTimeout
	case errors.Is(err, pglock.ErrUnavailable):
		// The lock session is on the catalog's database.
		outcome, err = "unavailable", storage.ErrCatalogUnavailable
	default:
		outcome = "unavailable"
	}
	k.l.wait.WithLabelValues(outcome).Observe(time.Since(start).Seconds())
	return err
}

func (k *uploadLock) Unlock() error {
	k.l.hold(k.id, -1)
	return k.inner.Unlock()
}
