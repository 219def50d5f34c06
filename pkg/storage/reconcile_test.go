package storage_test

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/tus/tusd/v2/pkg/handler"

	"github.com/intake-dev/intake/pkg/catalog"
	"github.com/intake-dev/intake/pkg/storage"
)

// testLocker is a real in-process lock table, as tusd's memorylocker is.
type testLocker struct {
	mu   sync.Mutex
	held map[string]bool
}

func (l *testLocker) lock(_ context.Context, id string) (func(), error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.held == nil {
		l.held = map[string]bool{}
	}
	if l.held[id] {
		return nil, storage.ErrBusy
	}
	l.held[id] = true
	return func() { l.mu.Lock(); delete(l.held, id); l.mu.Unlock() }, nil
}

// TestReconcileFinalizesStoredUploads: bytes all stored but the catalog
// never told (a crash between the store's completion and finalization);
// the periodic sweep, with no request involved, finalizes such an upload
// once it has been quiet long enough, skips locked and recent ones, and
// leaves incomplete uploads receiving.
func TestReconcileFinalizesStoredUploads(t *testing.T) {
	t.Parallel()
	forEachCatalog(t, storage.Options{}, func(t *testing.T, b *bundle) {
		ctx := t.Context()
		_, done := b.create(t, ctx, handler.FileInfo{Size: 64})
		b.writeBehind(t, done, bytes.Repeat([]byte{7}, 64))
		_, locked := b.create(t, ctx, handler.FileInfo{Size: 32})
		b.writeBehind(t, locked, bytes.Repeat([]byte{8}, 32))
		_, partial := b.create(t, ctx, handler.FileInfo{Size: 100})
		b.writeBehind(t, partial, bytes.Repeat([]byte{9}, 10))

		var l testLocker
		unlock, _ := l.lock(ctx, locked)

		// Too recent: nothing happens yet.
		n, err := b.store.Reconcile(ctx, l.lock, time.Minute, time.Now())
		if err != nil || n != 0 || b.session(t, done).State != catalog.StateReceiving {
			t.Fatalf("sweep of recent uploads finalized %d (%v); want none", n, err)
		}

		later := time.Now().Add(2 * time.Minute)
		n, err = b.store.Reconcile(ctx, l.lock, time.Minute, later)
		if err != nil || n != 1 {
			t.Fatalf("sweep finalized %d (%v); want 1", n, err)
		}
		if s := b.session(t, done); s.State != catalog.StateComplete || s.SHA256 == "" {
			t.Fatalf("stored upload after the sweep: %s, sha256 %q; want complete with a digest", s.State, s.SHA256)
		}
		if s := b.session(t, locked); s.State != catalog.StateReceiving {
			t.Fatalf("locked upload: %s; want left alone", s.State)
		}
		if s := b.session(t, partial); s.State != catalog.StateReceiving || s.Offset != 10 {
			t.Fatalf("incomplete upload: %s at %d; want receiving at 10 (offset repaired)", s.State, s.Offset)
		}

		unlock()
		if n, err = b.store.Reconcile(ctx, l.lock, time.Minute, later); err != nil || n != 1 {
			t.Fatalf("sweep after unlock finalized %d (%v); want the other one", n, err)
		}
		if n, err = b.store.Reconcile(ctx, l.lock, time.Minute, later); err != nil || n != 0 {
			t.Fatalf("third sweep finalized %d (%v); want nothing left to do", n, err)
		}
	})
}
