package config_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/intake-dev/intake/pkg/config"
)

const webhookSecret = "hook-s3cret-0123456789abcdefghijk" // 33 bytes

func webhooks(mutate func(*config.Config)) func(*config.Config) {
	return func(c *config.Config) {
		c.WebhookURL, c.WebhookSecret = "https://hooks.example.com/intake", webhookSecret
		if mutate != nil {
			mutate(c)
		}
	}
}

func TestValidateWebhooks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(*config.Config)
		want   []string // substrings of the error; none: valid
	}{
		{"webhooks", webhooks(nil), nil},
		{"http receiver with port and query", webhooks(func(c *config.Config) { c.WebhookURL = "http://127.0.0.1:9000/hook?token=abc" }), nil},
		{"short max age and longest timeout", webhooks(func(c *config.Config) { c.WebhookMaxAge, c.WebhookTimeout = time.Second, 5*time.Minute }), nil},
		{"public url", func(c *config.Config) { c.PublicURL = "https://uploads.example.com" }, nil},
		{"public url with path and slash", func(c *config.Config) { c.PublicURL = "http://[::1]:8080/intake/" }, nil},
		// Leftovers are only checked when webhooks are on, like S3 settings.
		{"leftover settings without url", func(c *config.Config) { c.WebhookSecret, c.WebhookMaxAge, c.WebhookTimeout = "short", 0, 0 }, nil},

		{"url not http", webhooks(func(c *config.Config) { c.WebhookURL = "ftp://hooks.example.com/x" }),
			[]string{"--webhook-url", "INTAKE_WEBHOOK_URL", "http(s) URL"}},
		{"url without host", webhooks(func(c *config.Config) { c.WebhookURL = "hooks.example.com/intake" }),
			[]string{"--webhook-url", "e.g. https://"}},
		{"no secret", webhooks(func(c *config.Config) { c.WebhookSecret = "" }),
			[]string{"--webhook-secret", "INTAKE_WEBHOOK_SECRET", "required with --webhook-url"}},
		{"short secret", webhooks(func(c *config.Config) { c.WebhookSecret = "hunter2" }),
			[]string{"--webhook-secret", "has 7 bytes", "at least 32"}},
		{"zero max age", webhooks(func(c *config.Config) { c.WebhookMaxAge = 0 }),
			[]string{"--webhook-max-age", "INTAKE_WEBHOOK_MAX_AGE", "greater than zero"}},
		{"negative timeout", webhooks(func(c *config.Config) { c.WebhookTimeout = -time.Second }),
			[]string{"--webhook-timeout", "at most 5m"}},
		{"timeout too long", webhooks(func(c *config.Config) { c.WebhookTimeout = time.Hour }),
			[]string{"--webhook-timeout", "is 1h0m0s"}},
		{"public url without scheme", func(c *config.Config) { c.PublicURL = "uploads.example.com" },
			[]string{"--public-url", "INTAKE_PUBLIC_URL", `"uploads.example.com"`, "e.g. https://uploads.example.com"}},
		{"public url with query", func(c *config.Config) { c.PublicURL = "https://uploads.example.com/?x=1" },
			[]string{"--public-url", "without query"}},
		{"public url with credentials", func(c *config.Config) { c.PublicURL = "https://u:p@uploads.example.com" },
			[]string{"--public-url"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := config.Default()
			tt.mutate(&c)
			err := c.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Errorf("Validate() = %v; want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil; want an error naming %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q; want it to contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "token=abc") {
				t.Errorf("Validate() = %q; it repeats a secret", err)
			}
		})
	}
}

// The secret, and whatever token the receiver's URL carries, never reach
// a log line; the receiver's host does.
func TestWebhookSecretsRedacted(t *testing.T) {
	t.Parallel()
	c := config.Default()
	c.WebhookURL = "https://user:pw-s3cret@hooks.example.com/services/T0/B0/path-s3cret?sig=query-s3cret"
	c.WebhookSecret = webhookSecret
	r := c.Redacted()
	if r.WebhookSecret != "xxxxx" || r.WebhookURL != "https://hooks.example.com/xxxxx" {
		t.Errorf("Redacted() WebhookSecret, WebhookURL = %q, %q; want xxxxx, https://hooks.example.com/xxxxx", r.WebhookSecret, r.WebhookURL)
	}
	if c.WebhookSecret != webhookSecret {
		t.Error("Redacted changed its receiver")
	}
	var buf bytes.Buffer
	for _, h := range []slog.Handler{slog.NewTextHandler(&buf, nil), slog.NewJSONHandler(&buf, nil)} {
		slog.New(h).Info("starting", "config", c)
	}
	if out := buf.String(); strings.Contains(out, "s3cret") || !strings.Contains(out, "hooks.example.com") {
		t.Errorf("log lines = %s; want the receiver's host and no secret", out)
	}

	for raw, want := range map[string]string{
		"":                            "",
		"https://hooks.example.com":   "https://hooks.example.com",
		"https://hooks.example.com/":  "https://hooks.example.com",
		"http://127.0.0.1:9000/x":     "http://127.0.0.1:9000/xxxxx",
		"https://h.example.com/?t=1":  "https://h.example.com/xxxxx",
		"not a url at all: %zz token": "xxxxx",
	} {
		c := config.Default()
		c.WebhookURL = raw
		if got := c.Redacted().WebhookURL; got != want {
			t.Errorf("Redacted().WebhookURL of %q = %q; want %q", raw, got, want)
		}
	}
	if r := config.Default().Redacted(); r.WebhookSecret != "" || r.WebhookURL != "" {
		t.Errorf("Default().Redacted() WebhookSecret, WebhookURL = %q, %q; want empty", r.WebhookSecret, r.WebhookURL)
	}
}

func TestDownloadBase(t *testing.T) {
	t.Parallel()
	tests := []struct {
		publicURL, basePath, addr, want string
	}{
		{"", "/files/", "127.0.0.1:8080", "http://127.0.0.1:8080/files/"},
		{"", "/files/", "[::]:8080", "http://localhost:8080/files/"},
		{"", "/files/", ":8080", "http://localhost:8080/files/"},
		{"", "/files/", "0.0.0.0:8080", "http://localhost:8080/files/"},
		{"", "/up", "[::1]:9000", "http://[::1]:9000/up/"},
		{"https://uploads.example.com", "/files/", "127.0.0.1:8080", "https://uploads.example.com/files/"},
		{"https://example.com/intake/", "/files/", "127.0.0.1:8080", "https://example.com/intake/files/"},
	}
	for _, tt := range tests {
		c := config.Default()
		c.PublicURL, c.BasePath = tt.publicURL, tt.basePath
		if got := c.DownloadBase(tt.addr); got != tt.want {
			t.Errorf("DownloadBase(%q) with --public-url %q --base-path %q = %q; want %q", tt.addr, tt.publicURL, tt.basePath, got, tt.want)
		}
	}
}
