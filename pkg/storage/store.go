package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/tus/tusd/v2/pkg/handler"

	"github.com/intake-dev/intake/hooks"
	"github.com/intake-dev/intake/pkg/auth"
	"github.com/intake-dev/intake/pkg/catalog"
)

// Sessions is the part of the catalog the store needs.
type Sessions interface {
	Create(ctx context.Context, s catalog.Session) error
	Get(ctx context.Context, id string) (catalog.Session, error)
	SetOffset(ctx context.Context, id string, offset int64) error
	DeclareLength(ctx context.Context, id string, size int64) error
	Complete(ctx context.Context, id string, offset int64) error
	SetState(ctx context.Context, id string, state catalog.State) error
}

// Backend is a tusd store with every capability intake advertises.
type Backend interface {
	handler.DataStore
	handler.TerminaterDataStore
	handler.ConcaterDataStore
	handler.LengthDeferrerDataStore
}

// Options tune a Store. The zero value is usable.
type Options struct {
	// Sync, when set, is called after each write with the upload's store
	// info and must make the written bytes durable (e.g. fsync) before the
	// offset is recorded and acknowledged. Defaults to none.
	Sync func(ctx context.Context, info handler.FileInfo) error
	// CommitTimeout bounds each catalog call made on behalf of a request.
	// Writes deliberately outlive a cancelled request: the bytes are
	// already stored and the catalog must learn about them. Defaults to 10s.
	CommitTimeout time.Duration
	Logger        *slog.Logger
	Metrics       *Metrics
	// Downloader serves complete uploads when the backend cannot (tusd's
	// S3 store has no ServeContent). Defaults to the backend's own.
	Downloader Downloader
}

// Downloader serves the bytes of a complete upload for a GET, honouring
// Range and conditional headers, or redirecting elsewhere.
type Downloader interface {
	Serve(ctx context.Context, w http.ResponseWriter, r *http.Request, info handler.FileInfo) error
}

// Store is a tusd DataStore that keeps the catalog in step with a Backend.
type Store struct {
	backend  Backend
	sessions Sessions
	opts     Options
}

var (
	_ handler.DataStore               = (*Store)(nil)
	_ handler.TerminaterDataStore     = (*Store)(nil)
	_ handler.ConcaterDataStore       = (*Store)(nil)
	_ handler.LengthDeferrerDataStore = (*Store)(nil)
	_ handler.ContentServerDataStore  = (*Store)(nil)
)

// Errors sent to clients. Messages are fixed strings: the cause is logged,
// never echoed.
var (
	ErrCatalogUnavailable = handler.NewError("ERR_CATALOG_UNAVAILABLE", "the upload catalog is unavailable; retry later", http.StatusServiceUnavailable)
	ErrSessionConflict    = handler.NewError("ERR_SESSION_CONFLICT", "the upload changed state concurrently; retry", http.StatusConflict)
	ErrUploadFailed       = handler.NewError("ERR_UPLOAD_FAILED", "the upload failed and cannot be resumed; start a new upload", http.StatusGone)
	ErrUploadIncomplete   = handler.NewError("ERR_UPLOAD_INCOMPLETE", "the upload is not complete yet", http.StatusConflict)
	ErrNotPartial         = handler.NewError("ERR_INVALID_CONCAT", "a final upload may only concatenate partial uploads", http.StatusBadRequest)
	ErrInvalidMetadata    = handler.NewError("ERR_INVALID_METADATA", "metadata values must be UTF-8 text without NUL bytes", http.StatusBadRequest)
	ErrStorageUnavailable = handler.NewError("ERR_STORAGE_UNAVAILABLE", "the upload storage is unavailable; retry later", http.StatusServiceUnavailable)
)

// New returns a Store over backend that records sessions in sessions.
func New(backend Backend, sessions Sessions, opts Options) *Store {
	if opts.CommitTimeout <= 0 {
		opts.CommitTimeout = 10 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics(nil)
	}
	return &Store{backend: backend, sessions: sessions, opts: opts}
}

// UseIn registers the store and all its capabilities with a composer.
func (s *Store) UseIn(c *handler.StoreComposer) {
	c.UseCore(s)
	c.UseTerminater(s)
	c.UseConcater(s)
	c.UseLengthDeferrer(s)
	if _, ok := s.backend.(handler.ContentServerDataStore); ok || s.opts.Downloader != nil {
		c.UseContentServer(s)
	}
}

// commitCtx detaches a catalog write from the request: once bytes are in the
// store, a client hanging up must not stop the catalog from recording them.
func (s *Store) commitCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), s.opts.CommitTimeout)
}

// catalogError turns a catalog failure into a client-facing tusd error and
// logs the cause, which may name hosts or queries.
func (s *Store) catalogError(ctx context.Context, op, id string, err error) error {
	switch {
	case errors.Is(err, catalog.ErrNotFound):
		return handler.ErrNotFound
	case errors.Is(err, catalog.ErrConflict):
		s.opts.Logger.WarnContext(ctx, "catalog conflict", "op", op, "id", id, "error", err)
		return ErrSessionConflict
	default:
		s.opts.Logger.ErrorContext(ctx, "catalog unavailable", "op", op, "id", id, "error", err)
		return ErrCatalogUnavailable
	}
}

// limits returns what the request's token allows (nothing narrowed for
// anonymous requests).
func limits(ctx context.Context) hooks.Limits {
	c, ok := auth.ClaimsFrom(ctx)
	if !ok {
		return hooks.Limits{}
	}
	return hooks.Limits{MaxSize: c.MaxSize, AllowedTypes: c.AllowedTypes, UploadID: c.UploadID}
}

// RefusalError turns a policy refusal into the tusd error that carries its
// response; tusd's code form ("ERR_MAX_SIZE_EXCEEDED") becomes the JSON
// code "max_size_exceeded" again in pkg/protocol.
func RefusalError(r *hooks.Refusal) error {
	return handler.NewError("ERR_"+strings.ToUpper(r.Code), r.Message, r.Status)
}

// backendError passes on errors that carry their own response (tusd's
// handler.Error) and turns any other backend failure — a network error, an
// S3 error — into a 503 the client retries, logging the cause, which may
// name hosts, keys or paths.
func (s *Store) backendError(ctx context.Context, op, id string, err error) error {
	var herr handler.Error
	if errors.As(err, &herr) {
		return err
	}
	s.opts.Logger.ErrorContext(ctx, "storage backend failed", "op", op, "id", id, "error", err)
	return ErrStorageUnavailable
}

// NewUpload creates the upload in the backend, then its session. If the
// session cannot be written the backend upload is removed again, so a
// client never holds an upload URL the catalog does not know.
func (s *Store) NewUpload(ctx context.Context, info handler.FileInfo) (handler.Upload, error) {
	if info.IsFinal {
		if err := s.checkPartials(ctx, info.PartialUploads); err != nil {
			return nil, err
		}
	}
	inner, err := s.backend.NewUpload(ctx, info)
	if err != nil {
		return nil, s.backendError(ctx, "create", "", err)
	}
	stored, err := inner.GetInfo(ctx)
	if err != nil {
		return nil, s.backendError(ctx, "create", "", err)
	}
	sess := catalog.Session{
		ID:         stored.ID,
		Owner:      auth.Owner(ctx),
		State:      catalog.StateReceiving,
		Metadata:   map[string]string(stored.MetaData),
		IsPartial:  stored.IsPartial,
		IsFinal:    stored.IsFinal,
		PartialIDs: stored.PartialUploads,
		Storage:    stored.Storage,
	}
	if !stored.SizeIsDeferred {
		size := stored.Size
		sess.Size = &size
	}
	cctx, cancel := s.commitCtx(ctx)
	defer cancel()
	if err := s.sessions.Create(cctx, sess); err != nil {
		if terr := s.backend.AsTerminatableUpload(inner).Terminate(cctx); terr != nil {
			s.opts.Logger.ErrorContext(ctx, "removing upload without session", "id", stored.ID, "error", terr)
		}
		if errors.Is(err, catalog.ErrInvalid) {
			return nil, ErrInvalidMetadata
		}
		return nil, s.catalogError(ctx, "create", stored.ID, err)
	}
	s.opts.Metrics.created.Inc()
	return &upload{store: s, inner: inner, session: sess}, nil
}

// checkPartials enforces that a final upload only names partial uploads.
// tusd itself checks that they are finished, not that they are partial.
func (s *Store) checkPartials(ctx context.Context, ids []string) error {
	rctx, cancel := context.WithTimeout(ctx, s.opts.CommitTimeout)
	defer cancel()
	for _, id := range ids {
		sess, err := s.sessions.Get(rctx, id)
		if err != nil {
			return s.catalogError(ctx, "get", id, err)
		}
		// Ownership first: ErrNotPartial would tell another owner that the
		// upload exists.
		if sess.Owner != auth.Owner(ctx) {
			return handler.ErrNotFound
		}
		if !sess.IsPartial {
			return ErrNotPartial
		}
	}
	return nil
}

// GetUpload returns the upload if its session exists and can still be used.
func (s *Store) GetUpload(ctx context.Context, id string) (handler.Upload, error) {
	rctx, cancel := context.WithTimeout(ctx, s.opts.CommitTimeout)
	defer cancel()
	sess, err := s.sessions.Get(rctx, id)
	if err != nil {
		return nil, s.catalogError(ctx, "get", id, err)
	}
	// Ownership first: a state-specific answer (410) would tell another
	// owner that the upload exists. A token scoped to one upload sees no
	// other.
	if sess.Owner != auth.Owner(ctx) {
		return nil, handler.ErrNotFound
	}
	if scope := limits(ctx).UploadID; scope != "" && scope != id {
		return nil, handler.ErrNotFound
	}
	switch sess.State {
	case catalog.StateTerminated:
		return nil, handler.ErrNotFound
	case catalog.StateFailed:
		return nil, ErrUploadFailed
	}
	inner, err := s.backend.GetUpload(ctx, id)
	if err != nil {
		return nil, s.backendError(ctx, "get", id, err)
	}
	return &upload{store: s, inner: inner, session: sess}, nil
}

func (s *Store) AsTerminatableUpload(u handler.Upload) handler.TerminatableUpload {
	return u.(*upload)
}

func (s *Store) AsLengthDeclarableUpload(u handler.Upload) handler.LengthDeclarableUpload {
	return u.(*upload)
}

func (s *Store) AsConcatableUpload(u handler.Upload) handler.ConcatableUpload {
	return u.(*upload)
}

func (s *Store) AsServableUpload(u handler.Upload) handler.ServableUpload {
	return u.(*upload)
}

// upload is one upload of the backend together with a snapshot of its
// session. It lives for one request, under that upload's lock.
type upload struct {
	store   *Store
	inner   handler.Upload
	session catalog.Session
}

// GetInfo returns the backend's view, after repairing the catalog if a
// crash left it behind the store.
func (u *upload) GetInfo(ctx context.Context) (handler.FileInfo, error) {
	info, err := u.inner.GetInfo(ctx)
	if err != nil {
		return info, u.store.backendError(ctx, "get_info", u.session.ID, err)
	}
	if u.session.State != catalog.StateReceiving {
		return info, nil
	}
	if !info.SizeIsDeferred && u.session.SizeDeferred() {
		// The store took a declared length the catalog never recorded (it
		// failed in between). tusd will not accept the length a second
		// time and Complete refuses a deferred size, so record it here.
		if err := u.recordLength(ctx, info.Size); err != nil {
			return info, err
		}
	}
	if info.Offset != u.session.Offset {
		if err := u.commitOffset(ctx, info.Offset); err != nil {
			return info, err
		}
	}
	if !info.SizeIsDeferred && info.Offset == info.Size && !info.IsFinal {
		// Every byte is stored but the upload was never finalized (a crash
		// between the last write and finalization). tusd would answer a
		// PATCH at this offset without finishing, so finish here.
		if err := u.FinishUpload(ctx); err != nil {
			return info, err
		}
	}
	return info, nil
}

func (u *upload) commitOffset(ctx context.Context, offset int64) error {
	if offset < u.session.Offset {
		// The store holds less than the catalog once recorded. The store is
		// the truth for bytes; this must never happen and is worth a page.
		u.store.opts.Logger.ErrorContext(ctx, "store offset behind catalog", "id", u.session.ID,
			"store_offset", offset, "catalog_offset", u.session.Offset)
		return nil
	}
	cctx, cancel := u.store.commitCtx(ctx)
	defer cancel()
	if err := u.store.sessions.SetOffset(cctx, u.session.ID, offset); err != nil {
		return u.store.catalogError(ctx, "set_offset", u.session.ID, err)
	}
	u.session.Offset = offset
	return nil
}

// WriteChunk writes through to the backend, makes the bytes durable, and
// records the new offset once for the whole request.
func (u *upload) WriteChunk(ctx context.Context, offset int64, src io.Reader) (int64, error) {
	body := &sourceReader{r: src}
	if max := limits(ctx).MaxSize; max > 0 && u.session.SizeDeferred() {
		// A declared size was checked at creation; a deferred one is
		// stopped where it would pass the token's maximum.
		body.limited, body.max = true, max-offset
		body.over = RefusalError(hooks.CheckLength(limits(ctx), max+1))
	}
	n, werr := u.inner.WriteChunk(ctx, offset, body)
	if werr != nil && (body.err == nil || !errors.Is(werr, body.err)) {
		// Not the request body failing: the backend did.
		werr = u.store.backendError(ctx, "write", u.session.ID, werr)
	}
	if n == 0 && werr == nil {
		return 0, nil
	}
	u.store.opts.Metrics.bytesReceived.Add(float64(n))
	committed := offset + n
	if werr != nil {
		// Part of the body may have been kept; ask the store what it holds.
		info, err := u.inner.GetInfo(ctx)
		if err != nil {
			return n, werr
		}
		committed = info.Offset
	}
	if sync := u.store.opts.Sync; sync != nil && n > 0 {
		info, err := u.inner.GetInfo(ctx)
		if err == nil {
			err = sync(ctx, info)
		}
		if err != nil {
			u.store.opts.Logger.ErrorContext(ctx, "syncing upload", "id", u.session.ID, "error", err)
			return n, errors.Join(werr, fmt.Errorf("syncing upload: %w", err))
		}
	}
	if err := u.commitOffset(ctx, committed); err != nil {
		return n, errors.Join(werr, err)
	}
	return n, werr
}

func (u *upload) GetReader(ctx context.Context) (io.ReadCloser, error) {
	return u.inner.GetReader(ctx)
}

// FinishUpload finalizes the upload once: the backend's own finishing, then
// the session's move to complete. Repeating it is a no-op.
func (u *upload) FinishUpload(ctx context.Context) error {
	if u.session.State == catalog.StateComplete {
		return nil
	}
	if err := u.inner.FinishUpload(ctx); err != nil {
		return u.store.backendError(ctx, "finish", u.session.ID, err)
	}
	return u.complete(ctx)
}

func (u *upload) complete(ctx context.Context) error {
	info, err := u.inner.GetInfo(ctx)
	if err != nil {
		return fmt.Errorf("reading finished upload: %w", err)
	}
	cctx, cancel := u.store.commitCtx(ctx)
	defer cancel()
	if err := u.store.sessions.Complete(cctx, u.session.ID, info.Size); err != nil {
		return u.store.catalogError(ctx, "complete", u.session.ID, err)
	}
	u.session.State = catalog.StateComplete
	u.session.Offset = info.Size
	u.store.opts.Metrics.completed.Inc()
	return nil
}

func (u *upload) DeclareLength(ctx context.Context, length int64) error {
	if r := hooks.CheckLength(limits(ctx), length); r != nil {
		return RefusalError(r)
	}
	if err := u.store.backend.AsLengthDeclarableUpload(u.inner).DeclareLength(ctx, length); err != nil {
		return u.store.backendError(ctx, "declare_length", u.session.ID, err)
	}
	return u.recordLength(ctx, length)
}

func (u *upload) recordLength(ctx context.Context, length int64) error {
	cctx, cancel := u.store.commitCtx(ctx)
	defer cancel()
	if err := u.store.sessions.DeclareLength(cctx, u.session.ID, length); err != nil {
		return u.store.catalogError(ctx, "declare_length", u.session.ID, err)
	}
	u.session.Size = &length
	return nil
}

// Terminate removes the bytes first: a session marked terminated whose bytes
// survived would be an orphan nobody looks for.
func (u *upload) Terminate(ctx context.Context) error {
	if err := u.store.backend.AsTerminatableUpload(u.inner).Terminate(ctx); err != nil {
		return u.store.backendError(ctx, "terminate", u.session.ID, err)
	}
	cctx, cancel := u.store.commitCtx(ctx)
	defer cancel()
	if err := u.store.sessions.SetState(cctx, u.session.ID, catalog.StateTerminated); err != nil {
		return u.store.catalogError(ctx, "terminate", u.session.ID, err)
	}
	u.session.State = catalog.StateTerminated
	u.store.opts.Metrics.terminated.Inc()
	return nil
}

// ConcatUploads hands the backend its own uploads (stores type-assert them)
// and completes the final upload's session.
func (u *upload) ConcatUploads(ctx context.Context, partials []handler.Upload) error {
	inners := make([]handler.Upload, len(partials))
	for i, p := range partials {
		inners[i] = p.(*upload).inner
	}
	if err := u.store.backend.AsConcatableUpload(u.inner).ConcatUploads(ctx, inners); err != nil {
		return u.store.backendError(ctx, "concat", u.session.ID, err)
	}
	return u.complete(ctx)
}

// ServeContent serves only complete uploads: a partial download of an
// upload still in flight is never what a client wants.
func (u *upload) ServeContent(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	if u.session.State != catalog.StateComplete {
		return ErrUploadIncomplete
	}
	if d := u.store.opts.Downloader; d != nil {
		info, err := u.inner.GetInfo(ctx)
		if err != nil {
			return u.store.backendError(ctx, "get_info", u.session.ID, err)
		}
		if err := d.Serve(ctx, w, r, info); err != nil {
			return u.store.backendError(ctx, "download", u.session.ID, err)
		}
		return nil
	}
	cs := u.store.backend.(handler.ContentServerDataStore)
	return cs.AsServableUpload(u.inner).ServeContent(ctx, w, r)
}

// sourceReader remembers the error of the request body, so that a backend
// error caused by the body is told apart from one of the backend itself.
type sourceReader struct {
	r   io.Reader
	err error
	// limited bodies may yield max bytes; one with more fails with over
	// after max bytes.
	limited bool
	max     int64
	read    int64
	over    error
}

func (s *sourceReader) Read(p []byte) (int, error) {
	if s.limited {
		if s.read >= s.max {
			return 0, s.probe()
		}
		if rest := s.max - s.read; int64(len(p)) > rest {
			p = p[:rest]
		}
	}
	n, err := s.r.Read(p)
	s.read += int64(n)
	if err != nil && err != io.EOF {
		s.err = err
	}
	return n, err
}

// probe looks for a byte past max: none means the body simply ended there.
func (s *sourceReader) probe() error {
	var one [1]byte
	for {
		n, err := s.r.Read(one[:])
		if n > 0 {
			s.err = s.over
			return s.over
		}
		if err != nil {
			if err != io.EOF {
				s.err = err
			}
			return err
		}
	}
}

// copyBufferSize is the buffer WriteTo moves bytes with. io.Copy's default
// of 32 KiB costs a read and a write system call per 32 KiB; profiles of
// large PATCHes were almost all system calls.
const copyBufferSize = 512 << 10

var copyBuffers = sync.Pool{New: func() any { b := make([]byte, copyBufferSize); return &b }}

// WriteTo lets a backend's io.Copy(dst, body) move the body in large
// pieces. Every error of the body is still recorded.
func (s *sourceReader) WriteTo(w io.Writer) (int64, error) {
	bp := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(bp)
	buf := *bp
	var written int64
	for {
		// One read takes what the connection has, up to the buffer: a fast
		// client fills it, a slow one's bytes are written as they come.
		n, rerr := s.Read(buf)
		if n > 0 {
			m, werr := w.Write(buf[:n])
			written += int64(m)
			if werr != nil {
				return written, werr
			}
		}
		if rerr == io.EOF {
			return written, nil
		}
		if rerr != nil {
			return written, rerr
		}
	}
}

// FileSync makes a file store upload's bytes durable.
func FileSync(_ context.Context, info handler.FileInfo) error {
	path := info.Storage["Path"]
	if path == "" {
		return errors.New("upload has no file path")
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
