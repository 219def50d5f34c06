package sqlite

import (
	"context"
	"fmt"

	"github.com/intake-dev/intake/pkg/catalog"
	"github.com/intake-dev/intake/pkg/catalog/internal/migrate"
)

const createMigrationsTable = `
	CREATE TABLE IF NOT EXISTS intake_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT    NOT NULL,
		applied_at INTEGER NOT NULL -- microseconds since the Unix epoch, UTC
	) STRICT`

// MigrateUp applies every pending migration, each in its own IMMEDIATE
// transaction with its version row. Each transaction checks the version row
// again after taking the write lock, so two processes migrating the same
// file at once never apply a migration twice.
func (c *Catalog) MigrateUp(ctx context.Context) ([]catalog.Migration, error) {
	applied, err := c.applied(ctx)
	if err != nil {
		return nil, err
	}
	var done []catalog.Migration
	for _, step := range migrate.Pending(c.steps, applied) {
		m, ran, err := c.run(ctx, step, true)
		if err != nil {
			return done, err
		}
		if ran {
			done = append(done, m)
		}
	}
	return done, nil
}

// MigrateDown rolls back the steps latest migrations, newest first.
func (c *Catalog) MigrateDown(ctx context.Context, steps int) ([]catalog.Migration, error) {
	if steps < 1 {
		return nil, fmt.Errorf("%w: steps to roll back must be positive, got %d", catalog.ErrInvalid, steps)
	}
	applied, err := c.applied(ctx)
	if err != nil {
		return nil, err
	}
	plan, err := migrate.Rollback(c.steps, applied, steps)
	if err != nil {
		return nil, err
	}
	var done []catalog.Migration
	for _, step := range plan {
		m, ran, err := c.run(ctx, step, false)
		if err != nil {
			return done, err
		}
		if ran {
			done = append(done, m)
		}
	}
	return done, nil
}

// MigrationStatus lists known and applied migrations without writing.
func (c *Catalog) MigrationStatus(ctx context.Context) ([]catalog.Migration, error) {
	applied, err := c.applied(ctx)
	if err != nil {
		return nil, err
	}
	return migrate.Status(c.steps, applied), nil
}

// applied reads the bookkeeping table, if there is one yet.
func (c *Catalog) applied(ctx context.Context) ([]catalog.Migration, error) {
	var exists bool
	err := c.read.QueryRowContext(ctx,
		`SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'intake_migrations')`).Scan(&exists)
	if err != nil {
		return nil, wrap("reading migrations", err)
	}
	if !exists {
		return nil, nil
	}
	rows, err := c.read.QueryContext(ctx, `SELECT version, name, applied_at FROM intake_migrations ORDER BY version`)
	if err != nil {
		return nil, wrap("reading migrations", err)
	}
	defer rows.Close()
	var out []catalog.Migration
	for rows.Next() {
		var (
			m  catalog.Migration
			at int64
		)
		if err := rows.Scan(&m.Version, &m.Name, &at); err != nil {
			return nil, wrap("reading migrations", err)
		}
		t := fromDB(at)
		m.AppliedAt = &t
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap("reading migrations", err)
	}
	return out, nil
}

// run applies one direction of a step in a single transaction, unless the
// version row shows another process got there first (ran is then false).
func (c *Catalog) run(ctx context.Context, step migrate.Step, up bool) (m catalog.Migration, ran bool, err error) {
	m = step.Migration()
	dir, script := "down", step.Down
	if up {
		dir, script = "up", step.Up
	}
	tx, err := c.write.BeginTx(ctx, nil) // BEGIN IMMEDIATE: see _txlock in Open
	if err != nil {
		return m, false, wrap("starting migration", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if _, err := tx.ExecContext(ctx, createMigrationsTable); err != nil {
		return m, false, wrap("creating migrations table", err)
	}
	var present bool
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM intake_migrations WHERE version = ?)`, step.Version).Scan(&present); err != nil {
		return m, false, wrap("reading migrations", err)
	}
	if present == up { // applied already (up), or rolled back already (down)
		return m, false, tx.Rollback()
	}
	if _, err := tx.ExecContext(ctx, script); err != nil {
		return m, false, fmt.Errorf("error running migration %04d_%s %s: %w", step.Version, step.Name, dir, err)
	}
	if up {
		now := c.clock()
		if _, err := tx.ExecContext(ctx, `INSERT INTO intake_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
			step.Version, step.Name, now); err != nil {
			return m, false, wrap("recording migration", err)
		}
		at := fromDB(now)
		m.AppliedAt = &at
	} else if _, err := tx.ExecContext(ctx, `DELETE FROM intake_migrations WHERE version = ?`, step.Version); err != nil {
		return m, false, wrap("recording migration", err)
	}
	if err := tx.Commit(); err != nil {
		return m, false, wrap("committing migration", err)
	}
	return m, true, nil
}
