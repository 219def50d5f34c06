package storage

import (
	"context"
	"errors"
	"time"

	"github.com/intake-dev/intake/pkg/auth"
	"github.com/intake-dev/intake/pkg/catalog"
)

// Locker takes an upload's lock the way a request would, so the reconciler
// and the reaper never work on an upload a request is using. It fails with
// ErrBusy when a request holds the lock.
type Locker func(ctx context.Context, id string) (unlock func(), err error)

// ErrBusy is a Locker's answer for an upload a request is using.
var ErrBusy = errors.New("upload in use")

// Reconcile finds sessions still receiving that have not changed for
// quiet and looks at each as a HEAD would (under its lock): a catalog
// behind the store is repaired, and an upload whose bytes are all stored
// but which was never finalized (a crash between the store's completion
// and the catalog's) is finalized. It returns how many it finalized.
func (s *Store) Reconcile(ctx context.Context, lock Locker, quiet time.Duration, now time.Time) (int, error) {
	finalized := 0
	opts := catalog.ListOptions{State: catalog.StateReceiving, Limit: 200}
	for {
		page, err := s.sessions.List(ctx, opts)
		if err != nil {
			return finalized, err
		}
		for _, sess := range page {
			if sess.UpdatedAt.After(now.Add(-quiet)) {
				continue
			}
			done, err := s.reconcileOne(ctx, lock, sess)
			if errors.Is(err, ErrBusy) {
				continue // a request is on it, and repairs it anyway
			}
			if err != nil {
				s.opts.Logger.WarnContext(ctx, "reconciling upload", "id", sess.ID, "error", err)
				continue
			}
			if done {
				finalized++
			}
		}
		if len(page) < opts.Limit || ctx.Err() != nil {
			return finalized, ctx.Err()
		}
		last := page[len(page)-1]
		opts.Before, opts.BeforeID = last.CreatedAt, last.ID
	}
}

func (s *Store) reconcileOne(ctx context.Context, lock Locker, sess catalog.Session) (bool, error) {
	unlock, err := lock(ctx, sess.ID)
	if err != nil {
		return false, err // busy: a request is on it, which repairs it anyway
	}
	defer unlock()
	octx := auth.WithOwner(ctx, sess.Owner)
	up, err := s.GetUpload(octx, sess.ID)
	if err != nil {
		return false, err
	}
	u, ok := up.(*upload)
	if !ok {
		return false, nil // completed meanwhile
	}
	if _, err := u.GetInfo(octx); err != nil {
		return false, err
	}
	if u.session.State != catalog.StateReceiving {
		s.opts.Logger.InfoContext(ctx, "reconciler finalized an upload", "id", sess.ID, "state", u.session.State)
		return true, nil
	}
	return false, nil
}
