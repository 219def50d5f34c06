package server

import (
	"context"
	"fmt"

	"github.com/intake-dev/intake/pkg/catalog"
	"github.com/intake-dev/intake/pkg/catalog/postgres"
	"github.com/intake-dev/intake/pkg/catalog/sqlite"
	"github.com/intake-dev/intake/pkg/config"
)

// Catalog is a catalog that can also migrate its own schema; both
// implementations are.
type Catalog interface {
	catalog.Catalog
	MigrateUp(ctx context.Context) ([]catalog.Migration, error)
	MigrateDown(ctx context.Context, steps int) ([]catalog.Migration, error)
	MigrationStatus(ctx context.Context) ([]catalog.Migration, error)
}

// OpenCatalog opens the catalog cfg selects: PostgreSQL for a postgres://
// database URL, else the embedded SQLite file. It applies no migrations.
func OpenCatalog(ctx context.Context, cfg config.Config) (Catalog, error) {
	if cfg.UsesPostgres() {
		c, err := postgres.Open(ctx, cfg.DatabaseURL, postgres.Options{MaxConns: int32(cfg.DBMaxConns)})
		if err != nil {
			return nil, fmt.Errorf("opening postgres catalog: %w", err)
		}
		return c, nil
	}
	c, err := sqlite.Open(ctx, cfg.SQLitePath())
	if err != nil {
		return nil, fmt.Errorf("opening sqlite catalog: %w", err)
	}
	return c, nil
}

// CheckSchema refuses a catalog whose schema lacks a migration this binary
// knows, with the command that fixes it: every query on such a schema
// would fail with a SQL error instead.
func CheckSchema(ctx context.Context, cat Catalog) error {
	list, err := cat.MigrationStatus(ctx)
	if err != nil {
		return fmt.Errorf("reading migration status: %w", err)
	}
	for _, m := range list {
		if m.AppliedAt == nil {
			return fmt.Errorf("the catalog schema lacks migration %04d %s: run `intake migrate up` first", m.Version, m.Name)
		}
	}
	return nil
}
