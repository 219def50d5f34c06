package config

import (
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// Settings of the webhook dispatcher (pkg/webhook) and of the public URL
// its events link to.

// maxWebhookTimeout keeps a claimed batch's lease, which covers every
// request of the batch at its timeout, short enough that the events of a
// crashed instance are not held for long.
const maxWebhookTimeout = 5 * time.Minute

func (c *Config) registerWebhookFlags(fs *pflag.FlagSet, usage func(name, text, zeroDefault string) string) {
	fs.StringVar(&c.WebhookURL, "webhook-url", c.WebhookURL, usage("webhook-url", "URL that receives upload events as signed JSON POSTs", "none: no webhooks"))
	fs.StringVar(&c.WebhookSecret, "webhook-secret", c.WebhookSecret, usage("webhook-secret", "HMAC-SHA256 key signing webhook deliveries, at least 32 bytes; prefer the env var", "none"))
	fs.DurationVar(&c.WebhookMaxAge, "webhook-max-age", c.WebhookMaxAge, usage("webhook-max-age", "how long after it occurred an event is retried before it is dead-lettered", ""))
	fs.DurationVar(&c.WebhookTimeout, "webhook-timeout", c.WebhookTimeout, usage("webhook-timeout", "time limit of each webhook request, at most 5m", ""))
	fs.StringVar(&c.PublicURL, "public-url", c.PublicURL, usage("public-url", "base URL clients reach intake at, e.g. https://uploads.example.com; used for download_url in webhooks", "http://<listen>"))
}

func (c Config) validateWebhooks(bad func(flag, format string, args ...any)) {
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
			u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(c.PublicURL, "?") || strings.HasSuffix(c.PublicURL, "#") {
			bad("public-url", "%q is not an http(s) base URL; use e.g. https://uploads.example.com, without query or credentials", c.PublicURL)
		}
	}
	if c.WebhookURL == "" {
		return // leftover webhook settings are tolerated, as S3 ones are
	}
	// The URL is never quoted: its path or query often is the receiver's
	// token.
	u, err := url.Parse(c.WebhookURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Fragment != "" {
		bad("webhook-url", "is not an http(s) URL; use e.g. https://hooks.example.com/intake")
	}
	switch {
	case c.WebhookSecret == "":
		bad("webhook-secret", "is required with --webhook-url: receivers verify the signature with it (e.g. openssl rand -hex 32)")
	case len(c.WebhookSecret) < 32:
		bad("webhook-secret", "has %d bytes; use at least 32 (e.g. openssl rand -hex 32)", len(c.WebhookSecret))
	}
	if c.WebhookMaxAge <= 0 {
		bad("webhook-max-age", "is %s; it must be greater than zero, e.g. 24h", c.WebhookMaxAge)
	}
	if c.WebhookTimeout <= 0 || c.WebhookTimeout > maxWebhookTimeout {
		bad("webhook-timeout", "is %s; use more than zero and at most %s, e.g. 10s", c.WebhookTimeout, maxWebhookTimeout)
	}
}

// redactWebhookURL keeps what tells receivers apart, the scheme and host,
// and hides the rest, where tokens live (user info, path, query).
func redactWebhookURL(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return redactedPassword
	}
	r := u.Scheme + "://" + u.Host
	if u.User != nil || strings.Trim(u.EscapedPath(), "/") != "" || u.RawQuery != "" || u.ForceQuery {
		r += "/" + redactedPassword
	}
	return r
}

// DownloadBase returns the public URL of the tus endpoint, ending in "/":
// --public-url followed by --base-path, or, without --public-url,
// http://<addr> with addr the address intake listens on (the resolved
// --listen, whose port may have been 0), naming localhost for a listener on
// all interfaces.
func (c Config) DownloadBase(addr string) string {
	base := strings.TrimSuffix(c.PublicURL, "/")
	if base == "" {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			host, port = addr, ""
		}
		if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
			host = "localhost"
		}
		if port != "" {
			host = net.JoinHostPort(host, port)
		}
		base = "http://" + host
	}
	path := c.BasePath
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	if !strings.HasSuffix(path, "/") {
		path += "/"
	}
	return base + path
}
