package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/intake-dev/intake/pkg/config"
	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"
)

// setup registers a Config on a fresh flag set, writes yamlText (if any) to
// a temporary intake.yaml passed as --config, parses args and resolves with
// env as the environment.
func setup(t *testing.T, args []string, env map[string]string, yamlText string) (config.Config, *pflag.FlagSet, error) {
	t.Helper()
	var c config.Config
	fs := pflag.NewFlagSet("intake", pflag.ContinueOnError)
	c.RegisterFlags(fs)
	if yamlText != "" {
		args = append(args, "--config="+writeFile(t, yamlText))
	}
	if err := fs.Parse(args); err != nil {
		t.Fatalf("Parse(%q): %v", args, err)
	}
	err := c.Resolve(fs, func(k string) string { return env[k] })
	return c, fs, err
}

func writeFile(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "intake.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func envName(flag string) string {
	return "INTAKE_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// TestResolvePrecedence checks flag > env > file > default for every
// setting. Values differ at each layer, and for bools the file value differs
// from the default, so each case can only pass if the right layer won.
func TestResolvePrecedence(t *testing.T) {
	t.Parallel()
	tests := []struct {
		flag                        string
		fromFlag, fromEnv, fromFile string
		get                         func(config.Config) any
		wantFlag, wantEnv, wantFile any
	}{
		{"listen", ":1001", ":1002", ":1003",
			func(c config.Config) any { return c.Listen }, ":1001", ":1002", ":1003"},
		{"base-path", "/flag/", "/env/", "/file/",
			func(c config.Config) any { return c.BasePath }, "/flag/", "/env/", "/file/"},
		{"data-dir", "/flag", "/env", "/file",
			func(c config.Config) any { return c.DataDir }, "/flag", "/env", "/file"},
		{"database-url", "postgres://flag/db", "postgres://env/db", "sqlite:file.db",
			func(c config.Config) any { return c.DatabaseURL }, "postgres://flag/db", "postgres://env/db", "sqlite:file.db"},
		{"db-max-conns", "3", "4", "5",
			func(c config.Config) any { return c.DBMaxConns }, 3, 4, 5},
		{"store", "flag", "env", "from-file",
			func(c config.Config) any { return c.Store }, "flag", "env", "from-file"},
		{"s3-bucket", "flag-bucket", "env-bucket", "file-bucket",
			func(c config.Config) any { return c.S3Bucket }, "flag-bucket", "env-bucket", "file-bucket"},
		{"s3-endpoint", "http://flag:9000", "http://env:9000", "https://file.example.com",
			func(c config.Config) any { return c.S3Endpoint }, "http://flag:9000", "http://env:9000", "https://file.example.com"},
		{"s3-region", "eu-west-1", "eu-central-1", "auto",
			func(c config.Config) any { return c.S3Region }, "eu-west-1", "eu-central-1", "auto"},
		{"s3-path-style", "true", "false", "true",
			func(c config.Config) any { return c.S3PathStyle }, true, false, true},
		{"s3-prefix", "flag/", "env/", "file/",
			func(c config.Config) any { return c.S3Prefix }, "flag/", "env/", "file/"},
		{"s3-create-bucket", "true", "false", "true",
			func(c config.Config) any { return c.S3CreateBucket }, true, false, true},
		{"s3-part-size", "6MiB", "7MB", "1GiB",
			func(c config.Config) any { return c.S3PartSize }, config.ByteSize(6 << 20), config.ByteSize(7_000_000), config.ByteSize(1 << 30)},
		{"s3-min-part-size", "8MiB", "9MB", "10MiB",
			func(c config.Config) any { return c.S3MinPartSize }, config.ByteSize(8 << 20), config.ByteSize(9_000_000), config.ByteSize(10 << 20)},
		{"s3-max-buffered-parts", "1", "2", "3",
			func(c config.Config) any { return c.S3MaxBufferedParts }, 1, 2, 3},
		{"s3-concurrent-part-uploads", "4", "5", "6",
			func(c config.Config) any { return c.S3ConcurrentParts }, 4, 5, 6},
		{"s3-temp-dir", "/flag", "/env", "/file",
			func(c config.Config) any { return c.S3TempDir }, "/flag", "/env", "/file"},
		{"download-redirect", "true", "false", "true",
			func(c config.Config) any { return c.DownloadRedirect }, true, false, true},
		{"download-url-ttl", "1s", "2m", "3h",
			func(c config.Config) any { return c.DownloadURLTTL }, time.Second, 2 * time.Minute, 3 * time.Hour},
		{"max-size", "1KiB", "2MB", "3GiB",
			func(c config.Config) any { return c.MaxSize }, config.ByteSize(1024), config.ByteSize(2_000_000), config.ByteSize(3 << 30)},
		{"max-metadata-bytes", "1KiB", "2048", "8KiB",
			func(c config.Config) any { return c.MaxMetadataBytes }, config.ByteSize(1024), config.ByteSize(2048), config.ByteSize(8 << 10)},
		{"quota-bytes", "1GiB", "2GB", "3TiB",
			func(c config.Config) any { return c.QuotaBytes }, config.ByteSize(1 << 30), config.ByteSize(2_000_000_000), config.ByteSize(3 << 40)},
		{"require-metadata", "filename", "filename,project", "filetype",
			func(c config.Config) any { return c.RequireMetadata }, "filename", "filename,project", "filetype"},
		// A "*" must survive the env var and the file as written.
		{"allowed-types", "image/png", "video/*,image/*", "*",
			func(c config.Config) any { return c.AllowedTypes }, "image/png", "video/*,image/*", "*"},
		{"file-sync", "false", "true", "false",
			func(c config.Config) any { return c.FileSync }, false, true, false},
		{"upload-ttl", "1h", "2h", "0s",
			func(c config.Config) any { return c.UploadTTL }, time.Hour, 2 * time.Hour, time.Duration(0)},
		{"reap-interval", "1s", "2m", "0s",
			func(c config.Config) any { return c.ReapInterval }, time.Second, 2 * time.Minute, time.Duration(0)},
		{"reconcile-interval", "1s", "2m", "0s",
			func(c config.Config) any { return c.ReconcileInterval }, time.Second, 2 * time.Minute, time.Duration(0)},
		{"dedup-scope", "global", "off", "owner",
			func(c config.Config) any { return c.DedupScope }, "global", "off", "owner"},
		{"network-timeout", "1s", "2m", "3h",
			func(c config.Config) any { return c.NetworkTimeout }, time.Second, 2 * time.Minute, 3 * time.Hour},
		{"lock-timeout", "1s", "2m", "3h",
			func(c config.Config) any { return c.LockTimeout }, time.Second, 2 * time.Minute, 3 * time.Hour},
		{"shutdown-timeout", "1s", "2m", "3h",
			func(c config.Config) any { return c.ShutdownTimeout }, time.Second, 2 * time.Minute, 3 * time.Hour},
		{"behind-proxy", "true", "false", "true",
			func(c config.Config) any { return c.BehindProxy }, true, false, true},
		{"migrate", "false", "true", "false",
			func(c config.Config) any { return c.Migrate }, false, true, false},
		{"auth", "jwt", "env", "from-file",
			func(c config.Config) any { return c.Auth }, "jwt", "env", "from-file"},
		{"jwt-secret", "flag-secret", "env-secret", "file-secret",
			func(c config.Config) any { return c.JWTSecret }, "flag-secret", "env-secret", "file-secret"},
		{"jwt-public-key-file", "/flag.pem", "/env.pem", "/file.pem",
			func(c config.Config) any { return c.JWTPublicKeyFile }, "/flag.pem", "/env.pem", "/file.pem"},
		{"jwt-issuer", "https://flag.example.com", "https://env.example.com", "https://file.example.com",
			func(c config.Config) any { return c.JWTIssuer }, "https://flag.example.com", "https://env.example.com", "https://file.example.com"},
		{"jwt-audience", "flag-aud", "env-aud", "file-aud",
			func(c config.Config) any { return c.JWTAudience }, "flag-aud", "env-aud", "file-aud"},
		{"jwt-leeway", "0s", "2m", "5m",
			func(c config.Config) any { return c.JWTLeeway }, time.Duration(0), 2 * time.Minute, 5 * time.Minute},
		// A comma and a "*" must survive the env var and the file as written.
		{"cors-origins", "https://flag.example.com", "https://a.example.com,https://*.env.example.com", "http://127.0.0.1:*",
			func(c config.Config) any { return c.CORSOrigins }, "https://flag.example.com", "https://a.example.com,https://*.env.example.com", "http://127.0.0.1:*"},
		{"cors-allow-credentials", "true", "false", "true",
			func(c config.Config) any { return c.CORSAllowCredentials }, true, false, true},
		{"cors-max-age", "1s", "2m", "3h",
			func(c config.Config) any { return c.CORSMaxAge }, time.Second, 2 * time.Minute, 3 * time.Hour},
		{"admin-listen", "127.0.0.1:9001", "127.0.0.1:9002", ":9003",
			func(c config.Config) any { return c.AdminListen }, "127.0.0.1:9001", "127.0.0.1:9002", ":9003"},
		{"admin-token", "flag-token", "env-token", "file-token",
			func(c config.Config) any { return c.AdminToken }, "flag-token", "env-token", "file-token"},
		{"log-format", "json", "env", "from-file",
			func(c config.Config) any { return c.LogFormat }, "json", "env", "from-file"},
		{"log-level", "debug", "env", "from-file",
			func(c config.Config) any { return c.LogLevel }, "debug", "env", "from-file"},
		// webhooks
		{"webhook-url", "https://flag.example.com/h", "https://env.example.com/h?token=a,b", "http://127.0.0.1:9/file",
			func(c config.Config) any { return c.WebhookURL }, "https://flag.example.com/h", "https://env.example.com/h?token=a,b", "http://127.0.0.1:9/file"},
		{"webhook-secret", "flag-secret", "env-secret", "file-secret",
			func(c config.Config) any { return c.WebhookSecret }, "flag-secret", "env-secret", "file-secret"},
		{"webhook-max-age", "1s", "2m", "3h",
			func(c config.Config) any { return c.WebhookMaxAge }, time.Second, 2 * time.Minute, 3 * time.Hour},
		{"webhook-timeout", "1s", "2m", "3m",
			func(c config.Config) any { return c.WebhookTimeout }, time.Second, 2 * time.Minute, 3 * time.Minute},
		{"public-url", "https://flag.example.com", "https://env.example.com/up", "http://file.example.com:8080",
			func(c config.Config) any { return c.PublicURL }, "https://flag.example.com", "https://env.example.com/up", "http://file.example.com:8080"},
	}

	// A setting added to RegisterFlags without a row here fails the test.
	covered := map[string]bool{"config": true} // has its own test
	for _, tt := range tests {
		covered[tt.flag] = true
	}
	var c config.Config
	fs := pflag.NewFlagSet("intake", pflag.ContinueOnError)
	c.RegisterFlags(fs)
	fs.VisitAll(func(f *pflag.Flag) {
		if !covered[f.Name] {
			t.Errorf("--%s has no precedence test", f.Name)
		}
	})

	for _, tt := range tests {
		fileText, err := yaml.Marshal(map[string]string{tt.flag: tt.fromFile})
		if err != nil {
			t.Fatal(err)
		}
		layers := []struct {
			name            string
			flag, env, file bool
			want            any
		}{
			{"flag beats env and file", true, true, true, tt.wantFlag},
			{"env beats file", false, true, true, tt.wantEnv},
			{"file beats default", false, false, true, tt.wantFile},
			{"default", false, false, false, tt.get(config.Default())},
		}
		for _, l := range layers {
			t.Run(tt.flag+"/"+l.name, func(t *testing.T) {
				t.Parallel()
				var args []string
				env := map[string]string{}
				var text string
				if l.flag {
					args = append(args, "--"+tt.flag+"="+tt.fromFlag)
				}
				if l.env {
					env[envName(tt.flag)] = tt.fromEnv
				}
				if l.file {
					text = string(fileText)
				}
				c, _, err := setup(t, args, env, text)
				if err != nil {
					t.Fatalf("Resolve: %v", err)
				}
				if got := tt.get(c); got != l.want {
					t.Errorf("%s = %v; want %v", tt.flag, got, l.want)
				}
			})
		}
	}
}

func TestResolveConfigPath(t *testing.T) {
	t.Parallel()
	flagFile := writeFile(t, "listen: :1001\n")
	envFile := writeFile(t, "listen: :1002\n")
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"flag beats env", []string{"--config", flagFile}, map[string]string{"INTAKE_CONFIG": envFile}, ":1001"},
		{"env", nil, map[string]string{"INTAKE_CONFIG": envFile}, ":1002"},
		{"empty env means no file", nil, map[string]string{"INTAKE_CONFIG": ""}, "127.0.0.1:8080"},
		{"none", nil, nil, "127.0.0.1:8080"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, _, err := setup(t, tt.args, tt.env, "")
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			if c.Listen != tt.want {
				t.Errorf("Listen = %q; want %q", c.Listen, tt.want)
			}
		})
	}
}

func TestResolveEmptyEnvIsIgnored(t *testing.T) {
	t.Parallel()
	c, _, err := setup(t, nil,
		map[string]string{"INTAKE_LISTEN": "", "INTAKE_MIGRATE": "", "INTAKE_MAX_SIZE": ""},
		"listen: :1003\nmax-size: 1GB\n")
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	if c.Listen != ":1003" || c.MaxSize != 1_000_000_000 || !c.Migrate {
		t.Errorf("Listen, MaxSize, Migrate = %q, %v, %v; want :1003, 1GB, true (empty env ignored)", c.Listen, c.MaxSize, c.Migrate)
	}
}

// The file may use any YAML scalar; each is passed to the flag as written.
func TestResolveFileScalars(t *testing.T) {
	t.Parallel()
	c, _, err := setup(t, nil, nil, `
# comments are fine
listen: ":9000"
base-path: /uploads
max-size: 1.5 GiB
db-max-conns: 4
migrate: false
behind-proxy: True
network-timeout: 90s
database-url:
log-level: &lvl debug
log-format: json
store: *lvl
`)
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	want := config.Default()
	want.ConfigFile = c.ConfigFile
	want.Listen = ":9000"
	want.BasePath = "/uploads/"
	want.MaxSize = 3 << 29
	want.DBMaxConns = 4
	want.Migrate = false
	want.BehindProxy = true
	want.NetworkTimeout = 90 * time.Second
	want.LogLevel = "debug"
	want.LogFormat = "json"
	want.Store = "debug"
	if c != want {
		t.Errorf("Resolve =\n%+v\nwant\n%+v", c, want)
	}
}

func TestResolveEmptyFile(t *testing.T) {
	t.Parallel()
	for _, text := range []string{"\n", "# nothing set\n", "---\n", "~\n"} {
		c, _, err := setup(t, nil, nil, text)
		if err != nil {
			t.Fatalf("Resolve with file %q: %v", text, err)
		}
		c.ConfigFile = ""
		if c != config.Default() {
			t.Errorf("Resolve with file %q = %+v; want defaults", text, c)
		}
	}
}

func TestResolveErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		env  map[string]string
		file string
		want []string
	}{
		{name: "env bool", env: map[string]string{"INTAKE_FILE_SYNC": "yes"},
			want: []string{"environment variable INTAKE_FILE_SYNC", "--file-sync", `"yes"`, "use true or false"}},
		{name: "env duration", env: map[string]string{"INTAKE_LOCK_TIMEOUT": "20"},
			want: []string{"INTAKE_LOCK_TIMEOUT", "with a unit"}},
		{name: "env int", env: map[string]string{"INTAKE_DB_MAX_CONNS": "lots"},
			want: []string{"INTAKE_DB_MAX_CONNS", "whole number"}},
		{name: "env bytes", env: map[string]string{"INTAKE_MAX_SIZE": "10XB"},
			want: []string{"INTAKE_MAX_SIZE", `unknown unit "XB"`}},
		{name: "file value", file: "listen: :1\nmigrate: maybe\n",
			want: []string{"intake.yaml", "line 2", `key "migrate"`, `"maybe"`, "use true or false"}},
		{name: "file bytes", file: "max-size: -1\n",
			want: []string{"intake.yaml", `key "max-size"`, "negative"}},
		{name: "unknown key typo", file: "max_size: 1GB\n",
			want: []string{"intake.yaml", "line 1", `unknown key "max_size"`, `closest setting is "max-size"`}},
		{name: "unknown key misspelt", file: "lisen: :1\n",
			want: []string{`unknown key "lisen"`, `"listen"`}},
		{name: "unknown key far", file: "colour: red\n",
			want: []string{`unknown key "colour"`, "valid keys are", "base-path", "shutdown-timeout"}},
		{name: "config key", file: "config: other.yaml\n",
			want: []string{`key "config" is not allowed`, "--config or INTAKE_CONFIG"}},
		{name: "list value", file: "listen:\n  - :1\n  - :2\n",
			want: []string{`key "listen"`, "single value"}},
		{name: "duplicate key", file: "listen: :1\nlisten: :2\n",
			want: []string{"line 2", `key "listen" is already set on line 1`}},
		{name: "not a mapping", file: "- listen\n",
			want: []string{"intake.yaml", "must be a mapping"}},
		{name: "two documents", file: "listen: :1\n---\nlisten: :2\n",
			want: []string{"one YAML document"}},
		{name: "syntax", file: "listen: [\n",
			want: []string{"intake.yaml", "yaml"}},
		{name: "missing file", args: []string{"--config", "/nonexistent/intake.yaml"},
			want: []string{"INTAKE_CONFIG", "/nonexistent/intake.yaml"}},
		{name: "every problem at once",
			env:  map[string]string{"INTAKE_FILE_SYNC": "yes", "INTAKE_MIGRATE": "no"},
			file: "colour: red\nlog-level: [debug]\n",
			want: []string{"INTAKE_FILE_SYNC", "INTAKE_MIGRATE", `"colour"`, `key "log-level"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := setup(t, tt.args, tt.env, tt.file)
			if err == nil {
				t.Fatalf("Resolve = nil; want an error containing %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Resolve = %q; want it to contain %q", err, w)
				}
			}
		})
	}
}

// A flag given on the command line wins even over a broken env var.
func TestResolveFlagShadowsBadEnv(t *testing.T) {
	t.Parallel()
	c, _, err := setup(t, []string{"--file-sync=false"}, map[string]string{"INTAKE_FILE_SYNC": "yes"}, "")
	if err != nil || c.FileSync {
		t.Errorf("Resolve = %v, FileSync = %v; want nil, false", err, c.FileSync)
	}
}

// cobra puts its own flags (help, subcommand flags) on the same flag set;
// INTAKE_* must not reach them, and Changed must keep meaning "given on the
// command line".
func TestResolveLeavesOtherFlagsAlone(t *testing.T) {
	t.Parallel()
	var c config.Config
	fs := pflag.NewFlagSet("intake", pflag.ContinueOnError)
	dryRun := fs.Bool("dry-run", false, "")
	c.RegisterFlags(fs)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"INTAKE_DRY_RUN": "true", "INTAKE_LISTEN": ":1002"}
	if err := c.Resolve(fs, func(k string) string { return env[k] }); err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	if *dryRun {
		t.Error("INTAKE_DRY_RUN set --dry-run; want it ignored")
	}
	if c.Listen != ":1002" {
		t.Errorf("Listen = %q; want :1002", c.Listen)
	}
	if fs.Changed("listen") {
		t.Error(`Changed("listen") = true after Resolve; want false, it came from the environment`)
	}
}

func TestResolveNeedsRegisteredFlags(t *testing.T) {
	t.Parallel()
	var c config.Config
	err := c.Resolve(pflag.NewFlagSet("intake", pflag.ContinueOnError), func(string) string { return "" })
	if err == nil || !strings.Contains(err.Error(), "RegisterFlags") {
		t.Errorf("Resolve on an empty flag set = %v; want an error pointing at RegisterFlags", err)
	}
}
