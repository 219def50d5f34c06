package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/intake-dev/intake/internal/testenv"
)

// DefaultURL is used when TEST_DATABASE_URL is unset.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// admin is one pool per test binary for creating and dropping schemas. It is
// opened on first use and never closed: it lives as long as the process.
var admin = sync.OnceValues(func() (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(baseURL())
	if err != nil {
		// pgx redacts the password in this error.
		return nil, fmt.Errorf("bad TEST_DATABASE_URL: %w", err)
	}
	cfg.MaxConns = 4
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, errUnreachable{err}
	}
	return pool, nil
})

type errUnreachable struct{ err error }

func (e errUnreachable) Error() string { return e.err.Error() }

func baseURL() string {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u
	}
	return DefaultURL
}

// URL returns a connection URL for a new schema that is dropped when t and
// its subtests finish. Each call makes another schema; to have several
// connections or catalogs share one, call it once and reuse the string.
func URL(t testing.TB) string {
	t.Helper()
	pool, err := admin()
	if err != nil {
		if unreachable, ok := err.(errUnreachable); ok {
			testenv.Unavailable(t, fmt.Errorf("PostgreSQL is unreachable: %w", unreachable.err), "pgtest", "database", "set TEST_DATABASE_URL or start it")
		}
		t.Fatalf("pgtest: %v", err)
	}
	u, err := url.Parse(baseURL())
	if err != nil {
		t.Fatal("pgtest: TEST_DATABASE_URL must be a postgres:// URL")
	}

	schema := schemaName(t.Name())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := pool.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()); err != nil {
		t.Fatalf("pgtest: error creating schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := pool.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("pgtest: error dropping schema %s: %v", schema, err)
		}
	})

	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// schemaName builds "t_<test name>_<random>", lowercase and within the
// 63-byte identifier limit; the name part is only there to help whoever
// looks at a schema left behind by a killed test run.
func schemaName(testName string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(testName) {
		if b.Len() == 40 {
			break
		}
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	var suffix [6]byte
	_, _ = rand.Read(suffix[:])
	return "t_" + b.String() + "_" + hex.EncodeToString(suffix[:])
}
