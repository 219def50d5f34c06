package sqlite

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/intake-dev/intake/pkg/catalog"
	"github.com/intake-dev/intake/pkg/catalog/catalogtest"
	"github.com/intake-dev/intake/pkg/catalog/internal/rule"
)

// A transition whose event insert fails leaves nothing behind.
func TestOutboxAtomic(t *testing.T) {
	t.Parallel()
	c := migrated(t, filepath.Join(t.TempDir(), "m.db"))
	catalogtest.Atomic(t, c, func(t *testing.T) {
		_, err := c.write.ExecContext(t.Context(), `
			CREATE TRIGGER events_broken BEFORE INSERT ON events
			BEGIN SELECT RAISE(ABORT, 'outbox broken for the test'); END`)
		if err != nil {
			t.Fatal(err)
		}
	})
}

// Two catalogs on one file stand in for two processes claiming at once:
// no event is claimed twice.
func TestClaimFromTwoProcesses(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "shared.db")
	a := migrated(t, path)
	b := openTest(t, path)
	const events = 120
	for i := range events {
		if err := a.Create(t.Context(), catalog.Session{ID: fmt.Sprintf("u%03d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now().Add(time.Hour)
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		claimed = map[string]int{}
	)
	for w := range 8 {
		c := a
		if w%2 == 1 {
			c = b
		}
		wg.Go(func() {
			for {
				got, err := c.ClaimEvents(t.Context(), now, 4, time.Hour)
				if err != nil {
					t.Errorf("ClaimEvents = %v", err)
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, e := range got {
					claimed[e.ID]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for id, n := range claimed {
		if n != 1 {
			t.Errorf("event %s claimed %d times; want once", id, n)
		}
	}
	if len(claimed) != events {
		t.Errorf("%d events claimed; want %d", len(claimed), events)
	}
}

// 0003 and 0004 rebuild uploads: the new table must still be STRICT, with
// its foreign key and every index.
func TestRebuiltUploads(t *testing.T) {
	t.Parallel()
	c := migrated(t, filepath.Join(t.TempDir(), "m.db"))
	ctx := t.Context()
	var strict bool
	if err := c.read.QueryRowContext(ctx, `SELECT strict FROM pragma_table_list WHERE name = 'uploads'`).Scan(&strict); err != nil || !strict {
		t.Errorf("uploads STRICT = %v, %v; want true", strict, err)
	}
	var parent string
	if err := c.read.QueryRowContext(ctx, `SELECT "table" FROM pragma_foreign_key_list('uploads')`).Scan(&parent); err != nil || parent != "blobs" {
		t.Errorf("uploads foreign key to %q, %v; want blobs", parent, err)
	}
	rows, err := c.read.QueryContext(ctx, `SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'uploads' AND sql IS NOT NULL ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var indexes []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		indexes = append(indexes, name)
	}
	want := []string{"uploads_blob_sha256_owner_idx", "uploads_created_at_idx", "uploads_owner_created_at_idx", "uploads_state_updated_at_idx"}
	if !slices.Equal(indexes, want) {
		t.Errorf("uploads indexes = %q; want %q", indexes, want)
	}
	for _, table := range []string{"uploads_new", "uploads_old"} {
		if tableExists(t, c, table) {
			t.Errorf("%s left behind", table)
		}
	}
}

// The schema backs up the code: what the catalog never writes, the
// database refuses.
func TestOutboxSchemaRefuses(t *testing.T) {
	t.Parallel()
	c := migrated(t, filepath.Join(t.TempDir(), "m.db"))
	ctx := t.Context()
	if err := c.Create(ctx, catalog.Session{ID: "a", Size: new(int64(1)), Offset: 1}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Finalize(ctx, "a", 1, catalogtest.RollbackDigest, ""); err != nil {
		t.Fatal(err)
	}
	for _, sql := range outboxSchemaViolations {
		if _, err := c.write.ExecContext(ctx, sql); err == nil {
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
	`UPDATE events SET payload = 'not json'`,
	`UPDATE events SET delivered_at = 1, dead_at = 1`,
	`UPDATE events SET occurred_at = 'yesterday'`, // STRICT
	`INSERT INTO events (id, type, upload_id, occurred_at, payload) VALUES ('` + strings.Repeat("0", 32) + `', 'upload.created', 'a', 0, '{}')`,
}

func TestMigrateDownEventsWithData(t *testing.T) {
	t.Parallel()
	c := migrated(t, filepath.Join(t.TempDir(), "m.db"))
	catalogtest.MigrateDownEventsWithData(t, c, rawOf(c))
}

func TestMigrateDownExpiredWithData(t *testing.T) {
	t.Parallel()
	c := migrated(t, filepath.Join(t.TempDir(), "m.db"))
	catalogtest.MigrateDownExpiredWithData(t, c, rawOf(c))
}

// PurgeEvents works through more than one batch; pending and dead events
// stay.
func TestPurgeEventsBatches(t *testing.T) {
	t.Parallel()
	c := migrated(t, filepath.Join(t.TempDir(), "m.db"))
	ctx := t.Context()
	delivered := 2*rule.PurgeBatch + 7
	day := toDB(time.Now().Add(-24 * time.Hour))
	if _, err := c.write.ExecContext(ctx, `
		WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < ?1 + 4)
		INSERT INTO events (id, type, upload_id, occurred_at, payload, next_attempt_at, delivered_at, dead_at)
		SELECT printf('%032x', n), 'upload.created', 'u', ?2, '{}', ?2,
			CASE WHEN n <= ?1 THEN ?2 END,
			CASE WHEN n > ?1 + 2 THEN ?2 END
		FROM g`, delivered, day); err != nil {
		t.Fatal(err)
	}
	if n, err := c.PurgeEvents(ctx, time.Now()); err != nil || n != int64(delivered) {
		t.Errorf("PurgeEvents = %d, %v; want %d", n, err, delivered)
	}
	var left, undelivered int
	if err := c.read.QueryRowContext(ctx, `SELECT count(*), count(*) FILTER (WHERE delivered_at IS NULL) FROM events`).Scan(&left, &undelivered); err != nil {
		t.Fatal(err)
	}
	if left != 4 || undelivered != 4 {
		t.Errorf("events left = %d (%d undelivered); want the 2 pending and 2 dead", left, undelivered)
	}
}
