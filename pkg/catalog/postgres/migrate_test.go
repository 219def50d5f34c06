package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/intake-dev/intake/internal/pgtest"
	"github.com/intake-dev/intake/pkg/catalog"
	"github.com/intake-dev/intake/pkg/catalog/catalogtest"
	"github.com/intake-dev/intake/pkg/catalog/internal/migrate"
)

func openTest(t *testing.T, url string, extra ...migrate.Step) *Catalog {
	t.Helper()
	c, err := Open(t.Context(), url, Options{})
	if err != nil {
		t.Fatalf("Open = %v", err)
	}
	t.Cleanup(func() { c.Close() })
	c.steps = append(slices.Clone(c.steps), extra...)
	return c
}

// shipped is the number of embedded migrations; tests add theirs after.
func shipped(t *testing.T) int {
	t.Helper()
	steps, err := loadSteps()
	if err != nil {
		t.Fatal(err)
	}
	return len(steps)
}

// upTo returns 1..n.
func upTo(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i + 1
	}
	return out
}

func versions(ms []catalog.Migration) []int {
	var out []int
	for _, m := range ms {
		out = append(out, m.Version)
	}
	return out
}

func tableExists(t *testing.T, c *Catalog, name string) bool {
	t.Helper()
	var ok bool
	if err := c.pool.QueryRow(t.Context(), `SELECT to_regclass($1) IS NOT NULL`, name).Scan(&ok); err != nil {
		t.Fatal(err)
	}
	return ok
}

// rawOf reaches below c for catalogtest's rollback checks.
func rawOf(c *Catalog) catalogtest.Raw {
	return catalogtest.Raw{
		TableExists: func(t *testing.T, name string) bool { return tableExists(t, c, name) },
		QueryRow: func(ctx context.Context, query string, dest ...any) error {
			return c.pool.QueryRow(ctx, query).Scan(dest...)
		},
		Exec: func(ctx context.Context, statement string) error {
			_, err := c.pool.Exec(ctx, statement)
			return err
		},
	}
}

// Several instances starting at once: every MigrateUp succeeds and each
// migration runs exactly once. The extra steps sleep, to make the calls
// overlap, and count their own runs.
func TestMigrateUpConcurrent(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	n := shipped(t)
	extra := []migrate.Step{
		{Version: n + 1, Name: "probe", Up: `CREATE TABLE probe (v int); SELECT pg_sleep(0.2);`, Down: `DROP TABLE probe;`},
		{Version: n + 2, Name: "probe_row", Up: `INSERT INTO probe VALUES (3); SELECT pg_sleep(0.1);`, Down: `DELETE FROM probe;`},
	}
	const instances = 4
	var catalogs []*Catalog
	for range instances {
		catalogs = append(catalogs, openTest(t, url, extra...))
	}
	results := make([][]catalog.Migration, instances)
	errs := make([]error, instances)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, c := range catalogs {
		wg.Go(func() {
			<-start
			results[i], errs[i] = c.MigrateUp(t.Context())
		})
	}
	close(start)
	wg.Wait()

	var all []int
	for i := range instances {
		if errs[i] != nil {
			t.Errorf("instance %d: MigrateUp = %v", i, errs[i])
		}
		for _, m := range results[i] {
			if m.AppliedAt == nil {
				t.Errorf("instance %d: applied %d without AppliedAt", i, m.Version)
			}
		}
		all = append(all, versions(results[i])...)
	}
	slices.Sort(all)
	if !slices.Equal(all, upTo(n+2)) {
		t.Errorf("versions applied across instances = %v; want %v exactly once each", all, upTo(n+2))
	}
	var rows int
	if err := catalogs[0].pool.QueryRow(t.Context(), `SELECT count(*) FROM probe`).Scan(&rows); err != nil || rows != 1 {
		t.Errorf("probe rows = %d, %v; want 1 (the probe_row migration ran once)", rows, err)
	}
	status, err := catalogs[3].MigrationStatus(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range status {
		if m.AppliedAt == nil {
			t.Errorf("status: %d not applied", m.Version)
		}
	}
}

// A failing migration leaves nothing behind, not even half its DDL, and
// releases the lock for the next instance.
func TestMigrateUpFailure(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	n := shipped(t)
	bad := migrate.Step{Version: n + 1, Name: "bad", Up: `CREATE TABLE half (x int); SELEC 1;`, Down: `DROP TABLE half;`}
	c := openTest(t, url, bad)

	applied, err := c.MigrateUp(t.Context())
	if err == nil {
		t.Fatal("MigrateUp with a broken migration = nil; want an error")
	}
	if !strings.Contains(err.Error(), fmt.Sprintf("%04d_bad", n+1)) {
		t.Errorf("error %q does not name the migration", err)
	}
	if !slices.Equal(versions(applied), upTo(n)) {
		t.Errorf("applied = %v; want %v, the migrations before the failure", versions(applied), upTo(n))
	}
	if tableExists(t, c, "half") {
		t.Error("table from the failed migration exists")
	}
	status, err := c.MigrationStatus(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(status) != n+1 || status[n-1].AppliedAt == nil || status[n].AppliedAt != nil {
		t.Errorf("status = %+v; want 1..%d applied, %d pending", status, n, n+1)
	}

	// Another instance, on other connections, must not wait on a leaked lock.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	other := openTest(t, url)
	if _, err := other.MigrateUp(ctx); err != nil {
		t.Fatalf("MigrateUp after a failure elsewhere = %v", err)
	}
}

// A MigrateUp canceled while waiting for the lock gives up cleanly, and no
// connection of its pool keeps the lock.
func TestMigrateUpCanceledWhileWaiting(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	app := "leakcheck_" + strings.ReplaceAll(time.Now().Format("150405.000000"), ".", "")
	c := openTest(t, url+"&application_name="+app)

	holder, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close(context.Background())
	if _, err := holder.Exec(t.Context(), `SELECT pg_advisory_lock($1)`, migrationLockKey); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if _, err := c.MigrateUp(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("MigrateUp while the lock is held = %v; want context.DeadlineExceeded", err)
	}
	if _, err := holder.Exec(t.Context(), `SELECT pg_advisory_unlock($1)`, migrationLockKey); err != nil {
		t.Fatal(err)
	}

	ctx, cancel = context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := c.MigrateUp(ctx); err != nil {
		t.Fatalf("MigrateUp after the lock was released = %v", err)
	}
	var held int
	err = holder.QueryRow(ctx, `
		SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
		WHERE l.locktype = 'advisory' AND a.application_name = $1`, app).Scan(&held)
	if err != nil {
		t.Fatal(err)
	}
	if held != 0 {
		t.Errorf("%d connections of the pool still hold or wait for an advisory lock", held)
	}
}

func TestMigrateDownAndUp(t *testing.T) {
	t.Parallel()
	c := openTest(t, pgtest.URL(t))
	ctx := t.Context()

	status, err := c.MigrationStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(status) == 0 || status[0].AppliedAt != nil {
		t.Fatalf("status on a fresh schema = %+v; want all pending", status)
	}
	if tableExists(t, c, "intake_migrations") {
		t.Error("MigrationStatus created the bookkeeping table; it must not write")
	}
	if _, err := c.MigrateDown(ctx, 1); err != nil {
		t.Errorf("MigrateDown on a fresh schema = %v; want nothing to do", err)
	}

	up, err := c.MigrateUp(ctx)
	if err != nil || len(up) != len(c.steps) {
		t.Fatalf("MigrateUp = %v, %v; want %d applied", versions(up), err, len(c.steps))
	}
	if !tableExists(t, c, "uploads") {
		t.Fatal("uploads missing after MigrateUp")
	}
	if _, err := c.MigrateDown(ctx, 0); !errors.Is(err, catalog.ErrInvalid) {
		t.Errorf("MigrateDown(0) = %v; want ErrInvalid", err)
	}
	down, err := c.MigrateDown(ctx, 100)
	if err != nil || len(down) != len(c.steps) || down[0].Version != c.steps[len(c.steps)-1].Version {
		t.Fatalf("MigrateDown(100) = %v, %v; want all, newest first", versions(down), err)
	}
	if tableExists(t, c, "uploads") {
		t.Error("uploads still exists after MigrateDown")
	}
	if up, err := c.MigrateUp(ctx); err != nil || len(up) != len(c.steps) {
		t.Fatalf("MigrateUp after down = %v, %v", versions(up), err)
	}
	if err := c.Create(ctx, catalog.Session{ID: "x"}); err != nil {
		t.Fatalf("Create after down and up = %v", err)
	}
}

// A database migrated by a newer binary: this one runs fine, reports the
// unknown version, and refuses to roll back what it cannot undo.
func TestMigrateNewerDatabase(t *testing.T) {
	t.Parallel()
	c := openTest(t, pgtest.URL(t))
	ctx := t.Context()
	if _, err := c.MigrateUp(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.pool.Exec(ctx, `INSERT INTO intake_migrations (version, name) VALUES (99, 'from_the_future')`); err != nil {
		t.Fatal(err)
	}
	if up, err := c.MigrateUp(ctx); err != nil || len(up) != 0 {
		t.Errorf("MigrateUp = %v, %v; want nothing, no error", versions(up), err)
	}
	status, err := c.MigrationStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	last := status[len(status)-1]
	if last.Version != 99 || last.Name != "from_the_future" || last.AppliedAt == nil {
		t.Errorf("last status row = %+v; want the unknown version 99", last)
	}
	if down, err := c.MigrateDown(ctx, 1); err == nil || len(down) != 0 {
		t.Errorf("MigrateDown over an unknown version = %v, %v; want an error and nothing done", versions(down), err)
	}
	if !tableExists(t, c, "uploads") {
		t.Error("uploads dropped")
	}
}

func TestMigrateDownBlobsWithData(t *testing.T) {
	t.Parallel()
	c := migratedTest(t)
	catalogtest.MigrateDownBlobsWithData(t, c, rawOf(c))
}

// The schema backs up the code: what the catalog never writes, the
// database refuses.
func TestBlobSchemaRefuses(t *testing.T) {
	t.Parallel()
	c := openTest(t, pgtest.URL(t))
	ctx := t.Context()
	if _, err := c.MigrateUp(ctx); err != nil {
		t.Fatal(err)
	}
	catalogtest.FillBlobs(t, c)
	for _, sql := range blobSchemaViolations {
		if _, err := c.pool.Exec(ctx, sql); err == nil {
			t.Errorf("%s: accepted; want refused", sql)
		}
	}
}

// blobSchemaViolations are statements on catalogtest.FillBlobs' data that break an
// invariant of 0002.
var blobSchemaViolations = []string{
	// A session pointing at a blob that does not exist.
	`UPDATE uploads SET state = 'complete', committed_offset = 3, completed_at = created_at,
		sha256 = '` + strings.Repeat("0", 64) + `', blob_sha256 = '` + strings.Repeat("0", 64) + `' WHERE id = 'c'`,
	// A blob deleted under its references.
	`DELETE FROM blobs`,
	// A terminated session still holding a reference.
	`UPDATE uploads SET state = 'terminated' WHERE id = 'a'`,
	// A complete session whose blob is not its digest.
	`UPDATE uploads SET sha256 = '` + strings.Repeat("1", 64) + `' WHERE id = 'a'`,
	// A hash state ahead of the offset, or an offset without a state.
	`UPDATE uploads SET hash_offset = 3 WHERE id = 'c'`,
	`UPDATE uploads SET hash_state = NULL WHERE id = 'c'`,
	// Malformed digests and counts.
	`UPDATE blobs SET refs = -1`,
	`INSERT INTO blobs (sha256, size, upload_id, refs, created_at) VALUES ('ABC', 1, 'x', 1, now())`,
	`UPDATE uploads SET sha256 = 'xyz' WHERE id = 'c'`,
}
