package storage

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/tus/tusd/v2/pkg/handler"

	"github.com/intake-dev/intake/pkg/auth"
	"github.com/intake-dev/intake/pkg/catalog"
)

// ErrUploadExpired is the tus expiration extension's answer for an upload
// abandoned past its expiry: 410, so clients start over.
var ErrUploadExpired = handler.NewError("ERR_UPLOAD_EXPIRED",
	"the upload expired after a period without activity; start a new upload", http.StatusGone)

// Expiry carries, through a request's context, when the upload it touched
// expires, so that the HTTP layer can send Upload-Expires (which tusd's
// store interface has no way to set).
type Expiry struct {
	At time.Time // zero: no expiry to report (complete, or no TTL)
}

type expiryKey struct{}

// WithExpiry returns a context in which the store records the expiry of
// the upload a request touches.
func WithExpiry(ctx context.Context, e *Expiry) context.Context {
	return context.WithValue(ctx, expiryKey{}, e)
}

func (s *Store) now() time.Time {
	if s.opts.Now != nil {
		return s.opts.Now()
	}
	return time.Now()
}

// noteExpiry records when sess expires, if the request wants to know.
func (s *Store) noteExpiry(ctx context.Context, sess catalog.Session, lastActivity time.Time) {
	e, ok := ctx.Value(expiryKey{}).(*Expiry)
	if !ok || s.opts.TTL <= 0 {
		return
	}
	if sess.State != catalog.StateReceiving {
		e.At = time.Time{}
		return
	}
	e.At = lastActivity.Add(s.opts.TTL)
}

// expired reports whether a receiving session has been quiet longer than
// the TTL (sliding: every committed change restarts the clock).
func (s *Store) expired(sess catalog.Session) bool {
	return s.opts.TTL > 0 && sess.State == catalog.StateReceiving && sess.UpdatedAt.Add(s.opts.TTL).Before(s.now())
}

// ReapResult counts what a reaper pass did.
type ReapResult struct {
	Expired       int
	BytesReleased int64
}

// Reap expires every receiving session quiet for longer than the TTL:
// under its upload lock it re-checks the session, releases its storage
// (S3: multipart aborted, .info/.part deleted; file store: files removed)
// and marks it expired with an upload.expired event. A session a request
// holds is skipped until the next pass. With dryRun it only counts.
func (s *Store) Reap(ctx context.Context, lock Locker, dryRun bool) (ReapResult, error) {
	var res ReapResult
	if s.opts.TTL <= 0 {
		return res, nil
	}
	cutoff := s.now().Add(-s.opts.TTL)
	seen := map[string]bool{}
	for {
		page, err := s.sessions.ListExpired(ctx, cutoff, 100)
		if err != nil {
			return res, fmt.Errorf("listing expired uploads: %w", err)
		}
		progressed := false
		for _, sess := range page {
			if seen[sess.ID] {
				continue
			}
			seen[sess.ID] = true
			progressed = true
			if dryRun {
				res.Expired++
				res.BytesReleased += sess.Offset
				continue
			}
			ok, err := s.reapOne(ctx, lock, sess.ID, cutoff)
			if err != nil {
				s.opts.Logger.WarnContext(ctx, "reaping upload", "id", sess.ID, "error", err)
				continue
			}
			if ok {
				res.Expired++
				res.BytesReleased += sess.Offset
				s.opts.Metrics.reaped.Inc()
				s.opts.Metrics.bytesReleased.Add(float64(sess.Offset))
			}
		}
		if len(page) < 100 || !progressed || ctx.Err() != nil {
			return res, ctx.Err()
		}
	}
}

func (s *Store) reapOne(ctx context.Context, lock Locker, id string, cutoff time.Time) (bool, error) {
	unlock, err := lock(ctx, id)
	if errors.Is(err, ErrBusy) {
		return false, nil // a request holds it: not abandoned after all
	}
	if err != nil {
		return false, fmt.Errorf("locking expired upload: %w", err)
	}
	defer unlock()
	sess, err := s.sessions.Get(ctx, id)
	if err != nil {
		return false, err
	}
	if sess.State != catalog.StateReceiving || !sess.UpdatedAt.Before(cutoff) {
		return false, nil // it moved on before we got the lock
	}
	octx := auth.WithOwner(ctx, sess.Owner)
	inner, err := s.backend.GetUpload(octx, id)
	switch {
	case errors.Is(err, handler.ErrNotFound):
		// Already gone (a pass that crashed after deleting): just expire.
	case err != nil:
		return false, fmt.Errorf("opening expired upload: %w", err)
	default:
		if err := s.backend.AsTerminatableUpload(inner).Terminate(octx); err != nil {
			return false, fmt.Errorf("releasing expired upload: %w", err)
		}
	}
	ok, err := s.sessions.Expire(ctx, id, cutoff)
	if err != nil {
		return false, fmt.Errorf("marking upload expired: %w", err)
	}
	return ok, nil
}
