package protocol

import (
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/intake-dev/intake/pkg/jsonerr"
)

const (
	tusVersion      = "1.0.0"
	offsetMediaType = "application/offset+octet-stream"
)

// Options configures Wrap.
type Options struct {
	// MaxMetadataSize is the largest Upload-Metadata header accepted, in
	// bytes; a larger one is answered with 431. Defaults to 4096.
	MaxMetadataSize int
	// Logger receives the details of 5xx responses, which are not sent to
	// clients. Defaults to slog.Default().
	Logger *slog.Logger
	// MaxSize is the handler's maximum upload size (0: none). tusd checks
	// it too, but only after creating an upload in some cases; knowing it
	// here refuses those requests before anything is stored.
	MaxSize int64
}

func (o *Options) validate() {
	if o.MaxMetadataSize <= 0 {
		o.MaxMetadataSize = 4096
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Wrap returns next (a tusd handler) made to answer tus 1.0.0 as the spec
// requires, with every error as JSON. next must see the same paths Wrap sees
// apart from a stripped prefix (http.StripPrefix inside or outside Wrap both
// work), and must speak tus 1.0.0 only (tusd's EnableExperimentalProtocol off).
func Wrap(next http.Handler, opts Options) http.Handler {
	opts.validate()
	return &protocol{next: next, opts: opts}
}

type protocol struct {
	next http.Handler
	opts Options
}

// rejection is an error intake's layer answers itself, before tusd runs.
type rejection struct {
	status  int
	code    string
	message string
}

func (p *protocol) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	method := effectiveMethod(r)

	h := w.Header()
	h.Set("Tus-Resumable", tusVersion)
	if method == http.MethodHead {
		h.Set("Cache-Control", "no-store")
	}

	// OPTIONS carries no Tus-Resumable by design; GET is tusd's download,
	// not tus, and browsers must reach it without tus headers.
	if method != http.MethodOptions && method != http.MethodGet {
		if rej := p.check(r, method); rej != nil {
			reject(w, r, rej)
			return
		}
	}

	ew := &errorWriter{w: w, r: r, logger: p.opts.Logger}
	p.next.ServeHTTP(ew, r)
	ew.finish()
}

// effectiveMethod applies X-HTTP-Method-Override as tusd does: only on POST,
// so a safe method is never turned into an unsafe one.
func effectiveMethod(r *http.Request) string {
	if m := r.Header.Get("X-HTTP-Method-Override"); r.Method == http.MethodPost && m != "" {
		return m
	}
	return r.Method
}

func reject(w http.ResponseWriter, r *http.Request, rej *rejection) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	if rej.status == http.StatusPreconditionFailed {
		h.Set("Tus-Version", tusVersion)
	}
	jsonerr.Write(w, r, rej.status, rej.code, rej.message)
}

func (p *protocol) check(r *http.Request, method string) *rejection {
	if v, _, ok := single(r.Header, "Tus-Resumable"); !ok || v != tusVersion {
		return &rejection{http.StatusPreconditionFailed, "unsupported_version",
			"missing, invalid or unsupported Tus-Resumable header"}
	}
	switch method {
	case http.MethodPost:
		return p.checkCreation(r)
	case http.MethodPatch:
		return p.checkPatch(r)
	}
	return nil
}

func (p *protocol) checkCreation(r *http.Request) *rejection {
	length, hasLength, rej := lengthHeader(r.Header, "Upload-Length", "invalid_upload_length")
	if rej != nil {
		return rej
	}
	_, hasDefer, ok := single(r.Header, "Upload-Defer-Length")
	if !ok {
		return &rejection{http.StatusBadRequest, "invalid_upload_length_defer", "more than one Upload-Defer-Length header"}
	}
	concat, _, ok := single(r.Header, "Upload-Concat")
	if !ok {
		return &rejection{http.StatusBadRequest, "invalid_concat", "more than one Upload-Concat header"}
	}
	isFinal := strings.HasPrefix(concat, "final;")
	if isFinal && (hasLength || hasDefer) {
		return &rejection{http.StatusBadRequest, "invalid_upload_length",
			"a final upload must not include Upload-Length or Upload-Defer-Length: its length is the sum of its partial uploads"}
	}

	if vals := r.Header.Values("Upload-Metadata"); len(vals) > 0 {
		// Several field lines of a list header mean one list; tusd would
		// read only the first.
		meta := strings.Join(vals, ",")
		if len(meta) > p.opts.MaxMetadataSize {
			return &rejection{http.StatusRequestHeaderFieldsTooLarge, "metadata_too_large",
				"Upload-Metadata is larger than " + strconv.Itoa(p.opts.MaxMetadataSize) + " bytes"}
		}
		if err := checkMetadata(meta); err != nil {
			return &rejection{http.StatusBadRequest, "invalid_metadata", "invalid Upload-Metadata: " + err.Error()}
		}
		if len(vals) > 1 {
			r.Header.Set("Upload-Metadata", meta)
		}
	}

	// tusd would create the upload first and then fail the body with 413,
	// leaving an upload whose URL the client never learns.
	if r.Header.Get("Content-Type") == offsetMediaType {
		if hasLength && r.ContentLength > length {
			return &rejection{http.StatusRequestEntityTooLarge, "upload_size_exceeded",
				"the request body is larger than Upload-Length"}
		}
		if hasDefer && p.opts.MaxSize > 0 && r.ContentLength > p.opts.MaxSize {
			return p.tooLarge()
		}
	}

	return nil
}

func (p *protocol) tooLarge() *rejection {
	return &rejection{http.StatusRequestEntityTooLarge, "max_size_exceeded",
		"the upload would be larger than the server's maximum of " + strconv.FormatInt(p.opts.MaxSize, 10) + " bytes"}
}

func (p *protocol) checkPatch(r *http.Request) *rejection {
	if v, _, ok := single(r.Header, "Content-Type"); !ok || v != offsetMediaType {
		return &rejection{http.StatusUnsupportedMediaType, "invalid_content_type",
			"PATCH requests must use Content-Type: " + offsetMediaType}
	}
	if _, has, rej := lengthHeader(r.Header, "Upload-Offset", "invalid_offset"); rej != nil {
		return rej
	} else if !has {
		return &rejection{http.StatusBadRequest, "invalid_offset", "missing Upload-Offset header"}
	}
	length, hasLength, rej := lengthHeader(r.Header, "Upload-Length", "invalid_upload_length")
	if rej != nil {
		return rej
	}
	// Declaring a length over the maximum: tusd answers 400; it is the
	// same limit as at creation, so it gets the same 413.
	if hasLength && p.opts.MaxSize > 0 && length > p.opts.MaxSize {
		return p.tooLarge()
	}
	return nil
}

// lengthHeader reads a header whose value must be a non-negative integer in
// plain digits. tusd uses strconv.ParseInt, which also takes "+5" and "-0".
func lengthHeader(h http.Header, name, code string) (n int64, present bool, rej *rejection) {
	v, present, ok := single(h, name)
	if !ok {
		return 0, true, &rejection{http.StatusBadRequest, code, "more than one " + name + " header"}
	}
	if !present {
		return 0, false, nil
	}
	n, ok = parseDigits(v)
	if !ok {
		return 0, true, &rejection{http.StatusBadRequest, code, name + " must be a non-negative integer"}
	}
	return n, true, nil
}

func parseDigits(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// single returns the value of a header that may appear at most once. tusd
// reads only the first of repeated headers, silently.
func single(h http.Header, name string) (value string, present, ok bool) {
	switch vals := h.Values(name); len(vals) {
	case 0:
		return "", false, true
	case 1:
		return vals[0], true, true
	default:
		return "", true, false
	}
}
