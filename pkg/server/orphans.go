package server

import (
	"context"
	"log/slog"

	"github.com/intake-dev/intake/pkg/bucket"
	"github.com/intake-dev/intake/pkg/config"
	"github.com/intake-dev/intake/pkg/storage"
)

// SweepOrphans runs one orphan sweep now (tests and embedders; the server
// runs one after every reaper pass): storage older than the upload TTL
// that no session knows is removed.
func (s *Server) SweepOrphans(ctx context.Context) (storage.Orphans, error) {
	return s.store.SweepOrphans(ctx, false)
}

// sweepOrphans is the reaper loop's orphan sweep.
func (s *Server) sweepOrphans(ctx context.Context) {
	res, err := s.SweepOrphans(ctx)
	if err != nil && ctx.Err() == nil {
		s.log.WarnContext(ctx, "orphan sweep failed", "error", err)
	}
	if res.Multipart+res.Objects+res.Files > 0 {
		s.log.InfoContext(ctx, "orphan sweep removed storage no session knew",
			"multipart_uploads", res.Multipart, "objects", res.Objects, "files", res.Files)
	}
}

// removeStaleTemp removes the part files tusd's S3 store left in the temp
// directory when a previous process died mid-request. It runs while the
// server is assembled, before it serves, so no request of this process
// can be using one; the directory (<data-dir>/s3-tmp by default) is this
// process's alone.
func removeStaleTemp(ctx context.Context, cfg config.Config, log *slog.Logger, m *storage.Metrics) {
	if cfg.Store != "s3" {
		return
	}
	removed, err := bucket.RemoveTempFiles(cfg.S3TempDirPath())
	m.OrphansRemoved("temp", len(removed))
	if err != nil {
		log.WarnContext(ctx, "removing stale S3 part files", "error", err)
	}
	if len(removed) > 0 {
		log.InfoContext(ctx, "removed stale S3 part files", "count", len(removed))
	}
}
