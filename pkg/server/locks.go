package server

import (
	"context"
	"errors"
	"sync"

	"github.com/tus/tusd/v2/pkg/handler"
)

// heldLocker wraps tusd's locker and remembers which uploads are locked,
// so that background work (reaper, reconciler) can pass over an upload a
// request is using instead of asking that request to yield: an interrupted
// PATCH is resumable, but there is no reason to cut one short.
type heldLocker struct {
	inner handler.Locker
	mu    sync.Mutex
	held  map[string]int
}

func newHeldLocker(inner handler.Locker) *heldLocker {
	return &heldLocker{inner: inner, held: map[string]int{}}
}

// UseIn registers the locker with a composer.
func (l *heldLocker) UseIn(c *handler.StoreComposer) { c.UseLocker(l) }

func (l *heldLocker) NewLock(id string) (handler.Lock, error) {
	inner, err := l.inner.NewLock(id)
	if err != nil {
		return nil, err
	}
	return &heldLock{l: l, id: id, inner: inner}, nil
}

func (l *heldLocker) isHeld(id string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.held[id] > 0
}

type heldLock struct {
	l     *heldLocker
	id    string
	inner handler.Lock
}

func (h *heldLock) Lock(ctx context.Context, requestUnlock func()) error {
	if err := h.inner.Lock(ctx, requestUnlock); err != nil {
		return err
	}
	h.l.mu.Lock()
	h.l.held[h.id]++
	h.l.mu.Unlock()
	return nil
}

func (h *heldLock) Unlock() error {
	h.l.mu.Lock()
	if h.l.held[h.id]--; h.l.held[h.id] <= 0 {
		delete(h.l.held, h.id)
	}
	h.l.mu.Unlock()
	return h.inner.Unlock()
}

// errBusy means a request holds the upload.
var errBusy = errors.New("upload in use")
