package sqlite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/intake-dev/intake/pkg/catalog"
	"github.com/intake-dev/intake/pkg/catalog/catalogtest"
	"github.com/intake-dev/intake/pkg/catalog/internal/migrate"
)

func openTest(t *testing.T, path string, extra ...migrate.Step) *Catalog {
	t.Helper()
	c, err := Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open = %v", err)
	}
	t.Cleanup(func() { c.Close() })
	c.steps = append(slices.Clone(c.steps), extra...)
	return c
}

func migrated(t *testing.T, path string) *Catalog {
	t.Helper()
	c := openTest(t, path)
	if _, err := c.MigrateUp(t.Context()); err != nil {
		t.Fatalf("MigrateUp = %v", err)
	}
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
	err := c.read.QueryRowContext(t.Context(),
		`SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?)`, name).Scan(&ok)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// rawOf reaches below c for catalogtest's rollback checks.
func rawOf(c *Catalog) catalogtest.Raw {
	return catalogtest.Raw{
		TableExists: func(t *testing.T, name string) bool { return tableExists(t, c, name) },
		QueryRow: func(ctx context.Context, query string, dest ...any) error {
			return c.read.QueryRowContext(ctx, query).Scan(dest...)
		},
		Exec: func(ctx context.Context, statement string) error {
			_, err := c.write.ExecContext(ctx, statement)
			return err
		},
	}
}

func TestOpenPaths(t *testing.T) {
	t.Parallel()
	// A missing parent directory is created, and characters that mean
	// something in a URI stay part of the file name.
	path := filepath.Join(t.TempDir(), "a", "b c", "odd?name#x%41.db")
	c := migrated(t, path)
	if err := c.Create(t.Context(), catalog.Session{ID: "x"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database file not at %s: %v", path, err)
	}
	c.Close()

	// Reopening sees what was written.
	again := openTest(t, path)
	if _, err := again.Get(t.Context(), "x"); err != nil {
		t.Fatalf("Get after reopen = %v", err)
	}

	for _, bad := range []string{"", ":memory:", "file:x.db?mode=memory"} {
		if c, err := Open(t.Context(), bad); err == nil {
			c.Close()
			t.Errorf("Open(%q) = nil; want an error", bad)
		}
	}
}

func TestPragmas(t *testing.T) {
	t.Parallel()
	c := openTest(t, filepath.Join(t.TempDir(), "p.db"))
	ctx := t.Context()
	for _, tt := range []struct {
		pragma string
		want   string
	}{
		{"journal_mode", "wal"},
		{"busy_timeout", "5000"},
		{"foreign_keys", "1"},
		{"synchronous", "1"}, // NORMAL
		{"query_only", "0"},
	} {
		var got string
		if err := c.write.QueryRowContext(ctx, "PRAGMA "+tt.pragma).Scan(&got); err != nil || got != tt.want {
			t.Errorf("writer PRAGMA %s = %q, %v; want %q", tt.pragma, got, err, tt.want)
		}
	}
	var got string
	if err := c.read.QueryRowContext(ctx, "PRAGMA query_only").Scan(&got); err != nil || got != "1" {
		t.Errorf("reader PRAGMA query_only = %q, %v; want 1", got, err)
	}
	if _, err := c.read.ExecContext(ctx, "CREATE TABLE nope (x)"); err == nil {
		t.Error("a reader connection wrote")
	}
}

// Two catalogs on one file stand in for two processes: their writer
// connections contend for SQLite's lock, and busy_timeout must turn that
// into waiting, never SQLITE_BUSY.
func TestConcurrentWritersOnOneFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "shared.db")
	a := migrated(t, path)
	b := openTest(t, path)
	var wg sync.WaitGroup
	for w := range 16 {
		c := a
		if w%2 == 1 {
			c = b
		}
		wg.Go(func() {
			for i := range 25 {
				id := fmt.Sprintf("w%d-%d", w, i)
				if err := c.Create(t.Context(), catalog.Session{ID: id, Size: new(int64(10))}); err != nil {
					t.Errorf("Create(%s) = %v", id, err)
					return
				}
				for off := int64(1); off <= 10; off += 3 {
					if err := c.SetOffset(t.Context(), id, off); err != nil {
						t.Errorf("SetOffset(%s, %d) = %v", id, off, err)
						return
					}
				}
				if _, err := c.List(t.Context(), catalog.ListOptions{Limit: 5}); err != nil {
					t.Errorf("List = %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	all, err := a.List(t.Context(), catalog.ListOptions{Limit: 1000})
	if err != nil || len(all) != 16*25 {
		t.Fatalf("List = %d sessions, %v; want %d", len(all), err, 16*25)
	}
}

func TestMigrateUpConcurrent(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "m.db")
	n := shipped(t)
	extra := []migrate.Step{
		{Version: n + 1, Name: "probe", Up: `CREATE TABLE probe (v INTEGER) STRICT;`, Down: `DROP TABLE probe;`},
		{Version: n + 2, Name: "probe_row", Up: `INSERT INTO probe VALUES (3);`, Down: `DELETE FROM probe;`},
	}
	const instances = 4
	var catalogs []*Catalog
	for range instances {
		catalogs = append(catalogs, openTest(t, path, extra...))
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
		all = append(all, versions(results[i])...)
	}
	slices.Sort(all)
	if !slices.Equal(all, upTo(n+2)) {
		t.Errorf("versions applied across instances = %v; want %v exactly once each", all, upTo(n+2))
	}
	var rows int
	if err := catalogs[0].read.QueryRowContext(t.Context(), `SELECT count(*) FROM probe`).Scan(&rows); err != nil || rows != 1 {
		t.Errorf("probe rows = %d, %v; want 1", rows, err)
	}
}

func TestMigrateUpFailure(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "m.db")
	n := shipped(t)
	bad := migrate.Step{Version: n + 1, Name: "bad", Up: `CREATE TABLE half (x INTEGER); SELEC 1;`, Down: `DROP TABLE half;`}
	c := openTest(t, path, bad)
	applied, err := c.MigrateUp(t.Context())
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%04d_bad", n+1)) {
		t.Fatalf("MigrateUp with a broken migration = %v; want an error naming %04d_bad", err, n+1)
	}
	if !slices.Equal(versions(applied), upTo(n)) {
		t.Errorf("applied = %v; want %v", versions(applied), upTo(n))
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
	// The writer connection is usable again.
	if err := c.Create(t.Context(), catalog.Session{ID: "after"}); err != nil {
		t.Errorf("Create after a failed migration = %v", err)
	}
}

func TestMigrateDownAndUp(t *testing.T) {
	t.Parallel()
	c := openTest(t, filepath.Join(t.TempDir(), "m.db"))
	ctx := t.Context()
	status, err := c.MigrationStatus(ctx)
	if err != nil || len(status) == 0 || status[0].AppliedAt != nil {
		t.Fatalf("status on a fresh file = %+v, %v; want all pending", status, err)
	}
	if tableExists(t, c, "intake_migrations") {
		t.Error("MigrationStatus created the bookkeeping table")
	}
	up, err := c.MigrateUp(ctx)
	if err != nil || len(up) != len(c.steps) || up[0].AppliedAt == nil {
		t.Fatalf("MigrateUp = %+v, %v", up, err)
	}
	if _, err := c.MigrateDown(ctx, 0); !errors.Is(err, catalog.ErrInvalid) {
		t.Errorf("MigrateDown(0) = %v; want ErrInvalid", err)
	}
	down, err := c.MigrateDown(ctx, 100)
	if err != nil || len(down) != len(c.steps) {
		t.Fatalf("MigrateDown(100) = %v, %v", versions(down), err)
	}
	if tableExists(t, c, "uploads") {
		t.Error("uploads still exists after MigrateDown")
	}
	if down, err := c.MigrateDown(ctx, 1); err != nil || len(down) != 0 {
		t.Errorf("MigrateDown with nothing applied = %v, %v; want nothing", versions(down), err)
	}
	if up, err := c.MigrateUp(ctx); err != nil || len(up) != len(c.steps) {
		t.Fatalf("MigrateUp after down = %v, %v", versions(up), err)
	}
	if err := c.Create(ctx, catalog.Session{ID: "x"}); err != nil {
		t.Fatalf("Create after down and up = %v", err)
	}
}

func TestMigrateNewerDatabase(t *testing.T) {
	t.Parallel()
	c := migrated(t, filepath.Join(t.TempDir(), "m.db"))
	ctx := t.Context()
	if _, err := c.write.ExecContext(ctx, `INSERT INTO intake_migrations VALUES (99, 'from_the_future', 0)`); err != nil {
		t.Fatal(err)
	}
	if up, err := c.MigrateUp(ctx); err != nil || len(up) != 0 {
		t.Errorf("MigrateUp = %v, %v; want nothing, no error", versions(up), err)
	}
	status, err := c.MigrationStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if last := status[len(status)-1]; last.Version != 99 || last.Name != "from_the_future" {
		t.Errorf("last status row = %+v; want the unknown version 99", last)
	}
	if down, err := c.MigrateDown(ctx, 1); err == nil || len(down) != 0 {
		t.Errorf("MigrateDown over an unknown version = %v, %v; want an error", versions(down), err)
	}
}

func TestMigrateDownBlobsWithData(t *testing.T) {
	t.Parallel()
	c := migrated(t, filepath.Join(t.TempDir(), "m.db"))
	catalogtest.MigrateDownBlobsWithData(t, c, rawOf(c))
}

// The schema backs up the code: what the catalog never writes, the
// database refuses.
func TestBlobSchemaRefuses(t *testing.T) {
	t.Parallel()
	c := migrated(t, filepath.Join(t.TempDir(), "m.db"))
	catalogtest.FillBlobs(t, c)
	for _, sql := range blobSchemaViolations {
		if _, err := c.write.ExecContext(t.Context(), sql); err == nil {
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
	`INSERT INTO blobs (sha256, size, upload_id, refs, created_at) VALUES ('ABC', 1, 'x', 1, 0)`,
	`UPDATE uploads SET sha256 = 'xyz' WHERE id = 'c'`,
}
