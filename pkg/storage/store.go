package storage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
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
	CommitOffset(ctx context.Context, id string, offset int64, hashState []byte) error
	Finalize(ctx context.Context, id string, size int64, sha256, contentType string) (catalog.Blob, bool, error)
	CreateDeduped(ctx context.Context, s catalog.Session, sha256 string) error
	Release(ctx context.Context, id string) (catalog.Blob, bool, error)
	GetBlob(ctx context.Context, sha256 string) (catalog.Blob, error)
	FindBlob(ctx context.Context, sha256, owner string, global bool) (catalog.Blob, error)
	Reject(ctx context.Context, id string) (catalog.Blob, bool, error)
	List(ctx context.Context, opts catalog.ListOptions) ([]catalog.Session, error)
	ListExpired(ctx context.Context, cutoff time.Time, limit int) ([]catalog.Session, error)
	Expire(ctx context.Context, id string, cutoff time.Time) (bool, error)
	Known(ctx context.Context, ids []string) (map[string]bool, error)
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
	// AllowedTypes, when set, are the media types (patterns like
	// "video/*") an upload's sniffed type must match at finalization, or it
	// is rejected (415) and its bytes released.
	AllowedTypes []string
	// TTL is how long a receiving upload may go without a committed change
	// before it expires (sliding); 0 means never.
	TTL time.Duration
	// Now is the clock (tests); defaults to time.Now.
	Now func() time.Time
	// Policy checks a deferred upload's declared length against the
	// owner's quota.
	Policy hooks.Policy
	// Fault is a test-only hook called at named crash points ("finished"
	// after the backend completed an upload, before the catalog knows).
	Fault func(point string)
	// DedupScope says whose stored content a declared sha256 may match at
	// creation: DedupOwner (default), DedupGlobal or DedupOff. Content is
	// stored once whatever the scope.
	DedupScope DedupScope
	// Downloader serves complete uploads (and blobs) by their storage
	// description. Defaults to FileDownloader, for the file store.
	Downloader Downloader
	// Orphans sweeps the backend for storage no session knows (see
	// SweepOrphans). Defaults to none.
	Orphans OrphanSweeper
}

// DedupScope is the reach of deduplication before the transfer.
type DedupScope string

const (
	DedupOwner  DedupScope = "owner"
	DedupGlobal DedupScope = "global"
	DedupOff    DedupScope = "off"
)

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
	ErrUploadRejected     = handler.NewError("ERR_UPLOAD_REJECTED", "the upload was rejected by policy and its bytes released", http.StatusGone)
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
	c.UseContentServer(s)
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

// flushBehindBytes is how much of a PATCH body may be dirty in the page
// cache before its writeback is started (with --file-sync).
const flushBehindBytes = 8 << 20

// TokenLimits returns what the request's token allows: the zero Limits,
// which narrow nothing, for a request without a token.
func TokenLimits(ctx context.Context) hooks.Limits {
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
	if sum, ok := info.MetaData["sha256"]; ok {
		if !ValidSHA256(sum) {
			return nil, ErrInvalidSHA256
		}
		if up, err := s.newDeduped(ctx, info, sum); up != nil || err != nil {
			return up, err
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
	s.noteExpiry(ctx, sess, s.now())
	return &upload{store: s, inner: inner, session: sess}, nil
}

// newDeduped creates an upload that is complete on creation when content
// with the declared digest and length is already stored and the dedup
// scope lets this owner know it: no byte is transferred. It returns nil
// and no error when that does not apply.
func (s *Store) newDeduped(ctx context.Context, info handler.FileInfo, sum string) (handler.Upload, error) {
	if s.opts.DedupScope == DedupOff || info.SizeIsDeferred || info.IsPartial || info.IsFinal || hasCreationBody(ctx) {
		return nil, nil
	}
	owner := auth.Owner(ctx)
	rctx, cancel := s.commitCtx(ctx)
	defer cancel()
	blob, err := s.sessions.FindBlob(rctx, sum, owner, s.opts.DedupScope == DedupGlobal)
	switch {
	case errors.Is(err, catalog.ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, s.catalogError(ctx, "find_blob", "", err)
	case blob.Size != info.Size:
		return nil, nil // the declared length says it is other content
	}
	size := info.Size
	sess := catalog.Session{
		ID:       newID(),
		Owner:    owner,
		Size:     &size,
		Metadata: map[string]string(info.MetaData),
		Storage:  blob.Storage,
	}
	if err := s.sessions.CreateDeduped(rctx, sess, sum); err != nil {
		if errors.Is(err, catalog.ErrNotFound) {
			return nil, nil // the blob went meanwhile: upload normally
		}
		return nil, s.catalogError(ctx, "create_deduped", sess.ID, err)
	}
	sess.State = catalog.StateComplete
	sess.Offset = size
	sess.SHA256, sess.BlobSHA256 = sum, sum
	s.opts.Metrics.created.Inc()
	s.opts.Metrics.completed.Inc()
	s.opts.Metrics.dedupHit("create", size)
	return &blobUpload{store: s, session: sess}, nil
}

type creationBodyKey struct{}

// WithCreationBody marks ctx as that of a creation request carrying upload
// data (creation-with-upload), which is never deduplicated at creation:
// tusd writes the body into the upload it just created, and one complete
// on creation refuses any byte (413) — after its session, holding a blob
// reference, exists under a URL the client is never told. Such an upload
// is stored normally and deduplicated when it finishes.
func WithCreationBody(ctx context.Context) context.Context {
	return context.WithValue(ctx, creationBodyKey{}, true)
}

func hasCreationBody(ctx context.Context) bool {
	v, _ := ctx.Value(creationBodyKey{}).(bool)
	return v
}

// newID returns a random upload id in the form tusd's stores use.
func newID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return hex.EncodeToString(b[:])
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
	if scope := TokenLimits(ctx).UploadID; scope != "" && scope != id {
		return nil, handler.ErrNotFound
	}
	switch sess.State {
	case catalog.StateTerminated:
		return nil, handler.ErrNotFound
	case catalog.StateFailed:
		return nil, ErrUploadFailed
	case catalog.StateRejected:
		return nil, ErrUploadRejected
	case catalog.StateExpired:
		return nil, ErrUploadExpired
	}
	if s.expired(sess) {
		return nil, ErrUploadExpired // the reaper has not come by yet
	}
	s.noteExpiry(ctx, sess, sess.UpdatedAt)
	if sess.State == catalog.StateComplete && sess.BlobSHA256 != "" {
		return &blobUpload{store: s, session: sess}, nil
	}
	inner, err := s.backend.GetUpload(ctx, id)
	if err != nil {
		return nil, s.backendError(ctx, "get", id, err)
	}
	return &upload{store: s, inner: inner, session: sess}, nil
}

func (s *Store) AsTerminatableUpload(u handler.Upload) handler.TerminatableUpload {
	if b, ok := u.(*blobUpload); ok {
		return b
	}
	return u.(*upload)
}

// AsLengthDeclarableUpload: tusd never declares the length of a complete
// upload (it refuses first), so a blob upload refuses too.
func (s *Store) AsLengthDeclarableUpload(u handler.Upload) handler.LengthDeclarableUpload {
	if _, ok := u.(*blobUpload); ok {
		return refuseLength{}
	}
	return u.(*upload)
}

// AsConcatableUpload: a final upload is always a fresh backend upload.
func (s *Store) AsConcatableUpload(u handler.Upload) handler.ConcatableUpload {
	return u.(*upload)
}

func (s *Store) AsServableUpload(u handler.Upload) handler.ServableUpload {
	if b, ok := u.(*blobUpload); ok {
		return b
	}
	return u.(*upload)
}

type refuseLength struct{}

func (refuseLength) DeclareLength(context.Context, int64) error {
	return handler.ErrInvalidUploadLength
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
	body := &sourceReader{r: src, hash: resumeHash(u.session, offset)}
	if u.store.opts.Sync != nil {
		body.flushBehind = flushBehindBytes
	}
	if max := TokenLimits(ctx).MaxSize; max > 0 && u.session.SizeDeferred() {
		// A declared size was checked at creation; a deferred one is
		// stopped where it would pass the token's maximum.
		body.limited, body.max = true, max-offset
		body.over = RefusalError(hooks.CheckLength(TokenLimits(ctx), max+1))
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
	// The digest state is recorded only when it covers exactly the bytes
	// committed; otherwise it is cleared and the digest read back at the end.
	var state []byte
	if werr == nil && body.hash != nil && committed == offset+body.read {
		state = marshalHash(body.hash)
	}
	if err := u.commitState(ctx, committed, state); err != nil {
		return n, errors.Join(werr, err)
	}
	return n, werr
}

// commitState records the committed offset and the digest state at it in
// one catalog write.
func (u *upload) commitState(ctx context.Context, offset int64, state []byte) error {
	if offset < u.session.Offset {
		return u.commitOffset(ctx, offset) // logs; never moves back
	}
	cctx, cancel := u.store.commitCtx(ctx)
	defer cancel()
	if err := u.store.sessions.CommitOffset(cctx, u.session.ID, offset, state); err != nil {
		return u.store.catalogError(ctx, "commit_offset", u.session.ID, err)
	}
	u.session.Offset = offset
	u.session.HashState = state
	u.session.HashOffset = offset
	u.store.noteExpiry(ctx, u.session, u.store.now())
	return nil
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
	if f := u.store.opts.Fault; f != nil {
		f("finished") // test-only crash point: stored, not yet finalized
	}
	return u.complete(ctx)
}

// complete finalizes a finished upload: a partial upload is only marked
// complete (its bytes are a piece of a final upload, not content); any
// other gets its digest and its blob.
func (u *upload) complete(ctx context.Context) error {
	info, err := u.inner.GetInfo(ctx)
	if err != nil {
		return fmt.Errorf("reading finished upload: %w", err)
	}
	if !u.session.IsPartial {
		return u.finalize(ctx, info.Size)
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
	if r := hooks.CheckLength(TokenLimits(ctx), length); r != nil {
		return RefusalError(r)
	}
	r, err := u.store.opts.Policy.CheckLength(ctx, auth.Owner(ctx), u.session.Offset, length)
	if err != nil {
		return u.store.catalogError(ctx, "owner_usage", u.session.ID, err)
	}
	if r != nil {
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
	if u.session.BlobSHA256 != "" {
		// Finalized within this request: its bytes are a blob now, and
		// only the blob's last reference may delete them.
		return (&blobUpload{store: u.store, session: u.session}).Terminate(ctx)
	}
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
	info, err := u.inner.GetInfo(ctx)
	if err != nil {
		return u.store.backendError(ctx, "get_info", u.session.ID, err)
	}
	if err := u.store.downloader().Serve(ctx, w, r, info); err != nil {
		return u.store.backendError(ctx, "download", u.session.ID, err)
	}
	return nil
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
