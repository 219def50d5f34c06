package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/intake-dev/intake/pkg/catalog"
	"github.com/intake-dev/intake/pkg/catalog/internal/rule"
)

const eventColumns = `id, type, upload_id, occurred_at, payload, attempts, next_attempt_at,
	last_error, delivered_at, dead_at`

func scanEvent(row scanner) (catalog.Event, error) {
	var (
		e               catalog.Event
		payload         string
		occurred, next  int64
		delivered, dead sql.NullInt64
	)
	err := row.Scan(&e.ID, &e.Type, &e.UploadID, &occurred, &payload, &e.Attempts, &next,
		&e.LastError, &delivered, &dead)
	if err != nil {
		return catalog.Event{}, err
	}
	e.Payload = []byte(payload)
	e.OccurredAt, e.NextAttemptAt = fromDB(occurred), fromDB(next)
	if delivered.Valid {
		t := fromDB(delivered.Int64)
		e.DeliveredAt = &t
	}
	if dead.Valid {
		t := fromDB(dead.Int64)
		e.DeadAt = &t
	}
	rule.LoadedEvent(&e)
	return e, nil
}

func collectEvents(rows *sql.Rows) ([]catalog.Event, error) {
	defer rows.Close()
	var out []catalog.Event
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// writeEvent inserts the event typ for a transition that left the session
// as s (returned by the transition's own statement), in its transaction.
func writeEvent(ctx context.Context, tx *sql.Tx, typ string, s catalog.Session, blobStorage map[string]string) error {
	e, err := rule.NewEvent(typ, s, blobStorage)
	if err != nil {
		return err
	}
	// The payload goes in as text: a STRICT TEXT column refuses a blob.
	_, err = tx.ExecContext(ctx, `
		INSERT INTO events (id, type, upload_id, occurred_at, payload, next_attempt_at)
		VALUES (?, ?, ?, ?, ?, ?)`,
		e.ID, e.Type, e.UploadID, toDB(e.OccurredAt), string(e.Payload), toDB(e.NextAttemptAt))
	return err
}

// ClaimEvents leases the oldest due events in one IMMEDIATE transaction
// on the writer, so claims are serialized with each other and with every
// other write, in this process and in any other on the file.
func (c *Catalog) ClaimEvents(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]catalog.Event, error) {
	until, err := rule.Claim(now, limit, lease)
	if err != nil {
		return nil, err
	}
	var events []catalog.Event
	err = c.inTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `
			UPDATE events SET next_attempt_at = ?2
			WHERE id IN (
				SELECT id FROM events
				WHERE delivered_at IS NULL AND dead_at IS NULL AND next_attempt_at <= ?1
				ORDER BY occurred_at, id
				LIMIT ?3)
			RETURNING `+eventColumns, toDB(rule.Timestamp(now)), toDB(until), limit)
		if err != nil {
			return err
		}
		events, err = collectEvents(rows)
		return err
	})
	if err != nil {
		return nil, dbError("claiming events", err)
	}
	rule.SortClaimed(events)
	return events, nil
}

// MarkDelivered records a delivery; a delivered event stays as it was.
func (c *Catalog) MarkDelivered(ctx context.Context, id string, at time.Time) error {
	return c.changeEvent(ctx, "marking event delivered", id, true, `
		UPDATE events SET delivered_at = ?2, dead_at = NULL
		WHERE id = ?1 AND delivered_at IS NULL`, toDB(rule.Timestamp(at)))
}

// MarkFailed records a failed attempt.
func (c *Catalog) MarkFailed(ctx context.Context, id string, attempts int, next time.Time, lastErr string, dead bool) error {
	if err := rule.AttemptsArg(attempts); err != nil {
		return err
	}
	return c.changeEvent(ctx, "marking event failed", id, false, `
		UPDATE events SET attempts = ?2, next_attempt_at = ?3, last_error = ?4,
			dead_at = CASE WHEN ?5 THEN coalesce(dead_at, ?6) ELSE dead_at END
		WHERE id = ?1 AND delivered_at IS NULL`,
		attempts, toDB(rule.Timestamp(next)), rule.LastError(lastErr), dead, c.clock())
}

// RetryEvent makes an undelivered event due at now, alive again.
func (c *Catalog) RetryEvent(ctx context.Context, id string, now time.Time) error {
	return c.changeEvent(ctx, "retrying event", id, false, `
		UPDATE events SET next_attempt_at = ?2, dead_at = NULL
		WHERE id = ?1 AND delivered_at IS NULL AND dead_at IS NOT NULL`, toDB(rule.Timestamp(now)))
}

// changeEvent runs an UPDATE (?1 the id, then args) of one undelivered
// event on the writer. When it matches none, the event is missing
// (ErrNotFound) or delivered: success when deliveredOK, else ErrConflict.
// Delivery is never undone, so that verdict cannot go stale; only
// PurgeEvents may delete a delivered event in between, which is then not
// found, as it is by now.
func (c *Catalog) changeEvent(ctx context.Context, action, id string, deliveredOK bool, query string, args ...any) error {
	if !rule.StorableID(id) {
		return catalog.ErrNotFound
	}
	res, err := c.write.ExecContext(ctx, query, append([]any{id}, args...)...)
	if err != nil {
		return dbError(action, err)
	}
	if n, err := res.RowsAffected(); err != nil || n > 0 {
		return dbError(action, err)
	}
	var exists bool
	if err := c.read.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM events WHERE id = ?)`, id).Scan(&exists); err != nil {
		return dbError(action, err)
	}
	return rule.EventFound(exists, deliveredOK)
}

// ListEvents lists events newest first.
func (c *Catalog) ListEvents(ctx context.Context, f catalog.EventFilter) ([]catalog.Event, error) {
	limit, err := rule.EventLimit(f)
	if err != nil {
		return nil, err
	}
	query := `SELECT ` + eventColumns + ` FROM events`
	switch {
	case f.Failed:
		query += ` WHERE dead_at IS NOT NULL`
	case f.Pending:
		query += ` WHERE delivered_at IS NULL AND dead_at IS NULL`
	}
	rows, err := c.read.QueryContext(ctx, query+` ORDER BY occurred_at DESC, id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, dbError("listing events", err)
	}
	events, err := collectEvents(rows)
	if err != nil {
		return nil, dbError("listing events", err)
	}
	return events, nil
}

// PurgeEvents deletes delivered events, oldest delivery first, a batch per
// statement (each its own transaction on the writer) until a batch comes
// up short, so that PATCHes' offset updates queue behind one batch at
// most, never behind the whole purge.
func (c *Catalog) PurgeEvents(ctx context.Context, cutoff time.Time) (int64, error) {
	cut := toDB(rule.Timestamp(cutoff))
	var purged int64
	for {
		res, err := c.write.ExecContext(ctx, `
			DELETE FROM events WHERE id IN (
				SELECT id FROM events
				WHERE delivered_at < ?
				ORDER BY delivered_at
				LIMIT ?)`, cut, rule.PurgeBatch)
		if err != nil {
			return purged, dbError("purging events", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return purged, dbError("purging events", err)
		}
		purged += n
		if n < rule.PurgeBatch {
			return purged, nil
		}
	}
}
