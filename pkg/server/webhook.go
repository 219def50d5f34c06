package server

import (
	"context"
	"net"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/intake-dev/intake/pkg/config"
	"github.com/intake-dev/intake/pkg/webhook"
)

// newWebhookMetrics registers the dispatcher's metrics when --webhook-url
// is set, and returns nil otherwise.
func newWebhookMetrics(cfg config.Config, reg prometheus.Registerer) *webhook.Metrics {
	if cfg.WebhookURL == "" {
		return nil
	}
	return webhook.NewMetrics(reg)
}

// startWebhooks runs the webhook dispatcher, when --webhook-url is set,
// until ctx ends or stop is called; stop returns once the dispatcher has
// (its request in flight finished or timed out, and recorded), so the
// catalog may close after it. addr is the public listener's address, for
// download URLs without --public-url.
func (s *Server) startWebhooks(ctx context.Context, addr net.Addr) (stop func()) {
	if s.cfg.WebhookURL == "" {
		return func() {}
	}
	d := webhook.New(s.catalog, webhook.Options{
		URL:          s.cfg.WebhookURL,
		Secret:       s.cfg.WebhookSecret,
		DownloadBase: s.cfg.DownloadBase(addr.String()),
		Timeout:      s.cfg.WebhookTimeout,
		MaxAge:       s.cfg.WebhookMaxAge,
		Logger:       s.log,
		Metrics:      s.webhookMetrics,
	})
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.Run(ctx)
	}()
	s.log.InfoContext(ctx, "delivering webhooks", "url", s.cfg.Redacted().WebhookURL)
	return func() {
		cancel()
		<-done
	}
}
