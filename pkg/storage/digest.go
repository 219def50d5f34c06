package storage

import (
	"context"
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"time"

	"github.com/tus/tusd/v2/pkg/handler"

	"github.com/intake-dev/intake/pkg/catalog"
)

// ErrChecksumMismatch is 460, the status tus's checksum extension gives a
// body that does not match its declared checksum.
var ErrChecksumMismatch = handler.NewError("ERR_CHECKSUM_MISMATCH",
	"the uploaded bytes do not match the declared sha256; the upload failed and nothing was kept", 460)

// ErrInvalidSHA256 refuses a declared digest that is not 64 lowercase hex
// characters.
var ErrInvalidSHA256 = handler.NewError("ERR_INVALID_SHA256",
	"the sha256 metadata must be 64 lowercase hexadecimal characters", http.StatusBadRequest)

// ValidSHA256 reports whether s is a lowercase hex SHA-256 digest.
func ValidSHA256(s string) bool { return isLowerHex(s, 64) }

// resumeHash returns a digest positioned after the first offset bytes of
// the upload, from the state the catalog recorded there, or nil when no
// usable state exists at offset (the digest is then computed by reading
// the object back when the upload finishes).
func resumeHash(sess catalog.Session, offset int64) hash.Hash {
	if sess.HashOffset != offset {
		return nil
	}
	h := sha256.New()
	if offset == 0 {
		return h
	}
	if len(sess.HashState) == 0 {
		return nil
	}
	if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(sess.HashState); err != nil {
		return nil
	}
	return h
}

// marshalHash returns the digest's resumable state.
func marshalHash(h hash.Hash) []byte {
	if h == nil {
		return nil
	}
	b, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return nil
	}
	return b
}

// digest returns the upload's SHA-256: from the streamed state when it
// covers exactly size bytes, else by reading the stored object once (the
// fallback: a lost or partial state, a concatenation).
func (u *upload) digest(ctx context.Context, size int64) (string, error) {
	if h := resumeHash(u.session, size); h != nil {
		return hex.EncodeToString(h.Sum(nil)), nil
	}
	u.store.opts.Metrics.digestFallbacks.Inc()
	r, err := u.inner.GetReader(ctx)
	if err != nil {
		return "", u.store.backendError(ctx, "read_back", u.session.ID, err)
	}
	defer r.Close()
	sum, n, err := hashAll(r)
	if err != nil {
		return "", u.store.backendError(ctx, "read_back", u.session.ID, err)
	}
	if n != size {
		return "", u.store.backendError(ctx, "read_back", u.session.ID,
			fmt.Errorf("read %d bytes back; the upload has %d", n, size))
	}
	return sum, nil
}

// hashAll reads r to its end and returns the hex SHA-256 of what it read
// and how much that was.
func hashAll(r io.Reader) (string, int64, error) {
	h := sha256.New()
	bp := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(bp)
	n, err := io.CopyBuffer(h, r, *bp)
	if err != nil {
		return "", n, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// finalize records the digest and stores the content once: the upload's
// object becomes the blob for its digest, or, when that content is already
// stored, the session references that blob and its own object is deleted.
// A declared sha256 that does not match fails the upload and deletes its
// bytes.
func (u *upload) finalize(ctx context.Context, size int64) error {
	sum, err := u.digest(ctx, size)
	if err != nil {
		return err
	}
	if declared := u.session.Metadata["sha256"]; declared != "" && declared != sum {
		u.store.opts.Logger.WarnContext(ctx, "declared sha256 does not match the upload",
			"id", u.session.ID, "declared", declared, "actual", sum)
		if err := u.store.backend.AsTerminatableUpload(u.inner).Terminate(ctx); err != nil {
			u.store.opts.Logger.ErrorContext(ctx, "removing mismatched upload", "id", u.session.ID, "error", err)
		}
		cctx, cancel := u.store.commitCtx(ctx)
		defer cancel()
		if err := u.store.sessions.SetState(cctx, u.session.ID, catalog.StateFailed); err != nil {
			return u.store.catalogError(ctx, "fail", u.session.ID, err)
		}
		u.session.State = catalog.StateFailed
		u.store.opts.Metrics.digestMismatches.Inc()
		return ErrChecksumMismatch
	}
	// The real type, from the stored bytes; recorded by Finalize in the
	// transaction that completes the session, so that the completion
	// event carries it.
	sniffed, err := u.sniff(ctx)
	if err != nil {
		return err
	}
	cctx, cancel := u.store.commitCtx(ctx)
	defer cancel()
	if !u.store.typeAllowed(sniffed) {
		return u.reject(ctx, sniffed)
	}
	blob, existed, err := u.store.sessions.Finalize(cctx, u.session.ID, size, sum, sniffed)
	if err != nil {
		return u.store.catalogError(ctx, "finalize", u.session.ID, err)
	}
	u.session.ContentType = sniffed
	u.session.State = catalog.StateComplete
	u.session.Offset = size
	u.session.SHA256 = sum
	u.session.BlobSHA256 = blob.SHA256
	u.store.noteExpiry(ctx, u.session, time.Time{}) // complete: never expires
	u.store.opts.Metrics.completed.Inc()
	if existed {
		// Stored once already: this upload's own copy goes.
		u.store.opts.Metrics.dedupHit("finish", size)
		if err := u.store.backend.AsTerminatableUpload(u.inner).Terminate(ctx); err != nil {
			// The session is complete and served from the blob; the copy
			// is an orphan for the sweep, not a failure of the upload.
			u.store.opts.Logger.ErrorContext(ctx, "removing duplicate copy", "id", u.session.ID, "error", err)
		}
	}
	return nil
}

// reject refuses a finished upload by policy: its bytes are deleted and
// the session moves to rejected (with its upload.rejected event).
func (u *upload) reject(ctx context.Context, sniffed string) error {
	u.store.opts.Logger.WarnContext(ctx, "upload rejected: type not allowed",
		"id", u.session.ID, "sniffed", sniffed, "declared", u.session.Metadata["filetype"])
	if err := u.store.backend.AsTerminatableUpload(u.inner).Terminate(ctx); err != nil {
		u.store.opts.Logger.ErrorContext(ctx, "removing rejected upload", "id", u.session.ID, "error", err)
	}
	cctx, cancel := u.store.commitCtx(ctx)
	defer cancel()
	if _, _, err := u.store.sessions.Reject(cctx, u.session.ID); err != nil {
		return u.store.catalogError(ctx, "reject", u.session.ID, err)
	}
	u.session.State = catalog.StateRejected
	u.store.opts.Metrics.rejected.Inc()
	return ErrTypeNotAllowed
}

// errNoBlob means a complete session's blob row is missing: the catalog is
// inconsistent, which is worth an error log and a 500.
var errNoBlob = errors.New("complete upload without its blob")

// VerifyBlob reads a blob's stored bytes and returns their SHA-256 and
// length, for comparison with what the catalog recorded.
func (s *Store) VerifyBlob(ctx context.Context, blob catalog.Blob) (sum string, n int64, err error) {
	r, err := s.OpenBlob(ctx, blob)
	if err != nil {
		return "", 0, err
	}
	defer r.Close()
	sum, n, err = hashAll(r)
	if err != nil {
		return "", n, fmt.Errorf("reading blob %s: %w", blob.SHA256, err)
	}
	return sum, n, nil
}
