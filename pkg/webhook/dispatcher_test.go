package webhook_test

// The dispatcher against the real catalogs (SQLite and PostgreSQL) and a
// real HTTP receiver on loopback. Events come from the catalog's own
// transitions: Create writes upload.created, Finalize upload.completed.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/intake-dev/intake/internal/pgtest"
	"github.com/intake-dev/intake/pkg/catalog"
	"github.com/intake-dev/intake/pkg/config"
	"github.com/intake-dev/intake/pkg/server"
	"github.com/intake-dev/intake/pkg/webhook"
	"github.com/intake-dev/intake/pkg/webhook/webhooktest"
)

// TestMain clears INTAKE_* variables, which the CLI under test would read.
func TestMain(m *testing.M) {
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "INTAKE_") {
			os.Unsetenv(name)
		}
	}
	os.Exit(m.Run())
}

const downloadBase = "https://uploads.example.com/files/"

// bundle is one migrated catalog and the settings that select it.
type bundle struct {
	cfg config.Config
	cat server.Catalog
}

// settings are the CLI flags that select the bundle's catalog.
func (b *bundle) settings() []string {
	s := []string{"--data-dir", b.cfg.DataDir}
	if b.cfg.DatabaseURL != "" {
		s = append(s, "--database-url", b.cfg.DatabaseURL)
	}
	return s
}

func newBundle(t *testing.T, backend string) *bundle {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	if backend == "postgres" {
		cfg.DatabaseURL = pgtest.URL(t)
	}
	b := &bundle{cfg: cfg}
	b.cat = b.open(t)
	if _, err := b.cat.MigrateUp(t.Context()); err != nil {
		t.Fatalf("MigrateUp: %v", err)
	}
	return b
}

// open opens another handle on the catalog, as another process would.
func (b *bundle) open(t *testing.T) server.Catalog {
	t.Helper()
	cat, err := server.OpenCatalog(context.Background(), b.cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Close() })
	return cat
}

func forEachBackend(t *testing.T, f func(t *testing.T, b *bundle)) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			f(t, newBundle(t, backend))
		})
	}
}

// upload records a complete upload of data through the catalog API:
// upload.created, then upload.completed.
func upload(t *testing.T, cat catalog.Catalog, id string, data []byte) {
	t.Helper()
	ctx := context.Background()
	size := int64(len(data))
	err := cat.Create(ctx, catalog.Session{
		ID: id, Owner: "alice", Size: &size,
		Metadata: map[string]string{"filename": id + ".bin", "filetype": "application/octet-stream"},
		Storage:  map[string]string{"Type": "filestore", "Path": "/srv/intake/uploads/" + id},
	})
	if err != nil {
		t.Fatalf("Create %s: %v", id, err)
	}
	if err := cat.CommitOffset(ctx, id, size, nil); err != nil {
		t.Fatalf("CommitOffset %s: %v", id, err)
	}
	sum := sha256.Sum256(data)
	if _, _, err := cat.Finalize(ctx, id, size, hex.EncodeToString(sum[:]), ""); err != nil {
		t.Fatalf("Finalize %s: %v", id, err)
	}
}

// uploads records n uploads named prefix-0, prefix-1, ... with distinct
// content.
func uploads(t *testing.T, cat catalog.Catalog, prefix string, n int) {
	t.Helper()
	for i := range n {
		id := fmt.Sprintf("%s-%d", prefix, i)
		upload(t, cat, id, []byte("content of "+id))
	}
}

// allEvents lists the catalog's events in order of occurrence, the order
// ClaimEvents hands them out.
func allEvents(t *testing.T, cat catalog.Catalog) []catalog.Event {
	t.Helper()
	list, err := cat.ListEvents(context.Background(), catalog.EventFilter{Limit: 10000})
	if err != nil {
		t.Fatalf("ListEvents: %v", err)
	}
	slices.SortFunc(list, func(a, b catalog.Event) int {
		if c := a.OccurredAt.Compare(b.OccurredAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return list
}

func ids[T any](list []T, id func(T) string) []string {
	out := make([]string, len(list))
	for i, v := range list {
		out[i] = id(v)
	}
	return out
}

func eventID(ev catalog.Event) string          { return ev.ID }
func deliveryID(d webhooktest.Delivery) string { return d.ID }

// options are fast retries for tests: the policy is the same, the clock
// runs a hundred times faster.
func options(t *testing.T, url string) webhook.Options {
	return webhook.Options{
		URL:          url,
		Secret:       secret,
		DownloadBase: downloadBase,
		Timeout:      5 * time.Second,
		BackoffBase:  5 * time.Millisecond,
		BackoffCap:   50 * time.Millisecond,
		PollInterval: 10 * time.Millisecond,
		Logger:       slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
}

// start runs a dispatcher until the returned stop is called (or the test
// ends); stop returns when Run has.
func start(t *testing.T, store webhook.EventStore, opts webhook.Options) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		webhook.New(store, opts).Run(ctx)
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				t.Error("dispatcher did not stop within 30s")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// waitFor polls cond until it holds, failing the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// undelivered counts the events not yet delivered.
func undelivered(t *testing.T, cat catalog.Catalog) int {
	n := 0
	for _, ev := range allEvents(t, cat) {
		if ev.DeliveredAt == nil {
			n++
		}
	}
	return n
}

// checkProcessedOnce: the receiver processed exactly the catalog's events,
// every one recorded delivered, and answered each with a 2xx only once:
// nothing was sent again after a success.
func checkProcessedOnce(t *testing.T, cat catalog.Catalog, r *webhooktest.Receiver) {
	t.Helper()
	events := allEvents(t, cat)
	processed := r.Processed()
	got, want := ids(processed, deliveryID), ids(events, eventID)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("processed events %q; want the catalog's %q", got, want)
	}
	for _, ev := range events {
		if ev.DeliveredAt == nil || ev.DeadAt != nil {
			t.Errorf("event %s: delivered_at %v, dead_at %v; want delivered", ev.ID, ev.DeliveredAt, ev.DeadAt)
		}
	}
	ok := map[string]int{}
	for _, d := range r.All() {
		if d.Status/100 == 2 {
			ok[d.ID]++
		}
	}
	for id, n := range ok {
		if n != 1 {
			t.Errorf("event %s answered 2xx %d times; want once", id, n)
		}
	}
}

// TestRetriesUntilDelivered is scenario (a): a receiver that fails its
// first deliveries gets every event, each processed once, every signature
// valid, and the bodies say what happened.
func TestRetriesUntilDelivered(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *bundle) {
		r := webhooktest.New(t, secret)
		// 500, 503 and 429 hold the queue; all are retried.
		r.Respond(func(n int, _ string) int {
			switch {
			case n < 3:
				return http.StatusInternalServerError
			case n < 5:
				return http.StatusServiceUnavailable
			case n < 7:
				return http.StatusTooManyRequests
			}
			return http.StatusNoContent
		})
		uploads(t, b.cat, "before", 4)
		start(t, b.cat, options(t, r.URL))
		uploads(t, b.cat, "during", 3)

		total := len(allEvents(t, b.cat))
		if total != 14 {
			t.Fatalf("the catalog wrote %d events for 7 uploads; want 14", total)
		}
		r.WaitProcessed(t.Context(), total, 20*time.Second)
		waitFor(t, 10*time.Second, "every event recorded delivered", func() bool { return undelivered(t, b.cat) == 0 })
		checkProcessedOnce(t, b.cat, r)
		if n := r.Requests(); n < total+7 {
			t.Errorf("receiver got %d requests; want at least %d (7 failed)", n, total+7)
		}

		// The bodies: created, then completed, for each upload.
		byUpload := map[string][]webhook.Body{}
		for _, d := range r.Processed() {
			byUpload[d.Body.Upload.ID] = append(byUpload[d.Body.Upload.ID], d.Body)
		}
		for id, bodies := range byUpload {
			if len(bodies) != 2 || bodies[0].Type != catalog.EventCreated || bodies[1].Type != catalog.EventCompleted {
				t.Errorf("upload %s: events %v; want created then completed", id, bodies)
				continue
			}
			data := []byte("content of " + id)
			sum := sha256.Sum256(data)
			created, completed := bodies[0].Upload, bodies[1].Upload
			if created.SHA256 != nil || created.DownloadURL != nil || created.Size == nil || *created.Size != int64(len(data)) {
				t.Errorf("upload.created of %s: %+v; want the size, no digest and no download URL yet", id, created)
			}
			c := completed
			switch {
			case c.Size == nil || *c.Size != int64(len(data)),
				c.SHA256 == nil || *c.SHA256 != hex.EncodeToString(sum[:]),
				c.Filename == nil || *c.Filename != id+".bin",
				c.Owner != "alice" || c.Metadata["filetype"] != "application/octet-stream",
				c.Storage == nil || *c.Storage != (webhook.Storage{Backend: "file", Key: id}),
				c.DownloadURL == nil || *c.DownloadURL != downloadBase+id:
				t.Errorf("upload.completed of %s: %+v (storage %+v)", id, c, c.Storage)
			}
			if bodies[1].OccurredAt.Before(bodies[0].OccurredAt) || bodies[1].OccurredAt.IsZero() {
				t.Errorf("upload %s: completed at %s, created at %s", id, bodies[1].OccurredAt, bodies[0].OccurredAt)
			}
		}
	})
}

// TestBacklogDrainsInOrder is scenario (b): while the receiver is gone
// (nothing listens), events pile up and are retried; once it is back they
// arrive in order of occurrence.
func TestBacklogDrainsInOrder(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *bundle) {
		r := webhooktest.New(t, secret)
		r.Down()
		uploads(t, b.cat, "early", 6)
		start(t, b.cat, options(t, r.URL))
		// Wait until delivery has failed a few times, with growing
		// delays, then add to the backlog.
		waitFor(t, 10*time.Second, "an event retried 3 times", func() bool {
			for _, ev := range allEvents(t, b.cat) {
				if ev.Attempts >= 3 {
					return true
				}
			}
			return false
		})
		uploads(t, b.cat, "late", 4)
		time.Sleep(200 * time.Millisecond)
		if n := r.Requests(); n != 0 {
			t.Fatalf("receiver down, yet %d requests arrived", n)
		}
		for _, ev := range allEvents(t, b.cat) {
			if ev.Attempts > 0 && !strings.Contains(ev.LastError, "connection refused") {
				t.Errorf("event %s: last error %q; want the refused connection", ev.ID, ev.LastError)
			}
			if strings.Contains(ev.LastError, "/hook") {
				t.Errorf("event %s: last error %q repeats the receiver's URL", ev.ID, ev.LastError)
			}
		}

		r.Up()
		want := ids(allEvents(t, b.cat), eventID)
		got := ids(r.WaitProcessed(t.Context(), len(want), 20*time.Second), deliveryID)
		if !slices.Equal(got, want) {
			t.Errorf("delivered in the order\n%q\nwant the order of occurrence\n%q", got, want)
		}
		waitFor(t, 10*time.Second, "every event recorded delivered", func() bool { return undelivered(t, b.cat) == 0 })
		checkProcessedOnce(t, b.cat, r)
	})
}

// TestRefusedEventDoesNotHoldTheQueue: a 4xx refuses one event, not the
// receiver: later events go ahead while it is retried.
func TestRefusedEventDoesNotHoldTheQueue(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *bundle) {
		r := webhooktest.New(t, secret)
		var mu sync.Mutex
		refused := ""
		refusals := 0
		r.Respond(func(_ int, id string) int {
			mu.Lock()
			defer mu.Unlock()
			if refused == "" {
				refused = id // the first event sent
			}
			if id == refused && refusals < 20 {
				refusals++
				return http.StatusUnprocessableEntity
			}
			return http.StatusOK
		})
		uploads(t, b.cat, "u", 5)
		start(t, b.cat, options(t, r.URL))
		events := allEvents(t, b.cat)
		processed := r.WaitProcessed(t.Context(), len(events), 20*time.Second)
		if processed[0].ID == events[0].ID {
			t.Errorf("the refused event %s was processed first; want the others ahead of it", events[0].ID)
		}
		if last := processed[len(processed)-1].ID; last != events[0].ID {
			t.Errorf("last processed %s; want the refused event %s, after its 20 refusals", last, events[0].ID)
		}
		waitFor(t, 10*time.Second, "every event recorded delivered", func() bool { return undelivered(t, b.cat) == 0 })
		checkProcessedOnce(t, b.cat, r)
	})
}

// TestTwoDispatchersNeverOverlap is scenario (c): two dispatchers, each
// with its own connection pool as in two processes, on one PostgreSQL
// schema. The receiver is slow and sometimes fails, so claims interleave
// and retries happen; it never sees one event twice at the same time (the
// receiver reports that as a problem), and gets every event.
func TestTwoDispatchersNeverOverlap(t *testing.T) {
	t.Parallel()
	b := newBundle(t, "postgres")
	r := webhooktest.New(t, secret)
	r.Delay(func(int, string) time.Duration { return 15 * time.Millisecond })
	r.Respond(func(n int, _ string) int {
		if n%5 == 4 {
			return http.StatusBadGateway
		}
		return http.StatusNoContent
	})
	uploads(t, b.cat, "before", 15)

	for _, name := range []string{"a", "b"} {
		opts := options(t, r.URL)
		opts.BatchSize = 3
		opts.Client = &http.Client{Transport: tagged{name}}
		start(t, b.open(t), opts)
	}
	uploads(t, b.cat, "during", 10)

	total := len(allEvents(t, b.cat))
	r.WaitProcessed(t.Context(), total, 30*time.Second)
	waitFor(t, 10*time.Second, "every event recorded delivered", func() bool { return undelivered(t, b.cat) == 0 })
	events := allEvents(t, b.cat)
	got := ids(r.Processed(), deliveryID)
	slices.Sort(got)
	want := ids(events, eventID)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("processed %q; want every event %q", got, want)
	}
	by := map[string]int{}
	for _, d := range r.All() {
		by[d.Header.Get("X-Dispatcher")]++
	}
	if by["a"] == 0 || by["b"] == 0 {
		t.Errorf("requests by dispatcher: %v; want both to have delivered", by)
	}
}

// tagged marks which dispatcher sent a request.
type tagged struct{ name string }

func (tg tagged) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set("X-Dispatcher", tg.name)
	return http.DefaultTransport.RoundTrip(req)
}

// TestRestartDeliversPending is scenario (d): a dispatcher stopped in the
// middle of a batch finishes and records its request in flight, hands back
// the rest of the batch, and a new dispatcher on a new catalog handle (a
// restarted process) delivers everything at once — long before the claim's
// lease would have ended.
func TestRestartDeliversPending(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *bundle) {
		r := webhooktest.New(t, secret)
		inFlight := make(chan struct{})
		var once sync.Once
		r.Delay(func(n int, _ string) time.Duration {
			if n == 0 {
				once.Do(func() { close(inFlight) })
				return 300 * time.Millisecond
			}
			return 0
		})
		uploads(t, b.cat, "u", 4)
		stop := start(t, b.cat, options(t, r.URL))
		<-inFlight
		stopped := time.Now()
		stop() // while the first request is in flight
		if took := time.Since(stopped); took < 200*time.Millisecond {
			t.Errorf("Run returned %s after its context ended, with a request in flight for 300ms; want it to wait for the answer", took)
		}
		first := r.Processed()
		if len(first) != 1 {
			t.Fatalf("%d events processed before the stop; want the one in flight", len(first))
		}
		for _, ev := range allEvents(t, b.cat) {
			if (ev.ID == first[0].ID) != (ev.DeliveredAt != nil) {
				t.Errorf("event %s: delivered_at %v after the stop; want only %s recorded delivered", ev.ID, ev.DeliveredAt, first[0].ID)
			}
		}

		// Restart: another handle, as a new process has; events that
		// occurred while nothing ran are delivered too.
		cat := b.open(t)
		uploads(t, cat, "meanwhile", 2)
		begin := time.Now()
		start(t, cat, options(t, r.URL))
		total := len(allEvents(t, cat))
		r.WaitProcessed(t.Context(), total, 10*time.Second)
		if took := time.Since(begin); took > 5*time.Second {
			t.Errorf("the restarted dispatcher took %s; want the released events sent at once", took)
		}
		waitFor(t, 10*time.Second, "every event recorded delivered", func() bool { return undelivered(t, cat) == 0 })
		checkProcessedOnce(t, cat, r)
	})
}

// A receiver that never answers holds a stopping dispatcher no longer than
// the request timeout, and the event is sent again later.
func TestStopBoundedByTimeout(t *testing.T) {
	t.Parallel()
	b := newBundle(t, "sqlite")
	r := webhooktest.New(t, secret)
	r.Delay(func(n int, _ string) time.Duration {
		if n == 0 {
			return time.Minute // until the dispatcher gives up
		}
		return 0
	})
	uploads(t, b.cat, "u", 1)
	opts := options(t, r.URL)
	opts.Timeout = 300 * time.Millisecond
	stop := start(t, b.cat, opts)
	waitFor(t, 10*time.Second, "the first request", func() bool { return r.Requests() > 0 })
	began := time.Now()
	stop()
	if took := time.Since(began); took > 2*time.Second {
		t.Errorf("stopping took %s with a 300ms request timeout", took)
	}
	ev := allEvents(t, b.cat)[0]
	if ev.DeliveredAt != nil || ev.Attempts != 1 || !strings.Contains(ev.LastError, "no answer within 300ms") {
		t.Errorf("event after a timed-out request: delivered %v, attempts %d, last error %q; want a failed attempt", ev.DeliveredAt, ev.Attempts, ev.LastError)
	}
	start(t, b.cat, options(t, r.URL))
	r.WaitProcessed(t.Context(), 2, 10*time.Second)
}
