package config_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/intake-dev/intake/pkg/config"
	"github.com/spf13/pflag"
)

func TestDefaultIsValid(t *testing.T) {
	t.Parallel()
	if err := config.Default().Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v; want nil", err)
	}
}

func TestValidateAccepts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(*config.Config)
	}{
		{"listen all interfaces", func(c *config.Config) { c.Listen = ":8080" }},
		{"listen random port", func(c *config.Config) { c.Listen = "127.0.0.1:0" }},
		{"listen ipv6", func(c *config.Config) { c.Listen = "[::1]:8080" }},
		{"base path without trailing slash", func(c *config.Config) { c.BasePath = "/files" }},
		{"base path root", func(c *config.Config) { c.BasePath = "/" }},
		{"postgres", func(c *config.Config) { c.DatabaseURL = "postgres://u:p@db:5432/intake?sslmode=disable" }},
		{"postgresql", func(c *config.Config) { c.DatabaseURL = "postgresql://db/intake" }},
		{"postgres multi-host", func(c *config.Config) { c.DatabaseURL = "postgres://u:p@h1:5432,h2:5432/intake" }},
		{"postgres socket", func(c *config.Config) { c.DatabaseURL = "postgres:///intake?host=/run/postgresql" }},
		{"sqlite path", func(c *config.Config) { c.DatabaseURL = "sqlite:/var/lib/intake/catalog.db" }},
		{"sqlite url", func(c *config.Config) { c.DatabaseURL = "sqlite://catalog.db" }},
		{"max size", func(c *config.Config) { c.MaxSize = 10 << 30 }},
		{"two conns", func(c *config.Config) { c.DBMaxConns = 2 }},
		{"json debug", func(c *config.Config) { c.LogFormat, c.LogLevel = "json", "debug" }},
		{"s3 on aws", s3(nil)},
		{"s3 with every setting", s3(func(c *config.Config) {
			c.S3Endpoint, c.S3Region, c.S3PathStyle = "https://s3.example.com", "eu-west-1", true
			c.S3Prefix, c.S3CreateBucket, c.S3TempDir = "uploads/", true, "/var/tmp/intake"
			c.DownloadRedirect = true
		})},
		{"s3 endpoint http with port", s3(func(c *config.Config) { c.S3Endpoint = "http://127.0.0.1:9000" })},
		{"s3 endpoint with path", s3(func(c *config.Config) { c.S3Endpoint = "https://gw.example.com/s3/" })},
		{"s3 min part at the minimum", s3(func(c *config.Config) { c.S3MinPartSize, c.S3PartSize = 5<<20, 5<<20 })},
		{"s3 part at the maximum", s3(func(c *config.Config) { c.S3PartSize = 5 << 30 })},
		// Cloudflare R2 needs equal part sizes.
		{"s3 r2", s3(func(c *config.Config) {
			c.S3Endpoint, c.S3Region = "https://0123abcd.r2.cloudflarestorage.com", "auto"
			c.S3MinPartSize, c.S3PartSize = 64<<20, 64<<20
		})},
		{"s3 one part at a time", s3(func(c *config.Config) { c.S3MaxBufferedParts, c.S3ConcurrentParts = 1, 1 })},
		{"s3 shortest url ttl", s3(func(c *config.Config) { c.DownloadURLTTL = time.Second })},
		{"s3 longest url ttl", s3(func(c *config.Config) { c.DownloadURLTTL = 7 * 24 * time.Hour })},
		// A leftover INTAKE_S3_* must not stop a file-store server: the S3
		// settings are only checked when they are used.
		{"file store ignores s3 settings", func(c *config.Config) {
			c.S3Endpoint, c.S3Region, c.S3MinPartSize, c.S3PartSize = "minio:9000", "", 1, 0
			c.S3MaxBufferedParts, c.S3ConcurrentParts, c.DownloadURLTTL = 0, 0, 0
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := config.Default()
			tt.mutate(&c)
			if err := c.Validate(); err != nil {
				t.Errorf("Validate() = %v; want nil", err)
			}
		})
	}
}

func TestValidateRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(*config.Config)
		// want are substrings of the error: the flag, its env var and what
		// to do about it.
		want []string
	}{
		{"listen without port", func(c *config.Config) { c.Listen = "localhost" },
			[]string{"--listen", "INTAKE_LISTEN", `"localhost"`, "e.g. 127.0.0.1:8080"}},
		{"listen named port", func(c *config.Config) { c.Listen = "localhost:http" },
			[]string{"--listen", "numeric port"}},
		{"listen port out of range", func(c *config.Config) { c.Listen = ":70000" },
			[]string{"--listen"}},
		{"listen empty", func(c *config.Config) { c.Listen = "" },
			[]string{"--listen"}},
		{"base path relative", func(c *config.Config) { c.BasePath = "files/" },
			[]string{"--base-path", "INTAKE_BASE_PATH", `must start with "/"`}},
		{"base path empty", func(c *config.Config) { c.BasePath = "" },
			[]string{"--base-path", `must start with "/"`}},
		{"base path query", func(c *config.Config) { c.BasePath = "/files?x=1" },
			[]string{"--base-path", `"?"`}},
		{"data dir empty", func(c *config.Config) { c.DataDir = " " },
			[]string{"--data-dir", "must not be empty"}},
		{"database scheme", func(c *config.Config) { c.DatabaseURL = "mysql://root:hunter2@db/intake" },
			[]string{"--database-url", "INTAKE_DATABASE_URL", `unsupported scheme "mysql"`, "postgres://"}},
		{"database scheme case", func(c *config.Config) { c.DatabaseURL = "Postgres://u:hunter2@db/intake" },
			[]string{"--database-url", "lower case"}},
		{"database keyword dsn", func(c *config.Config) { c.DatabaseURL = "host=db password=hunter2" },
			[]string{"--database-url", "is not a URL"}},
		{"database bare path", func(c *config.Config) { c.DatabaseURL = "/var/lib/intake.db" },
			[]string{"--database-url", "is not a URL", "sqlite:PATH"}},
		{"sqlite without path", func(c *config.Config) { c.DatabaseURL = "sqlite:" },
			[]string{"--database-url", "needs a file path"}},
		{"one conn", func(c *config.Config) { c.DBMaxConns = 1 },
			[]string{"--db-max-conns", "INTAKE_DB_MAX_CONNS", "at least 2"}},
		{"store unknown", func(c *config.Config) { c.Store = "disk" },
			[]string{"--store", "INTAKE_STORE", `"disk"`, "use file or s3"}},
		{"store upper case", func(c *config.Config) { c.Store = "S3" },
			[]string{"--store", `"S3"`, "use file or s3"}},
		{"store empty", func(c *config.Config) { c.Store = "" },
			[]string{"--store", "use file or s3"}},
		{"s3 without bucket", func(c *config.Config) { c.Store = "s3" },
			[]string{"--s3-bucket", "INTAKE_S3_BUCKET", "required with --store s3"}},
		{"s3 bucket too short", s3(func(c *config.Config) { c.S3Bucket = "m6" }),
			[]string{"--s3-bucket", `"m6"`, "not a valid S3 bucket name"}},
		{"s3 bucket upper case", s3(func(c *config.Config) { c.S3Bucket = "Uploads" }),
			[]string{"--s3-bucket", "lower-case"}},
		{"s3 bucket double dot", s3(func(c *config.Config) { c.S3Bucket = "my..uploads" }),
			[]string{"--s3-bucket", "not a valid S3 bucket name"}},
		{"s3 bucket underscore", s3(func(c *config.Config) { c.S3Bucket = "my_uploads" }),
			[]string{"--s3-bucket", "not a valid S3 bucket name"}},
		{"s3 endpoint without scheme", s3(func(c *config.Config) { c.S3Endpoint = "minio:9000" }),
			[]string{"--s3-endpoint", "INTAKE_S3_ENDPOINT", `"minio:9000"`, "http(s) URL", "http://127.0.0.1:9000"}},
		{"s3 endpoint bare host", s3(func(c *config.Config) { c.S3Endpoint = "s3.example.com" }),
			[]string{"--s3-endpoint", "http(s) URL"}},
		{"s3 endpoint other scheme", s3(func(c *config.Config) { c.S3Endpoint = "s3://bucket" }),
			[]string{"--s3-endpoint", "http(s) URL"}},
		{"s3 endpoint without host", s3(func(c *config.Config) { c.S3Endpoint = "http://" }),
			[]string{"--s3-endpoint", "http(s) URL"}},
		{"s3 endpoint with credentials", s3(func(c *config.Config) { c.S3Endpoint = "http://AKIAEXAMPLE:hunter2@s3:9000" }),
			[]string{"--s3-endpoint", "must not hold credentials", "AWS_ACCESS_KEY_ID"}},
		{"s3 endpoint with malformed credentials", s3(func(c *config.Config) { c.S3Endpoint = "http://AKIAEXAMPLE:hun%ter2@s3:9000" }),
			[]string{"--s3-endpoint", "must not hold credentials"}},
		{"s3 region empty", s3(func(c *config.Config) { c.S3Region = "" }),
			[]string{"--s3-region", "INTAKE_S3_REGION", "us-east-1"}},
		// 5MB is 5,000,000 bytes, short of S3's 5MiB.
		{"s3 min part 5MB", s3(func(c *config.Config) { c.S3MinPartSize = 5_000_000 }),
			[]string{"--s3-min-part-size", "INTAKE_S3_MIN_PART_SIZE", "is 5MB", "at least 5MiB"}},
		{"s3 min part zero", s3(func(c *config.Config) { c.S3MinPartSize = 0 }),
			[]string{"--s3-min-part-size", "at least 5MiB"}},
		{"s3 min part above 5GiB", s3(func(c *config.Config) { c.S3MinPartSize, c.S3PartSize = 6<<30, 6<<30 }),
			[]string{"--s3-min-part-size", "at most 5GiB", "--s3-part-size", "between 5MiB and 5GiB"}},
		{"s3 part below min", s3(func(c *config.Config) { c.S3MinPartSize, c.S3PartSize = 64<<20, 32<<20 }),
			[]string{"--s3-part-size", "INTAKE_S3_PART_SIZE", "is 32MiB", "between --s3-min-part-size (64MiB) and 5GiB"}},
		{"s3 part above 5GiB", s3(func(c *config.Config) { c.S3PartSize = 5<<30 + 1 }),
			[]string{"--s3-part-size", "and 5GiB"}},
		{"s3 no buffered parts", s3(func(c *config.Config) { c.S3MaxBufferedParts = 0 }),
			[]string{"--s3-max-buffered-parts", "INTAKE_S3_MAX_BUFFERED_PARTS", "is 0", "at least 1"}},
		{"s3 no concurrent parts", s3(func(c *config.Config) { c.S3ConcurrentParts = 0 }),
			[]string{"--s3-concurrent-part-uploads", "INTAKE_S3_CONCURRENT_PART_UPLOADS", "at least 1"}},
		{"s3 negative concurrent parts", s3(func(c *config.Config) { c.S3ConcurrentParts = -1 }),
			[]string{"--s3-concurrent-part-uploads", "is -1"}},
		{"s3 zero url ttl", s3(func(c *config.Config) { c.DownloadURLTTL = 0 }),
			[]string{"--download-url-ttl", "INTAKE_DOWNLOAD_URL_TTL", "greater than zero"}},
		{"s3 negative url ttl", s3(func(c *config.Config) { c.DownloadURLTTL = -time.Minute }),
			[]string{"--download-url-ttl", "greater than zero"}},
		{"s3 url ttl over a week", s3(func(c *config.Config) { c.DownloadURLTTL = 7*24*time.Hour + time.Second }),
			[]string{"--download-url-ttl", "at most 168h"}},
		{"download redirect with file store", func(c *config.Config) { c.DownloadRedirect = true },
			[]string{"--download-redirect", "INTAKE_DOWNLOAD_REDIRECT", "needs --store s3"}},
		{"negative max size", func(c *config.Config) { c.MaxSize = -1 },
			[]string{"--max-size", "use 0 for no limit"}},
		{"zero network timeout", func(c *config.Config) { c.NetworkTimeout = 0 },
			[]string{"--network-timeout", "INTAKE_NETWORK_TIMEOUT", "greater than zero"}},
		{"negative lock timeout", func(c *config.Config) { c.LockTimeout = -time.Second },
			[]string{"--lock-timeout", "greater than zero"}},
		{"zero shutdown timeout", func(c *config.Config) { c.ShutdownTimeout = 0 },
			[]string{"--shutdown-timeout", "greater than zero"}},
		{"log format", func(c *config.Config) { c.LogFormat = "logfmt" },
			[]string{"--log-format", "text or json"}},
		{"log level", func(c *config.Config) { c.LogLevel = "trace" },
			[]string{"--log-level", "debug, info, warn or error"}},
		{"log level upper case", func(c *config.Config) { c.LogLevel = "INFO" },
			[]string{"--log-level"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := config.Default()
			tt.mutate(&c)
			err := c.Validate()
			if err == nil {
				t.Fatalf("Validate() = nil; want an error containing %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q; want it to contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("Validate() = %q; it leaks the database password", err)
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	t.Parallel()
	c := config.Default()
	c.Store, c.LogLevel, c.DBMaxConns = "disk", "loud", 0
	err := c.Validate()
	if err == nil {
		t.Fatal("Validate() = nil; want three problems")
	}
	if got := strings.Count(err.Error(), "\n") + 1; got != 3 {
		t.Errorf("Validate() reported %d problems; want 3:\n%v", got, err)
	}
}

// Every S3 problem is reported at once, not one per restart.
func TestValidateReportsEveryS3Problem(t *testing.T) {
	t.Parallel()
	c := config.Default()
	c.Store, c.S3Endpoint, c.S3MinPartSize, c.S3ConcurrentParts = "s3", "ftp://x", 1, 0
	err := c.Validate()
	if err == nil {
		t.Fatal("Validate() = nil; want four problems")
	}
	for _, flag := range []string{"--s3-bucket", "--s3-endpoint", "--s3-min-part-size", "--s3-concurrent-part-uploads"} {
		if !strings.Contains(err.Error(), flag) {
			t.Errorf("Validate() = %q; want it to name %s", err, flag)
		}
	}
	if got := strings.Count(err.Error(), "\n") + 1; got != 4 {
		t.Errorf("Validate() reported %d problems; want 4:\n%v", got, err)
	}
}

// s3 returns a mutation that selects a valid S3 store and then applies more.
func s3(more func(*config.Config)) func(*config.Config) {
	return func(c *config.Config) {
		c.Store, c.S3Bucket = "s3", "intake"
		if more != nil {
			more(c)
		}
	}
}

func TestS3TempDirPath(t *testing.T) {
	t.Parallel()
	c := config.Default()
	c.DataDir = "/srv/intake"
	if got := c.S3TempDirPath(); got != "/srv/intake/s3-tmp" {
		t.Errorf("S3TempDirPath() = %q; want /srv/intake/s3-tmp", got)
	}
	c.S3TempDir = "/var/tmp/parts"
	if got := c.S3TempDirPath(); got != "/var/tmp/parts" {
		t.Errorf("S3TempDirPath() with --s3-temp-dir = %q; want /var/tmp/parts", got)
	}
}

func TestCatalogSelection(t *testing.T) {
	t.Parallel()
	tests := []struct {
		dsn          string
		wantPostgres bool
		wantSQLite   string
	}{
		{"", false, "data/intake.db"},
		{"sqlite:/var/lib/catalog.db", false, "/var/lib/catalog.db"},
		{"sqlite:catalog.db", false, "catalog.db"},
		{"sqlite:///var/lib/catalog.db", false, "/var/lib/catalog.db"},
		{"sqlite://catalog.db", false, "catalog.db"},
		{"postgres://u:p@db/intake", true, ""},
		{"postgresql://db/intake", true, ""},
		{"mysql://db/intake", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.dsn, func(t *testing.T) {
			t.Parallel()
			c := config.Default()
			c.DatabaseURL = tt.dsn
			if got := c.UsesPostgres(); got != tt.wantPostgres {
				t.Errorf("UsesPostgres() = %v; want %v", got, tt.wantPostgres)
			}
			if got := c.SQLitePath(); got != tt.wantSQLite {
				t.Errorf("SQLitePath() = %q; want %q", got, tt.wantSQLite)
			}
		})
	}
}

func TestUploadsDir(t *testing.T) {
	t.Parallel()
	c := config.Default()
	c.DataDir = "/srv/intake"
	if got := c.UploadsDir(); got != "/srv/intake/uploads" {
		t.Errorf("UploadsDir() = %q; want /srv/intake/uploads", got)
	}
}

func TestRedacted(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, dsn, want string
	}{
		{"empty", "", ""},
		{"sqlite", "sqlite:/var/lib/catalog.db", "sqlite:/var/lib/catalog.db"},
		{"no password", "postgres://intake@db:5432/intake", "postgres://intake@db:5432/intake"},
		{"user info", "postgres://intake:hunter2@db:5432/intake?sslmode=require",
			"postgres://intake:xxxxx@db:5432/intake?sslmode=require"},
		{"escaped password", "postgresql://intake:hun%40ter2@db/intake",
			"postgresql://intake:xxxxx@db/intake"},
		{"query password", "postgres://db/intake?password=hunter2&sslmode=disable",
			"postgres://db/intake?password=xxxxx&sslmode=disable"},
		{"multi-host", "postgres://intake:hunter2@h1:5432,h2:5432/intake?password=hunter2",
			"postgres://intake:xxxxx@h1:5432,h2:5432/intake?password=xxxxx"},
		{"unescaped @", "postgres://intake:hun@ter2@db/intake",
			"postgres://intake:xxxxx@db/intake"},
		// net/url would take "intake:1234" as host:port and "/ter2@db/intake"
		// as the path, hiding nothing.
		{"unescaped slash", "postgres://intake:1234/ter2@db/intake",
			"postgres://intake:xxxxx@db/intake"},
		{"unescaped question mark", "postgres://intake:1234?ter2@db/intake",
			"postgres://intake:xxxxx@db/intake"},
		{"keyword form", "host=db user=intake password=hunter2 dbname=intake",
			"host=db user=intake password=xxxxx dbname=intake"},
		{"keyword form quoted", "host=db password='hun ter2' dbname=intake",
			"host=db password=xxxxx dbname=intake"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := config.Default()
			c.DatabaseURL = tt.dsn
			r := c.Redacted()
			if r.DatabaseURL != tt.want {
				t.Errorf("Redacted().DatabaseURL = %q; want %q", r.DatabaseURL, tt.want)
			}
			if strings.Contains(r.DatabaseURL, "ter2") {
				t.Errorf("Redacted().DatabaseURL = %q; it leaks the password", r.DatabaseURL)
			}
			if c.DatabaseURL != tt.dsn {
				t.Errorf("Redacted changed its receiver: DatabaseURL = %q; want %q", c.DatabaseURL, tt.dsn)
			}
			r.DatabaseURL = c.DatabaseURL
			if r != c {
				t.Errorf("Redacted() changed more than DatabaseURL: %+v; want %+v", r, c)
			}
		})
	}
}

// Operators read --help to learn where a setting comes from: every line must
// name the env var and state the default.
func TestHelpNamesEnvAndDefault(t *testing.T) {
	t.Parallel()
	var c config.Config
	fs := pflag.NewFlagSet("intake", pflag.ContinueOnError)
	c.RegisterFlags(fs)
	lines := strings.Split(fs.FlagUsagesWrapped(0), "\n")
	fs.VisitAll(func(f *pflag.Flag) {
		env := "(env INTAKE_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_")) + ")"
		for _, l := range lines {
			if strings.HasPrefix(strings.TrimSpace(l), "--"+f.Name+" ") {
				if !strings.Contains(l, env) || strings.Count(l, "(default ") != 1 {
					t.Errorf("help for --%s = %q; want it to contain %q and one (default ...)", f.Name, l, env)
				}
				return
			}
		}
		t.Errorf("no help line for --%s in:\n%s", f.Name, fs.FlagUsages())
	})
}

func TestRegisterFlagsSetsDefaults(t *testing.T) {
	t.Parallel()
	c := config.Config{Listen: "stale", Store: "stale"}
	c.RegisterFlags(pflag.NewFlagSet("intake", pflag.ContinueOnError))
	if c != config.Default() {
		t.Errorf("after RegisterFlags, Config = %+v; want Default() %+v", c, config.Default())
	}
}

func TestLogValueHidesPassword(t *testing.T) {
	t.Parallel()
	c := config.Default()
	c.DatabaseURL = "postgres://intake:s3cret@db:5432/intake"
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("starting", "config", c)
	if strings.Contains(buf.String(), "s3cret") || !strings.Contains(buf.String(), "config.database_url=") {
		t.Errorf("log line = %q; want the database URL without its password", buf.String())
	}
}
