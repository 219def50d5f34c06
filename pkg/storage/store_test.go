package storage_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"testing/iotest"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tus/tusd/v2/pkg/filestore"
	"github.com/tus/tusd/v2/pkg/handler"

	"github.com/intake-dev/intake/internal/pgtest"
	"github.com/intake-dev/intake/pkg/auth"
	"github.com/intake-dev/intake/pkg/catalog"
	"github.com/intake-dev/intake/pkg/catalog/postgres"
	"github.com/intake-dev/intake/pkg/catalog/sqlite"
	"github.com/intake-dev/intake/pkg/storage"
)

// catalogs are the real catalogs every store test runs against.
var catalogs = []struct {
	name string
	open func(t *testing.T) catalog.Catalog
}{
	{"sqlite", func(t *testing.T) catalog.Catalog {
		c, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "catalog.db"))
		if err != nil {
			t.Fatalf("sqlite.Open = %v", err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := c.MigrateUp(t.Context()); err != nil {
			t.Fatalf("MigrateUp = %v", err)
		}
		return c
	}},
	{"postgres", func(t *testing.T) catalog.Catalog {
		c, err := postgres.Open(t.Context(), pgtest.URL(t), postgres.Options{MaxConns: 4})
		if err != nil {
			t.Fatalf("postgres.Open = %v", err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := c.MigrateUp(t.Context()); err != nil {
			t.Fatalf("MigrateUp = %v", err)
		}
		return c
	}},
}

// bundle is one Store over a real file store and a real catalog. The store
// sees the catalog through faults, which passes every call through until a
// test switches a failure on.
type bundle struct {
	store   *storage.Store
	backend filestore.FileStore
	catalog catalog.Catalog
	faults  *faultySessions
	dir     string // the file store's directory, nothing else in it
	reg     *prometheus.Registry
}

// forEachCatalog runs f against a fresh bundle per catalog. opts is used as
// given except for Metrics, which the bundle owns.
func forEachCatalog(t *testing.T, opts storage.Options, f func(t *testing.T, b *bundle)) {
	t.Helper()
	for _, c := range catalogs {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f(t, setup(t, c.open(t), opts))
		})
	}
}

func setup(t *testing.T, cat catalog.Catalog, opts storage.Options) *bundle {
	t.Helper()
	b := &bundle{
		catalog: cat,
		faults:  &faultySessions{Sessions: cat},
		dir:     t.TempDir(),
		reg:     prometheus.NewRegistry(),
	}
	b.backend = filestore.New(b.dir)
	opts.Metrics = storage.NewMetrics(b.reg)
	if opts.Logger == nil {
		// Shown with the test's output, on failure or with -v.
		opts.Logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	}
	b.store = storage.New(b.backend, b.faults, opts)
	return b
}

// errCatalogDown names a host, as a real driver error would; it must never
// reach a client.
var errCatalogDown = errors.New("dial tcp db.internal:5432: connect: connection refused")

// faultySessions is the real catalog with failures that can be switched on
// and off, for the crash points a real database cannot be made to hit.
type faultySessions struct {
	storage.Sessions
	failCreate        atomic.Bool
	failSetOffset     atomic.Bool
	failDeclareLength atomic.Bool
}

func (f *faultySessions) Create(ctx context.Context, s catalog.Session) error {
	if f.failCreate.Load() {
		return errCatalogDown
	}
	return f.Sessions.Create(ctx, s)
}

func (f *faultySessions) SetOffset(ctx context.Context, id string, offset int64) error {
	if f.failSetOffset.Load() {
		return errCatalogDown
	}
	return f.Sessions.SetOffset(ctx, id, offset)
}

// CommitOffset is the offset write of WriteChunk: failSetOffset covers it.
func (f *faultySessions) CommitOffset(ctx context.Context, id string, offset int64, state []byte) error {
	if f.failSetOffset.Load() {
		return errCatalogDown
	}
	return f.Sessions.CommitOffset(ctx, id, offset, state)
}

func (f *faultySessions) DeclareLength(ctx context.Context, id string, size int64) error {
	if f.failDeclareLength.Load() {
		return errCatalogDown
	}
	return f.Sessions.DeclareLength(ctx, id, size)
}

func (b *bundle) create(t *testing.T, ctx context.Context, info handler.FileInfo) (handler.Upload, string) {
	t.Helper()
	up, err := b.store.NewUpload(ctx, info)
	if err != nil {
		t.Fatalf("NewUpload = %v", err)
	}
	got, err := up.GetInfo(ctx)
	if err != nil {
		t.Fatalf("GetInfo of new upload = %v", err)
	}
	return up, got.ID
}

// get opens the upload through the Store, as tusd does at the start of
// every request.
func (b *bundle) get(t *testing.T, ctx context.Context, id string) handler.Upload {
	t.Helper()
	up, err := b.store.GetUpload(ctx, id)
	if err != nil {
		t.Fatalf("GetUpload = %v", err)
	}
	return up
}

// writeBehind appends data with the backend's own upload, so the catalog
// is not told: the state a crash right after the store write leaves.
func (b *bundle) writeBehind(t *testing.T, id string, data []byte) {
	t.Helper()
	up, err := b.backend.GetUpload(t.Context(), id)
	if err != nil {
		t.Fatalf("backend GetUpload = %v", err)
	}
	info, _ := up.GetInfo(t.Context())
	if n, err := up.WriteChunk(t.Context(), info.Offset, bytes.NewReader(data)); err != nil || n != int64(len(data)) {
		t.Fatalf("backend WriteChunk = %d, %v; want %d, nil", n, err, len(data))
	}
}

func (b *bundle) session(t *testing.T, id string) catalog.Session {
	t.Helper()
	sess, err := b.catalog.Get(t.Context(), id)
	if err != nil {
		t.Fatalf("catalog Get = %v", err)
	}
	return sess
}

// counter reads one of the store's counters from its registry.
func (b *bundle) counter(t *testing.T, name string) float64 {
	t.Helper()
	mfs, err := b.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

func (b *bundle) files(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(b.dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func (b *bundle) stored(t *testing.T, id string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(b.dir, id))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// wantTusError checks that err carries the response status and code tusd
// will send. errors.Is cannot compare handler.Error values (they hold a map).
func wantTusError(t *testing.T, err error, status int, code string) {
	t.Helper()
	var te handler.Error
	if !errors.As(err, &te) {
		t.Fatalf("error = %v; want a handler.Error %d %s", err, status, code)
	}
	if te.HTTPResponse.StatusCode != status || te.ErrorCode != code {
		t.Fatalf("error = %d %s; want %d %s", te.HTTPResponse.StatusCode, te.ErrorCode, status, code)
	}
	if strings.Contains(err.Error(), "db.internal") {
		t.Fatalf("error %q carries the catalog's cause", err)
	}
}

func TestCatalogBehindStoreIsRepaired(t *testing.T) {
	t.Parallel()
	forEachCatalog(t, storage.Options{}, func(t *testing.T, b *bundle) {
		ctx := t.Context()
		data := bytes.Repeat([]byte("abcdefghij"), 10)
		up, id := b.create(t, ctx, handler.FileInfo{Size: 100})
		if _, err := up.WriteChunk(ctx, 0, bytes.NewReader(data[:10])); err != nil {
			t.Fatal(err)
		}
		b.writeBehind(t, id, data[10:40])
		if got := b.session(t, id).Offset; got != 10 {
			t.Fatalf("catalog offset before repair = %d; want 10", got)
		}

		info, err := b.get(t, ctx, id).GetInfo(ctx)
		if err != nil {
			t.Fatalf("GetInfo = %v", err)
		}
		if info.Offset != 40 {
			t.Fatalf("GetInfo offset = %d; want 40 (the store's)", info.Offset)
		}
		sess := b.session(t, id)
		if sess.Offset != 40 || sess.State != catalog.StateReceiving {
			t.Fatalf("catalog after GetInfo: offset %d, state %s; want 40, receiving", sess.Offset, sess.State)
		}

		// The upload resumes from the repaired offset.
		up = b.get(t, ctx, id)
		if n, err := up.WriteChunk(ctx, 40, bytes.NewReader(data[40:])); err != nil || n != 60 {
			t.Fatalf("WriteChunk = %d, %v", n, err)
		}
		if err := up.FinishUpload(ctx); err != nil {
			t.Fatal(err)
		}
		if got := b.stored(t, id); !bytes.Equal(got, data) {
			t.Fatalf("stored %q; want %q", got, data)
		}
		if sess := b.session(t, id); sess.State != catalog.StateComplete || sess.Offset != 100 {
			t.Fatalf("catalog = %s at %d; want complete at 100", sess.State, sess.Offset)
		}
	})
}

func TestStoredButUnfinalizedIsFinalizedOnce(t *testing.T) {
	t.Parallel()
	forEachCatalog(t, storage.Options{}, func(t *testing.T, b *bundle) {
		ctx := t.Context()
		_, id := b.create(t, ctx, handler.FileInfo{Size: 64})
		b.writeBehind(t, id, bytes.Repeat([]byte{7}, 64))
		if sess := b.session(t, id); sess.State != catalog.StateReceiving || sess.CompletedAt != nil {
			t.Fatalf("session before repair = %s, completed %v; want receiving", sess.State, sess.CompletedAt)
		}

		info, err := b.get(t, ctx, id).GetInfo(ctx)
		if err != nil {
			t.Fatalf("GetInfo = %v", err)
		}
		if info.Offset != 64 {
			t.Fatalf("GetInfo offset = %d; want 64", info.Offset)
		}
		first := b.session(t, id)
		if first.State != catalog.StateComplete || first.CompletedAt == nil || first.Offset != 64 {
			t.Fatalf("session after GetInfo = %s at %d, completed %v; want complete at 64", first.State, first.Offset, first.CompletedAt)
		}
		if got := b.counter(t, "intake_uploads_completed_total"); got != 1 {
			t.Fatalf("completed count = %v; want 1", got)
		}

		// Later requests, and tusd finishing again, change nothing.
		up := b.get(t, ctx, id)
		if _, err := up.GetInfo(ctx); err != nil {
			t.Fatal(err)
		}
		if err := up.FinishUpload(ctx); err != nil {
			t.Fatal(err)
		}
		if err := b.get(t, ctx, id).FinishUpload(ctx); err != nil {
			t.Fatal(err)
		}
		if got := b.counter(t, "intake_uploads_completed_total"); got != 1 {
			t.Errorf("completed count after repeats = %v; want 1", got)
		}
		again := b.session(t, id)
		if !again.CompletedAt.Equal(*first.CompletedAt) || !again.UpdatedAt.Equal(first.UpdatedAt) {
			t.Errorf("session changed by repeats: completed %v -> %v, updated %v -> %v",
				first.CompletedAt, again.CompletedAt, first.UpdatedAt, again.UpdatedAt)
		}
	})
}

func TestCatalogFailureAfterWriteKeepsBytes(t *testing.T) {
	t.Parallel()
	forEachCatalog(t, storage.Options{}, func(t *testing.T, b *bundle) {
		ctx := t.Context()
		up, id := b.create(t, ctx, handler.FileInfo{Size: 100})
		data := bytes.Repeat([]byte("x"), 30)

		b.faults.failSetOffset.Store(true)
		n, err := up.WriteChunk(ctx, 0, bytes.NewReader(data))
		if n != 30 {
			t.Errorf("WriteChunk wrote %d; want 30", n)
		}
		wantTusError(t, err, http.StatusServiceUnavailable, "ERR_CATALOG_UNAVAILABLE")
		if got := b.stored(t, id); !bytes.Equal(got, data) {
			t.Fatalf("store holds %d bytes; want the 30 written", len(got))
		}
		if got := b.session(t, id).Offset; got != 0 {
			t.Fatalf("catalog offset = %d; want 0 while SetOffset fails", got)
		}
		// While the catalog is still down, the repair fails too: no offset
		// is reported that the catalog could not record.
		_, err = b.get(t, ctx, id).GetInfo(ctx)
		wantTusError(t, err, http.StatusServiceUnavailable, "ERR_CATALOG_UNAVAILABLE")

		b.faults.failSetOffset.Store(false)
		info, err := b.get(t, ctx, id).GetInfo(ctx)
		if err != nil || info.Offset != 30 {
			t.Fatalf("GetInfo after recovery = %d, %v; want 30, nil", info.Offset, err)
		}
		if got := b.session(t, id).Offset; got != 30 {
			t.Fatalf("catalog offset after recovery = %d; want 30", got)
		}
	})
}

func TestCatalogCreateFailureRemovesUpload(t *testing.T) {
	t.Parallel()
	forEachCatalog(t, storage.Options{}, func(t *testing.T, b *bundle) {
		b.faults.failCreate.Store(true)
		up, err := b.store.NewUpload(t.Context(), handler.FileInfo{Size: 10, MetaData: handler.MetaData{"filename": "a.txt"}})
		if up != nil {
			t.Errorf("NewUpload returned an upload with error %v", err)
		}
		wantTusError(t, err, http.StatusServiceUnavailable, "ERR_CATALOG_UNAVAILABLE")
		if files := b.files(t); len(files) != 0 {
			t.Fatalf("store dir holds %v after a failed create; want nothing", files)
		}
		sessions, err := b.catalog.List(t.Context(), catalog.ListOptions{})
		if err != nil || len(sessions) != 0 {
			t.Fatalf("catalog lists %d sessions, %v; want none", len(sessions), err)
		}
	})
}

func TestTerminatedAndFailedSessions(t *testing.T) {
	t.Parallel()
	forEachCatalog(t, storage.Options{}, func(t *testing.T, b *bundle) {
		ctx := t.Context()
		_, gone := b.create(t, ctx, handler.FileInfo{Size: 10})
		if err := b.store.AsTerminatableUpload(b.get(t, ctx, gone)).Terminate(ctx); err != nil {
			t.Fatalf("Terminate = %v", err)
		}
		if st := b.session(t, gone).State; st != catalog.StateTerminated {
			t.Fatalf("state after Terminate = %s", st)
		}
		_, err := b.store.GetUpload(ctx, gone)
		wantTusError(t, err, http.StatusNotFound, handler.ErrNotFound.ErrorCode)

		_, failed := b.create(t, ctx, handler.FileInfo{Size: 10})
		if err := b.catalog.SetState(ctx, failed, catalog.StateFailed); err != nil {
			t.Fatal(err)
		}
		_, err = b.store.GetUpload(ctx, failed)
		wantTusError(t, err, http.StatusGone, "ERR_UPLOAD_FAILED")

		_, err = b.store.GetUpload(ctx, "never-created")
		wantTusError(t, err, http.StatusNotFound, handler.ErrNotFound.ErrorCode)
	})
}

func TestOwnerIsolation(t *testing.T) {
	t.Parallel()
	forEachCatalog(t, storage.Options{}, func(t *testing.T, b *bundle) {
		alice := auth.WithOwner(t.Context(), "alice")
		bob := auth.WithOwner(t.Context(), "bob")
		anon := t.Context()

		_, plain := b.create(t, alice, handler.FileInfo{Size: 3})
		if _, err := b.store.GetUpload(alice, plain); err != nil {
			t.Fatalf("owner's GetUpload = %v", err)
		}
		for name, ctx := range map[string]context.Context{"bob": bob, "anonymous": anon} {
			_, err := b.store.GetUpload(ctx, plain)
			if err == nil {
				t.Fatalf("%s opened alice's upload", name)
			}
			wantTusError(t, err, http.StatusNotFound, handler.ErrNotFound.ErrorCode)
		}

		// A failed upload's state is not news to anyone but its owner.
		_, failed := b.create(t, alice, handler.FileInfo{Size: 3})
		if err := b.catalog.SetState(alice, failed, catalog.StateFailed); err != nil {
			t.Fatal(err)
		}
		_, err := b.store.GetUpload(bob, failed)
		wantTusError(t, err, http.StatusNotFound, handler.ErrNotFound.ErrorCode)

		part, partID := b.create(t, alice, handler.FileInfo{Size: 3, IsPartial: true})
		if _, err := part.WriteChunk(alice, 0, strings.NewReader("abc")); err != nil {
			t.Fatal(err)
		}
		if err := part.FinishUpload(alice); err != nil {
			t.Fatal(err)
		}
		before := b.files(t)

		final := func(ctx context.Context, ids ...string) error {
			_, err := b.store.NewUpload(ctx, handler.FileInfo{Size: 3 * int64(len(ids)), IsFinal: true, PartialUploads: ids})
			return err
		}
		err = final(bob, partID)
		wantTusError(t, err, http.StatusNotFound, handler.ErrNotFound.ErrorCode)
		err = final(alice, partID, plain)
		wantTusError(t, err, http.StatusBadRequest, "ERR_INVALID_CONCAT")
		// Whether another owner's upload is partial is not news either.
		err = final(bob, plain)
		wantTusError(t, err, http.StatusNotFound, handler.ErrNotFound.ErrorCode)
		if after := b.files(t); len(after) != len(before) {
			t.Fatalf("refused finals left files: %v -> %v", before, after)
		}

		// The owner's own concatenation goes through.
		up, finalID := b.create(t, alice, handler.FileInfo{Size: 3, IsFinal: true, PartialUploads: []string{partID}})
		if err := b.store.AsConcatableUpload(up).ConcatUploads(alice, []handler.Upload{b.get(t, alice, partID)}); err != nil {
			t.Fatalf("ConcatUploads = %v", err)
		}
		if sess := b.session(t, finalID); sess.State != catalog.StateComplete || sess.Owner != "alice" {
			t.Fatalf("final session = %s owned by %q; want complete, alice", sess.State, sess.Owner)
		}
		if got := b.stored(t, finalID); string(got) != "abc" {
			t.Fatalf("final holds %q; want abc", got)
		}
	})
}

func TestInvalidMetadataIsRefused(t *testing.T) {
	t.Parallel()
	forEachCatalog(t, storage.Options{}, func(t *testing.T, b *bundle) {
		for name, md := range map[string]handler.MetaData{
			"nul in value":         {"filename": "a\x00b.txt"},
			"invalid utf-8 value":  {"filename": "\xff\xfe.txt"},
			"invalid utf-8 key":    {"file\xc3name": "a.txt"},
			"nul in key":           {"file\x00name": "a.txt"},
			"one bad among good":   {"filetype": "text/plain", "filename": "ok\x00"},
			"truncated multi-byte": {"filename": "caf\xc3"},
		} {
			_, err := b.store.NewUpload(t.Context(), handler.FileInfo{Size: 10, MetaData: md})
			if err == nil {
				t.Fatalf("%s: accepted", name)
			}
			wantTusError(t, err, http.StatusBadRequest, "ERR_INVALID_METADATA")
			if files := b.files(t); len(files) != 0 {
				t.Fatalf("%s: store dir holds %v; want nothing", name, files)
			}
		}
		// Control: good text, including non-ASCII, is kept as sent.
		_, id := b.create(t, t.Context(), handler.FileInfo{Size: 10, MetaData: handler.MetaData{"filename": "café ✓.txt"}})
		if got := b.session(t, id).Metadata["filename"]; got != "café ✓.txt" {
			t.Fatalf("filename = %q", got)
		}
	})
}

func TestServeContentOnlyWhenComplete(t *testing.T) {
	t.Parallel()
	forEachCatalog(t, storage.Options{}, func(t *testing.T, b *bundle) {
		ctx := t.Context()
		serve := func(id string) (*httptest.ResponseRecorder, error) {
			// As tusd's GET: open, GetInfo, then serve.
			up := b.get(t, ctx, id)
			if _, err := up.GetInfo(ctx); err != nil {
				t.Fatalf("GetInfo = %v", err)
			}
			w := httptest.NewRecorder()
			err := b.store.AsServableUpload(up).ServeContent(ctx, w, httptest.NewRequest("GET", "/files/"+id, nil))
			return w, err
		}

		up, id := b.create(t, ctx, handler.FileInfo{Size: 10})
		if _, err := up.WriteChunk(ctx, 0, strings.NewReader("hello")); err != nil {
			t.Fatal(err)
		}
		w, err := serve(id)
		wantTusError(t, err, http.StatusConflict, "ERR_UPLOAD_INCOMPLETE")
		if w.Body.Len() != 0 {
			t.Fatalf("incomplete upload served %q", w.Body.String())
		}

		// All bytes stored but never finalized: the GET's GetInfo finalizes,
		// and the bytes are served.
		b.writeBehind(t, id, []byte("world"))
		w, err = serve(id)
		if err != nil || w.Code != http.StatusOK || w.Body.String() != "helloworld" {
			t.Fatalf("serving a stored upload = %d %q, %v; want 200 helloworld", w.Code, w.Body.String(), err)
		}
	})
}

func TestSyncBeforeOffsetIsRecorded(t *testing.T) {
	t.Parallel()
	for _, c := range catalogs {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var (
				b        *bundle
				calls    atomic.Int32
				fail     atomic.Bool
				recorded atomic.Int64 // the catalog offset the next Sync must still see
			)
			syncFile := func(ctx context.Context, info handler.FileInfo) error {
				calls.Add(1)
				sess, err := b.catalog.Get(ctx, info.ID)
				if err != nil {
					t.Errorf("catalog Get in Sync = %v", err)
				} else if sess.Offset != recorded.Load() {
					t.Errorf("catalog offset during Sync = %d; want the old %d", sess.Offset, recorded.Load())
				}
				if st, err := os.Stat(info.Storage["Path"]); err != nil || st.Size() != info.Offset {
					t.Errorf("Sync of offset %d with the file at %v, %v; want the bytes written first", info.Offset, st.Size(), err)
				}
				if fail.Load() {
					return errors.New("injected fsync failure")
				}
				return storage.FileSync(ctx, info)
			}
			b = setup(t, c.open(t), storage.Options{Sync: syncFile})
			ctx := t.Context()
			up, id := b.create(t, ctx, handler.FileInfo{Size: 30})

			off := int64(0)
			for i, chunk := range []string{"0123456789", "", "abcdefghij"} {
				n, err := up.WriteChunk(ctx, off, strings.NewReader(chunk))
				if err != nil || n != int64(len(chunk)) {
					t.Fatalf("write %d = %d, %v", i, n, err)
				}
				off += n
				if got := b.session(t, id).Offset; got != off {
					t.Fatalf("catalog offset after write %d = %d; want %d", i, got, off)
				}
				recorded.Store(off)
			}
			if got := calls.Load(); got != 2 {
				t.Fatalf("Sync called %d times for 2 writes with bytes and 1 without; want 2", got)
			}

			// A body that fails before its first byte writes nothing to sync;
			// one that fails after some bytes has those synced and recorded.
			gone := errors.New("client went away")
			if n, err := up.WriteChunk(ctx, off, iotest.ErrReader(gone)); n != 0 || !errors.Is(err, gone) {
				t.Fatalf("WriteChunk of a failing body = %d, %v; want 0, %v", n, err, gone)
			}
			if got := calls.Load(); got != 2 {
				t.Fatalf("Sync called %d times after a write of nothing; want 2", got)
			}
			n, err := up.WriteChunk(ctx, off, io.MultiReader(strings.NewReader("klmno"), iotest.ErrReader(gone)))
			if n != 5 || !errors.Is(err, gone) {
				t.Fatalf("WriteChunk of a body cut short = %d, %v; want 5, %v", n, err, gone)
			}
			off += n
			if got := calls.Load(); got != 3 {
				t.Fatalf("Sync called %d times; want 3", got)
			}
			if got := b.session(t, id).Offset; got != off {
				t.Fatalf("catalog offset after a body cut short = %d; want %d", got, off)
			}
			recorded.Store(off)

			// A failed sync fails the write and records nothing.
			fail.Store(true)
			if _, err := up.WriteChunk(ctx, off, strings.NewReader("ABCDE")); err == nil {
				t.Fatal("WriteChunk succeeded although Sync failed")
			}
			if got := calls.Load(); got != 4 {
				t.Fatalf("Sync called %d times; want 4", got)
			}
			if got := b.session(t, id).Offset; got != off {
				t.Fatalf("catalog offset after failed sync = %d; want %d", got, off)
			}
		})
	}
}

// TestDeclaredLengthRepaired: the store took a declared length the catalog
// never recorded (the catalog failed between the two). The length is
// repaired from the store, so the upload can still complete.
func TestDeclaredLengthRepaired(t *testing.T) {
	t.Parallel()
	forEachCatalog(t, storage.Options{}, func(t *testing.T, b *bundle) {
		ctx := t.Context()
		up, id := b.create(t, ctx, handler.FileInfo{SizeIsDeferred: true})
		if _, err := up.WriteChunk(ctx, 0, strings.NewReader("0123")); err != nil {
			t.Fatal(err)
		}

		b.faults.failDeclareLength.Store(true)
		err := b.store.AsLengthDeclarableUpload(up).DeclareLength(ctx, 10)
		wantTusError(t, err, http.StatusServiceUnavailable, "ERR_CATALOG_UNAVAILABLE")
		b.faults.failDeclareLength.Store(false)
		if sess := b.session(t, id); !sess.SizeDeferred() {
			t.Fatalf("catalog size = %d; want still deferred", *sess.Size)
		}

		// The next request sees the store's length: tusd will not let the
		// client declare it again, so the catalog must learn it here.
		up = b.get(t, ctx, id)
		info, err := up.GetInfo(ctx)
		if err != nil || info.SizeIsDeferred || info.Size != 10 {
			t.Fatalf("GetInfo = size %d (deferred %v), %v; want 10", info.Size, info.SizeIsDeferred, err)
		}
		if sess := b.session(t, id); sess.Size == nil || *sess.Size != 10 {
			t.Fatalf("catalog size after GetInfo = %v; want 10", sess.Size)
		}
		if _, err := up.WriteChunk(ctx, 4, strings.NewReader("456789")); err != nil {
			t.Fatal(err)
		}
		if err := up.FinishUpload(ctx); err != nil {
			t.Fatalf("FinishUpload = %v", err)
		}
		if sess := b.session(t, id); sess.State != catalog.StateComplete || sess.Offset != 10 {
			t.Fatalf("session = %s at %d; want complete at 10", sess.State, sess.Offset)
		}
	})
}

func TestFileSyncNeedsPath(t *testing.T) {
	t.Parallel()
	if err := storage.FileSync(t.Context(), handler.FileInfo{}); err == nil {
		t.Fatal("FileSync without a path succeeded")
	}
	path := filepath.Join(t.TempDir(), "blob")
	if err := os.WriteFile(path, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := storage.FileSync(t.Context(), handler.FileInfo{Storage: map[string]string{"Path": path}}); err != nil {
		t.Fatalf("FileSync = %v", err)
	}
}
