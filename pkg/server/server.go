package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/tus/tusd/v2/pkg/filestore"
	"github.com/tus/tusd/v2/pkg/handler"
	"github.com/tus/tusd/v2/pkg/prometheuscollector"

	"github.com/intake-dev/intake/hooks"
	"github.com/intake-dev/intake/pkg/auth"
	"github.com/intake-dev/intake/pkg/bucket"
	"github.com/intake-dev/intake/pkg/catalog"
	"github.com/intake-dev/intake/pkg/config"
	"github.com/intake-dev/intake/pkg/logging"
	"github.com/intake-dev/intake/pkg/storage"
	"github.com/intake-dev/intake/pkg/webhook"
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
	verifier *auth.Verifier // nil with --auth none
	store    *storage.Store
	locker   *uploadLocker
	adminLn  net.Listener // nil without --admin-listen
	admin    http.Handler

	webhookMetrics *webhook.Metrics // nil without --webhook-url (see webhook.go)
}

// Option adjusts how New assembles the server beyond what Config says;
// for embedding intake and for tests.
type Option func(*options)

type options struct {
	s3Credentials aws.CredentialsProvider
	now           func() time.Time
}

// WithClock makes expiry use now instead of the wall clock (tests).
func WithClock(now func() time.Time) Option {
	return func(o *options) { o.now = now }
}

// Reap runs one reaper pass now (tests and embedders; the server runs one
// every --reap-interval).
func (s *Server) Reap(ctx context.Context) (storage.ReapResult, error) {
	return s.store.Reap(ctx, s.locker.background, false)
}

// WithS3Credentials makes the S3 store use creds instead of the standard
// AWS credential chain.
func WithS3Credentials(creds aws.CredentialsProvider) Option {
	return func(o *options) { o.s3Credentials = creds }
}

// New opens the catalog (applying migrations unless cfg.Migrate is false)
// and assembles the server. The caller must Close it.
func New(ctx context.Context, cfg config.Config, log *slog.Logger, opts ...Option) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cat, err := OpenCatalog(ctx, cfg)
	if err != nil {
		return nil, err
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	s, err := assemble(ctx, cfg, log, cat, o)
	if err != nil {
		cat.Close()
		return nil, err
	}
	return s, nil
}

func assemble(ctx context.Context, cfg config.Config, log *slog.Logger, cat Catalog, o options) (*Server, error) {
	if err := prepareSchema(ctx, cfg, log, cat); err != nil {
		return nil, err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	if p, ok := cat.(pooled); ok {
		reg.MustRegister(newPoolCollector(p.Pool()))
	}

	policy := newPolicy(cfg, cat)
	opts := storage.Options{
		Logger:       log,
		Metrics:      storage.NewMetrics(reg),
		DedupScope:   storage.DedupScope(cfg.DedupScope),
		AllowedTypes: cfg.AllowedTypePatterns(),
		TTL:          cfg.UploadTTL,
		Now:          o.now,
		Policy:       policy,
		Fault:        testFault(),
	}
	backend, storageCheck, err := newBackend(ctx, cfg, log, reg, o, &opts)
	if err != nil {
		return nil, err
	}
	removeStaleTemp(ctx, cfg, log, opts.Metrics)
	store := storage.New(backend, cat, opts)

	composer := handler.NewStoreComposer()
	store.UseIn(composer)
	locker, err := newUploadLocker(ctx, cat, log, reg)
	if err != nil {
		return nil, err
	}
	locker.UseIn(composer)

	tus, err := handler.NewHandler(handler.Config{
		BasePath:                cfg.BasePath,
		StoreComposer:           composer,
		MaxSize:                 int64(cfg.MaxSize),
		Logger:                  logging.Tusd(log.Handler()),
		RespectForwardedHeaders: cfg.BehindProxy,
		NetworkTimeout:          cfg.NetworkTimeout,
		AcquireLockTimeout:      cfg.LockTimeout,
		// CORS is answered by pkg/cors in front of everything, so that
		// intake's own refusals carry CORS headers too.
		Cors:                    &handler.CorsConfig{Disable: true},
		PreUploadCreateCallback: preCreate(policy, log),
	})
	if err != nil {
		locker.Close()
		return nil, fmt.Errorf("creating tus handler: %w", err)
	}
	reg.MustRegister(prometheuscollector.New(tus.Metrics))

	var verifier *auth.Verifier
	if cfg.Auth == "jwt" {
		verifier, err = auth.NewVerifier(auth.VerifierOptions{
			Secret:        []byte(cfg.JWTSecret),
			PublicKeyFile: cfg.JWTPublicKeyFile,
			Issuer:        cfg.JWTIssuer,
			Audience:      cfg.JWTAudience,
			Leeway:        cfg.JWTLeeway,
		})
		if err != nil {
			locker.Close()
			return nil, fmt.Errorf("--auth jwt: %w", err)
		}
	}
	var adminLn net.Listener
	if cfg.AdminListen != "" {
		if adminLn, err = net.Listen("tcp", cfg.AdminListen); err != nil {
			locker.Close()
			return nil, fmt.Errorf("listening on --admin-listen %s: %w", cfg.AdminListen, err)
		}
	}

	s := &Server{
		cfg:      cfg,
		log:      log,
		catalog:  cat,
		tus:      tus,
		registry: reg,
		drainer:  newDrainer(),
		verifier: verifier,
		adminLn:  adminLn,
		store:    store,
		locker:   locker,
		checks: map[string]func(context.Context) error{
			"database": cat.Ping,
			"storage":  storageCheck,
		},
	}
	if locker.pg != nil {
		s.checks["locks"] = locker.pg.Ping
	}
	s.webhookMetrics = newWebhookMetrics(cfg, reg) // webhooks
	s.handler, s.admin = s.routes()
	s.handler = s.drainer.wrap(s.handler)
	return s, nil
}

// testFault returns the crash hook named by INTAKE_TEST_FAULT: the process
// exits (status 86) at that point, as a crash would. For the process tests
// of crash recovery only; unset in every real deployment.
func testFault() func(string) {
	point := os.Getenv("INTAKE_TEST_FAULT")
	if point == "" {
		return nil
	}
	return func(p string) {
		if p == point {
			os.Exit(86)
		}
	}
}

// reconcileLoop sweeps for uploads stored but never finalized (see
// storage.Store.Reconcile) every interval until ctx ends, starting soon
// after start so that a crash before the restart is repaired promptly.
func (s *Server) reconcileLoop(ctx context.Context, interval time.Duration) {
	s.periodic(ctx, "reconcile", min(interval, 10*time.Second), interval, func() {
		n, err := s.store.Reconcile(ctx, s.locker.background, interval, time.Now())
		if err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "reconciler sweep failed", "error", err)
		}
		if n > 0 {
			s.log.InfoContext(ctx, "reconciler finalized uploads", "count", n)
		}
	})
}

// periodic runs f after first and then every interval, until ctx ends,
// on one instance at a time: each run takes the cluster-wide lock of task
// and is skipped while another instance holds it.
func (s *Server) periodic(ctx context.Context, task string, first, interval time.Duration, f func()) {
	t := time.NewTimer(first)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if unlock, ok := s.locker.task(ctx, task); ok {
			f()
			unlock()
		}
		t.Reset(interval)
	}
}

// newPolicy is the server's pre-create policy from cfg, with owners'
// usage read from the catalog.
func newPolicy(cfg config.Config, cat Catalog) hooks.Policy {
	return hooks.Policy{
		AllowedTypes:     cfg.AllowedTypePatterns(),
		RequiredMetadata: cfg.RequiredMetadataKeys(),
		QuotaBytes:       int64(cfg.QuotaBytes),
		Usage:            cat,
	}
}

// preCreate returns tusd's pre-create callback: before anything is created
// it applies the request's token limits, then the server's policy, and
// replaces an unsafe filename (keeping the declared one beside it).
func preCreate(policy hooks.Policy, log *slog.Logger) func(handler.HookEvent) (handler.HTTPResponse, handler.FileInfoChanges, error) {
	return func(hook handler.HookEvent) (handler.HTTPResponse, handler.FileInfoChanges, error) {
		ctx := hook.Context
		up := hook.Upload
		u := hooks.NewUpload{
			Size: up.Size, Deferred: up.SizeIsDeferred, FileType: up.MetaData["filetype"],
			IsFinal: up.IsFinal, IsPartial: up.IsPartial, Metadata: up.MetaData,
		}
		if h := hook.HTTPRequest.Header; h.Get("Content-Type") == "application/offset+octet-stream" {
			if n, err := strconv.ParseInt(h.Get("Content-Length"), 10, 64); err == nil && n > 0 {
				u.Body = n
			}
		}

		// Without a token the limits are zero and refuse nothing.
		limits := storage.TokenLimits(ctx)
		r := hooks.CheckCreate(limits, u)
		// A deferred creation-with-upload whose body is over the maximum:
		// tusd would create the upload, then fail the body with 413 and no
		// Location, leaving an upload the client cannot know (pkg/protocol
		// does the same for --max-size).
		if r == nil && u.Deferred {
			r = hooks.CheckLength(limits, u.Body)
		}
		if r == nil {
			var err error
			if r, err = policy.CheckCreate(ctx, auth.Owner(ctx), u); err != nil {
				log.ErrorContext(ctx, "checking upload policy", "error", err)
				return handler.HTTPResponse{}, handler.FileInfoChanges{}, storage.ErrCatalogUnavailable
			}
		}
		if r != nil {
			return handler.HTTPResponse{}, handler.FileInfoChanges{}, storage.RefusalError(r)
		}
		// nil MetaData leaves tusd's as declared.
		return handler.HTTPResponse{}, handler.FileInfoChanges{MetaData: hooks.SanitizeMetadata(up.MetaData)}, nil
	}
}

// AdminAddr is the address of the admin listener, or nil without
// --admin-listen.
func (s *Server) AdminAddr() net.Addr {
	if s.adminLn == nil {
		return nil
	}
	return s.adminLn.Addr()
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
	if err := CheckSchema(ctx, cat); err != nil {
		return fmt.Errorf("--migrate=false: %w", err)
	}
	return nil
}

// Handler returns the complete HTTP handler (for tests and embedding).
func (s *Server) Handler() http.Handler { return s.handler }

// Catalog returns the server's catalog.
func (s *Server) Catalog() catalog.Catalog { return s.catalog }

// Close releases the upload locks' session and the catalog. Call it after
// Serve has returned.
func (s *Server) Close() error {
	if s.adminLn != nil {
		s.adminLn.Close() // already closed when Serve ran
	}
	s.locker.Close()
	return s.catalog.Close()
}

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
		Handler:           s.handler,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return reqCtx },
	}
	srv.RegisterOnShutdown(s.drainer.drain)

	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(ln) }()
	sweepCtx, stopSweep := context.WithCancel(context.WithoutCancel(ctx))
	sweepDone := make(chan struct{})
	go func() {
		defer close(sweepDone)
		if s.cfg.ReconcileInterval > 0 {
			s.reconcileLoop(sweepCtx, s.cfg.ReconcileInterval)
		}
	}()
	reapDone := make(chan struct{})
	go func() {
		defer close(reapDone)
		if s.cfg.ReapInterval > 0 && s.cfg.UploadTTL > 0 {
			s.reapLoop(sweepCtx, s.cfg.ReapInterval)
		}
	}()
	defer func() { stopSweep(); <-sweepDone; <-reapDone }()
	s.log.InfoContext(ctx, "intake listening", "addr", ln.Addr().String(), "base_path", s.cfg.BasePath)
	var adminSrv *http.Server
	if s.adminLn != nil {
		adminSrv = &http.Server{Handler: s.admin, ReadHeaderTimeout: 30 * time.Second}
		go func() { errc <- adminSrv.Serve(s.adminLn) }()
		s.log.InfoContext(ctx, "admin endpoints listening", "addr", s.adminLn.Addr().String())
	}
	// Webhooks: the dispatcher stops with ctx, alongside the HTTP
	// shutdown, and Serve waits for it, so it is done before Close.
	stopWebhooks := s.startWebhooks(ctx, ln.Addr())
	defer stopWebhooks()

	select {
	case err := <-errc:
		return fmt.Errorf("serving http: %w", err)
	case <-ctx.Done():
	}
	s.log.InfoContext(ctx, "shutting down", "timeout", s.cfg.ShutdownTimeout)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	if adminSrv != nil {
		_ = adminSrv.Shutdown(shutdownCtx)
	}
	err := srv.Shutdown(shutdownCtx)
	if err != nil {
		s.log.Warn("graceful shutdown timed out; closing connections", "error", err)
		cancelRequests()
		err = srv.Close()
	}
	servers := 1
	if adminSrv != nil {
		servers = 2
	}
	for range servers {
		if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
			err = serr
		}
	}
	return err
}

// OpenStorage builds the store cfg selects over cat, for commands that
// read stored bytes outside a running server (intake verify).
func OpenStorage(ctx context.Context, cfg config.Config, log *slog.Logger, cat Catalog, opts ...Option) (*storage.Store, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	sopts := storage.Options{Logger: log, Metrics: storage.NewMetrics(nil), DedupScope: storage.DedupScope(cfg.DedupScope), TTL: cfg.UploadTTL}
	backend, _, err := newBackend(ctx, cfg, log, prometheus.NewRegistry(), o, &sopts)
	if err != nil {
		return nil, err
	}
	return storage.New(backend, cat, sopts), nil
}

// newBackend builds the byte store cfg selects, fills in the store options
// that depend on it, and returns the readiness check for it.
func newBackend(ctx context.Context, cfg config.Config, log *slog.Logger, reg prometheus.Registerer, o options, opts *storage.Options) (storage.Backend, func(context.Context) error, error) {
	switch cfg.Store {
	case "s3":
		tmp := cfg.S3TempDirPath()
		if err := os.MkdirAll(tmp, 0o750); err != nil {
			return nil, nil, fmt.Errorf("creating S3 temp directory: %w", err)
		}
		b, err := bucket.New(ctx, bucket.Options{
			Bucket:           cfg.S3Bucket,
			Endpoint:         cfg.S3Endpoint,
			Region:           cfg.S3Region,
			PathStyle:        cfg.S3PathStyle,
			Prefix:           cfg.S3Prefix,
			PartSize:         int64(cfg.S3PartSize),
			MinPartSize:      int64(cfg.S3MinPartSize),
			MaxBufferedParts: cfg.S3MaxBufferedParts,
			ConcurrentParts:  cfg.S3ConcurrentParts,
			TempDir:          tmp,
			Redirect:         cfg.DownloadRedirect,
			URLTTL:           cfg.DownloadURLTTL,
			Credentials:      o.s3Credentials,
		})
		if err != nil {
			return nil, nil, err
		}
		b.RegisterMetrics(reg)
		opts.Downloader = b
		opts.Orphans = b.Orphans(log)
		ready := func(ctx context.Context) error { return b.Ensure(ctx, cfg.S3CreateBucket) }
		// An unreachable S3 at start is not fatal: intake serves, /readyz
		// says 503 and uploads get 503 until the bucket answers.
		checkCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := ready(checkCtx); err != nil {
			log.ErrorContext(ctx, "S3 bucket is not usable yet; /readyz answers 503 until it is",
				"bucket", cfg.S3Bucket, "endpoint", cfg.S3Endpoint, "error", err)
		}
		return b.Store(), ready, nil
	default:
		dir := cfg.UploadsDir()
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, nil, fmt.Errorf("creating uploads directory: %w", err)
		}
		fs := filestore.New(dir)
		fs.DirModePerm = 0o750
		fs.FileModePerm = 0o640
		if cfg.FileSync {
			opts.Sync = storage.FileSync
		}
		opts.Orphans = storage.FileOrphans{Dir: dir, Logger: log}
		return fs, dirWritable(dir), nil
	}
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
