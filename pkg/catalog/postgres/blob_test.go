package postgres

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/intake-dev/intake/internal/pgtest"
	"github.com/intake-dev/intake/pkg/catalog"
)

// The conformance suite races Release against Finalize and CreateDeduped,
// but on PostgreSQL the telling order is rare: the release has deleted the
// blob row, uncommitted, and the other call is waiting on that row. These
// tests hold a release open at exactly that point, wait until the other
// call blocks on it, and only then commit.
func TestWaitOnDeletedBlob(t *testing.T) {
	t.Parallel()
	const sha = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
	tests := []struct {
		name  string
		other func(ctx context.Context, c *Catalog) error
		check func(t *testing.T, c *Catalog, err error)
	}{
		{
			name: "Finalize creates the blob anew",
			other: func(ctx context.Context, c *Catalog) error {
				blob, existed, err := c.Finalize(ctx, "b", 5, sha, "")
				if err == nil && (existed || blob.UploadID != "b" || blob.Refs != 1) {
					t.Errorf("Finalize = %+v, existed %v; want a new blob from b", blob, existed)
				}
				return err
			},
			check: func(t *testing.T, c *Catalog, err error) {
				if err != nil {
					t.Fatalf("Finalize = %v; want nil", err)
				}
				if blob, err := c.GetBlob(t.Context(), sha); err != nil || blob.UploadID != "b" {
					t.Errorf("GetBlob = %+v, %v; want b's blob", blob, err)
				}
			},
		},
		{
			name: "CreateDeduped finds no blob",
			other: func(ctx context.Context, c *Catalog) error {
				return c.CreateDeduped(ctx, catalog.Session{ID: "x", Size: new(int64(5))}, sha)
			},
			check: func(t *testing.T, c *Catalog, err error) {
				if !errors.Is(err, catalog.ErrNotFound) {
					t.Fatalf("CreateDeduped = %v; want ErrNotFound", err)
				}
				if _, err := c.Get(t.Context(), "x"); !errors.Is(err, catalog.ErrNotFound) {
					t.Errorf("Get(x) = %v; want ErrNotFound", err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			url := pgtest.URL(t)
			app := "blobwait_" + strings.ReplaceAll(time.Now().Format("150405.000000"), ".", "")
			c := openTest(t, url+"&application_name="+app)
			if _, err := c.MigrateUp(ctx); err != nil {
				t.Fatal(err)
			}
			for _, id := range []string{"a", "b"} {
				if err := c.Create(ctx, catalog.Session{ID: id, Size: new(int64(5)), Offset: 5}); err != nil {
					t.Fatal(err)
				}
			}
			if _, _, err := c.Finalize(ctx, "a", 5, sha, ""); err != nil {
				t.Fatal(err)
			}

			// Release(a), up to its commit, on a connection of its own.
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
			for _, sql := range []string{
				`UPDATE uploads SET state = 'terminated', blob_sha256 = NULL WHERE id = 'a'`,
				`UPDATE blobs SET refs = refs - 1 WHERE sha256 = '` + sha + `'`,
				`DELETE FROM blobs WHERE sha256 = '` + sha + `' AND refs = 0`,
			} {
				if tag, err := tx.Exec(ctx, sql); err != nil || tag.RowsAffected() != 1 {
					t.Fatalf("%s: %v, %d rows", sql, err, tag.RowsAffected())
				}
			}

			done := make(chan error, 1)
			go func() { done <- tt.other(ctx, c) }()
			waitForLockWait(t, holder, app, done)
			if err := tx.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-done:
				tt.check(t, c, err)
			case <-time.After(10 * time.Second):
				t.Fatal("the call did not return after the release committed")
			}
		})
	}
}

// waitForLockWait returns once a connection named app waits on a lock.
func waitForLockWait(t *testing.T, conn *pgx.Conn, app string, done <-chan error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var waiting int
		err := conn.QueryRow(t.Context(), `
			SELECT count(*) FROM pg_stat_activity
			WHERE application_name = $1 AND wait_event_type = 'Lock'`, app).Scan(&waiting)
		if err != nil {
			t.Fatal(err)
		}
		if waiting > 0 {
			return
		}
		select {
		case err := <-done:
			t.Fatalf("the call returned (%v) without waiting for the release", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	t.Fatal("the call never waited for the release")
}
