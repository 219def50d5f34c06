package protocol

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tus/tusd/v2/pkg/filestore"
	"github.com/tus/tusd/v2/pkg/handler"
	"github.com/tus/tusd/v2/pkg/memorylocker"
)

// One test per place where tusd alone answers differently from tus 1.0.0.

// "If the version specified by the Client is not supported by the Server, it
// MUST respond with the 412 Precondition Failed status and MUST include the
// Tus-Version header into the response. In addition, the Server MUST NOT
// process the request."
func TestUnsupportedVersionIncludesTusVersion(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, version := range []string{"", "0.2.2", "1.0"} {
		res := b.do(t, http.MethodPost, b.base, hdr("Tus-Resumable", version, "Upload-Length", "5"), nil)
		assertError(t, http.MethodPost, res, http.StatusPreconditionFailed, "unsupported_version")
		if got := res.header.Get("Tus-Version"); got != "1.0.0" {
			t.Errorf("Tus-Resumable %q: Tus-Version got %q; want 1.0.0", version, got)
		}
	}
	if n := b.uploads(t); n != 0 {
		t.Errorf("rejected creations stored %d uploads", n)
	}
}

// "The Tus-Resumable header MUST be included in every request and response
// except for OPTIONS requests."
func TestHeadRequiresTusResumable(t *testing.T) {
	t.Parallel()
	b := setup(t)
	url := b.create(t, 5)
	res := b.do(t, http.MethodHead, url, hdr("Tus-Resumable", ""), nil)
	assertError(t, http.MethodHead, res, http.StatusPreconditionFailed, "unsupported_version")
	if res.header.Get("Upload-Offset") != "" {
		t.Error("rejected HEAD reveals Upload-Offset")
	}

	// GET is tusd's download, not tus: browsers reach it without the header.
	if res := b.do(t, http.MethodGet, url, nil, nil); res.status >= 400 {
		t.Errorf("GET without Tus-Resumable: got %d; want success", res.status)
	}
	// "The Client SHOULD NOT include the Tus-Resumable header in the request
	// and the Server MUST ignore the header."
	for _, version := range []string{"", "0.0.1"} {
		res := b.do(t, http.MethodOptions, b.base, hdr("Tus-Resumable", version), nil)
		if res.status != http.StatusOK || res.header.Get("Tus-Version") != "1.0.0" {
			t.Errorf("OPTIONS with Tus-Resumable %q: got %d, Tus-Version %q", version, res.status, res.header.Get("Tus-Version"))
		}
	}
}

// "All PATCH requests MUST use Content-Type: application/offset+octet-stream,
// otherwise the server SHOULD return a 415 Unsupported Media Type status."
func TestPatchWithWrongContentTypeIs415(t *testing.T) {
	t.Parallel()
	b := setup(t)
	url := b.create(t, 5)
	for _, ct := range []string{"", "application/octet-stream", "application/offset+octet-stream; charset=utf-8"} {
		res := b.do(t, http.MethodPatch, url, hdr("Content-Type", ct, "Upload-Offset", "0"), strings.NewReader("hello"))
		assertError(t, http.MethodPatch, res, http.StatusUnsupportedMediaType, "invalid_content_type")
	}
	if got := b.offset(t, url); got != "0" {
		t.Errorf("offset after rejected PATCHes: got %s; want 0", got)
	}
}

// "The Upload-Metadata request and response header MUST consist of one or
// more comma-separated key-value pairs. The key and value MUST be separated by
// a space. The key MUST NOT contain spaces and commas and MUST NOT be empty.
// The key SHOULD be ASCII encoded and the value MUST be Base64 encoded. All
// keys MUST be unique."
func TestMetadataMustBeWellFormed(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, tc := range []struct {
		name, meta string
		ok         bool
	}{
		{"pairs", "filename aGVsbG8udHh0,filetype dGV4dC9wbGFpbg==", true},
		{"empty value without space", "filename aGVsbG8udHh0,is_confidential", true},
		{"spaces around commas", "a YQ==, b Yg==", true},
		{"empty elements", "a YQ==,,b Yg==,", true},
		{"bad base64", "filename !!!notbase64", false},
		{"unpadded base64", "filename YQ", false},
		{"non-canonical base64", "filename YR==", false},
		{"duplicate key", "a YQ==,a Yg==", false},
		{"key with space", "my key YQ==", false},
		{"two separating spaces", "a  YQ==", false},
		{"tab separator", "a\tYQ==", false},
		{"non-ASCII key", "clé YQ==", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := b.uploads(t)
			res := b.do(t, http.MethodPost, b.base, hdr("Upload-Length", "1", "Upload-Metadata", tc.meta), nil)
			if tc.ok {
				if res.status != http.StatusCreated {
					t.Fatalf("got %d %s; want 201", res.status, res.body)
				}
				return
			}
			assertError(t, http.MethodPost, res, http.StatusBadRequest, "invalid_metadata")
			if n := b.uploads(t); n != before {
				t.Errorf("rejected creation stored an upload (%d -> %d)", before, n)
			}
		})
	}
}

// tusd reads only the first Upload-Metadata field line; a list header split
// over several lines is one list (RFC 9110, section 5.3).
func TestMetadataOverSeveralLinesIsOneList(t *testing.T) {
	t.Parallel()
	b := setup(t)
	url := b.create(t, 1, "Upload-Metadata", "a YQ==", "Upload-Metadata", "b Yg==")
	meta := b.head(t, url).header.Get("Upload-Metadata")
	for _, pair := range []string{"a YQ==", "b Yg=="} {
		if !strings.Contains(meta, pair) {
			t.Errorf("HEAD Upload-Metadata %q lacks %q", meta, pair)
		}
	}
	res := b.do(t, http.MethodPost, b.base, hdr("Upload-Length", "1", "Upload-Metadata", "a YQ==", "Upload-Metadata", "a Yg=="), nil)
	assertError(t, http.MethodPost, res, http.StatusBadRequest, "invalid_metadata")
}

// Oversized metadata is answered with 431 (RFC 6585: "the server is unwilling
// to process the request because ... a single header field is too large"),
// not 400: the header is well-formed, only too big for this server.
func TestOversizedMetadataIs431(t *testing.T) {
	t.Parallel()
	b := setup(t)
	meta := "filename " + strings.Repeat("QUFB", 1100) // 4409 bytes
	res := b.do(t, http.MethodPost, b.base, hdr("Upload-Length", "1", "Upload-Metadata", meta), nil)
	assertError(t, http.MethodPost, res, http.StatusRequestHeaderFieldsTooLarge, "metadata_too_large")
	if n := b.uploads(t); n != 0 {
		t.Errorf("rejected creation stored %d uploads", n)
	}
}

// "The Client MUST NOT include the Upload-Length header in the final upload
// creation."
func TestFinalUploadMustNotCarryLength(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a := b.create(t, 5, "Upload-Concat", "partial")
	b.mustPatch(t, a, 0, "hello")
	before := b.uploads(t)
	for _, kv := range [][]string{{"Upload-Length", "5"}, {"Upload-Defer-Length", "1"}} {
		res := b.do(t, http.MethodPost, b.base, hdr(append(kv, "Upload-Concat", "final;"+a)...), nil)
		assertError(t, http.MethodPost, res, http.StatusBadRequest, "invalid_upload_length")
	}
	if n := b.uploads(t); n != before {
		t.Errorf("rejected creations stored uploads (%d -> %d)", before, n)
	}
}

// "The Upload-Offset request and response header indicates a byte offset
// within a resource. The value MUST be a non-negative integer." and "The
// Upload-Length request and response header indicates the size of the entire
// upload in bytes. The value MUST be a non-negative integer." tusd uses
// strconv.ParseInt, which also accepts "+5" and "-0".
func TestLengthAndOffsetAreNonNegativeIntegers(t *testing.T) {
	t.Parallel()
	b := setup(t)
	url := b.create(t, 5)
	for _, v := range []string{"+0", "-0", "-1", "abc", "0x0", "1e3", "0 0", "99999999999999999999"} {
		res := b.do(t, http.MethodPatch, url, hdr("Content-Type", offsetMediaType, "Upload-Offset", v), strings.NewReader("hello"))
		assertError(t, http.MethodPatch, res, http.StatusBadRequest, "invalid_offset")

		res = b.do(t, http.MethodPost, b.base, hdr("Upload-Length", v), nil)
		assertError(t, http.MethodPost, res, http.StatusBadRequest, "invalid_upload_length")
	}
	// Leading zeros are digits all the same (as in Content-Length).
	b.mustPatch(t, url, 0, "he")
	res := b.do(t, http.MethodPatch, url, hdr("Content-Type", offsetMediaType, "Upload-Offset", "002"), strings.NewReader("llo"))
	if res.status != http.StatusNoContent {
		t.Errorf("Upload-Offset 002: got %d %s; want 204", res.status, res.body)
	}
	if n := b.uploads(t); n != 1 {
		t.Errorf("rejected creations stored uploads: %d; want 1", n)
	}
}

// The spec gives each header one value; tusd silently reads the first of
// repeated ones, so "Upload-Offset: 0" + "Upload-Offset: 5" is ambiguous.
func TestRepeatedSingletonHeadersAreRejected(t *testing.T) {
	t.Parallel()
	b := setup(t)
	url := b.create(t, 5)
	res := b.do(t, http.MethodPatch, url, hdr("Content-Type", offsetMediaType, "Upload-Offset", "0", "Upload-Offset", "5"), strings.NewReader("hello"))
	assertError(t, http.MethodPatch, res, http.StatusBadRequest, "invalid_offset")
	res = b.do(t, http.MethodPost, b.base, hdr("Upload-Length", "5", "Upload-Length", "6"), nil)
	assertError(t, http.MethodPost, res, http.StatusBadRequest, "invalid_upload_length")
	res = b.do(t, http.MethodPost, b.base, hdr("Tus-Resumable", "1.0.0", "Tus-Resumable", "1.0.0", "Upload-Length", "5"), nil)
	assertError(t, http.MethodPost, res, http.StatusPreconditionFailed, "unsupported_version")
}

// "If the Upload-Defer-Length header contains any other value than 1 the
// server should return a 400 Bad Request status." tusd already does; this
// keeps it so through the wrapper.
func TestDeferLengthMustBeOne(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, v := range []string{"0", "2", "true", "01"} {
		res := b.do(t, http.MethodPost, b.base, hdr("Upload-Defer-Length", v), nil)
		assertError(t, http.MethodPost, res, http.StatusBadRequest, "invalid_upload_length_defer")
	}
	if n := b.uploads(t); n != 0 {
		t.Errorf("rejected creations stored %d uploads", n)
	}
}

// "The Tus-Resumable header MUST be included in every request and response
// except for OPTIONS requests." Checked on responses tusd writes itself,
// including its router's plain 405s.
func TestEveryResponseCarriesTusResumable(t *testing.T) {
	t.Parallel()
	b := setup(t)
	url := b.create(t, 5)
	for _, tc := range []struct {
		method, target string
		h              http.Header
	}{
		{http.MethodOptions, b.base, nil},
		{http.MethodHead, url, hdr()},
		{http.MethodGet, url, nil},
		{http.MethodPatch, url, hdr("Content-Type", offsetMediaType, "Upload-Offset", "3")},
		{http.MethodPatch, b.base, hdr("Content-Type", offsetMediaType, "Upload-Offset", "0")},
		{http.MethodPost, url, hdr("Upload-Length", "5")},
		{http.MethodPut, url, hdr()},
		{http.MethodDelete, b.base + "nope", hdr()},
	} {
		res := b.do(t, tc.method, tc.target, tc.h, nil)
		if got := res.header.Get("Tus-Resumable"); got != tusVersion {
			t.Errorf("%s %s (%d): Tus-Resumable %q; want %q", tc.method, tc.target, res.status, got, tusVersion)
		}
		if res.status >= 400 && !strings.HasPrefix(res.header.Get("Content-Type"), "application/json") {
			t.Errorf("%s %s (%d): error Content-Type %q; want JSON", tc.method, tc.target, res.status, res.header.Get("Content-Type"))
		}
	}
	res := b.do(t, http.MethodPost, url, hdr("Upload-Length", "5"), nil)
	assertError(t, http.MethodPost, res, http.StatusMethodNotAllowed, "method_not_allowed")
	if res.header.Get("Allow") == "" {
		t.Error("405 without Allow")
	}
}

// "The Server MUST prevent the client and/or proxies from caching the
// response by adding the Cache-Control: no-store header to the response."
// tusd adds it only to successful HEADs; a cached 404 would hide an upload.
func TestHeadIsNeverCached(t *testing.T) {
	t.Parallel()
	b := setup(t)
	url := b.create(t, 5)
	for _, target := range []string{url, b.base + "nope"} {
		res := b.head(t, target)
		if got := res.header.Get("Cache-Control"); got != "no-store" {
			t.Errorf("HEAD %s (%d): Cache-Control %q; want no-store", target, res.status, got)
		}
	}
}

// "If the resource is not found, the Server SHOULD return either the 404 Not
// Found, 410 Gone or 403 Forbidden status without the Upload-Offset header."
func TestHeadNotFoundHasNoOffset(t *testing.T) {
	t.Parallel()
	b := setup(t)
	res := b.head(t, b.base+"nope")
	assertError(t, http.MethodHead, res, http.StatusNotFound, "")
	if _, ok := res.header["Upload-Offset"]; ok {
		t.Error("404 carries Upload-Offset")
	}
}

// "The X-HTTP-Method-Override request header MUST be a string which MUST be
// interpreted as the request's method by the Server". Honoured on POST only
// (as tusd does): a GET or HEAD must never become a PATCH or DELETE.
func TestMethodOverride(t *testing.T) {
	t.Parallel()
	b := setup(t)
	url := b.create(t, 5)

	res := b.do(t, http.MethodPost, url, hdr("X-HTTP-Method-Override", "PATCH", "Content-Type", offsetMediaType, "Upload-Offset", "0"), strings.NewReader("hello"))
	if res.status != http.StatusNoContent || res.header.Get("Upload-Offset") != "5" {
		t.Fatalf("POST as PATCH: got %d %s, offset %q; want 204, 5", res.status, res.body, res.header.Get("Upload-Offset"))
	}
	// Our checks follow the effective method.
	res = b.do(t, http.MethodPost, url, hdr("X-HTTP-Method-Override", "PATCH", "Content-Type", "text/plain", "Upload-Offset", "5"), nil)
	assertError(t, http.MethodPost, res, http.StatusUnsupportedMediaType, "invalid_content_type")

	res = b.do(t, http.MethodGet, url, hdr("X-HTTP-Method-Override", "DELETE"), nil)
	if res.status != http.StatusOK {
		t.Errorf("GET with override: got %d; want 200", res.status)
	}
	res = b.do(t, http.MethodPost, url, hdr("X-HTTP-Method-Override", "DELETE"), nil)
	if res.status != http.StatusNoContent {
		t.Fatalf("POST as DELETE: got %d %s; want 204", res.status, res.body)
	}
	assertError(t, http.MethodHead, b.head(t, url), http.StatusNotFound, "")
}

// tusd answers 500 to a lock it could not get in time. Nothing failed; the
// upload is busy. tus clients retry 423, so that is what is sent.
func TestLockTimeoutIs423(t *testing.T) {
	t.Parallel()
	b := setupWith(t, testConfig{compose: func(c *handler.StoreComposer, dir string) {
		filestore.New(dir).UseIn(c)
		c.UseLocker(timeoutLocker{})
	}})
	url := b.create(t, 5) // creation without a body takes no lock
	res := b.patch(t, url, 0, "hello")
	assertError(t, http.MethodPatch, res, http.StatusLocked, "lock_timeout")
	// Not covered: tusd drops the error body of a HEAD, so a HEAD lock
	// timeout cannot be told from any other 500 here. A locker that returns
	// handler.NewError(..., http.StatusLocked) itself fixes HEAD as well.
}

// tusd puts a store's raw error text into 500 bodies. jsonerr's rule: never
// internal detail in a message.
func TestServerErrorsDoNotLeak(t *testing.T) {
	t.Parallel()
	const secret = "postgres://intake:hunter2@db.internal/intake"
	b := setupWith(t, testConfig{compose: func(c *handler.StoreComposer, dir string) {
		c.UseCore(failingStore{FileStore: filestore.New(dir), err: errors.New("dial " + secret + ": connection refused")})
		memorylocker.New().UseIn(c)
	}})
	res := b.patch(t, b.base+"some-id", 0, "hello")
	assertError(t, http.MethodPatch, res, http.StatusInternalServerError, "internal_server_error")
	if strings.Contains(string(res.body), "hunter2") {
		t.Errorf("500 body leaks the store error: %s", res.body)
	}
	if !strings.Contains(string(res.body), `"internal server error"`) {
		t.Errorf("500 body: got %s; want the generic message", res.body)
	}
	if !strings.Contains(b.logs.String(), "hunter2") {
		t.Errorf("the detail was not logged: %q", b.logs.String())
	}
}

// tusd creates the upload before reading a creation-with-upload body, then
// answers a too-long body with 413 but without Location: an upload nobody
// can reach. A body longer than Upload-Length is refused before creation.
func TestCreationWithUploadLongerThanLength(t *testing.T) {
	t.Parallel()
	b := setup(t)
	res := b.do(t, http.MethodPost, b.base, hdr("Upload-Length", "3", "Content-Type", offsetMediaType), strings.NewReader("hello"))
	assertError(t, http.MethodPost, res, http.StatusRequestEntityTooLarge, "upload_size_exceeded")
	if n := b.uploads(t); n != 0 {
		t.Errorf("rejected creation stored %d uploads", n)
	}
}

// "The Server SHOULD always attempt to store as much of the received data as
// possible." and "The new offset MUST be the sum of the offset before the
// PATCH request and the number of bytes received and processed or stored
// during the current PATCH request." A client that dies mid-body leaves what
// arrived, and resumes from there byte-exact.
func TestBodyEndingEarlyKeepsWhatArrived(t *testing.T) {
	t.Parallel()
	b := setup(t)
	data := strings.Repeat("0123456789", 10)
	url := b.create(t, len(data))
	path := strings.TrimPrefix(url, b.srv.URL)

	conn, err := net.Dial("tcp", b.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "PATCH %s HTTP/1.1\r\nHost: intake\r\nTus-Resumable: 1.0.0\r\n"+
		"Content-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\nContent-Length: %d\r\n\r\n%s",
		path, len(data), data[:40])
	conn.Close()

	// Wait until the server has finished with the broken PATCH.
	timeout := time.After(10 * time.Second)
	for done := false; !done; {
		select {
		case s := <-b.served:
			done = s == "PATCH "+path
		case <-timeout:
			t.Fatal("the interrupted PATCH was never handled")
		}
	}

	if got := b.offset(t, url); got != "40" {
		t.Fatalf("offset after a body cut at 40 bytes: got %s; want 40", got)
	}
	b.mustPatch(t, url, 40, data[40:])
	if res := b.do(t, http.MethodGet, url, nil, nil); string(res.body) != data {
		t.Errorf("download: got %q; want %q", res.body, data)
	}
}

type timeoutLocker struct{}

func (timeoutLocker) NewLock(string) (handler.Lock, error) { return timeoutLock{}, nil }

type timeoutLock struct{}

func (timeoutLock) Lock(context.Context, func()) error { return handler.ErrLockTimeout }
func (timeoutLock) Unlock() error                      { return nil }

// failingStore fails every lookup the way a database driver would.
type failingStore struct {
	filestore.FileStore
	err error
}

func (s failingStore) GetUpload(context.Context, string) (handler.Upload, error) {
	return nil, s.err
}
