package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/intake-dev/intake/pkg/catalog"
	"github.com/intake-dev/intake/pkg/catalog/internal/rule"
)

const eventColumns = `id, type, upload_id, occurred_at, payload, attempts, next_attempt_at,
	last_error, delivered_at, dead_at`

func scanEvent(row pgx.Row) (catalog.Event, error) {
	var e catalog.Event
	err := row.Scan(&e.ID, &e.Type, &e.UploadID, &e.OccurredAt, &e.Payload, &e.Attempts, &e.NextAttemptAt,
		&e.LastError, &e.DeliveredAt, &e.DeadAt)
	if err != nil {
		return catalog.Event{}, err
	}
	rule.LoadedEvent(&e)
	return e, nil
}

func collectEvents(rows pgx.Rows) ([]catalog.Event, error) {
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (catalog.Event, error) { return scanEvent(row) })
}

// writeEvent inserts the event typ for a transition that left the session
// as s (returned by the transition's own statement), in its transaction.
func writeEvent(ctx context.Context, tx pgx.Tx, typ string, s catalog.Session, blobStorage map[string]string) error {
	e, err := rule.NewEvent(typ, s, blobStorage)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `
		INSERT INTO events (id, type, upload_id, occurred_at, payload, next_attempt_at)
		VALUES ($1, $2, $3, $4, $5, $6)`,
		e.ID, e.Type, e.UploadID, e.OccurredAt, e.Payload, e.NextAttemptAt)
	return err
}

// ClaimEvents leases the oldest due events. One statement is one
// transaction: the CTE locks the due rows, skipping those another claim
// holds, and the UPDATE moves them out of reach before the locks go. A row
// another claim leased and committed meanwhile is re-checked under its
// lock (READ COMMITTED) and no longer due, so it is dropped, never
// returned twice.
func (c *Catalog) ClaimEvents(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]catalog.Event, error) {
	until, err := rule.Claim(now, limit, lease)
	if err != nil {
		return nil, err
	}
	rows, err := c.pool.Query(ctx, `
		WITH due AS (
			SELECT id FROM events
			WHERE delivered_at IS NULL AND dead_at IS NULL AND next_attempt_at <= $1
			ORDER BY occurred_at, id
			LIMIT $3
			FOR UPDATE SKIP LOCKED)
		UPDATE events SET next_attempt_at = $2
		WHERE id IN (SELECT id FROM due)
		RETURNING `+eventColumns, rule.Timestamp(now), until, limit)
	if err != nil {
		return nil, dbError("claiming events", err)
	}
	events, err := collectEvents(rows)
	if err != nil {
		return nil, dbError("claiming events", err)
	}
	rule.SortClaimed(events)
	return events, nil
}

// MarkDelivered records a delivery; a delivered event stays as it was.
func (c *Catalog) MarkDelivered(ctx context.Context, id string, at time.Time) error {
	return c.changeEvent(ctx, "marking event delivered", id, true, `
		UPDATE events SET delivered_at = $2, dead_at = NULL
		WHERE id = $1 AND delivered_at IS NULL`, rule.Timestamp(at))
}

// MarkFailed records a failed attempt.
func (c *Catalog) MarkFailed(ctx context.Context, id string, attempts int, next time.Time, lastErr string, dead bool) error {
	if err := rule.AttemptsArg(attempts); err != nil {
		return err
	}
	return c.changeEvent(ctx, "marking event failed", id, false, `
		UPDATE events SET attempts = $2, next_attempt_at = $3, last_error = $4,
			dead_at = CASE WHEN $5::boolean THEN coalesce(dead_at, now()) ELSE dead_at END
		WHERE id = $1 AND delivered_at IS NULL`,
		attempts, rule.Timestamp(next), rule.LastError(lastErr), dead)
}

// RetryEvent makes an undelivered event due at now, alive again.
func (c *Catalog) RetryEvent(ctx context.Context, id string, now time.Time) error {
	return c.changeEvent(ctx, "retrying event", id, false, `
		UPDATE events SET next_attempt_at = $2, dead_at = NULL
		WHERE id = $1 AND delivered_at IS NULL AND dead_at IS NOT NULL`, rule.Timestamp(now))
}

// changeEvent runs an UPDATE ($1 the id, then args) of one undelivered
// event. When it matches none, the event is missing (ErrNotFound) or
// delivered: success when deliveredOK, else ErrConflict. Delivery is never
// undone, so that verdict cannot go stale; only PurgeEvents may delete a
// delivered event in between, which is then not found, as it is by now.
func (c *Catalog) changeEvent(ctx context.Context, action, id string, deliveredOK bool, sql string, args ...any) error {
	if !rule.StorableID(id) {
		return catalog.ErrNotFound
	}
	tag, err := c.pool.Exec(ctx, sql, append([]any{id}, args...)...)
	if err != nil {
		return dbError(action, err)
	}
	if tag.RowsAffected() > 0 {
		return nil
	}
	var exists bool
	if err := c.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM events WHERE id = $1)`, id).Scan(&exists); err != nil {
		return dbError(action, err)
	}
	return rule.EventFound(exists, deliveredOK)
}

// ListEvents lists events newest first. Each filter is its own statement,
// matching one index.
func (c *Catalog) ListEvents(ctx context.Context, f catalog.EventFilter) ([]catalog.Event, error) {
	limit, err := rule.EventLimit(f)
	if err != nil {
		return nil, err
	}
	sql := `SELECT ` + eventColumns + ` FROM events`
	switch {
	case f.Failed:
		sql += ` WHERE dead_at IS NOT NULL`
	case f.Pending:
		sql += ` WHERE delivered_at IS NULL AND dead_at IS NULL`
	}
	rows, err := c.pool.Query(ctx, sql+` ORDER BY occurred_at DESC, id DESC LIMIT $1`, limit)
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
// statement (each its own transaction) until a batch comes up short. Rows
// another purger holds are skipped, so instances purging at once share
// the work instead of queueing on each other's batches.
func (c *Catalog) PurgeEvents(ctx context.Context, cutoff time.Time) (int64, error) {
	cut := rule.Timestamp(cutoff)
	var purged int64
	for {
		// = ANY(ARRAY(...)), not IN (...): the batch is collected first,
		// then deleted through the primary key; IN lets the planner hash
		// the batch and scan the whole table for it.
		tag, err := c.pool.Exec(ctx, `
			DELETE FROM events WHERE id = ANY(ARRAY(
				SELECT id FROM events
				WHERE delivered_at < $1
				ORDER BY delivered_at
				LIMIT $2
				FOR UPDATE SKIP LOCKED))`, cut, rule.PurgeBatch)
		if err != nil {
			return purged, dbError("purging events", err)
		}
		purged += tag.RowsAffected()
		if tag.RowsAffected() < rule.PurgeBatch {
			return purged, nil
		}
	}
}
