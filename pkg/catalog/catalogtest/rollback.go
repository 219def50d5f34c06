package catalogtest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/intake-dev/intake/pkg/catalog"
)

// The rollback checks below roll a backend's schema back under data
// written through the catalog and migrate it up again. The data is
// written, and checked afterwards, through catalog.Catalog; only what the
// rolled back schema holds in between is read through Raw, since no
// catalog method works on it.

// MigratingCatalog is a catalog that owns its schema.
type MigratingCatalog interface {
	catalog.Catalog
	catalog.Migrator
}

// Raw reaches below the catalog into its database. The SQL it is given
// spells its values out, without placeholders, so that it runs on every
// backend.
type Raw struct {
	// TableExists reports whether the database has the table name.
	TableExists func(t *testing.T, name string) bool
	// QueryRow runs query and scans its one row into dest.
	QueryRow func(ctx context.Context, query string, dest ...any) error
	// Exec runs statement.
	Exec func(ctx context.Context, statement string) error
}

// MigrateDownBlobsWithData checks that rolling back 0002 keeps every
// session and drops what it added, with blobs, references and hash states
// in place. c must be empty and migrated.
func MigrateDownBlobsWithData(t *testing.T, c MigratingCatalog, raw Raw) {
	ctx := t.Context()
	FillBlobs(t, c)
	migrateDownTo(t, c, 1)
	if raw.TableExists(t, "blobs") {
		t.Error("blobs still exists")
	}
	var n int
	if err := raw.QueryRow(ctx, `SELECT count(*) FROM uploads`, &n); err != nil || n != 3 {
		t.Errorf("uploads after rolling back = %d, %v; want 3", n, err)
	}
	if _, err := c.MigrateUp(ctx); err != nil {
		t.Fatalf("MigrateUp again = %v", err)
	}
	CheckBlobsRolledBack(t, c)
}

// MigrateDownEventsWithData checks that rolling back 0003 keeps every
// session, rejected ones as failed, and drops the outbox and the content
// types; migrating up again works. c must be empty and migrated.
func MigrateDownEventsWithData(t *testing.T, c MigratingCatalog, raw Raw) {
	ctx := t.Context()
	FillEvents(t, c)
	migrateDownTo(t, c, 2)
	if raw.TableExists(t, "events") {
		t.Error("events still exists")
	}
	var state string
	if err := raw.QueryRow(ctx, `SELECT state FROM uploads WHERE id = 'r'`, &state); err != nil || state != "failed" {
		t.Errorf("rejected session after rolling back: %q, %v; want failed", state, err)
	}
	if _, err := c.MigrateUp(ctx); err != nil {
		t.Fatalf("MigrateUp again = %v", err)
	}
	CheckEventsRolledBack(t, c)
}

// MigrateDownExpiredWithData checks that rolling back 0004 keeps every
// session, expired ones as terminated, and their upload.expired events;
// the old schema refuses the state again. Migrating up again works. c must
// be empty and migrated, with 0004 its newest migration.
func MigrateDownExpiredWithData(t *testing.T, c MigratingCatalog, raw Raw) {
	ctx := t.Context()
	idle := time.Now().Add(-2 * time.Hour)
	for _, id := range []string{"x", "r"} {
		if err := c.Create(ctx, catalog.Session{ID: id, Size: new(int64(3)), CreatedAt: idle, UpdatedAt: idle}); err != nil {
			t.Fatal(err)
		}
	}
	if ok, err := c.Expire(ctx, "x", time.Now().Add(-time.Hour)); err != nil || !ok {
		t.Fatalf("Expire = %v, %v", ok, err)
	}
	expiredAt, err := c.Get(ctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.MigrateDown(ctx, 1); err != nil {
		t.Fatalf("MigrateDown(1) = %v", err)
	}
	var state string
	if err := raw.QueryRow(ctx, `SELECT state FROM uploads WHERE id = 'x'`, &state); err != nil || state != "terminated" {
		t.Errorf("expired session after rolling back: %q, %v; want terminated", state, err)
	}
	if err := raw.Exec(ctx, `UPDATE uploads SET state = 'expired' WHERE id = 'r'`); err == nil {
		t.Error("the rolled back schema accepts the expired state")
	}
	if _, err := c.MigrateUp(ctx); err != nil {
		t.Fatalf("MigrateUp again = %v", err)
	}
	x, err := c.Get(ctx, "x")
	if err != nil || x.State != catalog.StateTerminated || !x.UpdatedAt.Equal(expiredAt.UpdatedAt) || x.Offset != 0 {
		t.Errorf("Get(x) = %+v, %v; want terminated, as expired otherwise", x, err)
	}
	events, err := c.ListEvents(ctx, catalog.EventFilter{})
	if err != nil || len(events) != 3 || events[0].Type != catalog.EventExpired || events[0].UploadID != "x" {
		t.Errorf("ListEvents = %d, %v; want the creations and x's upload.expired, newest first", len(events), err)
	}
	if ok, err := c.Expire(ctx, "r", time.Now().Add(-time.Hour)); err != nil || !ok {
		t.Errorf("Expire(r) on the schema migrated again = %v, %v; want true", ok, err)
	}
}

// migrateDownTo rolls c back until version is the newest migration applied.
func migrateDownTo(t *testing.T, c MigratingCatalog, version int) {
	t.Helper()
	ctx := t.Context()
	status, err := c.MigrationStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	steps := 0
	for _, m := range status {
		if m.Version > version && m.AppliedAt != nil {
			steps++
		}
	}
	if _, err := c.MigrateDown(ctx, steps); err != nil {
		t.Fatalf("MigrateDown to %04d = %v", version, err)
	}
}

// RollbackDigest is the digest of the blob FillBlobs and FillEvents store.
const RollbackDigest = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

// FillBlobs stores two sessions, "a" and "b", on one blob and one, "c",
// with a hash state.
func FillBlobs(t *testing.T, c catalog.Catalog) {
	t.Helper()
	ctx := t.Context()
	for _, id := range []string{"a", "b", "c"} {
		if err := c.Create(ctx, catalog.Session{ID: id, Size: new(int64(3))}); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"a", "b"} {
		if _, _, err := c.Finalize(ctx, id, 3, RollbackDigest, ""); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.CommitOffset(ctx, "c", 2, []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
}

// CheckBlobsRolledBack checks FillBlobs' sessions after a rollback of 0002
// and a migration up again: kept, without what 0002 added.
func CheckBlobsRolledBack(t *testing.T, c catalog.Catalog) {
	t.Helper()
	for _, id := range []string{"a", "b", "c"} {
		s, err := c.Get(t.Context(), id)
		if err != nil {
			t.Fatalf("Get(%s) = %v", id, err)
		}
		if s.HashState != nil || s.HashOffset != 0 || s.SHA256 != "" || s.BlobSHA256 != "" {
			t.Errorf("session %s = %+v; want no digest fields", id, s)
		}
	}
	if _, err := c.GetBlob(t.Context(), RollbackDigest); !errors.Is(err, catalog.ErrNotFound) {
		t.Errorf("GetBlob = %v; want ErrNotFound", err)
	}
}

// FillEvents leaves sessions with content types, a blob with one, a
// rejected session and their events: "a" complete on the blob, "r"
// rejected.
func FillEvents(t *testing.T, c catalog.Catalog) {
	t.Helper()
	ctx := t.Context()
	for _, id := range []string{"a", "r"} {
		if err := c.Create(ctx, catalog.Session{ID: id, Size: new(int64(3)), Offset: 3}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.Finalize(ctx, id, 3, RollbackDigest, "image/png"); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := c.Reject(ctx, "r"); err != nil {
		t.Fatal(err)
	}
}

// CheckEventsRolledBack checks FillEvents' data after a rollback of 0003
// and a migration up again.
func CheckEventsRolledBack(t *testing.T, c catalog.Catalog) {
	t.Helper()
	ctx := t.Context()
	a, err := c.Get(ctx, "a")
	if err != nil || a.State != catalog.StateComplete || a.BlobSHA256 != RollbackDigest || a.ContentType != "" {
		t.Errorf("Get(a) = %+v, %v; want complete on its blob, without a content type", a, err)
	}
	if b, err := c.GetBlob(ctx, RollbackDigest); err != nil || b.Refs != 1 || b.ContentType != "" {
		t.Errorf("GetBlob = %+v, %v; want 1 reference, no content type", b, err)
	}
	if r, err := c.Get(ctx, "r"); err != nil || r.State != catalog.StateFailed {
		t.Errorf("Get(r) = %+v, %v; want failed", r, err)
	}
	if events, err := c.ListEvents(ctx, catalog.EventFilter{}); err != nil || len(events) != 0 {
		t.Errorf("ListEvents = %d, %v; want none", len(events), err)
	}
	// And the catalog works on the new schema.
	if _, _, err := c.Release(ctx, "a"); err != nil {
		t.Errorf("Release(a) = %v", err)
	}
	if _, err := c.GetBlob(ctx, RollbackDigest); !errors.Is(err, catalog.ErrNotFound) {
		t.Errorf("GetBlob after the last release = %v; want ErrNotFound", err)
	}
}
