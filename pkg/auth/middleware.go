package auth

import (
	"errors"
	"net/http"
	"strings"

	"github.com/intake-dev/intake/pkg/jsonerr"
)

// Middleware requires a valid bearer token on every request except OPTIONS
// (CORS preflights and tus discovery carry no credentials) and puts its
// claims and owner into the request context. A missing or refused token is
// 401 with a WWW-Authenticate challenge (RFC 6750), so a client knows to
// fetch a fresh token and retry; the upload is untouched.
func Middleware(v *Verifier, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodOptions {
			next.ServeHTTP(w, r)
			return
		}
		token, ok := bearer(r)
		if !ok {
			challenge(w, r, "", "missing_token", "this request needs an Authorization: Bearer token")
			return
		}
		claims, err := v.Verify(token)
		if err != nil {
			msg := strings.TrimPrefix(err.Error(), ErrInvalidToken.Error()+": ")
			if !errors.Is(err, ErrInvalidToken) {
				msg = "the token cannot be verified"
			}
			challenge(w, r, "invalid_token", "invalid_token", msg)
			return
		}
		next.ServeHTTP(w, r.WithContext(WithClaims(r.Context(), claims)))
	})
}

func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// challenge answers 401. errCode goes into the RFC 6750 challenge ("" for a
// request without credentials, as the RFC asks); code and message into the
// JSON body.
func challenge(w http.ResponseWriter, r *http.Request, errCode, code, message string) {
	c := `Bearer realm="intake"`
	if errCode != "" {
		c += `, error="` + errCode + `", error_description="` + strings.ReplaceAll(message, `"`, `'`) + `"`
	}
	w.Header().Set("WWW-Authenticate", c)
	w.Header().Set("Tus-Resumable", "1.0.0")
	w.Header().Set("Cache-Control", "no-store")
	jsonerr.Write(w, r, http.StatusUnauthorized, code, message)
}
