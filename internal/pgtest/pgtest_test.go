package pgtest

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestURL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	var schema string
	t.Run("inner", func(t *testing.T) {
		u := URL(t)
		if u2 := URL(t); u2 == u {
			t.Fatalf("two calls returned the same URL %s", u)
		}
		conn, err := pgx.Connect(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if err := conn.QueryRow(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(schema, "t_testurl_inner_") {
			t.Fatalf("current_schema() = %q; want the fresh schema", schema)
		}
		// Unqualified names land in the schema.
		if _, err := conn.Exec(ctx, "CREATE TABLE probe (x int)"); err != nil {
			t.Fatal(err)
		}
		var where string
		if err := conn.QueryRow(ctx, "SELECT table_schema FROM information_schema.tables WHERE table_name = 'probe' AND table_schema = current_schema()").Scan(&where); err != nil {
			t.Fatalf("probe table not in %s: %v", schema, err)
		}
	})
	if schema == "" {
		t.Skip("inner test skipped")
	}

	pool, err := admin()
	if err != nil {
		t.Fatal(err)
	}
	var exists bool
	if err := pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", schema).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Errorf("schema %s still exists after its test ended", schema)
	}
}

func TestSchemaName(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("Very/Long Name-", 20)
	a, b := schemaName(long), schemaName(long)
	if a == b {
		t.Errorf("schemaName twice = %s; want unique names", a)
	}
	if len(a) > 63 {
		t.Errorf("len(%s) = %d; want at most 63", a, len(a))
	}
	if strings.Trim(a, "abcdefghijklmnopqrstuvwxyz0123456789_") != "" {
		t.Errorf("schemaName = %s; want only [a-z0-9_]", a)
	}
}

// TestUnreachable runs this test binary again against a closed port, once
// as a developer and once as CI, and checks how the helper test ends.
func TestUnreachable(t *testing.T) {
	t.Parallel()
	for _, ci := range []string{"", "true"} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperUnreachable$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(),
			"PGTEST_HELPER=1",
			"CI="+ci,
			"TEST_DATABASE_URL=postgres://someone:hunter2secret@127.0.0.1:1/test?sslmode=disable&connect_timeout=5",
		)
		out, err := cmd.CombinedOutput()
		switch {
		case ci == "" && (err != nil || !strings.Contains(string(out), "--- SKIP: TestHelperUnreachable")):
			t.Errorf("CI unset: err=%v, output:\n%s\nwant a skip", err, out)
		case ci == "true" && (err == nil || !strings.Contains(string(out), "--- FAIL: TestHelperUnreachable")):
			t.Errorf("CI=true: err=%v, output:\n%s\nwant a failure", err, out)
		}
		if strings.Contains(string(out), "hunter2secret") {
			t.Errorf("output shows the password:\n%s", out)
		}
	}
}

func TestHelperUnreachable(t *testing.T) {
	if os.Getenv("PGTEST_HELPER") != "1" {
		return // only meaningful when started by TestUnreachable
	}
	URL(t)
	t.Error("URL returned against a closed port")
}
