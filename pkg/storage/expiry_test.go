package storage_test

import (
	"bytes"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/tus/tusd/v2/pkg/handler"

	"github.com/intake-dev/intake/pkg/catalog"
	"github.com/intake-dev/intake/pkg/storage"
)

// clock is an injectable, movable time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestExpiry: an incomplete upload quiet for longer than the TTL answers
// 410 at once and the reaper releases its files and marks it expired (with
// its event); a complete upload and a recently active one survive every
// pass; a locked one waits; a dry run changes nothing.
func TestExpiry(t *testing.T) {
	t.Parallel()
	for _, c := range catalogs {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			clk := &clock{t: time.Now()}
			testExpiry(t, clk, setup(t, c.open(t), storage.Options{TTL: time.Hour, Now: clk.now}))
		})
	}
}

func testExpiry(t *testing.T, clk *clock, b *bundle) {
	{
		ctx := t.Context()
		up, stale := b.create(t, ctx, handler.FileInfo{Size: 100})
		if _, err := up.WriteChunk(ctx, 0, bytes.NewReader(make([]byte, 40))); err != nil {
			t.Fatal(err)
		}
		_, locked := b.create(t, ctx, handler.FileInfo{Size: 100})
		up, done := b.create(t, ctx, handler.FileInfo{Size: 8})
		if _, err := up.WriteChunk(ctx, 0, bytes.NewReader([]byte("complete"))); err != nil {
			t.Fatal(err)
		}
		if err := b.get(t, ctx, done).FinishUpload(ctx); err != nil {
			t.Fatal(err)
		}

		var l testLocker

		// Half the TTL later (the catalog stamps real time; the store's
		// clock moves): still alive, nothing reaped.
		clk.add(30 * time.Minute)
		if _, err := b.store.GetUpload(ctx, stale); err != nil {
			t.Fatalf("GetUpload within the TTL: %v", err)
		}
		if res, err := b.store.Reap(ctx, l.lock, false); err != nil || res.Expired != 0 {
			t.Fatalf("reaper within the TTL: %+v, %v; want nothing expired", res, err)
		}

		clk.add(2 * time.Hour)
		if _, err := b.store.GetUpload(ctx, stale); !errors.Is(err, storage.ErrUploadExpired) {
			t.Fatalf("GetUpload of a stale upload before the reaper: %v; want 410 expired", err)
		}

		unlock, _ := l.lock(ctx, locked)
		res, err := b.store.Reap(ctx, l.lock, true)
		if err != nil || res.Expired != 2 || res.BytesReleased != 40 {
			t.Fatalf("dry run: %+v, %v; want 2 uploads (stale, locked), 40 bytes", res, err)
		}
		if s := b.session(t, stale); s.State != catalog.StateReceiving {
			t.Fatalf("dry run changed the session to %s", s.State)
		}
		if _, err := os.Stat(b.dir + "/" + stale); err != nil {
			t.Fatalf("dry run removed the file: %v", err)
		}

		res, err = b.store.Reap(ctx, l.lock, false)
		if err != nil || res.Expired != 1 {
			t.Fatalf("reaper: %+v, %v; want the stale upload expired, the locked one left", res, err)
		}
		if s := b.session(t, stale); s.State != catalog.StateExpired {
			t.Fatalf("stale upload after the reaper: %s; want expired", s.State)
		}
		if _, err := os.Stat(b.dir + "/" + stale); !os.IsNotExist(err) {
			t.Fatalf("stale upload's file still there: %v", err)
		}
		if s := b.session(t, locked); s.State != catalog.StateReceiving {
			t.Fatalf("locked upload: %s; want left for the next pass", s.State)
		}
		if s := b.session(t, done); s.State != catalog.StateComplete {
			t.Fatalf("complete upload: %s; want untouched", s.State)
		}
		if got := b.counter(t, "intake_uploads_reaped_total"); got < 1 {
			t.Fatalf("reaped counter = %v", got)
		}
		if _, err := b.store.GetUpload(ctx, stale); !errors.Is(err, storage.ErrUploadExpired) {
			t.Fatalf("GetUpload of an expired upload: %v; want 410", err)
		}
		evs, err := b.catalog.ListEvents(ctx, catalog.EventFilter{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		expired := 0
		for _, e := range evs {
			if e.Type == catalog.EventExpired && e.UploadID == stale {
				expired++
			}
		}
		if expired != 1 {
			t.Fatalf("%d upload.expired events for the stale upload; want 1", expired)
		}

		unlock()
		if _, err := b.store.Reap(ctx, l.lock, false); err != nil {
			t.Fatal(err)
		}
		if s := b.session(t, locked); s.State != catalog.StateExpired {
			t.Fatalf("locked upload after unlock: %s; want expired", s.State)
		}
	}
}
