// Package cors answers browsers' cross-origin questions for intake: which
// origins may call it, with which methods and headers, and which response
// headers their scripts may read (every tus header, or tus clients cannot
// resume). A request from an origin that is not allowed is refused with a
// JSON 403 rather than passed on, so nothing is stored for it.
//
// It must never allow credentials (cookies) for any origin but listed ones.
package cors

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/intake-dev/intake/pkg/jsonerr"
)

// Options configure a Policy.
type Options struct {
	// Origins are exact origins ("https://app.example.com"), patterns with
	// "*" standing for host labels or a port ("https://*.example.com",
	// "http://127.0.0.1:*"), or "*" for any origin.
	Origins          []string
	AllowCredentials bool
	// MaxAge is how long a browser may cache a preflight answer.
	MaxAge time.Duration
}

// Policy is a compiled CORS configuration.
type Policy struct {
	any      bool
	patterns []*regexp.Regexp
	opts     Options
	maxAge   string
}

const (
	allowMethods = "POST, HEAD, PATCH, OPTIONS, GET, DELETE"
	// allowHeaders are the request headers tus clients (tus-js-client,
	// Uppy, the mobile SDKs) send, plus intake's.
	allowHeaders = "Authorization, Content-Type, Tus-Resumable, Upload-Length, Upload-Offset, " +
		"Upload-Metadata, Upload-Defer-Length, Upload-Concat, Upload-Checksum, Upload-Complete, " +
		"Upload-Draft-Interop-Version, X-HTTP-Method-Override, X-Request-ID, X-Requested-With"
	// exposeHeaders are the response headers a browser script may read:
	// without Location and Upload-Offset a tus client cannot work at all.
	exposeHeaders = "Location, Upload-Offset, Upload-Length, Upload-Metadata, Upload-Defer-Length, " +
		"Upload-Concat, Upload-Expires, Tus-Version, Tus-Resumable, Tus-Max-Size, Tus-Extension, " +
		"Tus-Checksum-Algorithm, WWW-Authenticate, X-Request-ID, Content-Disposition"
)

// New compiles opts.
func New(opts Options) *Policy {
	p := &Policy{opts: opts, maxAge: strconv.Itoa(int(opts.MaxAge.Seconds()))}
	for _, o := range opts.Origins {
		o = strings.TrimSpace(o)
		switch {
		case o == "":
		case o == "*":
			p.any = true
		default:
			re := regexp.QuoteMeta(strings.ToLower(o))
			// "*" after a colon is a port; anywhere else, host labels.
			re = strings.ReplaceAll(re, `:\*`, `:[0-9]+`)
			re = strings.ReplaceAll(re, `\*`, `[a-z0-9-]+(?:\.[a-z0-9-]+)*`)
			p.patterns = append(p.patterns, regexp.MustCompile("^"+re+"$"))
		}
	}
	return p
}

// Allowed reports whether a request from origin may be answered.
func (p *Policy) Allowed(origin string) bool {
	if p.any {
		return true
	}
	o := strings.ToLower(origin)
	for _, re := range p.patterns {
		if re.MatchString(o) {
			return true
		}
	}
	return false
}

// Handler wraps next. Requests without an Origin header (not from a
// browser) pass through untouched.
func (p *Policy) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		h := w.Header()
		h.Add("Vary", "Origin")
		if origin == "" {
			next.ServeHTTP(w, r)
			return
		}
		preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
		if !p.Allowed(origin) {
			jsonerr.Write(w, r, http.StatusForbidden, "origin_not_allowed",
				"requests from origin "+strconvQuote(origin)+" are not allowed; add it to --cors-origins")
			return
		}
		h.Set("Access-Control-Allow-Origin", origin)
		if p.opts.AllowCredentials {
			h.Set("Access-Control-Allow-Credentials", "true")
		}
		if preflight {
			h.Set("Access-Control-Allow-Methods", allowMethods)
			h.Set("Access-Control-Allow-Headers", allowHeaders)
			h.Set("Access-Control-Max-Age", p.maxAge)
			h.Add("Vary", "Access-Control-Request-Method")
			h.Add("Vary", "Access-Control-Request-Headers")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h.Set("Access-Control-Expose-Headers", exposeHeaders)
		next.ServeHTTP(w, r)
	})
}

// strconvQuote quotes an origin for a message, bounded so a huge header
// cannot make a huge response.
func strconvQuote(s string) string {
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return strconv.Quote(s)
}
