package storage

import (
	"context"
	"io"
	"net/http"

	"github.com/gabriel-vasile/mimetype"
	"github.com/tus/tusd/v2/pkg/handler"

	"github.com/intake-dev/intake/hooks"
)

// sniffBytes is how much of the start of an upload the type is sniffed
// from (mimetype's own default read limit).
const sniffBytes = 3072

// ErrTypeNotAllowed refuses an upload whose stored bytes are of a type
// outside --allowed-types, whatever it declared.
var ErrTypeNotAllowed = handler.NewError("ERR_TYPE_NOT_ALLOWED",
	"the uploaded file's actual type is not allowed; the upload was rejected and nothing was kept", http.StatusUnsupportedMediaType)

// sniff detects the media type of the stored upload from its first bytes.
func (u *upload) sniff(ctx context.Context) (string, error) {
	r, err := u.inner.GetReader(ctx)
	if err != nil {
		return "", u.store.backendError(ctx, "sniff", u.session.ID, err)
	}
	defer r.Close()
	head := make([]byte, sniffBytes)
	n, err := io.ReadFull(r, head)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return "", u.store.backendError(ctx, "sniff", u.session.ID, err)
	}
	return mimetype.Detect(head[:n]).String(), nil
}

// typeAllowed applies --allowed-types to a sniffed type (parameters such
// as "; charset=utf-8" ignored).
func (s *Store) typeAllowed(sniffed string) bool {
	if len(s.opts.AllowedTypes) == 0 {
		return true
	}
	return hooks.TypeAllowed(s.opts.AllowedTypes, sniffed)
}
