package config

import (
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/pflag"
)

// Config is every setting of the intake server. Each field is bound to the
// flag named in its comment; the env var is INTAKE_ followed by the flag name
// upper-cased with "-" replaced by "_".
type Config struct {
	// ConfigFile (--config) is the YAML file to read settings from. It cannot
	// be set from inside that file. Defaults to "" (no file).
	ConfigFile string
	// Listen (--listen) is the host:port to serve HTTP on. Defaults to
	// "127.0.0.1:8080".
	Listen string
	// BasePath (--base-path) is the URL path of the tus endpoint. It must
	// start with "/"; Resolve adds a trailing "/". Defaults to "/files/".
	BasePath string
	// DataDir (--data-dir) holds uploaded bytes and, by default, the SQLite
	// catalog. Defaults to "./data".
	DataDir string
	// DatabaseURL (--database-url) selects the catalog: "" for SQLite at
	// <DataDir>/intake.db, "sqlite:PATH" for SQLite elsewhere, or
	// "postgres://..." for PostgreSQL. Defaults to "".
	DatabaseURL string
	// DBMaxConns (--db-max-conns) is the PostgreSQL pool size, at least 2.
	// Defaults to 16.
	DBMaxConns int
	// Store (--store) is where upload bytes live: "file" (under DataDir) or
	// "s3" (an S3-compatible bucket). Defaults to "file".
	Store string
	// S3Bucket (--s3-bucket) is the bucket for --store s3. Required then.
	S3Bucket string
	// S3Endpoint (--s3-endpoint) is the S3 API URL for non-AWS servers
	// (MinIO, R2, versitygw, ...). Defaults to "" (AWS S3).
	S3Endpoint string
	// S3Region (--s3-region) is the bucket's region. Defaults to
	// "us-east-1"; AWS_REGION does not override an explicit flag.
	S3Region string
	// S3PathStyle (--s3-path-style) addresses buckets as endpoint/bucket
	// instead of bucket.endpoint, as most self-hosted servers need.
	// Defaults to false.
	S3PathStyle bool
	// S3Prefix (--s3-prefix) is prepended to every object key intake writes.
	// Defaults to "".
	S3Prefix string
	// S3CreateBucket (--s3-create-bucket) creates the bucket at start when
	// it is missing. Defaults to false.
	S3CreateBucket bool
	// S3PartSize (--s3-part-size) is the preferred multipart part size.
	// Defaults to 50MiB.
	S3PartSize ByteSize
	// S3MinPartSize (--s3-min-part-size) is the smallest part sent except the
	// last; smaller PATCHes wait in a .part object. Defaults to 5MiB.
	S3MinPartSize ByteSize
	// S3MaxBufferedParts (--s3-max-buffered-parts) is how many parts may wait
	// on local disk for upload per request. Defaults to 20.
	S3MaxBufferedParts int
	// S3ConcurrentParts (--s3-concurrent-part-uploads) is how many parts the
	// whole process sends to S3 at once. Defaults to 10.
	S3ConcurrentParts int
	// S3TempDir (--s3-temp-dir) buffers parts before they are sent.
	// Defaults to "" (<data-dir>/s3-tmp).
	S3TempDir string
	// DownloadRedirect (--download-redirect) answers GET of a completed S3
	// upload with a 302 to a presigned URL instead of streaming it.
	// Defaults to false.
	DownloadRedirect bool
	// DownloadURLTTL (--download-url-ttl) is how long a presigned download
	// URL stays valid. Defaults to 5m.
	DownloadURLTTL time.Duration
	// MaxSize (--max-size) is the largest upload accepted; 0 means no limit.
	// Defaults to 0.
	MaxSize ByteSize
	// MaxMetadataBytes (--max-metadata-bytes) is the largest Upload-Metadata
	// header accepted, from 1 byte to 1MiB; a larger one gets 431. Defaults
	// to 4KiB.
	MaxMetadataBytes ByteSize
	// QuotaBytes (--quota-bytes) caps what one owner holds: the sizes of
	// its complete uploads plus the declared sizes of its uploads in
	// flight; a creation that would pass it gets 413. 0 means no quota.
	// Defaults to 0.
	QuotaBytes ByteSize
	// RequireMetadata (--require-metadata) is a comma-separated list of
	// Upload-Metadata keys every upload but a partial one must declare with
	// a value (400 otherwise). Defaults to "" (none).
	RequireMetadata string
	// AllowedTypes (--allowed-types) is a comma-separated list of media
	// types uploads may be: exact (image/png), a whole type (video/*) or
	// "*". The declared filetype is checked at creation (415). Defaults to
	// "" (any type).
	AllowedTypes string
	// FileSync (--file-sync) fsyncs stored bytes before a PATCH is
	// acknowledged. Defaults to true.
	FileSync bool
	// NetworkTimeout (--network-timeout) is how long a request may go
	// without the client sending or receiving data. Defaults to 60s.
	NetworkTimeout time.Duration
	// LockTimeout (--lock-timeout) is how long a request waits for the lock
	// on an upload another request holds. Defaults to 20s.
	LockTimeout time.Duration
	// ShutdownTimeout (--shutdown-timeout) is how long in-flight requests
	// get to finish on shutdown. Defaults to 30s.
	ShutdownTimeout time.Duration
	// BehindProxy (--behind-proxy) trusts X-Forwarded-* and Forwarded
	// headers when building upload URLs. Defaults to false.
	BehindProxy bool
	// Migrate (--migrate) applies pending catalog migrations at start.
	// Defaults to true.
	Migrate bool
	// DedupScope (--dedup-scope) is whose stored content a declared sha256
	// may match before the transfer (preflight and creation): "owner",
	// "global" (a known cross-tenant side channel) or "off". Content is
	// stored once whatever the scope. Defaults to "owner".
	DedupScope string
	// Auth (--auth) is "none" (anonymous, owner "") or "jwt" (a bearer
	// token on every request; its sub is the owner). Defaults to "none".
	Auth string
	// JWTSecret (--jwt-secret) is the HS256 key, at least 32 bytes. With
	// --auth jwt, exactly one of it and JWTPublicKeyFile is set. Defaults
	// to "" (none).
	JWTSecret string
	// JWTPublicKeyFile (--jwt-public-key-file) is a PEM RSA (RS256) or
	// ECDSA P-256 (ES256) public key; the key fixes the algorithm.
	// Defaults to "" (none).
	JWTPublicKeyFile string
	// JWTIssuer and JWTAudience (--jwt-issuer, --jwt-audience), when set,
	// must match the token's iss and aud. Default to "" (any).
	JWTIssuer, JWTAudience string
	// JWTLeeway (--jwt-leeway) tolerates clock skew on exp, nbf and iat,
	// from 0 to 5m. Defaults to 30s.
	JWTLeeway time.Duration
	// CORSOrigins (--cors-origins) lists the browser origins allowed to
	// call intake: exact origins, patterns with "*" (https://*.example.com,
	// http://127.0.0.1:*), or "*" for any. Defaults to "*".
	CORSOrigins string
	// CORSAllowCredentials (--cors-allow-credentials) lets browsers send
	// cookies. Defaults to false (bearer tokens need no credentials mode).
	CORSAllowCredentials bool
	// CORSMaxAge (--cors-max-age) is how long browsers may cache a
	// preflight. Defaults to 1h.
	CORSMaxAge time.Duration
	// AdminListen (--admin-listen) serves /metrics and the admin API on
	// their own address instead of the public one. Defaults to "" (public).
	AdminListen string
	// AdminToken (--admin-token) is the bearer token the admin endpoints
	// require, at least 16 characters. Without it and without AdminListen
	// the admin API is not served. Defaults to "" (none).
	AdminToken string
	// UploadTTL (--upload-ttl) is how long an incomplete upload may go
	// without a committed change before it expires (sliding: every PATCH
	// restarts it); 0 means never. Defaults to 24h.
	UploadTTL time.Duration
	// ReapInterval (--reap-interval) is how often expired uploads are
	// released; 0 turns the reaper off. Defaults to 30m.
	ReapInterval time.Duration
	// ReconcileInterval (--reconcile-interval) is how often uploads stored
	// but never finalized (a crash at the wrong moment) are looked for and
	// finalized; 0 turns the sweep off. Defaults to 5m.
	ReconcileInterval time.Duration
	// LogFormat (--log-format) is "text" or "json". Defaults to "text".
	LogFormat string
	// LogLevel (--log-level) is "debug", "info", "warn" or "error". Defaults
	// to "info".
	LogLevel string

	// ---- Webhooks (flags in webhook.go) ----
	// WebhookURL (--webhook-url) receives outbox events as signed JSON
	// POSTs. Defaults to "" (no webhooks).
	WebhookURL string
	// WebhookSecret (--webhook-secret) is the HMAC-SHA256 key of the
	// Webhook-Signature header, at least 32 bytes; required with
	// WebhookURL. Defaults to "" (none).
	WebhookSecret string
	// WebhookMaxAge (--webhook-max-age) is how long after it occurred an
	// event is retried before it is dead-lettered. Defaults to 24h.
	WebhookMaxAge time.Duration
	// WebhookTimeout (--webhook-timeout) bounds each delivery request, at
	// most 5m. Defaults to 10s.
	WebhookTimeout time.Duration
	// PublicURL (--public-url) is the base URL clients reach intake at,
	// for the download_url of events. Defaults to "" (http:// and the
	// listening address; see DownloadBase).
	PublicURL string
	// ---- end of webhooks ----
}

// Default returns the configuration used when nothing is set.
func Default() Config {
	return Config{
		Listen:             "127.0.0.1:8080",
		BasePath:           "/files/",
		DataDir:            "./data",
		DBMaxConns:         16,
		Store:              "file",
		S3Region:           "us-east-1",
		S3PartSize:         50 << 20,
		S3MinPartSize:      5 << 20,
		S3MaxBufferedParts: 20,
		S3ConcurrentParts:  10,
		DownloadURLTTL:     5 * time.Minute,
		MaxMetadataBytes:   4 << 10,
		DedupScope:         "owner",
		Auth:               "none",
		JWTLeeway:          30 * time.Second,
		CORSOrigins:        "*",
		CORSMaxAge:         time.Hour,
		FileSync:           true,
		NetworkTimeout:     60 * time.Second,
		LockTimeout:        20 * time.Second,
		ShutdownTimeout:    30 * time.Second,
		Migrate:            true,
		UploadTTL:          24 * time.Hour,
		ReapInterval:       30 * time.Minute,
		ReconcileInterval:  5 * time.Minute,
		LogFormat:          "text",
		LogLevel:           "info",

		// webhooks
		WebhookMaxAge:  24 * time.Hour,
		WebhookTimeout: 10 * time.Second,
	}
}

// envVar returns the environment variable for a flag: "max-size" ->
// "INTAKE_MAX_SIZE".
func envVar(flag string) string {
	return "INTAKE_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// RegisterFlags resets c to Default and binds every setting to fs. The help
// text of each flag ends with its env var and its default: pflag appends
// "(default X)" for non-zero defaults, and zero defaults, which pflag leaves
// out, say what they mean.
func (c *Config) RegisterFlags(fs *pflag.FlagSet) {
	*c = Default()
	// usage appends the env var and, for a zero default, a "(default ...)"
	// in the same place pflag puts the others.
	usage := func(name, text, zeroDefault string) string {
		text += " (env " + envVar(name) + ")"
		if zeroDefault != "" {
			text += " (default " + zeroDefault + ")"
		}
		return text
	}
	str := func(p *string, name, text, zeroDefault string) {
		fs.StringVar(p, name, *p, usage(name, text, zeroDefault))
	}
	dur := func(p *time.Duration, name, text string) {
		fs.DurationVar(p, name, *p, usage(name, text, ""))
	}
	boolean := func(p *bool, name, text, zeroDefault string) {
		fs.BoolVar(p, name, *p, usage(name, text, zeroDefault))
	}

	str(&c.ConfigFile, "config", "YAML file of settings keyed by flag name; flags and env vars override it", "none")
	str(&c.Listen, "listen", "host:port to serve HTTP on", "")
	str(&c.BasePath, "base-path", "URL path of the tus endpoint; must start with /", "")
	str(&c.DataDir, "data-dir", "directory for upload bytes (<data-dir>/uploads) and the default SQLite catalog", "")
	str(&c.DatabaseURL, "database-url", "catalog database: postgres://user:pass@host/db for PostgreSQL or sqlite:PATH", "SQLite at <data-dir>/intake.db")
	fs.IntVar(&c.DBMaxConns, "db-max-conns", c.DBMaxConns, usage("db-max-conns", "maximum PostgreSQL connections, at least 2", ""))
	str(&c.Store, "store", `where upload bytes are stored: "file" (under data-dir) or "s3"`, "")
	str(&c.S3Bucket, "s3-bucket", "bucket for --store s3", "none")
	str(&c.S3Endpoint, "s3-endpoint", "S3 API URL of a non-AWS server, e.g. http://minio:9000", "AWS S3")
	str(&c.S3Region, "s3-region", "region of the bucket", "")
	boolean(&c.S3PathStyle, "s3-path-style", "address buckets as endpoint/bucket (most self-hosted S3 servers need this)", "false")
	str(&c.S3Prefix, "s3-prefix", "prefix for every object key intake writes, e.g. uploads/", "none")
	boolean(&c.S3CreateBucket, "s3-create-bucket", "create the bucket at start when it does not exist", "false")
	fs.Var(&c.S3PartSize, "s3-part-size", usage("s3-part-size", "preferred multipart part size", ""))
	fs.Var(&c.S3MinPartSize, "s3-min-part-size", usage("s3-min-part-size", "smallest part sent before the last; Cloudflare R2 needs it equal to --s3-part-size", ""))
	fs.IntVar(&c.S3MaxBufferedParts, "s3-max-buffered-parts", c.S3MaxBufferedParts, usage("s3-max-buffered-parts", "parts of one request that may wait on local disk", ""))
	fs.IntVar(&c.S3ConcurrentParts, "s3-concurrent-part-uploads", c.S3ConcurrentParts, usage("s3-concurrent-part-uploads", "parts the process sends to S3 at once", ""))
	str(&c.S3TempDir, "s3-temp-dir", "local directory where parts wait before they are sent; one per process (stale files are removed at start)", "<data-dir>/s3-tmp")
	boolean(&c.DownloadRedirect, "download-redirect", "answer GET of a completed S3 upload with a 302 to a presigned URL", "false")
	dur(&c.DownloadURLTTL, "download-url-ttl", "lifetime of a presigned download URL")
	fs.Var(&c.MaxSize, "max-size", usage("max-size", "largest upload accepted, in bytes or with a unit such as 500MB or 10GiB; 0 means no limit", "0"))
	fs.Var(&c.MaxMetadataBytes, "max-metadata-bytes", usage("max-metadata-bytes", "largest Upload-Metadata header accepted, up to 1MiB; larger ones get 431", ""))
	fs.Var(&c.QuotaBytes, "quota-bytes", usage("quota-bytes", "most bytes one owner may hold, stored plus declared sizes of uploads in flight (same units as --max-size); 0 means no quota", "0"))
	str(&c.RequireMetadata, "require-metadata", "comma-separated Upload-Metadata keys every upload must declare, e.g. filename,filetype", "none")
	str(&c.AllowedTypes, "allowed-types", "comma-separated media types uploads may declare as filetype: exact (image/png), video/* or *", "any")
	boolean(&c.FileSync, "file-sync", "fsync stored bytes before acknowledging a PATCH; off risks losing acknowledged bytes on power loss", "")
	dur(&c.NetworkTimeout, "network-timeout", "close a request that sends or receives no data for this long")
	dur(&c.LockTimeout, "lock-timeout", "how long a request waits for an upload locked by another request")
	dur(&c.ShutdownTimeout, "shutdown-timeout", "how long in-flight requests get to finish on shutdown")
	boolean(&c.BehindProxy, "behind-proxy", "trust X-Forwarded-* and Forwarded headers; enable only behind a proxy that sets them", "false")
	boolean(&c.Migrate, "migrate", "apply pending catalog migrations at start", "")
	str(&c.DedupScope, "dedup-scope", "whose stored content a declared sha256 may match before the transfer: owner, global (reveals other owners' content exists) or off", "")
	str(&c.Auth, "auth", "authentication: none (anonymous) or jwt (a bearer token on every request; sub is the owner)", "")
	str(&c.JWTSecret, "jwt-secret", "HS256 key for --auth jwt, at least 32 bytes; prefer the env var", "none")
	str(&c.JWTPublicKeyFile, "jwt-public-key-file", "PEM public key for --auth jwt: RSA (RS256) or ECDSA P-256 (ES256)", "none")
	str(&c.JWTIssuer, "jwt-issuer", "required iss of tokens", "any")
	str(&c.JWTAudience, "jwt-audience", "required aud of tokens", "any")
	dur(&c.JWTLeeway, "jwt-leeway", "clock skew tolerated on exp, nbf and iat")
	str(&c.CORSOrigins, "cors-origins", "comma-separated browser origins allowed: exact (https://app.example.com), patterns (https://*.example.com), or * for any", "")
	boolean(&c.CORSAllowCredentials, "cors-allow-credentials", "let browsers send cookies (not needed for bearer tokens)", "false")
	dur(&c.CORSMaxAge, "cors-max-age", "how long browsers may cache a CORS preflight")
	str(&c.AdminListen, "admin-listen", "host:port for /metrics and the admin API, off the public address", "the public address")
	str(&c.AdminToken, "admin-token", "bearer token the admin endpoints require; prefer the env var", "none")
	dur(&c.UploadTTL, "upload-ttl", "how long an incomplete upload may go without a committed PATCH before it expires (410); 0 never")
	dur(&c.ReapInterval, "reap-interval", "how often expired uploads are released; 0 turns the reaper off")
	dur(&c.ReconcileInterval, "reconcile-interval", "how often uploads stored but never finalized are looked for and finalized; 0 turns the sweep off")
	str(&c.LogFormat, "log-format", "log format: text or json", "")
	str(&c.LogLevel, "log-level", "minimum log level: debug, info, warn or error", "")
	c.registerWebhookFlags(fs, usage) // webhooks
}

// flagNames lists the flags RegisterFlags defines. It is derived from
// RegisterFlags itself so that Resolve and the file's key check cannot drift
// from it.
var flagNames = sync.OnceValue(func() []string {
	var c Config
	fs := pflag.NewFlagSet("names", pflag.ContinueOnError)
	c.RegisterFlags(fs)
	var names []string
	fs.VisitAll(func(f *pflag.Flag) { names = append(names, f.Name) })
	return names
})

// Validate reports every problem in c, each naming the flag and what to
// change. It never repeats the database URL, which may hold a password.
func (c Config) Validate() error {
	var errs []error
	bad := func(flag, format string, args ...any) {
		errs = append(errs, fmt.Errorf("--%s (env %s): %s", flag, envVar(flag), fmt.Sprintf(format, args...)))
	}

	if _, port, err := net.SplitHostPort(c.Listen); err != nil || !validPort(port) {
		bad("listen", "%q is not host:port with a numeric port; use e.g. 127.0.0.1:8080, or :8080 for all interfaces", c.Listen)
	}

	switch {
	case !strings.HasPrefix(c.BasePath, "/"):
		bad("base-path", "%q must start with \"/\", e.g. /files/", c.BasePath)
	case strings.ContainsAny(c.BasePath, "?# "):
		bad("base-path", "%q must be a plain URL path without spaces, \"?\" or \"#\", e.g. /files/", c.BasePath)
	}

	if strings.TrimSpace(c.DataDir) == "" {
		bad("data-dir", "must not be empty; use a directory such as ./data")
	}

	if msg := checkDatabaseURL(c.DatabaseURL); msg != "" {
		bad("database-url", "%s", msg)
	}

	if c.DBMaxConns < 2 {
		bad("db-max-conns", "is %d; it must be at least 2", c.DBMaxConns)
	}

	switch c.Store {
	case "file":
		if c.DownloadRedirect {
			bad("download-redirect", "needs --store s3: files on local disk have no presigned URLs")
		}
	case "s3":
		c.validateS3(bad)
	default:
		bad("store", "is %q; use file or s3", c.Store)
	}

	if c.MaxSize < 0 {
		bad("max-size", "must not be negative; use 0 for no limit or a size such as 10GiB")
	}

	if c.MaxMetadataBytes < 1 || c.MaxMetadataBytes > maxHeaderBytes {
		bad("max-metadata-bytes", "is %s; use from 1 byte to 1MiB (Go's HTTP server refuses larger request headers), e.g. 4KiB", c.MaxMetadataBytes)
	}
	if c.QuotaBytes < 0 {
		bad("quota-bytes", "must not be negative; use 0 for no quota or a size such as 50GiB")
	}
	for _, k := range c.RequiredMetadataKeys() {
		if strings.IndexFunc(k, func(r rune) bool { return r <= ' ' || r >= 0x7f }) >= 0 {
			bad("require-metadata", "key %q is not a metadata key: use visible ASCII without spaces, separated by commas, e.g. filename,filetype", k)
		}
	}
	for _, p := range c.AllowedTypePatterns() {
		if !validTypePattern(p) {
			bad("allowed-types", "%q is not a media type pattern; use type/subtype (image/png), type/* (video/*) or *, separated by commas", p)
		}
	}

	for _, d := range []struct {
		flag string
		v    time.Duration
	}{
		{"network-timeout", c.NetworkTimeout},
		{"lock-timeout", c.LockTimeout},
		{"shutdown-timeout", c.ShutdownTimeout},
	} {
		if d.v <= 0 {
			bad(d.flag, "is %s; it must be greater than zero, e.g. 30s", d.v)
		}
	}

	switch c.DedupScope {
	case "owner", "global", "off":
	default:
		bad("dedup-scope", "is %q; use owner, global or off", c.DedupScope)
	}

	switch c.Auth {
	case "jwt":
		switch {
		case c.JWTSecret == "" && c.JWTPublicKeyFile == "":
			bad("auth", "jwt needs --jwt-secret (HS256) or --jwt-public-key-file (RS256/ES256)")
		case c.JWTSecret != "" && c.JWTPublicKeyFile != "":
			bad("jwt-secret", "give either --jwt-secret or --jwt-public-key-file, not both")
		case c.JWTSecret != "" && len(c.JWTSecret) < 32:
			bad("jwt-secret", "has %d bytes; HS256 needs at least 32 (e.g. openssl rand -base64 32)", len(c.JWTSecret))
		}
		if c.JWTLeeway < 0 || c.JWTLeeway > 5*time.Minute {
			bad("jwt-leeway", "is %s; use between 0 and 5m", c.JWTLeeway)
		}
	case "none":
		// A key without --auth jwt means the operator believes uploads are
		// protected while anyone can make them: refuse rather than serve
		// anonymously. (Leftover S3 settings are tolerated; this is not.)
		if c.JWTSecret != "" || c.JWTPublicKeyFile != "" {
			bad("auth", "is none, but --jwt-secret or --jwt-public-key-file is set; use --auth jwt, or unset the key to serve anonymously")
		}
	default:
		bad("auth", "is %q; use none or jwt", c.Auth)
	}
	if msg := checkOrigins(c.CORSOrigins); msg != "" {
		bad("cors-origins", "%s", msg)
	}
	// "*" anywhere in the list allows every origin, so it would send
	// cookies to any site, not just the listed ones.
	if c.CORSAllowCredentials && slices.Contains(splitOrigins(c.CORSOrigins), "*") {
		bad("cors-allow-credentials", "cannot be combined with '*' in --cors-origins: list the origins that may send cookies")
	}
	if c.CORSMaxAge < 0 {
		bad("cors-max-age", "is %s; it must not be negative: use e.g. 1h, or 0 to make browsers preflight every request", c.CORSMaxAge)
	}
	if c.AdminListen != "" {
		if _, port, err := net.SplitHostPort(c.AdminListen); err != nil || !validPort(port) {
			bad("admin-listen", "%q is not host:port with a numeric port; use e.g. 127.0.0.1:9090", c.AdminListen)
		} else if sameAddress(c.AdminListen, c.Listen) {
			bad("admin-listen", "%q overlaps --listen %q; use another port, e.g. 127.0.0.1:9090", c.AdminListen, c.Listen)
		}
	}
	if c.AdminToken != "" && len(c.AdminToken) < 16 {
		bad("admin-token", "is shorter than 16 characters; use a long random value")
	}

	if c.UploadTTL < 0 {
		bad("upload-ttl", "must not be negative; use 0 for uploads that never expire")
	} else if c.UploadTTL > 0 && c.UploadTTL < time.Minute {
		bad("upload-ttl", "is %s; use at least 1m, or a slow client loses its upload between two PATCHes", c.UploadTTL)
	}
	if c.ReapInterval < 0 {
		bad("reap-interval", "must not be negative; use 0 to turn the reaper off")
	}
	if c.ReconcileInterval < 0 {
		bad("reconcile-interval", "must not be negative; use 0 to turn the sweep off")
	}

	if c.LogFormat != "text" && c.LogFormat != "json" {
		bad("log-format", "is %q; use text or json", c.LogFormat)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("log-level", "is %q; use debug, info, warn or error", c.LogLevel)
	}
	c.validateWebhooks(bad) // webhooks

	return errors.Join(errs...)
}

// maxHeaderBytes is net/http's limit on request headers
// (http.DefaultMaxHeaderBytes): a longer Upload-Metadata never arrives.
const maxHeaderBytes = 1 << 20

// RequiredMetadataKeys returns the keys of --require-metadata, without
// blanks.
func (c Config) RequiredMetadataKeys() []string { return splitList(c.RequireMetadata) }

// AllowedTypePatterns returns the patterns of --allowed-types, without
// blanks; none means any type.
func (c Config) AllowedTypePatterns() []string { return splitList(c.AllowedTypes) }

// splitList splits a comma-separated setting, dropping blank elements so
// that a trailing comma is harmless.
func splitList(list string) []string {
	var out []string
	for p := range strings.SplitSeq(list, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// validTypePattern reports whether p is a pattern hooks.TypeAllowed
// understands: "*", "*/*", "type/*" or "type/subtype", without parameters.
func validTypePattern(p string) bool {
	if p == "*" || p == "*/*" {
		return true
	}
	mt, params, err := mime.ParseMediaType(p)
	typ, sub, _ := strings.Cut(mt, "/")
	return err == nil && len(params) == 0 && !strings.Contains(p, ";") && typ != "*" && sub != ""
}

// splitOrigins splits a --cors-origins list the way pkg/cors reads it.
func splitOrigins(list string) []string {
	parts := strings.Split(list, ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}

// checkOrigins returns what is wrong with a --cors-origins list, or "".
func checkOrigins(list string) string {
	if strings.TrimSpace(list) == "" {
		return `must not be empty; use "*" for any origin or list them, e.g. https://app.example.com`
	}
	for _, o := range splitOrigins(list) {
		if o == "*" {
			continue
		}
		// A browser's Origin is scheme://host[:port] and nothing else: a
		// path, user info or space can never match one.
		scheme, rest, ok := strings.Cut(o, "://")
		if !ok || (scheme != "http" && scheme != "https") || rest == "" || strings.ContainsAny(rest, "/?#@ \t") {
			return fmt.Sprintf("%q is not an origin; use scheme://host[:port] without a path, e.g. https://app.example.com or https://*.example.com, separated by commas", o)
		}
	}
	return ""
}

// sameAddress reports whether two valid host:port addresses would compete
// for one port: the same non-zero port on the same host, or on a host and
// all interfaces. Port 0 is a fresh port each time, so it never competes.
func sameAddress(a, b string) bool {
	ha, pa, errA := net.SplitHostPort(a)
	hb, pb, errB := net.SplitHostPort(b)
	if errA != nil || errB != nil || pa != pb || pa == "0" {
		return false
	}
	anyHost := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	return ha == hb || anyHost(ha) || anyHost(hb)
}

// validBucketName is S3's rule for bucket names (the general-purpose bucket
// naming rules; ".." is refused separately).
var validBucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

func (c Config) validateS3(bad func(flag, format string, args ...any)) {
	switch {
	case c.S3Bucket == "":
		bad("s3-bucket", "is required with --store s3")
	case !validBucketName.MatchString(c.S3Bucket) || strings.Contains(c.S3Bucket, ".."):
		bad("s3-bucket", "%q is not a valid S3 bucket name: use 3 to 63 lower-case letters, digits, dots and hyphens, starting and ending with a letter or digit", c.S3Bucket)
	}
	if c.S3Endpoint != "" {
		u, err := url.Parse(c.S3Endpoint)
		switch {
		case strings.Contains(c.S3Endpoint, "@"):
			// Not quoted: the user info would be a secret key, and when it
			// is malformed net/url cannot even say where it ends.
			bad("s3-endpoint", "must not hold credentials; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY instead")
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			bad("s3-endpoint", "%q is not an http(s) URL; use e.g. https://s3.example.com or http://127.0.0.1:9000", c.S3Endpoint)
		}
	}
	if c.S3Region == "" {
		bad("s3-region", "must not be empty; use the bucket's region, or us-east-1 for most self-hosted servers")
	}
	const (
		minPart = 5 << 20 // S3's smallest part but the last
		maxPart = 5 << 30 // S3's largest part
	)
	switch {
	case c.S3MinPartSize < minPart:
		bad("s3-min-part-size", "is %s; S3 needs at least 5MiB", c.S3MinPartSize)
	case c.S3MinPartSize > maxPart:
		bad("s3-min-part-size", "is %s; S3 allows at most 5GiB", c.S3MinPartSize)
	case c.S3PartSize < c.S3MinPartSize || c.S3PartSize > maxPart:
		bad("s3-part-size", "is %s; it must be between --s3-min-part-size (%s) and 5GiB", c.S3PartSize, c.S3MinPartSize)
	}
	// With --s3-min-part-size itself wrong, hold the part size to S3's own
	// range rather than to a minimum that is about to change.
	if (c.S3MinPartSize < minPart || c.S3MinPartSize > maxPart) && (c.S3PartSize < minPart || c.S3PartSize > maxPart) {
		bad("s3-part-size", "is %s; it must be between 5MiB and 5GiB", c.S3PartSize)
	}
	if c.S3MaxBufferedParts < 1 {
		bad("s3-max-buffered-parts", "is %d; it must be at least 1", c.S3MaxBufferedParts)
	}
	if c.S3ConcurrentParts < 1 {
		bad("s3-concurrent-part-uploads", "is %d; it must be at least 1", c.S3ConcurrentParts)
	}
	if c.DownloadURLTTL <= 0 || c.DownloadURLTTL > 7*24*time.Hour {
		bad("download-url-ttl", "is %s; it must be greater than zero and at most 168h (S3's limit)", c.DownloadURLTTL)
	}
}

// S3TempDirPath returns where S3 parts wait: --s3-temp-dir, or
// <data-dir>/s3-tmp.
func (c Config) S3TempDirPath() string {
	if c.S3TempDir != "" {
		return c.S3TempDir
	}
	return filepath.Join(c.DataDir, "s3-tmp")
}

func validPort(p string) bool {
	n, err := strconv.Atoi(p)
	return err == nil && n >= 0 && n <= 65535
}

// checkDatabaseURL returns what is wrong with a database URL, or "". The
// message may name the scheme but never the rest of the URL.
func checkDatabaseURL(dsn string) string {
	const use = "use postgres://user:password@host:5432/dbname for PostgreSQL, sqlite:PATH for SQLite, or leave it empty for SQLite at <data-dir>/intake.db"
	switch {
	case dsn == "":
		return ""
	case isPostgres(dsn):
		// pgx parses the rest; net/url would reject valid pgx URLs such as
		// multi-host ones, and its errors quote the whole URL.
		return ""
	case strings.HasPrefix(dsn, "sqlite:"):
		if sqlitePath(dsn) == "" {
			return "sqlite: needs a file path, e.g. sqlite:/var/lib/intake/intake.db"
		}
		return ""
	}
	scheme, _, ok := strings.Cut(dsn, ":")
	if !ok || scheme == "" || strings.ContainsAny(scheme, " =/") {
		return "is not a URL; " + use
	}
	if strings.EqualFold(scheme, "postgres") || strings.EqualFold(scheme, "postgresql") || strings.EqualFold(scheme, "sqlite") {
		return fmt.Sprintf("scheme %q must be lower case; %s", scheme, use)
	}
	return fmt.Sprintf("unsupported scheme %q; %s", scheme, use)
}

// isPostgres matches what pgx accepts as a URL; pgx compares case-sensitively.
func isPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// UsesPostgres reports whether the catalog is PostgreSQL (database-url
// starts with postgres:// or postgresql://).
func (c Config) UsesPostgres() bool { return isPostgres(c.DatabaseURL) }

// SQLitePath returns the SQLite catalog file: <data-dir>/intake.db when
// database-url is empty, PATH for "sqlite:PATH" or "sqlite://PATH", and ""
// when the catalog is not SQLite.
func (c Config) SQLitePath() string {
	if c.DatabaseURL == "" {
		return filepath.Join(c.DataDir, "intake.db")
	}
	return sqlitePath(c.DatabaseURL)
}

func sqlitePath(dsn string) string {
	if p, ok := strings.CutPrefix(dsn, "sqlite://"); ok {
		return p
	}
	if p, ok := strings.CutPrefix(dsn, "sqlite:"); ok {
		return p
	}
	return ""
}

// UploadsDir returns <data-dir>/uploads, where the file store keeps bytes.
func (c Config) UploadsDir() string { return filepath.Join(c.DataDir, "uploads") }

const redactedPassword = "xxxxx"

// Redacted returns a copy of c that is safe to log: a password in
// database-url, whether in the user info or a password= parameter, becomes
// "xxxxx", and so do a set jwt-secret and admin-token (unset ones stay "",
// so a log still tells set from unset). When the URL cannot be parsed, it
// errs on the side of hiding too much.
func (c Config) Redacted() Config {
	c.DatabaseURL = redactDSN(c.DatabaseURL)
	if c.JWTSecret != "" {
		c.JWTSecret = redactedPassword
	}
	if c.AdminToken != "" {
		c.AdminToken = redactedPassword
	}
	// webhooks
	if c.WebhookSecret != "" {
		c.WebhookSecret = redactedPassword
	}
	c.WebhookURL = redactWebhookURL(c.WebhookURL)
	return c
}

var (
	queryPassword   = regexp.MustCompile(`(?i)([?&]password=)[^&#]*`)
	keywordPassword = regexp.MustCompile(`(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S*)`)
)

func redactDSN(dsn string) string {
	scheme, rest, isURL := strings.Cut(dsn, "://")
	if !isURL {
		// keyword/value form (host=... password=...), which Validate rejects
		// but which may still reach a log line before validation.
		return keywordPassword.ReplaceAllString(dsn, "${1}"+redactedPassword)
	}
	// When the user info holds no "@" but the rest does, net/url may have
	// split an unescaped password at "/", "?" or "#" and would leak it; the
	// fallback below handles that.
	if u, err := url.Parse(dsn); err == nil && (u.User != nil || !strings.Contains(rest, "@")) {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), redactedPassword)
		}
		q := u.Query()
		if q.Has("password") {
			q.Set("password", redactedPassword)
			u.RawQuery = q.Encode()
		}
		// url.URL.String escapes "xxxxx" as itself, so the result is literal.
		return u.String()
	}
	// Not parseable by net/url, e.g. pgx's multi-host
	// postgres://u:p@h1:5432,h2:5432/db. The last "@" ends the user info;
	// if the query holds an "@" this hides too much, which is the safe way
	// to be wrong.
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		if user, _, hasPass := strings.Cut(rest[:at], ":"); hasPass {
			rest = user + ":" + redactedPassword + rest[at:]
		}
	}
	return queryPassword.ReplaceAllString(scheme+"://"+rest, "${1}"+redactedPassword)
}

// LogValue renders the settings for a structured log line, with the
// database password and every secret hidden.
func (c Config) LogValue() slog.Value {
	r := c.Redacted()
	return slog.GroupValue(
		slog.String("listen", r.Listen),
		slog.String("base_path", r.BasePath),
		slog.String("data_dir", r.DataDir),
		slog.String("database_url", r.DatabaseURL),
		slog.String("store", r.Store),
		slog.String("s3_bucket", r.S3Bucket),
		slog.String("s3_endpoint", r.S3Endpoint),
		slog.String("s3_region", r.S3Region),
		slog.Bool("s3_path_style", r.S3PathStyle),
		slog.String("s3_prefix", r.S3Prefix),
		slog.Bool("s3_create_bucket", r.S3CreateBucket),
		slog.String("s3_part_size", r.S3PartSize.String()),
		slog.Bool("download_redirect", r.DownloadRedirect),
		slog.String("max_size", r.MaxSize.String()),
		slog.String("quota_bytes", r.QuotaBytes.String()),
		slog.String("allowed_types", r.AllowedTypes),
		slog.String("require_metadata", r.RequireMetadata),
		slog.Bool("file_sync", r.FileSync),
		slog.Bool("migrate", r.Migrate),
		slog.String("log_level", r.LogLevel),
		slog.String("auth", r.Auth),
		slog.String("dedup_scope", r.DedupScope),
		slog.String("cors_origins", r.CORSOrigins),
		slog.String("admin_listen", r.AdminListen),
		// webhooks
		slog.String("webhook_url", r.WebhookURL),
		slog.String("public_url", r.PublicURL),
	)
}
