package pglock

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/tus/tusd/v2/pkg/handler"
)

var (
	// ErrLockTimeout is returned when the lock was not acquired before the
	// context ended: another request holds the upload. tus clients retry a
	// 423; tusd's own lock timeout is a 500.
	ErrLockTimeout = handler.NewError("ERR_LOCK_TIMEOUT", "the upload is in use by another request; retry later", http.StatusLocked)
	// ErrUnavailable is returned when there is no lock session: the
	// database cannot be reached.
	ErrUnavailable = handler.NewError("ERR_LOCKS_UNAVAILABLE", "upload locks are unavailable; retry later", http.StatusServiceUnavailable)
	// ErrBusy is returned by TryLock when someone holds the lock.
	ErrBusy = errors.New("lock held elsewhere")
)

// The NOTIFY channels shared by every instance on the database.
const (
	releaseChannel  = "intake_lock_release"
	releasedChannel = "intake_lock_released"
)

// Options tune a Locker. The zero value of each field means its default.
type Options struct {
	// Namespace separates deployments sharing one database (in different
	// schemas): advisory locks and notifications are database-wide, and
	// only Lockers with the same Namespace exclude each other. The schema
	// of the catalog is a good choice.
	Namespace string
	// Logger receives session and listener failures. Defaults to
	// slog.Default().
	Logger *slog.Logger
	// Metrics counts release requests and lost sessions; nil counts nothing.
	Metrics *Metrics
	// OpTimeout bounds one statement on the lock session, and connecting
	// it. A statement that takes longer ends the session. Defaults to 5s.
	OpTimeout time.Duration
	// RetryInterval is how long after a failed connect lock attempts fail
	// at once with ErrUnavailable instead of connecting again. Defaults to
	// 1s.
	RetryInterval time.Duration
	// CheckInterval is how often the session is checked while locks are
	// held, so that a lost session is noticed without a lock operation.
	// Defaults to 2s.
	CheckInterval time.Duration
	// MaxPoll bounds the interval at which a waiter retries on its own,
	// between release notifications. Defaults to 250ms.
	MaxPoll time.Duration
	// AskInterval is how often a waiter repeats its release request.
	// Defaults to 1s.
	AskInterval time.Duration
}

func (o *Options) defaults() {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.OpTimeout <= 0 {
		o.OpTimeout = 5 * time.Second
	}
	if o.RetryInterval <= 0 {
		o.RetryInterval = time.Second
	}
	if o.CheckInterval <= 0 {
		o.CheckInterval = 2 * time.Second
	}
	if o.MaxPoll <= 0 {
		o.MaxPoll = 250 * time.Millisecond
	}
	if o.AskInterval <= 0 {
		o.AskInterval = time.Second
	}
}

// Locker hands out upload locks shared by every Locker on the same
// database. Start it with New and stop it with Close.
type Locker struct {
	cfg  *pgx.ConnConfig
	opts Options
	log  *slog.Logger

	mu      sync.Mutex
	local   map[string]*holder                    // the one local holder (or claimant) per id
	waiters map[string]map[chan struct{}]struct{} // woken when id is released anywhere
	deadGen uint64                                // the latest lock session generation that ended

	stmts     chan *stmt    // to the lock session (session.go)
	listening atomic.Bool   // release requests are being received
	closing   chan struct{} // closed by Close

	stop context.CancelFunc
	done chan struct{}
}

// holder is a local holder of an upload's lock, or a request claiming it.
type holder struct {
	id      string
	key     int64
	release func()
	done    chan struct{} // closed when the holder lets go

	// Guarded by Locker.mu.
	acquired bool   // the advisory lock is held
	gen      uint64 // the session generation it is held on
	asked    bool   // release requested already
}

// New returns a Locker connecting with cfg (copied; a pool's ConnConfig
// will do). It starts listening for release requests at once; the lock
// session is connected on first use. Connection failures are retried in
// the background, so New succeeds while the database is down.
func New(cfg *pgx.ConnConfig, opts Options) *Locker {
	opts.defaults()
	c := cfg.Copy()
	if c.RuntimeParams == nil {
		c.RuntimeParams = map[string]string{}
	}
	if _, ok := c.RuntimeParams["application_name"]; !ok {
		c.RuntimeParams["application_name"] = "intake-locks"
	}
	ctx, stop := context.WithCancel(context.Background())
	l := &Locker{
		cfg:     c,
		opts:    opts,
		log:     opts.Logger,
		local:   map[string]*holder{},
		waiters: map[string]map[chan struct{}]struct{}{},
		stmts:   make(chan *stmt),
		closing: make(chan struct{}),
		stop:    stop,
		done:    make(chan struct{}),
	}
	go func() {
		defer close(l.done)
		var wg sync.WaitGroup
		wg.Add(3)
		go func() { defer wg.Done(); l.serveSession(ctx) }()
		go func() { defer wg.Done(); l.listen(ctx) }()
		go func() { defer wg.Done(); l.keepalive(ctx) }()
		wg.Wait()
	}()
	return l
}

// Close stops listening and closes the lock session, which releases every
// lock still held. Call it after the requests using the Locker are done.
func (l *Locker) Close() error {
	close(l.closing)
	l.stop()
	<-l.done
	return nil
}

// Ping checks the lock session, connecting it if there is none, and that
// release requests are being listened for (readiness): without the one no
// lock can be taken, without the other this instance's requests would
// keep an upload from every other instance until they end by themselves.
func (l *Locker) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !l.listening.Load() {
		return errNotListening
	}
	return l.run(stmt{sql: "SELECT 1", connect: true}).err
}

var errNotListening = fmt.Errorf("%w: not listening for release requests (yet)", ErrUnavailable)

// UseIn registers the Locker with a tusd store composer.
func (l *Locker) UseIn(c *handler.StoreComposer) { c.UseLocker(l) }

// NewLock implements handler.Locker.
func (l *Locker) NewLock(id string) (handler.Lock, error) {
	return &lock{l: l, id: id}, nil
}

// Held reports how many locks this Locker holds now.
func (l *Locker) Held() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, h := range l.local {
		if h.acquired {
			n++
		}
	}
	return n
}

// TryLock takes id's lock only if nobody holds it, on any instance, and
// asks no holder to release: ErrBusy otherwise. It is for background work
// that should pass over an upload in use rather than interrupt it.
func (l *Locker) TryLock(ctx context.Context, id string) (unlock func(), err error) {
	h, err := l.acquire(ctx, id, func() {}, false)
	if err != nil {
		return nil, err
	}
	return func() { l.unlock(h) }, nil
}

type lock struct {
	l  *Locker
	id string
	h  *holder
}

// Lock implements handler.Lock: it waits until id's lock is free on every
// instance, asking its holder to release, until ctx ends.
func (k *lock) Lock(ctx context.Context, requestRelease func()) error {
	h, err := k.l.acquire(ctx, k.id, requestRelease, true)
	if err != nil {
		return err
	}
	k.h = h
	return nil
}

// Unlock implements handler.Lock.
func (k *lock) Unlock() error {
	if k.h == nil {
		return nil
	}
	k.l.unlock(k.h)
	k.h = nil
	return nil
}

// key maps an upload id to the advisory lock's 64-bit key. A collision of
// two ids only makes their requests take turns.
func (l *Locker) key(id string) int64 {
	h := fnv.New64a()
	h.Write([]byte("intake\x00" + l.opts.Namespace + "\x00" + id))
	return int64(h.Sum64())
}

// payload is what the notifications about id carry: the namespace first,
// length-prefixed, so that other namespaces' notifications are told apart.
func (l *Locker) payload(id string) string {
	return strconv.Itoa(len(l.opts.Namespace)) + ":" + l.opts.Namespace + id
}

// idOf returns the id of a notification payload of this namespace.
func (l *Locker) idOf(payload string) (string, bool) {
	prefix := l.payload("")
	if !strings.HasPrefix(payload, prefix) {
		return "", false
	}
	return payload[len(prefix):], true
}

// acquire claims id locally, then takes its advisory lock. With ask, it
// asks whoever holds it (here or on another instance) to release and
// waits until ctx ends; without, it fails with ErrBusy at once.
func (l *Locker) acquire(ctx context.Context, id string, release func(), ask bool) (*holder, error) {
	var wake chan struct{} // only a waiter (ask) waits to be woken
	if ask {
		wake = make(chan struct{}, 1)
		l.subscribe(id, wake)
		defer l.unsubscribe(id, wake)
	}

	var asked time.Time
	poll := 5 * time.Millisecond
	for {
		if err := ctx.Err(); err != nil {
			return nil, ErrLockTimeout
		}
		l.mu.Lock()
		if other := l.local[id]; other != nil {
			// Held or being claimed by another request of this process.
			if !ask {
				l.mu.Unlock()
				return nil, ErrBusy
			}
			l.askLocked(other)
			l.mu.Unlock()
			select {
			case <-ctx.Done():
				return nil, ErrLockTimeout
			case <-other.done:
			}
			continue
		}
		h := &holder{id: id, key: l.key(id), release: release, done: make(chan struct{})}
		l.local[id] = h
		l.mu.Unlock()

		ok, gen, err := l.tryLock(h.key)
		l.mu.Lock()
		if err == nil && ok && gen > l.deadGen {
			h.acquired, h.gen = true, gen
			l.mu.Unlock()
			return h, nil
		}
		// Not acquired, or on a session that ended right after: then
		// the lock is gone already and the next attempt reconnects.
		retry := err == nil && ok
		delete(l.local, id)
		l.mu.Unlock()
		close(h.done)
		if retry {
			continue
		}
		if err != nil {
			return nil, err
		}
		if !ask {
			return nil, ErrBusy
		}
		if time.Since(asked) >= l.opts.AskInterval {
			// Best effort: a lost request is repeated, and the holder's
			// own PATCH ends eventually anyway.
			if err := l.notify(releaseChannel, l.payload(id)); err == nil {
				l.opts.Metrics.requestSent()
			}
			asked = time.Now()
		}
		t := time.NewTimer(poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ErrLockTimeout
		case <-wake:
			t.Stop()
		case <-t.C:
			poll = min(2*poll, l.opts.MaxPoll)
		}
	}
}

// askLocked asks h to release, once. l.mu is held.
func (l *Locker) askLocked(h *holder) {
	if h.asked {
		return
	}
	h.asked = true
	go h.release()
}

// unlock lets h go: the advisory lock first (unless its session is gone,
// which released it already), then the local claim. When someone asked
// for the lock, the release is announced to every instance in the same
// statement; a waiter always asks first, and one whose request was missed
// finds the lock free on its next poll.
func (l *Locker) unlock(h *holder) {
	l.mu.Lock()
	gen, asked := h.gen, h.asked
	l.mu.Unlock()
	if gen != 0 { // else its session is gone, and the lock with it
		st := stmt{sql: "SELECT pg_advisory_unlock($1)", args: []any{h.key}, onGen: gen}
		if asked {
			st.sql, st.args = "SELECT pg_advisory_unlock($1), pg_notify($2, $3)", []any{h.key, releasedChannel, l.payload(h.id)}
		}
		// A failure ends the session, which releases the lock all the same.
		l.run(st)
	}
	l.mu.Lock()
	if l.local[h.id] == h {
		delete(l.local, h.id)
	}
	h.acquired = false
	l.mu.Unlock()
	close(h.done)
	l.wake(h.id)
}

// tryLock takes key's advisory lock on the session if it is free.
func (l *Locker) tryLock(key int64) (ok bool, gen uint64, err error) {
	r := l.run(stmt{sql: "SELECT pg_try_advisory_lock($1)", args: []any{key}, scan: []any{&ok}, connect: true})
	return ok, r.gen, r.err
}

// notify sends payload on channel from the lock session.
func (l *Locker) notify(channel, payload string) error {
	return l.run(stmt{sql: "SELECT pg_notify($1, $2)", args: []any{channel, payload}, connect: true}).err
}

// lost is told by the session that its generation gen ended: every lock
// held on it is gone, so each holder is asked to release now, and its
// Unlock has nothing to release.
func (l *Locker) lost(gen uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.deadGen = max(l.deadGen, gen)
	for _, h := range l.local {
		if h.acquired && h.gen == gen {
			h.gen = 0
			l.opts.Metrics.lockLost()
			l.askLocked(h)
		}
	}
}

// keepalive checks the session every CheckInterval while locks are held,
// so a lost session releases its holders even when no lock changes hands.
func (l *Locker) keepalive(ctx context.Context) {
	t := time.NewTicker(l.opts.CheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if l.Held() == 0 {
			continue
		}
		l.run(stmt{sql: "SELECT 1"})
	}
}

// listen receives release requests and releases from every instance until
// ctx ends, reconnecting after failures.
func (l *Locker) listen(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for {
		err := l.listenOnce(ctx, func() { backoff = 100 * time.Millisecond })
		if ctx.Err() != nil {
			return
		}
		l.log.Warn("lock release listener failed; reconnecting", "error", err, "in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (l *Locker) listenOnce(ctx context.Context, connected func()) error {
	cctx, cancel := context.WithTimeout(ctx, l.opts.OpTimeout)
	c, err := pgx.ConnectConfig(cctx, l.cfg)
	cancel()
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = c.Close(cctx)
	}()
	for _, ch := range []string{releaseChannel, releasedChannel} {
		if _, err := c.Exec(ctx, "LISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
			return err
		}
	}
	connected()
	l.listening.Store(true)
	defer l.listening.Store(false)
	// Notifications sent while there was no listener are lost: every
	// waiter retries now.
	l.wakeAll()
	for {
		n, err := c.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		id, ok := l.idOf(n.Payload)
		if !ok {
			continue // another deployment's
		}
		switch n.Channel {
		case releaseChannel:
			l.mu.Lock()
			if h := l.local[id]; h != nil && h.acquired {
				l.opts.Metrics.requestReceived()
				l.askLocked(h)
			}
			l.mu.Unlock()
		case releasedChannel:
			l.wake(id)
		}
	}
}

func (l *Locker) subscribe(id string, c chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.waiters[id] == nil {
		l.waiters[id] = map[chan struct{}]struct{}{}
	}
	l.waiters[id][c] = struct{}{}
}

func (l *Locker) unsubscribe(id string, c chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.waiters[id], c)
	if len(l.waiters[id]) == 0 {
		delete(l.waiters, id)
	}
}

// wake tells id's waiters to try again.
func (l *Locker) wake(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for c := range l.waiters[id] {
		select {
		case c <- struct{}{}:
		default:
		}
	}
}

func (l *Locker) wakeAll() {
	l.mu.Lock()
	ids := make([]string, 0, len(l.waiters))
	for id := range l.waiters {
		ids = append(ids, id)
	}
	l.mu.Unlock()
	for _, id := range ids {
		l.wake(id)
	}
}
