package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/intake-dev/intake/pkg/auth"
	"github.com/intake-dev/intake/pkg/catalog"
	"github.com/intake-dev/intake/pkg/jsonerr"
	"github.com/intake-dev/intake/pkg/protocol"
)

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()

	tus := protocol.Wrap(s.tus, protocol.Options{Logger: s.log, MaxSize: int64(s.cfg.MaxSize)})
	prefix := tusPrefix(s.cfg.BasePath)
	mux.Handle(prefix+"/", http.StripPrefix(prefix, tus))
	mux.Handle(prefix, http.StripPrefix(prefix, tus))

	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /v1/uploads/{id}", s.getUpload)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		jsonerr.Write(w, r, http.StatusNotFound, "not_found", "no such endpoint")
	})
	return s.accessLog(mux)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz answers 503 while any dependency is unreachable. The failing
// checks are named; their errors are logged, not sent.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	checks := make(map[string]string, len(s.checks))
	status := http.StatusOK
	for name, check := range s.checks {
		if err := check(ctx); err != nil {
			s.log.WarnContext(ctx, "readiness check failed", "check", name, "error", err)
			checks[name] = "unavailable"
			status = http.StatusServiceUnavailable
			continue
		}
		checks[name] = "ok"
	}
	overall := "ok"
	if status != http.StatusOK {
		overall = "unavailable"
	}
	writeJSON(w, status, map[string]any{"status": overall, "checks": checks})
}

// UploadView is the JSON form of an upload session in intake's API.
type UploadView struct {
	ID           string            `json:"id"`
	State        catalog.State     `json:"state"`
	Size         *int64            `json:"size"`
	SizeDeferred bool              `json:"size_deferred"`
	Offset       int64             `json:"offset"`
	Metadata     map[string]string `json:"metadata"`
	IsPartial    bool              `json:"is_partial,omitempty"`
	IsFinal      bool              `json:"is_final,omitempty"`
	PartialIDs   []string          `json:"partial_ids,omitempty"`
	URL          string            `json:"url"`
	CreatedAt    time.Time         `json:"created_at"`
	UpdatedAt    time.Time         `json:"updated_at"`
	CompletedAt  *time.Time        `json:"completed_at"`
}

// NewUploadView renders a session; basePath is the tus endpoint.
func NewUploadView(sess catalog.Session, basePath string) UploadView {
	md := sess.Metadata
	if md == nil {
		md = map[string]string{}
	}
	return UploadView{
		ID:           sess.ID,
		State:        sess.State,
		Size:         sess.Size,
		SizeDeferred: sess.SizeDeferred(),
		Offset:       sess.Offset,
		Metadata:     md,
		IsPartial:    sess.IsPartial,
		IsFinal:      sess.IsFinal,
		PartialIDs:   sess.PartialIDs,
		URL:          strings.TrimSuffix(basePath, "/") + "/" + sess.ID,
		CreatedAt:    sess.CreatedAt,
		UpdatedAt:    sess.UpdatedAt,
		CompletedAt:  sess.CompletedAt,
	}
}

func (s *Server) getUpload(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	sess, err := s.catalog.Get(ctx, id)
	switch {
	case errors.Is(err, catalog.ErrNotFound):
		jsonerr.Write(w, r, http.StatusNotFound, "upload_not_found", "upload not found")
		return
	case err != nil:
		s.log.ErrorContext(r.Context(), "reading upload session", "id", id, "error", err)
		jsonerr.Write(w, r, http.StatusServiceUnavailable, "catalog_unavailable", "the upload catalog is unavailable; retry later")
		return
	}
	// Another owner's upload does not exist as far as this caller knows.
	if sess.Owner != auth.Owner(r.Context()) {
		jsonerr.Write(w, r, http.StatusNotFound, "upload_not_found", "upload not found")
		return
	}
	writeJSON(w, http.StatusOK, NewUploadView(sess, s.cfg.BasePath))
}
