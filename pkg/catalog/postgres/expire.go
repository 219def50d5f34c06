package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/intake-dev/intake/pkg/catalog"
	"github.com/intake-dev/intake/pkg/catalog/internal/rule"
)

// ListExpired returns receiving sessions idle since before cutoff, least
// recently changed first: a range of uploads_state_updated_at_idx.
func (c *Catalog) ListExpired(ctx context.Context, cutoff time.Time, limit int) ([]catalog.Session, error) {
	if err := rule.ExpiredLimit(limit); err != nil {
		return nil, err
	}
	rows, err := c.pool.Query(ctx, `
		SELECT `+listColumns+` FROM uploads
		WHERE state = 'receiving' AND updated_at < $1
		ORDER BY updated_at, id
		LIMIT $2`, rule.Timestamp(cutoff), limit)
	if err != nil {
		return nil, dbError("listing expired upload sessions", err)
	}
	sessions, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (catalog.Session, error) {
		return scanSession(row)
	})
	if err != nil {
		return nil, dbError("listing expired upload sessions", err)
	}
	return sessions, nil
}

// Expire moves the session to expired, with its event, if it is still
// receiving and idle since before cutoff. The condition is the UPDATE's
// WHERE: a CommitOffset holding the row makes the UPDATE wait, then
// re-check the condition on the row it left (READ COMMITTED), so a PATCH
// committed first always wins.
func (c *Catalog) Expire(ctx context.Context, id string, cutoff time.Time) (bool, error) {
	if !rule.StorableID(id) {
		return false, catalog.ErrNotFound
	}
	var expired bool
	err := pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		s, err := scanSession(tx.QueryRow(ctx, `
			UPDATE uploads SET state = 'expired', updated_at = `+bump+`
			WHERE id = $1 AND state = 'receiving' AND updated_at < $2
			RETURNING `+columns, id, rule.Timestamp(cutoff)))
		if errors.Is(err, pgx.ErrNoRows) {
			// Sessions are never deleted: one that exists lost the race.
			return tx.QueryRow(ctx, `SELECT id FROM uploads WHERE id = $1`, id).Scan(new(string))
		}
		if err != nil {
			return err
		}
		// A receiving session never references a blob: nothing to drop.
		if err := writeEvent(ctx, tx, catalog.EventExpired, s, nil); err != nil {
			return err
		}
		expired = true
		return nil
	})
	if err != nil {
		return false, dbError("expiring upload session", err)
	}
	return expired, nil
}

// Known looks ids up a batch per statement, each batch one array
// parameter.
func (c *Catalog) Known(ctx context.Context, ids []string) (map[string]bool, error) {
	known := map[string]bool{}
	for _, batch := range rule.KnownBatches(ids) {
		rows, err := c.pool.Query(ctx, `SELECT id FROM uploads WHERE id = ANY($1::text[])`, batch)
		if err != nil {
			return nil, dbError("looking up upload sessions", err)
		}
		found, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return nil, dbError("looking up upload sessions", err)
		}
		for _, id := range found {
			known[id] = true
		}
	}
	return known, nil
}
