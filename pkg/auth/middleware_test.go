package auth_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/intake-dev/intake/pkg/auth"
)

// seen is what the handler behind the middleware learned from its request.
type seen struct {
	called bool
	claims auth.Claims
	ok     bool
	owner  string
}

func middlewareSetup(t *testing.T) (http.Handler, *seen) {
	t.Helper()
	v, err := auth.NewVerifier(auth.VerifierOptions{Secret: secret, Leeway: 30 * time.Second, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	s := &seen{}
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.called = true
		s.claims, s.ok = auth.ClaimsFrom(r.Context())
		s.owner = auth.Owner(r.Context())
		w.WriteHeader(http.StatusNoContent)
	})
	return auth.Middleware(v, next), s
}

func TestMiddleware(t *testing.T) {
	t.Parallel()
	good := sign(t, jwt.SigningMethodHS256, secret, valid(jwt.MapClaims{"sub": "bob", "max_size": 100}))
	expired := sign(t, jwt.SigningMethodHS256, secret, valid(jwt.MapClaims{"exp": now.Add(-time.Hour).Unix()}))
	forged := sign(t, jwt.SigningMethodHS256, otherSecret, valid(nil))

	tests := []struct {
		name      string
		method    string
		authz     string // the Authorization header; "" sends none
		status    int
		challenge string // the whole WWW-Authenticate, or a part when partial
		partial   bool
		code      string
	}{
		{name: "OPTIONS without a token", method: http.MethodOptions, status: http.StatusNoContent},
		{name: "OPTIONS with a bad token", method: http.MethodOptions, authz: "Bearer junk", status: http.StatusNoContent},
		{name: "no header", method: http.MethodPost, status: http.StatusUnauthorized,
			challenge: `Bearer realm="intake"`, code: "missing_token"},
		{name: "HEAD without a token", method: http.MethodHead, status: http.StatusUnauthorized,
			challenge: `Bearer realm="intake"`},
		{name: "Basic credentials", method: http.MethodPatch, authz: "Basic YWxpY2U6c2VjcmV0", status: http.StatusUnauthorized,
			challenge: `Bearer realm="intake"`, code: "missing_token"},
		{name: "Bearer without a token", method: http.MethodGet, authz: "Bearer ", status: http.StatusUnauthorized,
			challenge: `Bearer realm="intake"`, code: "missing_token"},
		{name: "bare token", method: http.MethodGet, authz: good, status: http.StatusUnauthorized,
			challenge: `Bearer realm="intake"`, code: "missing_token"},
		{name: "malformed token", method: http.MethodPatch, authz: "Bearer junk", status: http.StatusUnauthorized,
			challenge: `Bearer realm="intake", error="invalid_token"`, partial: true, code: "invalid_token"},
		{name: "forged token", method: http.MethodDelete, authz: "Bearer " + forged, status: http.StatusUnauthorized,
			challenge: `error="invalid_token"`, partial: true, code: "invalid_token"},
		{name: "expired token", method: http.MethodPatch, authz: "Bearer " + expired, status: http.StatusUnauthorized,
			challenge: `error_description="the token has expired"`, partial: true, code: "invalid_token"},
		{name: "good token", method: http.MethodPatch, authz: "Bearer " + good, status: http.StatusNoContent},
		{name: "lower-case scheme", method: http.MethodGet, authz: "bearer " + good, status: http.StatusNoContent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, s := middlewareSetup(t)
			req := httptest.NewRequest(tt.method, "/files/abc", nil)
			if tt.authz != "" {
				req.Header.Set("Authorization", tt.authz)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			resp := rec.Result()

			if resp.StatusCode != tt.status {
				t.Fatalf("status = %d; want %d (body %s)", resp.StatusCode, tt.status, rec.Body)
			}
			if tt.status != http.StatusUnauthorized {
				if !s.called {
					t.Fatal("the next handler was not called")
				}
				return
			}
			if s.called {
				t.Error("the next handler was called for a refused request")
			}
			got := resp.Header.Get("WWW-Authenticate")
			if tt.partial && !strings.Contains(got, tt.challenge) || !tt.partial && got != tt.challenge {
				t.Errorf("WWW-Authenticate = %q; want %q", got, tt.challenge)
			}
			if resp.Header.Get("Tus-Resumable") != "1.0.0" {
				t.Errorf("Tus-Resumable = %q; want 1.0.0", resp.Header.Get("Tus-Resumable"))
			}
			if tt.method == http.MethodHead {
				if rec.Body.Len() != 0 {
					t.Errorf("HEAD answered with a body: %s", rec.Body)
				}
				return
			}
			var body struct {
				Error struct{ Code, Message string }
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatalf("body %q is not JSON: %v", rec.Body, err)
			}
			if body.Error.Code != tt.code || body.Error.Message == "" {
				t.Errorf("error = %+v; want code %s with a message", body.Error, tt.code)
			}
			for _, tok := range []string{good, expired, forged} {
				for _, part := range strings.Split(tok, ".") {
					if strings.Contains(rec.Body.String(), part) || strings.Contains(got, part) {
						t.Errorf("the response contains part of a token: %s / %s", got, rec.Body)
					}
				}
			}
		})
	}
}

// TestMiddlewareClaims: the handler behind sees the token's claims and its
// sub as the owner.
func TestMiddlewareClaims(t *testing.T) {
	t.Parallel()
	h, s := middlewareSetup(t)
	tok := sign(t, jwt.SigningMethodHS256, secret, valid(jwt.MapClaims{
		"sub": "bob", "max_size": 4096, "allowed_types": []string{"image/*"}, "upload_id": "u1",
	}))
	req := httptest.NewRequest(http.MethodHead, "/files/u1", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	h.ServeHTTP(httptest.NewRecorder(), req)
	if !s.called || !s.ok {
		t.Fatalf("next called %v, claims present %v; want both", s.called, s.ok)
	}
	want := auth.Claims{Owner: "bob", MaxSize: 4096, AllowedTypes: []string{"image/*"}, UploadID: "u1", ExpiresAt: now.Add(time.Hour)}
	if !sameClaims(s.claims, want) {
		t.Errorf("claims = %+v; want %+v", s.claims, want)
	}
	if s.owner != "bob" {
		t.Errorf("owner = %q; want bob", s.owner)
	}

	// OPTIONS passes anonymously: no claims, owner "".
	h, s = middlewareSetup(t)
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodOptions, "/files/", nil))
	if !s.called || s.ok || s.owner != "" {
		t.Errorf("OPTIONS: called %v, claims %v, owner %q; want called anonymously", s.called, s.ok, s.owner)
	}
}
