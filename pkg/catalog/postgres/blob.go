package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/intake-dev/intake/pkg/catalog"
	"github.com/intake-dev/intake/pkg/catalog/internal/rule"
)

// The blob methods run in READ COMMITTED transactions that lock the
// session row first (FOR UPDATE, or by inserting it), then the blob row (by
// changing it), always in that order, so they never deadlock each other:
// two calls on one session queue on the session, calls on one blob queue
// on the blob.
//
// The blob row is only ever changed by single statements that re-check it
// under its lock: Finalize's INSERT ... ON CONFLICT DO UPDATE either
// inserts or increments, and when the row it conflicted with is deleted
// meanwhile by the Release of its last reference, PostgreSQL retries the
// insert, so the blob is created anew from the finalizing session's own
// object. CreateDeduped's UPDATE finds no row in that case (ErrNotFound).
// The foreign key from uploads.blob_sha256 backs all of this up.
//
// Each transition writes its outbox event last, in its transaction, from
// the session row its UPDATE or INSERT returned.

// lockSession reads the session's current state, locking its row until
// the transaction ends.
func lockSession(ctx context.Context, tx pgx.Tx, id string) (rule.Current, error) {
	return scanCurrent(tx.QueryRow(ctx, `SELECT `+currentColumns+` FROM uploads WHERE id = $1 FOR UPDATE`, id))
}

// Finalize records the content type and completes the session and links it
// to the blob of its digest.
func (c *Catalog) Finalize(ctx context.Context, id string, size int64, sha256, contentType string) (blob catalog.Blob, existed bool, err error) {
	if !rule.StorableID(id) {
		return catalog.Blob{}, false, catalog.ErrNotFound
	}
	if contentType != "" {
		if err := rule.ContentTypeArg(contentType); err != nil {
			return catalog.Blob{}, false, err
		}
	}
	if err := rule.LengthArg(size); err != nil {
		return catalog.Blob{}, false, err
	}
	if err := rule.DigestArg(sha256); err != nil {
		return catalog.Blob{}, false, err
	}
	err = pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		cur, err := lockSession(ctx, tx, id)
		if err != nil {
			return err
		}
		retype := false
		if contentType != "" {
			if retype, err = rule.ContentType(cur, contentType); err != nil {
				return err
			}
		}
		link, err := rule.Finalize(cur, size, sha256)
		if err != nil {
			return err
		}
		if !link { // finalized before: report, change only the content type
			if retype {
				if _, err := tx.Exec(ctx, `UPDATE uploads SET content_type = $2, updated_at = `+bump+` WHERE id = $1`,
					id, contentType); err != nil {
					return err
				}
			}
			if contentType != "" {
				if _, err := tx.Exec(ctx, `UPDATE blobs SET content_type = $2 WHERE sha256 = $1 AND content_type IS DISTINCT FROM $2`,
					cur.Blob, contentType); err != nil {
					return err
				}
			}
			blob, err = scanBlob(tx.QueryRow(ctx, `SELECT `+blobColumns+` FROM blobs WHERE sha256 = $1`, cur.Blob))
			if errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("complete session %s has no blob row", id) // the foreign key forbids it
			}
			existed = blob.UploadID != id
			return err
		}
		// An inserted row names this upload. A conflicting one names
		// another: this session was not complete with a digest, so it
		// never created a blob. Either way the blob ends up with a
		// content type if the session has one (the given type, which
		// replaces the stored one, else the stored one), and the session
		// with the blob's if it has none.
		ct := nullString(contentType)
		blob, err = scanBlob(tx.QueryRow(ctx, `
			INSERT INTO blobs (sha256, size, upload_id, storage, refs, content_type)
			SELECT $1, $2, id, storage, 1, coalesce($4, content_type) FROM uploads WHERE id = $3
			ON CONFLICT (sha256) DO UPDATE SET refs = blobs.refs + 1,
				content_type = coalesce(blobs.content_type, excluded.content_type)
				WHERE blobs.size = excluded.size
			RETURNING `+blobColumns, sha256, size, id, ct))
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("%w: the stored content with this digest has another size", catalog.ErrConflict)
		}
		if err != nil {
			return err
		}
		existed = blob.UploadID != id
		s, err := scanSession(tx.QueryRow(ctx, `
			UPDATE uploads SET state = 'complete', committed_offset = $2, sha256 = $3, blob_sha256 = $3,
				content_type = coalesce($5, content_type, $4),
				updated_at = `+bump+`, completed_at = coalesce(completed_at, `+bump+`)
			WHERE id = $1 RETURNING `+columns, id, size, sha256, nullString(blob.ContentType), ct))
		if err != nil {
			return err
		}
		return writeEvent(ctx, tx, catalog.EventCompleted, s, blob.Storage)
	})
	if err != nil {
		return catalog.Blob{}, false, dbError("finalizing upload session", err)
	}
	return blob, existed, nil
}

// CreateDeduped inserts a complete session on an existing blob.
func (c *Catalog) CreateDeduped(ctx context.Context, s catalog.Session, sha256 string) error {
	s, err := rule.CreateDeduped(s, sha256)
	if err != nil {
		return err
	}
	err = pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		blob, err := scanBlob(tx.QueryRow(ctx, `UPDATE blobs SET refs = refs + 1 WHERE sha256 = $1 RETURNING `+blobColumns, sha256))
		if err != nil {
			return err // no rows: ErrNotFound
		}
		if blob.Size != *s.Size {
			return fmt.Errorf("%w: the stored content is %d bytes, not %d", catalog.ErrConflict, blob.Size, *s.Size)
		}
		s.ContentType = blob.ContentType
		created, err := scanSession(tx.QueryRow(ctx, insertSession+` RETURNING `+columns, insertArgs(s)...))
		if err != nil {
			return err
		}
		return writeEvent(ctx, tx, catalog.EventCompleted, created, blob.Storage)
	})
	return dbError("inserting deduplicated upload session", err)
}

// Release terminates the session and drops its blob reference.
func (c *Catalog) Release(ctx context.Context, id string) (catalog.Blob, bool, error) {
	return c.letGo(ctx, id, catalog.StateTerminated, catalog.EventTerminated, "releasing upload session")
}

// Reject moves the session to rejected and drops its blob reference.
func (c *Catalog) Reject(ctx context.Context, id string) (catalog.Blob, bool, error) {
	return c.letGo(ctx, id, catalog.StateRejected, catalog.EventRejected, "rejecting upload session")
}

// letGo moves the session to state (terminated or rejected, as
// rule.LetGo allows), writes the event typ, and drops its blob reference,
// deleting the blob row with the last one, in one transaction: what
// Release and Reject share.
func (c *Catalog) letGo(ctx context.Context, id string, state catalog.State, typ, action string) (blob catalog.Blob, last bool, err error) {
	if !rule.StorableID(id) {
		return catalog.Blob{}, false, catalog.ErrNotFound
	}
	err = pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		cur, err := lockSession(ctx, tx, id)
		if err != nil {
			return err
		}
		if apply, err := rule.LetGo(cur, state); !apply {
			return err
		}
		// The session lets go first: the foreign key checks the delete.
		s, err := scanSession(tx.QueryRow(ctx, `
			UPDATE uploads SET state = $2, blob_sha256 = NULL, updated_at = `+bump+`
			WHERE id = $1 RETURNING `+columns, id, string(state)))
		if err != nil {
			return err
		}
		if err := writeEvent(ctx, tx, typ, s, nil); err != nil {
			return err
		}
		if cur.Blob == "" {
			return nil
		}
		blob, err = scanBlob(tx.QueryRow(ctx,
			`UPDATE blobs SET refs = refs - 1 WHERE sha256 = $1 RETURNING `+blobColumns, cur.Blob))
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("session %s references a missing blob", id) // the foreign key forbids it
		}
		if err != nil || blob.Refs > 0 {
			return err
		}
		// Still locked by the UPDATE: no reference can have come meanwhile.
		last = true
		_, err = tx.Exec(ctx, `DELETE FROM blobs WHERE sha256 = $1`, cur.Blob)
		return err
	})
	if err != nil {
		return catalog.Blob{}, false, dbError(action, err)
	}
	return blob, last, nil
}

// GetBlob returns the blob with the digest.
func (c *Catalog) GetBlob(ctx context.Context, sha256 string) (catalog.Blob, error) {
	if err := rule.DigestArg(sha256); err != nil {
		return catalog.Blob{}, err
	}
	b, err := scanBlob(c.pool.QueryRow(ctx, `SELECT `+blobColumns+` FROM blobs WHERE sha256 = $1`, sha256))
	if err != nil {
		return catalog.Blob{}, dbError("getting blob", err)
	}
	return b, nil
}

// FindBlob returns the blob with the digest if owner may know of it. The
// two scopes are two statements, so each gets its own plan.
func (c *Catalog) FindBlob(ctx context.Context, sha256, owner string, global bool) (catalog.Blob, error) {
	if err := rule.DigestArg(sha256); err != nil {
		return catalog.Blob{}, err
	}
	var row pgx.Row
	switch {
	case global:
		row = c.pool.QueryRow(ctx, `SELECT `+blobColumns+` FROM blobs WHERE sha256 = $1`, sha256)
	case !rule.Storable(owner):
		return catalog.Blob{}, catalog.ErrNotFound // no session has that owner
	default:
		row = c.pool.QueryRow(ctx, `
			SELECT `+blobColumns+` FROM blobs
			WHERE sha256 = $1 AND EXISTS (
				SELECT 1 FROM uploads
				WHERE blob_sha256 = $1 AND owner = $2 AND state = 'complete')`, sha256, owner)
	}
	b, err := scanBlob(row)
	if err != nil {
		return catalog.Blob{}, dbError("finding blob", err)
	}
	return b, nil
}

// OwnerUsage sums what owner's sessions hold or have declared.
func (c *Catalog) OwnerUsage(ctx context.Context, owner string) (int64, error) {
	if !rule.Storable(owner) {
		return 0, nil // no session has that owner
	}
	var used int64
	if err := c.pool.QueryRow(ctx, `
		SELECT COALESCE(SUM(CASE
			WHEN state = 'complete' THEN size
			WHEN state = 'receiving' THEN COALESCE(size, committed_offset)
			ELSE 0 END), 0)
		FROM uploads WHERE owner = $1`, owner).Scan(&used); err != nil {
		return 0, dbError("summing owner usage", err)
	}
	return used, nil
}
