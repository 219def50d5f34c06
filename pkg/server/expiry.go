package server

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/intake-dev/intake/pkg/storage"
)

// uploadExpires implements the HTTP side of the tus expiration extension:
// OPTIONS advertises "expiration", and POST, PATCH and HEAD responses for
// incomplete uploads carry Upload-Expires, from what the store noted about
// the upload the request touched.
func (s *Server) uploadExpires(next http.Handler) http.Handler {
	if s.cfg.UploadTTL <= 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e := &storage.Expiry{}
		ew := &expiresWriter{ResponseWriter: w, e: e, options: r.Method == http.MethodOptions}
		next.ServeHTTP(ew, r.WithContext(storage.WithExpiry(r.Context(), e)))
	})
}

type expiresWriter struct {
	http.ResponseWriter
	e       *storage.Expiry
	options bool
	wrote   bool
}

func (w *expiresWriter) WriteHeader(code int) {
	if !w.wrote && code >= 200 {
		w.wrote = true
		h := w.Header()
		switch {
		case w.options:
			if ext := h.Get("Tus-Extension"); ext != "" && !strings.Contains(ext, "expiration") {
				h.Set("Tus-Extension", ext+",expiration")
			}
		case code < 300 && !w.e.At.IsZero():
			h.Set("Upload-Expires", w.e.At.UTC().Format(http.TimeFormat))
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *expiresWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *expiresWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// reapLoop releases expired uploads every interval until ctx ends, and
// after each pass sweeps storage no session knows.
func (s *Server) reapLoop(ctx context.Context, interval time.Duration) {
	s.periodic(ctx, "reap", min(interval, 30*time.Second), interval, func() {
		res, err := s.Reap(ctx)
		if err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "reaper pass failed", "error", err)
		}
		if res.Expired > 0 {
			s.log.InfoContext(ctx, "reaper expired uploads", "count", res.Expired, "bytes_released", res.BytesReleased)
		}
		s.sweepOrphans(ctx)
	})
}
