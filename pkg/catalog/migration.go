package catalog

import (
	"context"
	"time"
)

// Migration is one versioned schema change, as a catalog reports it.
type Migration struct {
	Version int
	Name    string
	// AppliedAt is when the migration was applied to this database; nil
	// while it is pending (and for migrations just rolled back).
	AppliedAt *time.Time
}

// Migrator is implemented by catalogs that own their schema. Both the
// PostgreSQL and the SQLite catalog implement it; nothing migrates on Open,
// so the operator decides when the schema changes.
type Migrator interface {
	// MigrateUp applies every pending migration in version order, each in
	// its own transaction together with its bookkeeping row, and returns
	// those it applied (none when the schema is current). On error it
	// returns the ones applied before the failure.
	MigrateUp(ctx context.Context) ([]Migration, error)
	// MigrateDown rolls back the steps most recently applied migrations,
	// newest first, and returns them. steps must be positive; asking for
	// more than are applied rolls back all of them.
	MigrateDown(ctx context.Context, steps int) ([]Migration, error)
	// MigrationStatus lists every migration this binary knows, plus any the
	// database has applied that it does not know (a newer binary ran), in
	// version order. It never changes the database.
	MigrationStatus(ctx context.Context) ([]Migration, error)
}
