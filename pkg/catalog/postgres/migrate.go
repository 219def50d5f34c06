package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/intake-dev/intake/pkg/catalog"
	"github.com/intake-dev/intake/pkg/catalog/internal/migrate"
)

// migrationLockKey is the session-level advisory lock every intake instance
// takes around migrations ("intake" in ASCII). It is one key per database,
// not per schema: instances in different schemas of one database wait for
// each other's migrations, which is harmless.
const migrationLockKey int64 = 0x696e74616b65

const createMigrationsTable = `
	CREATE TABLE IF NOT EXISTS intake_migrations (
		version    integer     PRIMARY KEY,
		name       text        NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now()
	)`

// MigrateUp applies every pending migration, each in its own transaction
// with its version row, while holding the migration advisory lock on one
// dedicated connection. An instance that finds the lock taken waits, then
// sees the other's work and applies nothing.
func (c *Catalog) MigrateUp(ctx context.Context) ([]catalog.Migration, error) {
	var done []catalog.Migration
	err := c.withMigrationLock(ctx, func(conn *pgxpool.Conn) error {
		applied, err := appliedMigrations(ctx, conn, true)
		if err != nil {
			return err
		}
		for _, step := range migrate.Pending(c.steps, applied) {
			m, err := applyStep(ctx, conn, step, true)
			if err != nil {
				return err
			}
			done = append(done, m)
		}
		return nil
	})
	return done, err
}

// MigrateDown rolls back the steps latest migrations, newest first, under
// the same lock as MigrateUp.
func (c *Catalog) MigrateDown(ctx context.Context, steps int) ([]catalog.Migration, error) {
	if steps < 1 {
		return nil, fmt.Errorf("%w: steps to roll back must be positive, got %d", catalog.ErrInvalid, steps)
	}
	var done []catalog.Migration
	err := c.withMigrationLock(ctx, func(conn *pgxpool.Conn) error {
		applied, err := appliedMigrations(ctx, conn, false)
		if err != nil {
			return err
		}
		plan, err := migrate.Rollback(c.steps, applied, steps)
		if err != nil {
			return err
		}
		for _, step := range plan {
			m, err := applyStep(ctx, conn, step, false)
			if err != nil {
				return err
			}
			done = append(done, m)
		}
		return nil
	})
	return done, err
}

// MigrationStatus lists known and applied migrations without taking the
// lock or creating anything.
func (c *Catalog) MigrationStatus(ctx context.Context) ([]catalog.Migration, error) {
	conn, err := c.pool.Acquire(ctx)
	if err != nil {
		return nil, wrap("acquiring connection", err)
	}
	defer conn.Release()
	applied, err := appliedMigrations(ctx, conn, false)
	if err != nil {
		return nil, err
	}
	return migrate.Status(c.steps, applied), nil
}

// withMigrationLock runs fn on a connection holding the migration lock. The
// lock belongs to the session, so if it cannot be released cleanly the
// connection is closed rather than returned to the pool still holding it.
func (c *Catalog) withMigrationLock(ctx context.Context, fn func(*pgxpool.Conn) error) (err error) {
	conn, err := c.pool.Acquire(ctx)
	if err != nil {
		return wrap("acquiring connection for migrations", err)
	}
	defer conn.Release()

	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrationLockKey); err != nil {
		// A cancelled wait may still have been granted on the server.
		closeConn(conn)
		return wrap("taking migration lock", err)
	}
	defer func() {
		// Release even when ctx is done: the lock must not outlive this call.
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		var released bool
		uerr := conn.QueryRow(uctx, `SELECT pg_advisory_unlock($1)`, migrationLockKey).Scan(&released)
		if uerr == nil && !released {
			uerr = errors.New("lock was not held")
		}
		if uerr != nil {
			closeConn(conn)
			err = errors.Join(err, wrap("releasing migration lock", uerr))
		}
	}()
	return fn(conn)
}

func closeConn(conn *pgxpool.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = conn.Conn().Close(ctx) // the pool discards closed connections on Release
}

// appliedMigrations reads the bookkeeping table, first creating it when
// create is set (only ever under the lock: concurrent CREATE TABLE IF NOT
// EXISTS can fail in PostgreSQL).
func appliedMigrations(ctx context.Context, conn *pgxpool.Conn, create bool) ([]catalog.Migration, error) {
	if create {
		if _, err := conn.Exec(ctx, createMigrationsTable); err != nil {
			return nil, wrap("creating migrations table", err)
		}
	} else {
		var exists bool
		if err := conn.QueryRow(ctx, `SELECT to_regclass('intake_migrations') IS NOT NULL`).Scan(&exists); err != nil {
			return nil, wrap("reading migrations", err)
		}
		if !exists {
			return nil, nil
		}
	}
	rows, err := conn.Query(ctx, `SELECT version, name, applied_at FROM intake_migrations ORDER BY version`)
	if err != nil {
		return nil, wrap("reading migrations", err)
	}
	applied, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (catalog.Migration, error) {
		var (
			m  catalog.Migration
			at time.Time
		)
		err := row.Scan(&m.Version, &m.Name, &at)
		at = at.UTC()
		m.AppliedAt = &at
		return m, err
	})
	if err != nil {
		return nil, wrap("reading migrations", err)
	}
	return applied, nil
}

// applyStep runs one direction of a step and its bookkeeping in a single
// transaction, so a failed migration leaves neither schema change nor row.
func applyStep(ctx context.Context, conn *pgxpool.Conn, step migrate.Step, up bool) (catalog.Migration, error) {
	m := step.Migration()
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		sql, dir := step.Down, "down"
		if up {
			sql, dir = step.Up, "up"
		}
		// No arguments, so pgx uses the simple protocol, which runs a
		// multi-statement file in one call.
		if _, err := tx.Exec(ctx, sql); err != nil {
			return fmt.Errorf("error running migration %04d_%s %s: %w", step.Version, step.Name, dir, err)
		}
		if !up {
			_, err := tx.Exec(ctx, `DELETE FROM intake_migrations WHERE version = $1`, step.Version)
			return err
		}
		var at time.Time
		err := tx.QueryRow(ctx, `INSERT INTO intake_migrations (version, name) VALUES ($1, $2) RETURNING applied_at`,
			step.Version, step.Name).Scan(&at)
		at = at.UTC()
		m.AppliedAt = &at
		return err
	})
	if err != nil {
		return catalog.Migration{}, wrap("migrating", err)
	}
	return m, nil
}
