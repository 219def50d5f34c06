package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/intake-dev/intake/internal/pgtest"
	"github.com/intake-dev/intake/pkg/catalog"
	"github.com/intake-dev/intake/pkg/cli"
	"github.com/intake-dev/intake/pkg/config"
	"github.com/intake-dev/intake/pkg/server"
)

// TestMain clears INTAKE_* variables from the environment, so that a
// developer's settings cannot leak into the commands under test. Tests that
// set one use t.Setenv and are not parallel.
func TestMain(m *testing.M) {
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "INTAKE_") {
			os.Unsetenv(name)
		}
	}
	os.Exit(m.Run())
}

// result is what one run of the command tree produced.
type result struct {
	code           int
	stdout, stderr string
}

// run executes intake with args in process.
func run(t *testing.T, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := cli.Execute(t.Context(), args, &stdout, &stderr)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// mustRun executes intake and fails the test unless it exits 0.
func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	res := run(t, args...)
	if res.code != 0 {
		t.Fatalf("intake %s: exit %d; want 0\nstderr: %s", strings.Join(args, " "), res.code, res.stderr)
	}
	return res.stdout
}

// failRun executes intake, expects exit code 1 with nothing on stdout, and
// returns stderr.
func failRun(t *testing.T, args ...string) string {
	t.Helper()
	res := run(t, args...)
	if res.code != 1 {
		t.Fatalf("intake %s: exit %d; want 1\nstdout: %s\nstderr: %s", strings.Join(args, " "), res.code, res.stdout, res.stderr)
	}
	if res.stdout != "" {
		t.Errorf("intake %s: stdout %q; want nothing", strings.Join(args, " "), res.stdout)
	}
	return res.stderr
}

// TestHelpListsEverySetting: every command that takes settings documents
// each flag config.RegisterFlags registers, with its env var and default.
func TestHelpListsEverySetting(t *testing.T) {
	t.Parallel()
	var c config.Config
	settings := pflag.NewFlagSet("settings", pflag.ContinueOnError)
	c.RegisterFlags(settings)
	if !settings.HasFlags() {
		t.Fatal("RegisterFlags registered nothing")
	}
	reDefault := regexp.MustCompile(`\(default [^)]*\)`)

	for _, cmd := range [][]string{
		{"serve"},
		{"migrate", "up"}, {"migrate", "down"}, {"migrate", "status"},
		{"uploads", "ls"}, {"uploads", "show"},
		{"events", "ls"}, {"events", "retry"},
	} {
		t.Run(strings.Join(cmd, " "), func(t *testing.T) {
			t.Parallel()
			out := mustRun(t, append(cmd, "--help")...)
			lines := map[string]string{} // flag name -> its help line
			for line := range strings.SplitSeq(out, "\n") {
				for _, f := range strings.Fields(line) {
					if name, ok := strings.CutPrefix(f, "--"); ok {
						lines[name] = line
						break
					}
				}
			}
			settings.VisitAll(func(f *pflag.Flag) {
				line, ok := lines[f.Name]
				if !ok {
					t.Errorf("--%s is missing from the help", f.Name)
					return
				}
				env := "INTAKE_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
				if !strings.Contains(line, "(env "+env+")") {
					t.Errorf("--%s help does not name %s: %q", f.Name, env, line)
				}
				// A zero default is described by RegisterFlags itself in the
				// usage; any other is pflag's rendering of the value.
				want := reDefault.FindString(f.Usage)
				if want == "" {
					def := f.DefValue
					if f.Value.Type() == "string" {
						def = `"` + def + `"`
					}
					want = "(default " + def + ")"
				}
				if got := reDefault.FindAllString(line, -1); len(got) != 1 || got[0] != want {
					t.Errorf("--%s help defaults: got %q; want [%s]", f.Name, got, want)
				}
			})
		})
	}
}

var (
	reStatusPending = regexp.MustCompile(`^VERSION\s+NAME\s+APPLIED\n0001\s+uploads\s+pending\n0002\s+blobs\s+pending\n0003\s+events\s+pending\n0004\s+expired\s+pending\n$`)
	reStatusApplied = regexp.MustCompile(`^VERSION\s+NAME\s+APPLIED\n0001\s+uploads\s+(\S+)\n0002\s+blobs\s+\S+\n0003\s+events\s+\S+\n0004\s+expired\s+\S+\n$`)
)

// TestMigrate walks the schema up, down and up again through the CLI, with
// both catalogs.
func TestMigrate(t *testing.T) {
	t.Parallel()
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			settings := []string{"--data-dir", t.TempDir()}
			if backend == "postgres" {
				settings = append(settings, "--database-url", pgtest.URL(t))
			}
			cmd := func(args ...string) []string { return append(args, settings...) }
			start := time.Now().Add(-time.Minute)

			status := func(wantApplied bool) {
				t.Helper()
				out := mustRun(t, cmd("migrate", "status")...)
				if !wantApplied {
					if !reStatusPending.MatchString(out) {
						t.Fatalf("status:\n%s\nwant 0001 to 0004 pending", out)
					}
					return
				}
				m := reStatusApplied.FindStringSubmatch(out)
				if m == nil {
					t.Fatalf("status:\n%s\nwant 0001 to 0004 applied", out)
				}
				at, err := time.Parse(time.RFC3339, m[1])
				if err != nil || at.Before(start) || at.After(time.Now().Add(time.Minute)) {
					t.Fatalf("applied at %q (%v); want a time of this run", m[1], err)
				}
			}
			expect := func(want string, args ...string) {
				t.Helper()
				if out := mustRun(t, cmd(args...)...); out != want {
					t.Fatalf("intake %s: got %q; want %q", strings.Join(args, " "), out, want)
				}
			}

			status(false)
			expect("applied 0001 uploads\napplied 0002 blobs\napplied 0003 events\napplied 0004 expired\n", "migrate", "up")
			status(true)
			expect("schema is up to date\n", "migrate", "up")
			mustRun(t, cmd("uploads", "ls")...)

			expect("reverted 0004 expired\n", "migrate", "down")
			expect("reverted 0003 events\n", "migrate", "down")
			expect("reverted 0002 blobs\n", "migrate", "down")
			expect("reverted 0001 uploads\n", "migrate", "down")
			status(false)
			expect("nothing to revert\n", "migrate", "down")
			if msg := failRun(t, cmd("migrate", "down", "--steps", "0")...); !strings.Contains(msg, "--steps must be at least 1") {
				t.Errorf("down --steps 0: %q", msg)
			}
			// The schema is really gone, and the CLI says how to fix it.
			if msg := failRun(t, cmd("uploads", "ls")...); !strings.Contains(msg, "intake migrate up") {
				t.Errorf("uploads ls on an unmigrated catalog: %q; want a hint to run intake migrate up", msg)
			}

			expect("applied 0001 uploads\napplied 0002 blobs\napplied 0003 events\napplied 0004 expired\n", "migrate", "up")
			status(true)
		})
	}
}

// seed creates sessions through the catalog API in the catalog cfg selects.
func seed(t *testing.T, cfg config.Config, sessions ...catalog.Session) {
	t.Helper()
	ctx := context.Background()
	cat, err := server.OpenCatalog(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	if _, err := cat.MigrateUp(ctx); err != nil {
		t.Fatal(err)
	}
	for _, s := range sessions {
		if err := cat.Create(ctx, s); err != nil {
			t.Fatalf("creating session %s: %v", s.ID, err)
		}
	}
}

func ptr[T any](v T) *T { return &v }

var t0 = time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)

// listIDs runs "uploads ls --json" and returns the ids in order.
func listIDs(t *testing.T, args ...string) []string {
	t.Helper()
	out := mustRun(t, append([]string{"uploads", "ls", "--json"}, args...)...)
	var views []server.UploadView
	if err := json.Unmarshal([]byte(out), &views); err != nil {
		t.Fatalf("uploads ls --json: %v\n%s", err, out)
	}
	ids := []string{}
	for _, v := range views {
		ids = append(ids, v.ID)
	}
	return ids
}

// TestUploads lists and shows sessions created through the catalog API, in
// both catalogs, as tables and as JSON.
func TestUploads(t *testing.T) {
	t.Parallel()
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			cfg := config.Default()
			cfg.DataDir = t.TempDir()
			settings := []string{"--data-dir", cfg.DataDir}
			if backend == "postgres" {
				cfg.DatabaseURL = pgtest.URL(t)
				settings = append(settings, "--database-url", cfg.DatabaseURL)
			}
			seed(t, cfg,
				catalog.Session{ID: "upl-older", Owner: "alice", Size: ptr[int64](100), Offset: 40,
					Metadata:  map[string]string{"filename": "report.pdf", "filetype": "application/pdf"},
					CreatedAt: t0},
				catalog.Session{ID: "upl-deferred", Offset: 7,
					Metadata:  map[string]string{"filename": "clip.mp4", "note": "two\nlines"},
					CreatedAt: t0.Add(time.Hour)},
				catalog.Session{ID: "upl-done", State: catalog.StateComplete, Size: ptr[int64](5), Offset: 5,
					CreatedAt: t0.Add(2 * time.Hour)},
			)
			cmd := func(args ...string) []string { return append(args, settings...) }

			t.Run("ls table", func(t *testing.T) {
				out := mustRun(t, cmd("uploads", "ls")...)
				lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
				want := [][]string{
					{"ID", "STATE", "OFFSET", "SIZE", "CREATED", "FILENAME"},
					{"upl-done", "complete", "5", "5", t0.Add(2 * time.Hour).Format(time.RFC3339)},
					{"upl-deferred", "receiving", "7", "deferred", t0.Add(time.Hour).Format(time.RFC3339), "clip.mp4"},
					{"upl-older", "receiving", "40", "100", t0.Format(time.RFC3339), "report.pdf"},
				}
				if len(lines) != len(want) {
					t.Fatalf("uploads ls:\n%s\nwant %d lines", out, len(want))
				}
				for i, w := range want {
					if got := strings.Fields(lines[i]); !slices.Equal(got, w) {
						t.Errorf("line %d: got %q; want %q", i, got, w)
					}
				}
			})

			t.Run("ls json", func(t *testing.T) {
				out := mustRun(t, cmd("uploads", "ls", "--json")...)
				var views []server.UploadView
				if err := json.Unmarshal([]byte(out), &views); err != nil {
					t.Fatalf("%v\n%s", err, out)
				}
				if len(views) != 3 {
					t.Fatalf("got %d uploads; want 3\n%s", len(views), out)
				}
				d := views[1]
				if d.ID != "upl-deferred" || d.Size != nil || !d.SizeDeferred || d.Offset != 7 ||
					d.State != catalog.StateReceiving || d.Metadata["note"] != "two\nlines" ||
					d.URL != "/files/upl-deferred" || !d.CreatedAt.Equal(t0.Add(time.Hour)) {
					t.Errorf("deferred upload: %+v", d)
				}
				o := views[2]
				if o.ID != "upl-older" || o.Size == nil || *o.Size != 100 || o.SizeDeferred || o.Offset != 40 ||
					o.Metadata["filetype"] != "application/pdf" || o.CompletedAt != nil {
					t.Errorf("older upload: %+v", o)
				}
				if c := views[0]; c.State != catalog.StateComplete || c.CompletedAt == nil || c.Metadata == nil {
					t.Errorf("complete upload: %+v", c)
				}
			})

			t.Run("ls filters", func(t *testing.T) {
				for _, tc := range []struct {
					args []string
					want []string
				}{
					{[]string{"--state", "complete"}, []string{"upl-done"}},
					{[]string{"--state", "receiving"}, []string{"upl-deferred", "upl-older"}},
					{[]string{"--state", "failed"}, []string{}},
					{[]string{"--owner", "alice"}, []string{"upl-older"}},
					{[]string{"--limit", "2"}, []string{"upl-done", "upl-deferred"}},
					{[]string{"--state", "receiving", "--limit", "1"}, []string{"upl-deferred"}},
				} {
					if got := listIDs(t, append(tc.args, settings...)...); !slices.Equal(got, tc.want) {
						t.Errorf("uploads ls %s: got %q; want %q", strings.Join(tc.args, " "), got, tc.want)
					}
				}
			})

			t.Run("ls bad options", func(t *testing.T) {
				for _, tc := range []struct {
					args []string
					want string
				}{
					{[]string{"--state", "bogus"}, `--state "bogus" is not a state: use receiving, complete, terminated or failed`},
					{[]string{"--limit", "0"}, "--limit must be at least 1"},
					{[]string{"--limit", "-3"}, "--limit must be at least 1"},
				} {
					if msg := failRun(t, cmd(append([]string{"uploads", "ls"}, tc.args...)...)...); !strings.Contains(msg, tc.want) {
						t.Errorf("uploads ls %s: stderr %q; want it to say %q", strings.Join(tc.args, " "), msg, tc.want)
					}
				}
			})

			t.Run("show table", func(t *testing.T) {
				rows := showRows(t, mustRun(t, cmd("uploads", "show", "upl-older", "--base-path", "/up")...))
				for k, v := range map[string]string{
					"id": "upl-older", "owner": "alice", "state": "receiving", "offset": "40", "size": "100",
					"url": "/up/upl-older", "created": t0.Format(time.RFC3339Nano),
					"metadata.filename": `"report.pdf"`, "metadata.filetype": `"application/pdf"`,
				} {
					if rows[k] != v {
						t.Errorf("show upl-older %s: got %q; want %q", k, rows[k], v)
					}
				}
				if _, ok := rows["completed"]; ok {
					t.Error("show upl-older has a completed row")
				}

				rows = showRows(t, mustRun(t, cmd("uploads", "show", "upl-deferred")...))
				if rows["size"] != "deferred" || rows["owner"] != "" || rows["metadata.note"] != `"two\nlines"` {
					t.Errorf("show upl-deferred: %q", rows)
				}
				rows = showRows(t, mustRun(t, cmd("uploads", "show", "upl-done")...))
				if rows["state"] != "complete" || rows["completed"] == "" {
					t.Errorf("show upl-done: %q", rows)
				}
			})

			t.Run("show json", func(t *testing.T) {
				out := mustRun(t, cmd("uploads", "show", "upl-deferred", "--json")...)
				var v server.UploadView
				if err := json.Unmarshal([]byte(out), &v); err != nil {
					t.Fatalf("%v\n%s", err, out)
				}
				if v.ID != "upl-deferred" || !v.SizeDeferred || v.Size != nil || v.Offset != 7 || v.Metadata["filename"] != "clip.mp4" {
					t.Errorf("show --json: %+v", v)
				}
			})

			t.Run("show unknown", func(t *testing.T) {
				if msg := failRun(t, cmd("uploads", "show", "nope")...); !strings.Contains(msg, `no upload with id "nope"`) {
					t.Errorf("show nope: stderr %q", msg)
				}
				failRun(t, cmd("uploads", "show")...)
			})
		})
	}
}

// showRows parses the key/value table of "uploads show".
func showRows(t *testing.T, out string) map[string]string {
	t.Helper()
	rows := map[string]string{}
	for line := range strings.SplitSeq(strings.TrimSuffix(out, "\n"), "\n") {
		k, v, _ := strings.Cut(line, " ")
		if _, dup := rows[k]; dup {
			t.Fatalf("row %q twice in\n%s", k, out)
		}
		rows[k] = strings.TrimSpace(v)
	}
	return rows
}

// TestUploadsLsKeepsMetadataInItsCell: the filename is client input; a
// control character in it must neither add a row to the table nor reach the
// operator's terminal.
func TestUploadsLsKeepsMetadataInItsCell(t *testing.T) {
	t.Parallel()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	evil := "a.txt\nupl-fake  complete  5  5  2025-03-01T10:00:00Z  fake.txt\x1b[2J\tz"
	seed(t, cfg,
		catalog.Session{ID: "upl-evil", Size: ptr[int64](5), Metadata: map[string]string{"filename": evil}, CreatedAt: t0},
		catalog.Session{ID: "upl-plain", Size: ptr[int64](5), Metadata: map[string]string{"filename": "my file.txt"}, CreatedAt: t0.Add(time.Hour)},
	)
	out := mustRun(t, "uploads", "ls", "--data-dir", cfg.DataDir)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("uploads ls printed %d lines; want 3 (header and two uploads):\n%s", len(lines), out)
	}
	if strings.ContainsAny(out, "\x1b\t") {
		t.Errorf("uploads ls passed control characters through: %q", out)
	}
	if !strings.HasSuffix(lines[1], " my file.txt") {
		t.Errorf("printable filename changed: %q", lines[1])
	}
	if ids := listIDs(t, "--data-dir", cfg.DataDir); !slices.Equal(ids, []string{"upl-plain", "upl-evil"}) {
		t.Errorf("ids = %q", ids)
	}
}

// TestDataDirPrecedence shows, through what "uploads ls" reads, that
// --data-dir beats INTAKE_DATA_DIR, which beats the --config file. It sets
// environment variables, so it cannot run in parallel.
func TestDataDirPrecedence(t *testing.T) {
	dirs := map[string]string{}
	for _, name := range []string{"file", "env", "flag", "other"} {
		cfg := config.Default()
		cfg.DataDir = t.TempDir()
		seed(t, cfg, catalog.Session{ID: "from-" + name, Size: ptr[int64](1), CreatedAt: t0})
		dirs[name] = cfg.DataDir
	}
	writeConfig := func(dataDir string) string {
		p := filepath.Join(t.TempDir(), "intake.yaml")
		if err := os.WriteFile(p, []byte("# test\ndata-dir: "+dataDir+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	file, otherFile := writeConfig(dirs["file"]), writeConfig(dirs["other"])

	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"file alone", nil, []string{"--config", file}, "from-file"},
		{"env beats file", map[string]string{"INTAKE_DATA_DIR": dirs["env"]}, []string{"--config", file}, "from-env"},
		{"flag beats env and file", map[string]string{"INTAKE_DATA_DIR": dirs["env"]}, []string{"--config", file, "--data-dir", dirs["flag"]}, "from-flag"},
		{"flag beats file", nil, []string{"--data-dir", dirs["flag"], "--config", file}, "from-flag"},
		{"empty env is unset", map[string]string{"INTAKE_DATA_DIR": ""}, []string{"--config", file}, "from-file"},
		{"INTAKE_CONFIG names the file", map[string]string{"INTAKE_CONFIG": file}, nil, "from-file"},
		{"--config beats INTAKE_CONFIG", map[string]string{"INTAKE_CONFIG": otherFile}, []string{"--config", file}, "from-file"},
		{"env beats INTAKE_CONFIG's file", map[string]string{"INTAKE_CONFIG": file, "INTAKE_DATA_DIR": dirs["env"]}, nil, "from-env"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			if got := listIDs(t, tc.args...); !slices.Equal(got, []string{tc.want}) {
				t.Errorf("uploads ls read %q; want [%s]", got, tc.want)
			}
		})
	}

	t.Run("bad env value names the variable", func(t *testing.T) {
		t.Setenv("INTAKE_MAX_SIZE", "lots")
		msg := failRun(t, "uploads", "ls", "--data-dir", dirs["flag"])
		if !strings.Contains(msg, "INTAKE_MAX_SIZE") || !strings.Contains(msg, "--max-size") {
			t.Errorf("stderr %q; want it to name INTAKE_MAX_SIZE and --max-size", msg)
		}
	})
}

func TestVersion(t *testing.T) {
	t.Parallel()
	res := run(t, "version")
	if res.code != 0 || res.stderr != "" {
		t.Fatalf("version: exit %d, stderr %q", res.code, res.stderr)
	}
	v, ok := strings.CutPrefix(res.stdout, "intake ")
	if !ok || strings.TrimSpace(v) == "" || !strings.HasSuffix(v, "\n") || strings.Count(res.stdout, "\n") != 1 {
		t.Errorf("version printed %q; want \"intake <version>\\n\"", res.stdout)
	}
}

// TestBadSettings: a bad setting exits 1 before doing anything, with a
// message naming the flag, and a password in the database URL never reaches
// stderr.
func TestBadSettings(t *testing.T) {
	t.Parallel()
	const password = "Secr3tPw-9f2"
	badFile := filepath.Join(t.TempDir(), "intake.yaml")
	if err := os.WriteFile(badFile, []byte("max-size: lots\ndatabase-url: mysql://alice:"+password+"@db/intake\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want []string // each must appear in stderr
	}{
		{[]string{"serve", "--max-size", "lots"}, []string{"--max-size"}},
		{[]string{"serve", "--max-size", "-1"}, []string{"--max-size"}},
		{[]string{"serve", "--database-url", "mysql://x"}, []string{"--database-url", `"mysql"`}},
		{[]string{"serve", "--database-url", "mysql://alice:" + password + "@db.example:3306/intake"}, []string{"--database-url"}},
		{[]string{"serve", "--database-url", "POSTGRES://alice:" + password + "@db.example/intake"}, []string{"--database-url"}},
		{[]string{"serve", "--database-url", "host=db.example password=" + password}, []string{"--database-url"}},
		{[]string{"serve", "--database-url", "sqlite:"}, []string{"--database-url"}},
		{[]string{"migrate", "up", "--database-url", "mysql://alice:" + password + "@db/intake"}, []string{"--database-url"}},
		{[]string{"uploads", "ls", "--database-url", "mysql://alice:" + password + "@db/intake"}, []string{"--database-url"}},
		// Every problem at once.
		{[]string{"serve", "--listen", "nowhere", "--log-level", "loud", "--database-url", "mysql://alice:" + password + "@db/intake"},
			[]string{"--listen", "--log-level", "--database-url"}},
		{[]string{"serve", "--config", badFile}, []string{badFile, "line 1", `"max-size"`}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			t.Parallel()
			msg := failRun(t, tc.args...)
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("stderr %q; want it to name %s", msg, w)
				}
			}
			if strings.Contains(msg, password) {
				t.Errorf("stderr leaks the password: %q", msg)
			}
		})
	}
}

// TestUnreachableDatabase: a valid PostgreSQL URL whose server is not there
// fails serve and migrate with exit 1, without the password in stderr (serve
// logs its configuration first).
func TestUnreachableDatabase(t *testing.T) {
	t.Parallel()
	const password = "Secr3tPw-77a"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	// Subtest names stay free of the password: t.TempDir names the
	// directory after the test, and serve logs the data directory.
	for where, url := range map[string]string{
		"userinfo": "postgres://alice:" + password + "@" + addr + "/intake?connect_timeout=5",
		"query":    "postgres://alice@" + addr + "/intake?connect_timeout=5&password=" + password,
	} {
		for _, cmd := range [][]string{{"serve", "--listen", "127.0.0.1:0"}, {"migrate", "up"}, {"uploads", "ls"}} {
			t.Run(cmd[0]+" password in "+where, func(t *testing.T) {
				t.Parallel()
				msg := failRun(t, append(cmd, "--data-dir", t.TempDir(), "--database-url", url)...)
				if !strings.Contains(msg, "postgres") {
					t.Errorf("stderr %q does not say what failed", msg)
				}
				if strings.Contains(msg, password) {
					t.Errorf("stderr leaks the password: %q", msg)
				}
			})
		}
	}
}
