package storage

import (
	"context"
	"errors"

	"github.com/intake-dev/intake/pkg/auth"
	"github.com/intake-dev/intake/pkg/catalog"
)

// PreflightBlob answers the dedup preflight: the stored blob with digest
// sum, if the dedup scope lets the request's owner know of it — the scope
// deduplication at creation applies (none with DedupOff). An error means
// the catalog could not answer; its cause is logged.
func (s *Store) PreflightBlob(ctx context.Context, sum string) (catalog.Blob, bool, error) {
	if s.opts.DedupScope == DedupOff {
		return catalog.Blob{}, false, nil
	}
	// Only a read: unlike a commit, it ends with the request.
	rctx, cancel := context.WithTimeout(ctx, s.opts.CommitTimeout)
	defer cancel()
	blob, err := s.sessions.FindBlob(rctx, sum, auth.Owner(ctx), s.opts.DedupScope == DedupGlobal)
	switch {
	case errors.Is(err, catalog.ErrNotFound):
		return catalog.Blob{}, false, nil
	case err != nil:
		return catalog.Blob{}, false, s.catalogError(ctx, "find_blob", "", err)
	}
	s.opts.Metrics.PreflightHit()
	return blob, true, nil
}
