package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/tus/tusd/v2/pkg/filestore"
	"github.com/tus/tusd/v2/pkg/handler"
	"github.com/tus/tusd/v2/pkg/memorylocker"
	"github.com/tus/tusd/v2/pkg/prometheuscollector"

	"github.com/intake-dev/intake/pkg/catalog"
	"github.com/intake-dev/intake/pkg/config"
	"github.com/intake-dev/intake/pkg/logging"
	"github.com/intake-dev/intake/pkg/storage"
)

// Server is one assembled intake instance.
type Server struct {
	cfg      config.Config
	log      *slog.Logger
	catalog  catalog.Catalog
	tus      *handler.Handler
	registry *prometheus.Registry
	checks   map[string]func(context.Context) error
	handler  http.Handler
	drainer  *drainer
}

// New opens the catalog (applying migrations unless cfg.Migrate is false)
// and assembles the server. The caller must Close it.
func New(ctx context.Context, cfg config.Config, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cat, err := OpenCatalog(ctx, cfg)
	if err != nil {
		return nil, err
	}
	s, err := assemble(ctx, cfg, log, cat)
	if err != nil {
		cat.Close()
		return nil, err
	}
	return s, nil
}

func assemble(ctx context.Context, cfg config.Config, log *slog.Logger, cat Catalog) (*Server, error) {
	if err := prepareSchema(ctx, cfg, log, cat); err != nil {
		return nil, err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)

	dir := cfg.UploadsDir()
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("creating uploads directory: %w", err)
	}
	backend := filestore.New(dir)
	backend.DirModePerm = 0o750
	backend.FileModePerm = 0o640
	opts := storage.Options{Logger: log, Metrics: storage.NewMetrics(reg)}
	if cfg.FileSync {
		opts.Sync = storage.FileSync
	}
	store := storage.New(backend, cat, opts)

	composer := handler.NewStoreComposer()
	store.UseIn(composer)
	memorylocker.New().UseIn(composer)

	tus, err := handler.NewHandler(handler.Config{
		BasePath:                cfg.BasePath,
		StoreComposer:           composer,
		MaxSize:                 int64(cfg.MaxSize),
		Logger:                  logging.Tusd(log.Handler()),
		RespectForwardedHeaders: cfg.BehindProxy,
		NetworkTimeout:          cfg.NetworkTimeout,
		AcquireLockTimeout:      cfg.LockTimeout,
	})
	if err != nil {
		return nil, fmt.Errorf("creating tus handler: %w", err)
	}
	reg.MustRegister(prometheuscollector.New(tus.Metrics))

	s := &Server{
		cfg:      cfg,
		log:      log,
		catalog:  cat,
		tus:      tus,
		registry: reg,
		drainer:  newDrainer(),
		checks: map[string]func(context.Context) error{
			"database": cat.Ping,
			"storage":  dirWritable(dir),
		},
	}
	s.handler = s.routes()
	return s, nil
}

// prepareSchema applies pending migrations, or with --migrate=false refuses
// to serve on a schema older than this binary: every request would fail.
func prepareSchema(ctx context.Context, cfg config.Config, log *slog.Logger, cat Catalog) error {
	if cfg.Migrate {
		applied, err := cat.MigrateUp(ctx)
		if err != nil {
			return fmt.Errorf("applying migrations: %w", err)
		}
		for _, m := range applied {
			log.InfoContext(ctx, "migration applied", "version", m.Version, "name", m.Name)
		}
		return nil
	}
	list, err := cat.MigrationStatus(ctx)
	if err != nil {
		return fmt.Errorf("reading migration status: %w", err)
	}
	for _, m := range list {
		if m.AppliedAt == nil {
			return fmt.Errorf("the catalog schema lacks migration %04d %s and --migrate=false: run `intake migrate up` first", m.Version, m.Name)
		}
	}
	return nil
}

// Handler returns the complete HTTP handler (for tests and embedding).
func (s *Server) Handler() http.Handler { return s.handler }

// Catalog returns the server's catalog.
func (s *Server) Catalog() catalog.Catalog { return s.catalog }

// Close releases the catalog. Call it after Serve has returned.
func (s *Server) Close() error { return s.catalog.Close() }

// Serve answers requests on ln until ctx is done, then shuts down
// gracefully: it stops accepting connections, interrupts request bodies so
// that each in-flight PATCH stores and records what has arrived and answers
// the client, and waits up to the configured shutdown timeout for handlers to
// return.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	// Request contexts are deliberately not derived from ctx: cancelling
	// them would abort handlers mid-write. Shutdown ends request bodies
	// instead (see drainer) and lets the handlers finish.
	reqCtx, cancelRequests := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRequests()
	srv := &http.Server{
		Handler:           s.drainer.wrap(s.handler),
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return reqCtx },
	}
	srv.RegisterOnShutdown(s.drainer.drain)

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.log.InfoContext(ctx, "intake listening", "addr", ln.Addr().String(), "base_path", s.cfg.BasePath)

	select {
	case err := <-errc:
		return fmt.Errorf("serving http: %w", err)
	case <-ctx.Done():
	}
	s.log.InfoContext(ctx, "shutting down", "timeout", s.cfg.ShutdownTimeout)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(shutdownCtx)
	if err != nil {
		s.log.Warn("graceful shutdown timed out; closing connections", "error", err)
		cancelRequests()
		err = srv.Close()
	}
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		return serr
	}
	return err
}

// dirWritable checks that the directory accepts a new file.
func dirWritable(dir string) func(context.Context) error {
	return func(context.Context) error {
		f, err := os.CreateTemp(dir, ".readyz-*")
		if err != nil {
			return err
		}
		name := f.Name()
		f.Close()
		return os.Remove(name)
	}
}

// tusPrefix is the base path without its trailing slash, for StripPrefix.
func tusPrefix(basePath string) string { return strings.TrimSuffix(basePath, "/") }
