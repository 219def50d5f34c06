package server

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/intake-dev/intake/pkg/auth"
	"github.com/intake-dev/intake/pkg/catalog"
	"github.com/intake-dev/intake/pkg/cors"
	"github.com/intake-dev/intake/pkg/jsonerr"
	"github.com/intake-dev/intake/pkg/protocol"
	"github.com/intake-dev/intake/pkg/storage"
)

// routes returns the public handler and the admin handler. The admin
// endpoints (/metrics, /admin/v1/...) are on the public handler only when
// there is no --admin-listen; the admin API is served at all only behind
// --admin-listen or --admin-token, since it lists every owner's uploads.
func (s *Server) routes() (public, admin http.Handler) {
	mux := http.NewServeMux()

	// authed requires a token with --auth jwt (OPTIONS excepted).
	authed := func(h http.Handler) http.Handler {
		if s.verifier == nil {
			return h
		}
		return auth.Middleware(s.verifier, h)
	}

	tus := authed(s.uploadExpires(protocol.Wrap(markCreationBody(s.tus), protocol.Options{Logger: s.log, MaxSize: int64(s.cfg.MaxSize), MaxMetadataSize: int(s.cfg.MaxMetadataBytes)})))
	prefix := tusPrefix(s.cfg.BasePath)
	mux.Handle(prefix+"/", http.StripPrefix(prefix, tus))
	mux.Handle(prefix, http.StripPrefix(prefix, tus))

	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /v1/uploads/{id}", authed(http.HandlerFunc(s.getUpload)))
	mux.Handle("GET /v1/blobs/sha256/{hex}", authed(http.HandlerFunc(s.getBlob)))
	mux.HandleFunc("/", notFound)

	adminMux := http.NewServeMux()
	adminMux.HandleFunc("/", notFound)
	adminMux.Handle("GET /metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{}))
	if s.cfg.AdminListen != "" || s.cfg.AdminToken != "" {
		adminMux.HandleFunc("GET /admin/v1/uploads", s.adminListUploads)
		adminMux.HandleFunc("GET /admin/v1/uploads/{id}", s.adminGetUpload)
	}
	adminHandler := adminAuth(s.cfg.AdminToken, adminMux)
	if s.cfg.AdminListen == "" {
		mux.Handle("/metrics", adminHandler)
		mux.Handle("/admin/", adminHandler)
	} else {
		admin = s.accessLog(adminHandler)
	}

	origins := strings.Split(s.cfg.CORSOrigins, ",")
	policy := cors.New(cors.Options{Origins: origins, AllowCredentials: s.cfg.CORSAllowCredentials, MaxAge: s.cfg.CORSMaxAge})
	return s.accessLog(policy.Handler(mux)), admin
}

// markCreationBody tells the store which creations carry upload data, by
// tusd's own test for it (see storage.WithCreationBody).
func markCreationBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		creation := r.Method == http.MethodPost && r.Header.Get("X-HTTP-Method-Override") == ""
		if creation && r.Header.Get("Content-Type") == "application/offset+octet-stream" {
			r = r.WithContext(storage.WithCreationBody(r.Context()))
		}
		next.ServeHTTP(w, r)
	})
}

func notFound(w http.ResponseWriter, r *http.Request) {
	jsonerr.Write(w, r, http.StatusNotFound, "not_found", "no such endpoint")
}

// adminAuth requires "Authorization: Bearer <token>" when token is set.
func adminAuth(token string, next http.Handler) http.Handler {
	if token == "" {
		return next
	}
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="intake-admin"`)
			jsonerr.Write(w, r, http.StatusUnauthorized, "admin_token_required", "this endpoint needs the admin bearer token")
			return
		}
		next.ServeHTTP(w, r)
	})
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
	Owner        string            `json:"owner"`
	State        catalog.State     `json:"state"`
	Size         *int64            `json:"size"`
	SizeDeferred bool              `json:"size_deferred"`
	Offset       int64             `json:"offset"`
	Metadata     map[string]string `json:"metadata"`
	IsPartial    bool              `json:"is_partial,omitempty"`
	IsFinal      bool              `json:"is_final,omitempty"`
	PartialIDs   []string          `json:"partial_ids,omitempty"`
	SHA256       string            `json:"sha256,omitempty"`       // recorded when the upload completed
	ContentType  string            `json:"content_type,omitempty"` // sniffed from the stored bytes
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
		Owner:        sess.Owner,
		State:        sess.State,
		Size:         sess.Size,
		SizeDeferred: sess.SizeDeferred(),
		Offset:       sess.Offset,
		Metadata:     md,
		IsPartial:    sess.IsPartial,
		IsFinal:      sess.IsFinal,
		PartialIDs:   sess.PartialIDs,
		SHA256:       sess.SHA256,
		ContentType:  sess.ContentType,
		URL:          strings.TrimSuffix(basePath, "/") + "/" + sess.ID,
		CreatedAt:    sess.CreatedAt,
		UpdatedAt:    sess.UpdatedAt,
		CompletedAt:  sess.CompletedAt,
	}
}

// getBlob answers the dedup preflight: is this content already stored, as
// far as the caller may know (--dedup-scope)? The GET route matches HEAD.
func (s *Server) getBlob(w http.ResponseWriter, r *http.Request) {
	sum := r.PathValue("hex")
	if !storage.ValidSHA256(sum) {
		jsonerr.Write(w, r, http.StatusBadRequest, "invalid_sha256", "the digest must be 64 lowercase hexadecimal characters")
		return
	}
	blob, ok, err := s.store.PreflightBlob(r.Context(), sum)
	switch {
	case err != nil:
		catalogUnavailable(w, r)
	case !ok:
		jsonerr.Write(w, r, http.StatusNotFound, "blob_not_found", "no content with this digest is stored for you")
	default:
		writeJSON(w, http.StatusOK, map[string]any{"sha256": blob.SHA256, "size": blob.Size})
	}
}

// catalogUnavailable answers a request the catalog could not serve; the
// cause is logged, never sent.
func catalogUnavailable(w http.ResponseWriter, r *http.Request) {
	jsonerr.Write(w, r, http.StatusServiceUnavailable, "catalog_unavailable", "the upload catalog is unavailable; retry later")
}

// adminListUploads lists sessions of every owner: ?owner=&state=&limit=.
func (s *Server) adminListUploads(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	opts := catalog.ListOptions{Owner: q.Get("owner"), State: catalog.State(q.Get("state")), Limit: 100}
	if opts.State != "" && !opts.State.Valid() {
		jsonerr.Write(w, r, http.StatusBadRequest, "invalid_state", "state must be receiving, complete, terminated or failed")
		return
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 1000 {
			jsonerr.Write(w, r, http.StatusBadRequest, "invalid_limit", "limit must be a number from 1 to 1000")
			return
		}
		opts.Limit = n
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	list, err := s.catalog.List(ctx, opts)
	if err != nil {
		s.log.ErrorContext(ctx, "listing upload sessions", "error", err)
		catalogUnavailable(w, r)
		return
	}
	views := make([]UploadView, len(list))
	for i, sess := range list {
		views[i] = NewUploadView(sess, s.cfg.BasePath)
	}
	writeJSON(w, http.StatusOK, map[string]any{"uploads": views})
}

// adminGetUpload shows any owner's session.
func (s *Server) adminGetUpload(w http.ResponseWriter, r *http.Request) {
	s.showUpload(w, r, false)
}

func (s *Server) getUpload(w http.ResponseWriter, r *http.Request) {
	s.showUpload(w, r, true)
}

func (s *Server) showUpload(w http.ResponseWriter, r *http.Request, ownerOnly bool) {
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
		catalogUnavailable(w, r)
		return
	}
	// Another owner's upload does not exist as far as this caller knows,
	// nor does another upload for a token scoped to one.
	claims, _ := auth.ClaimsFrom(r.Context())
	if ownerOnly && (sess.Owner != auth.Owner(r.Context()) || claims.UploadID != "" && claims.UploadID != id) {
		jsonerr.Write(w, r, http.StatusNotFound, "upload_not_found", "upload not found")
		return
	}
	writeJSON(w, http.StatusOK, NewUploadView(sess, s.cfg.BasePath))
}
