package postgres

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/intake-dev/intake/internal/pgtest"
	"github.com/intake-dev/intake/pkg/catalog"
	"github.com/intake-dev/intake/pkg/catalog/catalogtest"
	"github.com/intake-dev/intake/pkg/catalog/internal/rule"
)

func migratedTest(t *testing.T) *Catalog {
	t.Helper()
	c := openTest(t, pgtest.URL(t))
	if _, err := c.MigrateUp(t.Context()); err != nil {
		t.Fatal(err)
	}
	return c
}

// A transition whose event insert fails leaves nothing behind.
func TestOutboxAtomic(t *testing.T) {
	t.Parallel()
	c := migratedTest(t)
	catalogtest.Atomic(t, c, func(t *testing.T) {
		_, err := c.pool.Exec(t.Context(), `
			CREATE FUNCTION refuse_event() RETURNS trigger LANGUAGE plpgsql
				AS $$ BEGIN RAISE EXCEPTION 'outbox broken for the test'; END $$;
			CREATE TRIGGER events_broken BEFORE INSERT ON events
				FOR EACH ROW EXECUTE FUNCTION refuse_event();`)
		if err != nil {
			t.Fatal(err)
		}
	})
}

// Rows another dispatcher has locked (its claim not yet committed) are
// skipped, not waited for, and are claimable once it lets go without
// leasing them.
func TestClaimSkipsLockedEvents(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	c := openTest(t, url)
	ctx := t.Context()
	if _, err := c.MigrateUp(ctx); err != nil {
		t.Fatal(err)
	}
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, id := range []string{"a", "b", "c", "d"} {
		at := base.Add(time.Duration(i) * time.Second)
		if err := c.Create(ctx, catalog.Session{ID: id, CreatedAt: at, UpdatedAt: at}); err != nil {
			t.Fatal(err)
		}
	}

	holder, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close(context.Background())
	tx, err := holder.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, `
		SELECT id FROM events WHERE upload_id IN ('a', 'b') FOR UPDATE`); err != nil {
		t.Fatal(err)
	}

	now := base.Add(time.Hour)
	wait, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	got, err := c.ClaimEvents(wait, now, 10, time.Minute)
	if err != nil {
		t.Fatalf("ClaimEvents beside locked rows = %v; want no wait", err)
	}
	if uploads := uploadIDs(got); !slices.Equal(uploads, []string{"c", "d"}) {
		t.Fatalf("claimed events of %q; want those of [c d], the unlocked ones", uploads)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	got, err = c.ClaimEvents(ctx, now, 10, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if uploads := uploadIDs(got); !slices.Equal(uploads, []string{"a", "b"}) {
		t.Fatalf("claimed events of %q after the lock went; want those of [a b]", uploads)
	}
}

func uploadIDs(events []catalog.Event) []string {
	var out []string
	for _, e := range events {
		out = append(out, e.UploadID)
	}
	return out
}

// The payload column is json, not jsonb: it comes back byte for byte.
func TestEventPayloadVerbatim(t *testing.T) {
	t.Parallel()
	c := migratedTest(t)
	ctx := t.Context()
	meta := map[string]string{"zz": "last", "a": "first", "quote": `"\u2028`}
	if err := c.Create(ctx, catalog.Session{ID: "x", Metadata: meta}); err != nil {
		t.Fatal(err)
	}
	events, err := c.ListEvents(ctx, catalog.EventFilter{})
	if err != nil || len(events) != 1 {
		t.Fatalf("ListEvents = %d, %v; want 1", len(events), err)
	}
	var text string
	if err := c.pool.QueryRow(ctx, `SELECT payload::text FROM events`).Scan(&text); err != nil {
		t.Fatal(err)
	}
	if text != string(events[0].Payload) || !strings.HasPrefix(text, `{"id":"x","owner":""`) {
		t.Errorf("stored payload %s, returned %s; want both as written, keys in Snapshot order", text, events[0].Payload)
	}
}

// The schema backs up the code: what the catalog never writes, the
// database refuses.
func TestOutboxSchemaRefuses(t *testing.T) {
	t.Parallel()
	c := migratedTest(t)
	ctx := t.Context()
	if err := c.Create(ctx, catalog.Session{ID: "a", Size: new(int64(1)), Offset: 1}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Finalize(ctx, "a", 1, catalogtest.RollbackDigest, ""); err != nil {
		t.Fatal(err)
	}
	for _, sql := range outboxSchemaViolations {
		if _, err := c.pool.Exec(ctx, sql); err == nil {
			t.Errorf("%s: accepted; want refused", sql)
		}
	}
}

var outboxSchemaViolations = []string{
	`UPDATE uploads SET state = 'paused'`,
	`UPDATE uploads SET content_type = 'text'`,
	`UPDATE uploads SET content_type = 'tëxt/plain'`,
	`UPDATE uploads SET content_type = ''`,
	`UPDATE uploads SET content_type = 'a/` + strings.Repeat("b", 254) + `'`,
	`UPDATE blobs SET content_type = 'nonsense'`,
	`UPDATE events SET type = 'upload.paused'`,
	`UPDATE events SET id = 'ABC'`,
	`UPDATE events SET attempts = -1`,
	`UPDATE events SET payload = '[]'`,
	`UPDATE events SET delivered_at = now(), dead_at = now()`,
	`INSERT INTO events (id, type, upload_id, occurred_at, payload) VALUES ('` + strings.Repeat("0", 32) + `', 'upload.created', 'a', now(), '{}')`,
}

func TestMigrateDownEventsWithData(t *testing.T) {
	t.Parallel()
	c := migratedTest(t)
	catalogtest.MigrateDownEventsWithData(t, c, rawOf(c))
}

func TestMigrateDownExpiredWithData(t *testing.T) {
	t.Parallel()
	c := migratedTest(t)
	catalogtest.MigrateDownExpiredWithData(t, c, rawOf(c))
}

// PurgeEvents works through more than one batch, and purgers running at
// once share the work: every delivered event goes exactly once, pending
// and dead ones stay.
func TestPurgeEventsBatches(t *testing.T) {
	t.Parallel()
	c := migratedTest(t)
	ctx := t.Context()
	delivered := 2*rule.PurgeBatch + 7
	if _, err := c.pool.Exec(ctx, `
		INSERT INTO events (id, type, upload_id, occurred_at, payload, next_attempt_at, delivered_at, dead_at)
		SELECT lpad(to_hex(g), 32, '0'), 'upload.created', 'u', now(), '{}', now(),
			CASE WHEN g <= $1 THEN now() - interval '1 day' END,
			CASE WHEN g > $1 + 2 THEN now() END
		FROM generate_series(1, $1 + 4) g`, delivered); err != nil {
		t.Fatal(err)
	}
	var (
		wg     sync.WaitGroup
		counts [2]int64
		errs   [2]error
	)
	for i := range counts {
		wg.Go(func() { counts[i], errs[i] = c.PurgeEvents(ctx, time.Now()) })
	}
	wg.Wait()
	if errs[0] != nil || errs[1] != nil || counts[0]+counts[1] != int64(delivered) {
		t.Errorf("PurgeEvents at once = %d, %v and %d, %v; want %d in all", counts[0], errs[0], counts[1], errs[1], delivered)
	}
	var left, undelivered int
	if err := c.pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE delivered_at IS NULL) FROM events`).Scan(&left, &undelivered); err != nil {
		t.Fatal(err)
	}
	if left != 4 || undelivered != 4 {
		t.Errorf("events left = %d (%d undelivered); want the 2 pending and 2 dead", left, undelivered)
	}
}
