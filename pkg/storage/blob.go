package storage

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/tus/tusd/v2/pkg/handler"

	"github.com/intake-dev/intake/pkg/catalog"
)

// blobUpload is a complete upload whose bytes are a blob: served from the
// catalog and the blob's object, never from the backend's own upload
// (which, after deduplication, no longer exists).
type blobUpload struct {
	store   *Store
	session catalog.Session
}

var (
	_ handler.Upload             = (*blobUpload)(nil)
	_ handler.TerminatableUpload = (*blobUpload)(nil)
	_ handler.ServableUpload     = (*blobUpload)(nil)
)

func (b *blobUpload) GetInfo(context.Context) (handler.FileInfo, error) {
	s := b.session
	return handler.FileInfo{
		ID:             s.ID,
		Size:           *s.Size,
		Offset:         *s.Size,
		MetaData:       handler.MetaData(s.Metadata),
		IsPartial:      s.IsPartial,
		IsFinal:        s.IsFinal,
		PartialUploads: s.PartialIDs,
		Storage:        s.Storage,
	}, nil
}

// WriteChunk is never reached: tusd answers a PATCH of a complete upload
// before writing (204 at its size, 409 elsewhere).
func (b *blobUpload) WriteChunk(context.Context, int64, io.Reader) (int64, error) {
	return 0, handler.ErrMismatchOffset
}

func (b *blobUpload) FinishUpload(context.Context) error { return nil }

func (b *blobUpload) blob(ctx context.Context) (catalog.Blob, error) {
	rctx, cancel := context.WithTimeout(ctx, b.store.opts.CommitTimeout)
	defer cancel()
	blob, err := b.store.sessions.GetBlob(rctx, b.session.BlobSHA256)
	if err != nil {
		if errors.Is(err, catalog.ErrNotFound) {
			b.store.opts.Logger.ErrorContext(ctx, "blob missing", "id", b.session.ID, "sha256", b.session.BlobSHA256)
			return catalog.Blob{}, errNoBlob
		}
		return catalog.Blob{}, b.store.catalogError(ctx, "get_blob", b.session.ID, err)
	}
	return blob, nil
}

// GetReader opens the blob's bytes.
func (b *blobUpload) GetReader(ctx context.Context) (io.ReadCloser, error) {
	blob, err := b.blob(ctx)
	if err != nil {
		return nil, err
	}
	return b.store.OpenBlob(ctx, blob)
}

// ServeContent serves the blob's bytes (or redirects to them).
func (b *blobUpload) ServeContent(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	blob, err := b.blob(ctx)
	if err != nil {
		return err
	}
	info := handler.FileInfo{ID: b.session.ID, Size: blob.Size, Offset: blob.Size, Storage: blob.Storage}
	if err := b.store.downloader().Serve(ctx, w, r, info); err != nil {
		return b.store.backendError(ctx, "download", b.session.ID, err)
	}
	return nil
}

// Terminate drops the session's reference; the bytes go with the last one.
func (b *blobUpload) Terminate(ctx context.Context) error {
	cctx, cancel := b.store.commitCtx(ctx)
	defer cancel()
	blob, last, err := b.store.sessions.Release(cctx, b.session.ID)
	if err != nil {
		return b.store.catalogError(ctx, "release", b.session.ID, err)
	}
	b.session.State = catalog.StateTerminated
	b.store.opts.Metrics.terminated.Inc()
	if last {
		b.store.deleteBlob(ctx, blob)
	}
	return nil
}

// OpenBlob reads a blob's bytes from the backend upload that holds them.
func (s *Store) OpenBlob(ctx context.Context, blob catalog.Blob) (io.ReadCloser, error) {
	up, err := s.backend.GetUpload(ctx, blob.UploadID)
	if err != nil {
		return nil, s.backendError(ctx, "open_blob", blob.UploadID, err)
	}
	r, err := up.GetReader(ctx)
	if err != nil {
		return nil, s.backendError(ctx, "open_blob", blob.UploadID, err)
	}
	return r, nil
}

// deleteBlob removes the bytes of a blob nobody references any more. A
// failure leaves an orphan object for the sweep; the session is gone
// either way.
func (s *Store) deleteBlob(ctx context.Context, blob catalog.Blob) {
	up, err := s.backend.GetUpload(ctx, blob.UploadID)
	if err == nil {
		err = s.backend.AsTerminatableUpload(up).Terminate(ctx)
	}
	if err != nil {
		s.opts.Logger.ErrorContext(ctx, "deleting unreferenced blob", "sha256", blob.SHA256, "upload", blob.UploadID, "error", err)
	}
}

func (s *Store) downloader() Downloader {
	if s.opts.Downloader != nil {
		return s.opts.Downloader
	}
	return FileDownloader{}
}

// FileDownloader serves file store objects by path, with Range and
// conditional requests.
type FileDownloader struct{}

func (FileDownloader) Serve(_ context.Context, w http.ResponseWriter, r *http.Request, info handler.FileInfo) error {
	f, err := os.Open(info.Storage["Path"])
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	http.ServeContent(w, r, "", st.ModTime().Truncate(time.Second), f)
	return nil
}
