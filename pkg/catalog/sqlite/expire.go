package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/intake-dev/intake/pkg/catalog"
	"github.com/intake-dev/intake/pkg/catalog/internal/rule"
)

// ListExpired returns receiving sessions idle since before cutoff, least
// recently changed first: a range of uploads_state_updated_at_idx.
func (c *Catalog) ListExpired(ctx context.Context, cutoff time.Time, limit int) ([]catalog.Session, error) {
	if err := rule.ExpiredLimit(limit); err != nil {
		return nil, err
	}
	rows, err := c.read.QueryContext(ctx, `
		SELECT `+listColumns+` FROM uploads
		WHERE state = 'receiving' AND updated_at < ?
		ORDER BY updated_at, id
		LIMIT ?`, toDB(rule.Timestamp(cutoff)), limit)
	if err != nil {
		return nil, dbError("listing expired upload sessions", err)
	}
	defer rows.Close()
	var out []catalog.Session
	for rows.Next() {
		s, err := scanSession(rows)
		if err != nil {
			return nil, dbError("listing expired upload sessions", err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError("listing expired upload sessions", err)
	}
	return out, nil
}

// Expire moves the session to expired, with its event, if it is still
// receiving and idle since before cutoff: the UPDATE's WHERE, checked in
// the writer's transaction, which no other write interleaves with.
func (c *Catalog) Expire(ctx context.Context, id string, cutoff time.Time) (bool, error) {
	if !rule.StorableID(id) {
		return false, catalog.ErrNotFound
	}
	var expired bool
	err := c.inTx(ctx, func(tx *sql.Tx) error {
		s, err := scanSession(tx.QueryRowContext(ctx, `
			UPDATE uploads SET state = 'expired', updated_at = `+bump+`
			WHERE id = ?1 AND state = 'receiving' AND updated_at < ?2
			RETURNING `+columns, id, toDB(rule.Timestamp(cutoff)), c.clock()))
		if errors.Is(err, sql.ErrNoRows) {
			// Sessions are never deleted: one that exists lost the race.
			return tx.QueryRowContext(ctx, `SELECT id FROM uploads WHERE id = ?`, id).Scan(new(string))
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

// Known looks ids up a batch per statement on the readers.
func (c *Catalog) Known(ctx context.Context, ids []string) (map[string]bool, error) {
	known := map[string]bool{}
	for _, batch := range rule.KnownBatches(ids) {
		args := make([]any, len(batch))
		for i, id := range batch {
			args[i] = id
		}
		placeholders := strings.Repeat(", ?", len(batch))[2:]
		rows, err := c.read.QueryContext(ctx, `SELECT id FROM uploads WHERE id IN (`+placeholders+`)`, args...)
		if err != nil {
			return nil, dbError("looking up upload sessions", err)
		}
		err = func() error {
			defer rows.Close()
			for rows.Next() {
				var id string
				if err := rows.Scan(&id); err != nil {
					return err
				}
				known[id] = true
			}
			return rows.Err()
		}()
		if err != nil {
			return nil, dbError("looking up upload sessions", err)
		}
	}
	return known, nil
}
