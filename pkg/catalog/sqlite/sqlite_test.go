package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/intake-dev/intake/pkg/catalog"
	"github.com/intake-dev/intake/pkg/catalog/catalogtest"
	"github.com/intake-dev/intake/pkg/catalog/sqlite"
)

func open(t *testing.T, path string) *sqlite.Catalog {
	t.Helper()
	c, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open = %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func newCatalog(t *testing.T) catalog.Catalog {
	c := open(t, filepath.Join(t.TempDir(), "catalog.db"))
	if _, err := c.MigrateUp(t.Context()); err != nil {
		t.Fatalf("MigrateUp = %v", err)
	}
	return c
}

func TestConformance(t *testing.T) {
	t.Parallel()
	catalogtest.Run(t, newCatalog)
}
