package catalogtest

import (
	"errors"
	"testing"

	"github.com/intake-dev/intake/pkg/catalog"
)

// The fixtures below are for each backend's own migration tests, which
// roll its schema back under data written through the catalog and migrate
// it up again: the data is written, and checked afterwards, through
// catalog.Catalog only.

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
