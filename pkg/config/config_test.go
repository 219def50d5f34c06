package config_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"slices"
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
		{"quota", func(c *config.Config) { c.QuotaBytes = 50 << 30 }},
		{"smallest metadata cap", func(c *config.Config) { c.MaxMetadataBytes = 1 }},
		{"largest metadata cap", func(c *config.Config) { c.MaxMetadataBytes = 1 << 20 }},
		{"required metadata", func(c *config.Config) { c.RequireMetadata = "filename, filetype,project_id," }},
		{"required metadata with symbols", func(c *config.Config) { c.RequireMetadata = "x-tenant.id" }},
		{"allowed types", func(c *config.Config) { c.AllowedTypes = "video/*, image/png,application/vnd.ms-excel" }},
		{"allowed types upper case", func(c *config.Config) { c.AllowedTypes = "Image/PNG" }},
		{"allowed types any", func(c *config.Config) { c.AllowedTypes = "*" }},
		{"allowed types any of any", func(c *config.Config) { c.AllowedTypes = "*/*" }},
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
		{"jwt hs256 at the minimum", jwt(nil)},
		{"jwt hs256 long secret", jwt(func(c *config.Config) { c.JWTSecret = strings.Repeat("k", 88) })},
		// Validate does not read the file: intake serve does, and says why
		// it cannot.
		{"jwt public key", func(c *config.Config) { c.Auth, c.JWTPublicKeyFile = "jwt", "/etc/intake/issuer.pem" }},
		{"jwt issuer and audience", jwt(func(c *config.Config) {
			c.JWTIssuer, c.JWTAudience = "https://auth.example.com/", "intake"
		})},
		{"jwt no leeway", jwt(func(c *config.Config) { c.JWTLeeway = 0 })},
		{"jwt largest leeway", jwt(func(c *config.Config) { c.JWTLeeway = 5 * time.Minute })},
		{"cors one origin", func(c *config.Config) { c.CORSOrigins = "https://app.example.com" }},
		{"cors origin with port", func(c *config.Config) { c.CORSOrigins = "http://localhost:3000" }},
		{"cors ipv6 origin", func(c *config.Config) { c.CORSOrigins = "http://[::1]:5173" }},
		{"cors list with spaces", func(c *config.Config) { c.CORSOrigins = "https://app.example.com, https://admin.example.com" }},
		{"cors subdomain pattern", func(c *config.Config) { c.CORSOrigins = "https://*.example.com" }},
		{"cors port pattern", func(c *config.Config) { c.CORSOrigins = "http://127.0.0.1:*" }},
		{"cors any in a list", func(c *config.Config) { c.CORSOrigins = "https://app.example.com,*" }},
		{"cors credentials with listed origins", func(c *config.Config) {
			c.CORSOrigins, c.CORSAllowCredentials = "https://app.example.com,https://*.example.com", true
		}},
		{"cors no preflight cache", func(c *config.Config) { c.CORSMaxAge = 0 }},
		{"cors day-long preflight cache", func(c *config.Config) { c.CORSMaxAge = 24 * time.Hour }},
		{"admin listen loopback", func(c *config.Config) { c.AdminListen = "127.0.0.1:9090" }},
		{"admin listen all interfaces", func(c *config.Config) { c.AdminListen = ":9090" }},
		{"admin listen same host other port", func(c *config.Config) { c.Listen, c.AdminListen = ":8080", ":9090" }},
		// Port 0 is a fresh port for each listener, as tests use them.
		{"admin and public on random ports", func(c *config.Config) { c.Listen, c.AdminListen = "127.0.0.1:0", "127.0.0.1:0" }},
		{"admin token at the minimum", func(c *config.Config) { c.AdminToken = strings.Repeat("t", 16) }},
		{"admin token and listen", func(c *config.Config) { c.AdminListen, c.AdminToken = "127.0.0.1:9090", strings.Repeat("t", 32) }},
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
		{"negative quota", func(c *config.Config) { c.QuotaBytes = -1 },
			[]string{"--quota-bytes", "INTAKE_QUOTA_BYTES", "use 0 for no quota"}},
		{"zero metadata cap", func(c *config.Config) { c.MaxMetadataBytes = 0 },
			[]string{"--max-metadata-bytes", "INTAKE_MAX_METADATA_BYTES", "is 0", "e.g. 4KiB"}},
		{"metadata cap over 1MiB", func(c *config.Config) { c.MaxMetadataBytes = 1<<20 + 1 },
			[]string{"--max-metadata-bytes", "1MiB"}},
		{"required metadata with a space", func(c *config.Config) { c.RequireMetadata = "filename,project id" },
			[]string{"--require-metadata", "INTAKE_REQUIRE_METADATA", `"project id"`, "separated by commas"}},
		{"required metadata not ascii", func(c *config.Config) { c.RequireMetadata = "dateiname,größe" },
			[]string{"--require-metadata", `"größe"`}},
		{"allowed type without subtype", func(c *config.Config) { c.AllowedTypes = "image" },
			[]string{"--allowed-types", "INTAKE_ALLOWED_TYPES", `"image" is not a media type pattern`, "video/*"}},
		{"allowed type with wildcard type", func(c *config.Config) { c.AllowedTypes = "image/*,*/png" },
			[]string{"--allowed-types", `"*/png"`}},
		{"allowed type with parameters", func(c *config.Config) { c.AllowedTypes = "text/plain; charset=utf-8" },
			[]string{"--allowed-types", "text/plain; charset=utf-8"}},
		{"allowed type extension", func(c *config.Config) { c.AllowedTypes = ".png" },
			[]string{"--allowed-types", `".png"`}},
		{"allowed types space separated", func(c *config.Config) { c.AllowedTypes = "image/png image/jpeg" },
			[]string{"--allowed-types", "separated by commas"}},
		{"zero network timeout", func(c *config.Config) { c.NetworkTimeout = 0 },
			[]string{"--network-timeout", "INTAKE_NETWORK_TIMEOUT", "greater than zero"}},
		{"negative lock timeout", func(c *config.Config) { c.LockTimeout = -time.Second },
			[]string{"--lock-timeout", "greater than zero"}},
		{"zero shutdown timeout", func(c *config.Config) { c.ShutdownTimeout = 0 },
			[]string{"--shutdown-timeout", "greater than zero"}},
		{"auth unknown", func(c *config.Config) { c.Auth = "oauth" },
			[]string{"--auth", "INTAKE_AUTH", `"oauth"`, "use none or jwt"}},
		{"auth upper case", func(c *config.Config) { c.Auth = "JWT" },
			[]string{"--auth", `"JWT"`, "use none or jwt"}},
		{"auth empty", func(c *config.Config) { c.Auth = "" },
			[]string{"--auth", "use none or jwt"}},
		{"jwt without a key", func(c *config.Config) { c.Auth = "jwt" },
			[]string{"--auth", "INTAKE_AUTH", "--jwt-secret", "--jwt-public-key-file"}},
		{"jwt with secret and key file", jwt(func(c *config.Config) { c.JWTPublicKeyFile = "/etc/intake/issuer.pem" }),
			[]string{"--jwt-secret", "INTAKE_JWT_SECRET", "not both"}},
		// 31 bytes: one short of HS256's 256 bits.
		{"jwt secret too short", jwt(func(c *config.Config) { c.JWTSecret = "hunter2-" + strings.Repeat("x", 23) }),
			[]string{"--jwt-secret", "INTAKE_JWT_SECRET", "has 31 bytes", "at least 32"}},
		{"jwt negative leeway", jwt(func(c *config.Config) { c.JWTLeeway = -time.Second }),
			[]string{"--jwt-leeway", "INTAKE_JWT_LEEWAY", "between 0 and 5m"}},
		{"jwt leeway over 5m", jwt(func(c *config.Config) { c.JWTLeeway = 5*time.Minute + time.Second }),
			[]string{"--jwt-leeway", "is 5m1s", "between 0 and 5m"}},
		// Serving anonymously while a key is configured would look
		// protected and not be.
		{"secret without jwt auth", func(c *config.Config) { c.JWTSecret = "hunter2-" + strings.Repeat("x", 32) },
			[]string{"--auth", "is none", "--jwt-secret", "use --auth jwt"}},
		{"key file without jwt auth", func(c *config.Config) { c.JWTPublicKeyFile = "/etc/intake/issuer.pem" },
			[]string{"--auth", "is none", "use --auth jwt"}},
		{"cors empty", func(c *config.Config) { c.CORSOrigins = " " },
			[]string{"--cors-origins", "INTAKE_CORS_ORIGINS", "must not be empty", `"*"`}},
		{"cors host without scheme", func(c *config.Config) { c.CORSOrigins = "app.example.com" },
			[]string{"--cors-origins", `"app.example.com" is not an origin`, "https://app.example.com"}},
		{"cors other scheme", func(c *config.Config) { c.CORSOrigins = "ftp://app.example.com" },
			[]string{"--cors-origins", `"ftp://app.example.com"`}},
		{"cors scheme upper case", func(c *config.Config) { c.CORSOrigins = "HTTPS://app.example.com" },
			[]string{"--cors-origins", "is not an origin"}},
		{"cors trailing slash", func(c *config.Config) { c.CORSOrigins = "https://app.example.com/" },
			[]string{"--cors-origins", `"https://app.example.com/"`, "without a path"}},
		{"cors path", func(c *config.Config) { c.CORSOrigins = "https://app.example.com/upload" },
			[]string{"--cors-origins", "without a path"}},
		{"cors query", func(c *config.Config) { c.CORSOrigins = "https://app.example.com?x=1" },
			[]string{"--cors-origins", "is not an origin"}},
		{"cors no host", func(c *config.Config) { c.CORSOrigins = "https://" },
			[]string{"--cors-origins", `"https://"`}},
		{"cors user info", func(c *config.Config) { c.CORSOrigins = "https://me@app.example.com" },
			[]string{"--cors-origins", "is not an origin"}},
		{"cors null", func(c *config.Config) { c.CORSOrigins = "null" },
			[]string{"--cors-origins", `"null" is not an origin`}},
		{"cors space separated", func(c *config.Config) { c.CORSOrigins = "https://a.example.com https://b.example.com" },
			[]string{"--cors-origins", "separated by commas"}},
		{"cors one bad in a list", func(c *config.Config) { c.CORSOrigins = "https://app.example.com, localhost:3000" },
			[]string{"--cors-origins", `"localhost:3000"`}},
		{"cors credentials with any origin", func(c *config.Config) { c.CORSAllowCredentials = true },
			[]string{"--cors-allow-credentials", "INTAKE_CORS_ALLOW_CREDENTIALS", "'*'", "list the origins"}},
		// "*" anywhere in the list allows every origin.
		{"cors credentials with any origin in a list", func(c *config.Config) {
			c.CORSOrigins, c.CORSAllowCredentials = "https://app.example.com, *", true
		}, []string{"--cors-allow-credentials", "'*'"}},
		{"cors negative max age", func(c *config.Config) { c.CORSMaxAge = -time.Second },
			[]string{"--cors-max-age", "INTAKE_CORS_MAX_AGE", "must not be negative"}},
		{"admin listen without port", func(c *config.Config) { c.AdminListen = "127.0.0.1" },
			[]string{"--admin-listen", "INTAKE_ADMIN_LISTEN", `"127.0.0.1"`, "e.g. 127.0.0.1:9090"}},
		{"admin listen named port", func(c *config.Config) { c.AdminListen = "localhost:metrics" },
			[]string{"--admin-listen", "numeric port"}},
		{"admin listen port out of range", func(c *config.Config) { c.AdminListen = ":90000" },
			[]string{"--admin-listen"}},
		{"admin listen equals listen", func(c *config.Config) { c.AdminListen = c.Listen },
			[]string{"--admin-listen", "overlaps --listen", "127.0.0.1:8080"}},
		{"admin listen inside listen's wildcard", func(c *config.Config) { c.Listen, c.AdminListen = ":8080", "127.0.0.1:8080" },
			[]string{"--admin-listen", "overlaps --listen"}},
		{"admin listen wildcard over listen", func(c *config.Config) { c.AdminListen = "0.0.0.0:8080" },
			[]string{"--admin-listen", "overlaps --listen"}},
		{"admin token too short", func(c *config.Config) { c.AdminToken = "hunter2-hunter2" },
			[]string{"--admin-token", "INTAKE_ADMIN_TOKEN", "16 characters"}},
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
			// Every password, secret and token in the table holds hunter2.
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("Validate() = %q; it leaks a password or secret", err)
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

// Every auth problem is reported at once, not one per restart.
func TestValidateReportsEveryAuthProblem(t *testing.T) {
	t.Parallel()
	c := config.Default()
	c.Auth, c.JWTLeeway = "jwt", time.Hour
	c.CORSOrigins, c.CORSAllowCredentials = "*", true
	c.AdminListen, c.AdminToken = c.Listen, "short"
	err := c.Validate()
	if err == nil {
		t.Fatal("Validate() = nil; want five problems")
	}
	for _, flag := range []string{"--auth", "--jwt-leeway", "--cors-allow-credentials", "--admin-listen", "--admin-token"} {
		if !strings.Contains(err.Error(), flag) {
			t.Errorf("Validate() = %q; want it to name %s", err, flag)
		}
	}
	if got := strings.Count(err.Error(), "\n") + 1; got != 5 {
		t.Errorf("Validate() reported %d problems; want 5:\n%v", got, err)
	}
}

// jwt returns a mutation that selects --auth jwt with a 32-byte HS256
// secret, the shortest accepted, and then applies more.
func jwt(more func(*config.Config)) func(*config.Config) {
	return func(c *config.Config) {
		c.Auth, c.JWTSecret = "jwt", strings.Repeat("s", 32)
		if more != nil {
			more(c)
		}
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

func TestPolicyLists(t *testing.T) {
	t.Parallel()
	c := config.Default()
	if got := c.RequiredMetadataKeys(); got != nil {
		t.Errorf("default RequiredMetadataKeys() = %q; want none", got)
	}
	if got := c.AllowedTypePatterns(); got != nil {
		t.Errorf("default AllowedTypePatterns() = %q; want none (any type)", got)
	}
	c.RequireMetadata, c.AllowedTypes = " filename ,, project ,", "video/*, image/png"
	if got, want := c.RequiredMetadataKeys(), []string{"filename", "project"}; !slices.Equal(got, want) {
		t.Errorf("RequiredMetadataKeys() = %q; want %q", got, want)
	}
	if got, want := c.AllowedTypePatterns(), []string{"video/*", "image/png"}; !slices.Equal(got, want) {
		t.Errorf("AllowedTypePatterns() = %q; want %q", got, want)
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

// secretConfig is a valid configuration with every secret intake has set,
// each distinct so a leak names itself.
func secretConfig() config.Config {
	c := config.Default()
	c.DatabaseURL = "postgres://intake:db-s3cret@db:5432/intake"
	c.Auth, c.JWTSecret = "jwt", "jwt-s3cret-0123456789abcdefghijklmnop"
	c.AdminListen, c.AdminToken = "127.0.0.1:9090", "admin-s3cret-0123456789"
	return c
}

var secrets = []string{"db-s3cret", "jwt-s3cret", "admin-s3cret"}

func TestRedactedHidesSecrets(t *testing.T) {
	t.Parallel()
	c := secretConfig()
	if err := c.Validate(); err != nil {
		t.Fatalf("secretConfig().Validate() = %v; want nil", err)
	}
	r := c.Redacted()
	if r.JWTSecret != "xxxxx" || r.AdminToken != "xxxxx" {
		t.Errorf("Redacted() JWTSecret, AdminToken = %q, %q; want xxxxx, xxxxx", r.JWTSecret, r.AdminToken)
	}
	if dump := fmt.Sprintf("%+v", r); containsAny(dump, secrets) {
		t.Errorf("Redacted() = %s; it leaks a secret", dump)
	}
	if c.JWTSecret != secretConfig().JWTSecret || c.AdminToken != secretConfig().AdminToken {
		t.Error("Redacted changed its receiver")
	}
	// Only the secrets change.
	r.DatabaseURL, r.JWTSecret, r.AdminToken = c.DatabaseURL, c.JWTSecret, c.AdminToken
	if r != c {
		t.Errorf("Redacted() changed more than the secrets: %+v; want %+v", r, c)
	}

	// Unset stays unset, so a log line still tells the two apart.
	if r := config.Default().Redacted(); r.JWTSecret != "" || r.AdminToken != "" {
		t.Errorf("Default().Redacted() JWTSecret, AdminToken = %q, %q; want empty", r.JWTSecret, r.AdminToken)
	}
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// A Config is logged at start; no log line may hold a secret, in either
// format, however the Config reaches the logger.
func TestLogValueHidesSecrets(t *testing.T) {
	t.Parallel()
	c := secretConfig()
	var buf bytes.Buffer
	for _, h := range []slog.Handler{slog.NewTextHandler(&buf, nil), slog.NewJSONHandler(&buf, nil)} {
		log := slog.New(h)
		log.Info("starting", "config", c)
		log.Info("starting", "config", &c)
		log.Info("starting", slog.Any("config", c))
		log.With("config", c).Info("starting")
	}
	out := buf.String()
	if containsAny(out, secrets) {
		t.Errorf("log lines leak a secret:\n%s", out)
	}
	for _, want := range []string{"config.auth=jwt", `"auth":"jwt"`, "config.admin_listen=127.0.0.1:9090"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lines lack %s:\n%s", want, out)
		}
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
