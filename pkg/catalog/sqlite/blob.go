package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/intake-dev/intake/pkg/catalog"
	"github.com/intake-dev/intake/pkg/catalog/internal/rule"
)

// The blob methods each run in one IMMEDIATE transaction on the writer, so
// they are serialized with every other write: what a transaction reads
// stays true until it commits. The statements still mirror the PostgreSQL
// catalog's, which cannot rely on that, and the foreign key from
// uploads.blob_sha256 backs them up. Each transition writes its outbox
// event last, in its transaction, from the session row its UPDATE or
// INSERT returned.

const blobColumns = `sha256, size, upload_id, storage, refs, created_at, coalesce(content_type, '')`

func scanBlob(row scanner) (catalog.Blob, error) {
	var (
		b       catalog.Blob
		storage string
		created int64
	)
	if err := row.Scan(&b.SHA256, &b.Size, &b.UploadID, &storage, &b.Refs, &created, &b.ContentType); err != nil {
		return catalog.Blob{}, err
	}
	if err := json.Unmarshal([]byte(storage), &b.Storage); err != nil {
		return catalog.Blob{}, fmt.Errorf("error decoding stored blob %s: %w", b.SHA256, err)
	}
	b.CreatedAt = fromDB(created)
	rule.LoadedBlob(&b)
	return b, nil
}

// inTx runs fn in a transaction on the writer (BEGIN IMMEDIATE: see
// _txlock in Open), committing when it returns nil.
func (c *Catalog) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := c.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

func currentIn(ctx context.Context, tx *sql.Tx, id string) (rule.Current, error) {
	return scanCurrent(tx.QueryRowContext(ctx, `SELECT `+currentColumns+` FROM uploads WHERE id = ?`, id))
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
	err = c.inTx(ctx, func(tx *sql.Tx) error {
		cur, err := currentIn(ctx, tx, id)
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
				if _, err := tx.ExecContext(ctx, `
					UPDATE uploads SET content_type = ?2, updated_at = `+bump+` WHERE id = ?1`,
					id, contentType, c.clock()); err != nil {
					return err
				}
			}
			if contentType != "" {
				if _, err := tx.ExecContext(ctx, `UPDATE blobs SET content_type = ?2 WHERE sha256 = ?1 AND content_type IS NOT ?2`,
					cur.Blob, contentType); err != nil {
					return err
				}
			}
			blob, err = scanBlob(tx.QueryRowContext(ctx, `SELECT `+blobColumns+` FROM blobs WHERE sha256 = ?`, cur.Blob))
			if errors.Is(err, sql.ErrNoRows) {
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
		// with the blob's if it has none. (The WHERE also keeps SQLite
		// from reading ON CONFLICT as a join constraint.)
		clock, ct := c.clock(), nullString(contentType)
		blob, err = scanBlob(tx.QueryRowContext(ctx, `
			INSERT INTO blobs (sha256, size, upload_id, storage, refs, created_at, content_type)
			SELECT ?1, ?2, id, storage, 1, ?4, coalesce(?5, content_type) FROM uploads WHERE id = ?3
			ON CONFLICT (sha256) DO UPDATE SET refs = refs + 1,
				content_type = coalesce(content_type, excluded.content_type)
				WHERE size = excluded.size
			RETURNING `+blobColumns, sha256, size, id, clock, ct))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: the stored content with this digest has another size", catalog.ErrConflict)
		}
		if err != nil {
			return err
		}
		existed = blob.UploadID != id
		s, err := scanSession(tx.QueryRowContext(ctx, `
			UPDATE uploads SET state = 'complete', committed_offset = ?2, sha256 = ?4, blob_sha256 = ?4,
				content_type = coalesce(?6, content_type, ?5),
				updated_at = `+bump+`, completed_at = coalesce(completed_at, `+bump+`)
			WHERE id = ?1 RETURNING `+columns, id, size, clock, sha256, nullString(blob.ContentType), ct))
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
	err = c.inTx(ctx, func(tx *sql.Tx) error {
		blob, err := scanBlob(tx.QueryRowContext(ctx, `UPDATE blobs SET refs = refs + 1 WHERE sha256 = ? RETURNING `+blobColumns, sha256))
		if err != nil {
			return err // no rows: ErrNotFound
		}
		if blob.Size != *s.Size {
			return fmt.Errorf("%w: the stored content is %d bytes, not %d", catalog.ErrConflict, blob.Size, *s.Size)
		}
		s.ContentType = blob.ContentType
		args, err := c.insertArgs(s)
		if err != nil {
			return err
		}
		created, err := scanSession(tx.QueryRowContext(ctx, insertSession+` RETURNING `+columns, args...))
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
	err = c.inTx(ctx, func(tx *sql.Tx) error {
		cur, err := currentIn(ctx, tx, id)
		if err != nil {
			return err
		}
		if apply, err := rule.LetGo(cur, state); !apply {
			return err
		}
		// The session lets go first: the foreign key checks the delete.
		s, err := scanSession(tx.QueryRowContext(ctx, `
			UPDATE uploads SET state = ?2, blob_sha256 = NULL, updated_at = `+bump+`
			WHERE id = ?1 RETURNING `+columns, id, string(state), c.clock()))
		if err != nil {
			return err
		}
		if err := writeEvent(ctx, tx, typ, s, nil); err != nil {
			return err
		}
		if cur.Blob == "" {
			return nil
		}
		blob, err = scanBlob(tx.QueryRowContext(ctx,
			`UPDATE blobs SET refs = refs - 1 WHERE sha256 = ? RETURNING `+blobColumns, cur.Blob))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("session %s references a missing blob", id) // the foreign key forbids it
		}
		if err != nil || blob.Refs > 0 {
			return err
		}
		last = true
		_, err = tx.ExecContext(ctx, `DELETE FROM blobs WHERE sha256 = ?`, cur.Blob)
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
	b, err := scanBlob(c.read.QueryRowContext(ctx, `SELECT `+blobColumns+` FROM blobs WHERE sha256 = ?`, sha256))
	if err != nil {
		return catalog.Blob{}, dbError("getting blob", err)
	}
	return b, nil
}

// FindBlob returns the blob with the digest if owner may know of it.
func (c *Catalog) FindBlob(ctx context.Context, sha256, owner string, global bool) (catalog.Blob, error) {
	if err := rule.DigestArg(sha256); err != nil {
		return catalog.Blob{}, err
	}
	var row *sql.Row
	switch {
	case global:
		row = c.read.QueryRowContext(ctx, `SELECT `+blobColumns+` FROM blobs WHERE sha256 = ?`, sha256)
	case !rule.Storable(owner):
		return catalog.Blob{}, catalog.ErrNotFound // no session has that owner
	default:
		row = c.read.QueryRowContext(ctx, `
			SELECT `+blobColumns+` FROM blobs
			WHERE sha256 = ?1 AND EXISTS (
				SELECT 1 FROM uploads
				WHERE blob_sha256 = ?1 AND owner = ?2 AND state = 'complete')`, sha256, owner)
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
	if err := c.read.QueryRowContext(ctx, `
		SELECT COALESCE(SUM(CASE
			WHEN state = 'complete' THEN size
			WHEN state = 'receiving' THEN COALESCE(size, committed_offset)
			ELSE 0 END), 0)
		FROM uploads WHERE owner = ?`, owner).Scan(&used); err != nil {
		return 0, dbError("summing owner usage", err)
	}
	return used, nil
}
