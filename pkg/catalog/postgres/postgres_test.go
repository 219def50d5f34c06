package postgres_test

import (
	"context"
	"strings"
	"testing"

	"github.com/intake-dev/intake/internal/pgtest"
	"github.com/intake-dev/intake/pkg/catalog"
	"github.com/intake-dev/intake/pkg/catalog/catalogtest"
	"github.com/intake-dev/intake/pkg/catalog/postgres"
)

func open(t *testing.T, url string) *postgres.Catalog {
	t.Helper()
	c, err := postgres.Open(t.Context(), url, postgres.Options{MaxConns: 8})
	if err != nil {
		t.Fatalf("Open = %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func newCatalog(t *testing.T) catalog.Catalog {
	c := open(t, pgtest.URL(t))
	if _, err := c.MigrateUp(t.Context()); err != nil {
		t.Fatalf("MigrateUp = %v", err)
	}
	return c
}

func TestConformance(t *testing.T) {
	t.Parallel()
	catalogtest.Run(t, newCatalog)
}

func TestPool(t *testing.T) {
	t.Parallel()
	c := newCatalog(t).(*postgres.Catalog)
	var n int
	if err := c.Pool().QueryRow(t.Context(), "SELECT count(*) FROM uploads").Scan(&n); err != nil || n != 0 {
		t.Fatalf("count through Pool() = %d, %v; want 0, nil", n, err)
	}
}

// Open must not repeat the URL or its password, whatever goes wrong.
func TestOpenErrorsHideURL(t *testing.T) {
	t.Parallel()
	const secret = "hunter2-s3cret"
	tests := []struct {
		name string
		url  string
	}{
		{"refused", "postgres://intake:" + secret + "@127.0.0.1:1/db?sslmode=disable&connect_timeout=5"},
		{"bad port", "postgres://intake:" + secret + "@127.0.0.1:notaport/db"},
		{"bad escape", "postgres://intake:" + secret + "%zz@127.0.0.1/db"},
		{"bad param", "postgres://intake:" + secret + "@127.0.0.1/db?sslmode=sometimes"},
		{"dsn", "host=127.0.0.1 port=1 user=intake password=" + secret + " dbname=db connect_timeout=5"},
		{"bad dsn", "host=127.0.0.1 password=" + secret + " port="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := postgres.Open(context.Background(), tt.url, postgres.Options{})
			if err == nil {
				c.Close()
				t.Fatal("Open = nil; want an error")
			}
			msg := err.Error()
			if strings.Contains(msg, secret) || strings.Contains(msg, "intake") {
				t.Errorf("Open error %q repeats the URL", msg)
			}
		})
	}
}

func TestOpenBadOptions(t *testing.T) {
	t.Parallel()
	if _, err := postgres.Open(t.Context(), "postgres://127.0.0.1/x", postgres.Options{MaxConns: -1}); err == nil {
		t.Fatal("Open with negative MaxConns = nil; want an error")
	}
}
