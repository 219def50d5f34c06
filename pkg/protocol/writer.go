package protocol

import (
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"

	"github.com/intake-dev/intake/pkg/jsonerr"
)

// maxErrorBody bounds what is kept of an error body while it is rewritten.
// tusd's own error bodies are one short line; only a store's raw error text
// in a 500 can be longer, and that is logged, never sent.
const maxErrorBody = 8 << 10

// reTusdError matches tusd's error body: "ERR_SOME_CODE: message\n".
var reTusdError = regexp.MustCompile(`^ERR_([A-Z0-9_]+): ([^\n]*)`)

// statusOverrides corrects the status of tusd errors whose status is wrong for
// tus clients, keyed by the rewritten code.
var statusOverrides = map[string]int{
	// tusd answers 500 to a lock wait that timed out, but nothing failed:
	// someone else holds the upload. 423 is what tus clients retry on.
	"lock_timeout": http.StatusLocked,
}

// errorWriter passes successful responses straight through and holds back
// the (small, plain-text) bodies of error responses so that finish can send
// them as JSON instead.
type errorWriter struct {
	w      http.ResponseWriter
	r      *http.Request
	logger *slog.Logger

	wroteHeader bool
	status      int
	// capturing is set when the response is an error whose body is held back.
	capturing bool
	body      []byte
	// broken is set when an error arrives after a success status was sent,
	// i.e. a download failed midway.
	broken bool
}

// Unwrap lets http.ResponseController (tusd's read/write deadlines) reach
// the connection.
func (ew *errorWriter) Unwrap() http.ResponseWriter { return ew.w }

func (ew *errorWriter) Header() http.Header { return ew.w.Header() }

func (ew *errorWriter) WriteHeader(status int) {
	if status < 200 {
		// Informational responses (100, 103, 104) do not commit the response.
		if !ew.wroteHeader {
			ew.w.WriteHeader(status)
		}
		return
	}
	if ew.wroteHeader {
		if status >= 400 && !ew.capturing {
			// tusd reports a failed copy by writing an error after the
			// success status and part of the body. Appending its text would
			// corrupt the download, so the response is cut off instead.
			ew.broken = true
		}
		return
	}
	ew.wroteHeader = true
	ew.status = status
	if status >= 400 && isPlainText(ew.w.Header().Get("Content-Type")) {
		ew.capturing = true
		return
	}
	ew.w.WriteHeader(status)
}

func (ew *errorWriter) Write(p []byte) (int, error) {
	if !ew.wroteHeader {
		ew.WriteHeader(http.StatusOK)
	}
	switch {
	case ew.broken:
		return 0, http.ErrAbortHandler
	case ew.capturing:
		ew.keep(p)
		return len(p), nil
	}
	return ew.w.Write(p)
}

// ReadFrom keeps the underlying writer's fast path (sendfile) for downloads,
// which io.Copy would otherwise lose behind the wrapper.
func (ew *errorWriter) ReadFrom(src io.Reader) (int64, error) {
	if !ew.wroteHeader {
		ew.WriteHeader(http.StatusOK)
	}
	if ew.broken || ew.capturing {
		return io.Copy(writerOnly{ew}, src)
	}
	if rf, ok := ew.w.(io.ReaderFrom); ok {
		return rf.ReadFrom(src)
	}
	return io.Copy(writerOnly{ew.w}, src)
}

func (ew *errorWriter) Flush() {
	if !ew.wroteHeader {
		ew.WriteHeader(http.StatusOK)
	}
	if ew.broken || ew.capturing {
		return
	}
	_ = http.NewResponseController(ew.w).Flush()
}

func (ew *errorWriter) keep(p []byte) {
	if room := maxErrorBody - len(ew.body); room > 0 {
		ew.body = append(ew.body, p[:min(room, len(p))]...)
	}
}

// finish sends the held-back error as JSON. It must run after the wrapped
// handler has returned.
func (ew *errorWriter) finish() {
	if ew.broken {
		ew.logger.WarnContext(ew.r.Context(), "response aborted after an error mid-body",
			"method", ew.r.Method, "path", ew.r.URL.Path, "status", ew.status)
		// Closing the connection is the only way left to tell the client
		// the body is incomplete (a chunked response would look complete).
		panic(http.ErrAbortHandler)
	}
	if !ew.capturing {
		return
	}

	status := ew.status
	raw := string(ew.body)
	code, message := "", ""
	curated := false // a message tusd or intake wrote for clients
	if m := reTusdError.FindStringSubmatch(raw); m != nil {
		code, message = strings.ToLower(m[1]), m[2]
		// tusd wraps any error that is not a handler.Error as
		// ERR_INTERNAL_SERVER_ERROR with the raw err.Error() as message.
		curated = code != "internal_server_error"
	} else {
		// Errors not shaped by tusd: its router's 405, net/http's file
		// server (416, 404). HEAD responses have no body at all.
		code = codeForStatus(status)
		message = strings.TrimSpace(raw)
	}
	if s, ok := statusOverrides[code]; ok {
		status = s
	}
	if message == "" {
		message = strings.ToLower(http.StatusText(status))
	}
	if status >= 500 {
		ew.logger.ErrorContext(ew.r.Context(), "tus handler error",
			"method", ew.r.Method, "path", ew.r.URL.Path, "status", status, "code", code, "detail", strings.TrimSpace(raw))
		// Store errors reach tusd's 500 body verbatim (paths, DSNs): only
		// messages written for clients (a handler.Error such as the
		// catalog's 503 or a shutdown) are sent as they are.
		if !curated {
			message = strings.ToLower(http.StatusText(status))
			if message == "" {
				message = "internal server error"
			}
		}
	}

	h := ew.w.Header()
	h.Set("Cache-Control", "no-store")
	if status == http.StatusPreconditionFailed {
		h.Set("Tus-Version", tusVersion)
	}
	if ew.r.Method == http.MethodHead {
		h.Del("Upload-Offset")
	}
	jsonerr.Write(ew.w, ew.r, status, code, message)
}

// isPlainText reports whether a Content-Type is one tusd and net/http use for
// their error text. An unset type counts: net/http would sniff it as text.
func isPlainText(contentType string) bool {
	if contentType == "" {
		return true
	}
	mt, _, _ := strings.Cut(contentType, ";")
	return strings.EqualFold(strings.TrimSpace(mt), "text/plain")
}

// codeForStatus turns a status into a code in the same style as tusd's:
// 405 -> "method_not_allowed".
func codeForStatus(status int) string {
	text := strings.ToLower(http.StatusText(status))
	if text == "" {
		return "error"
	}
	var b strings.Builder
	for _, c := range text {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			b.WriteRune(c)
		case c == ' ' || c == '-':
			b.WriteByte('_')
		}
	}
	return b.String()
}

// writerOnly hides a writer's ReadFrom so io.Copy does not recurse into it.
type writerOnly struct{ io.Writer }
