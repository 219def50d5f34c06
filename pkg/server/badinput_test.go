package server_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/intake-dev/intake/pkg/catalog"
	"github.com/intake-dev/intake/pkg/client"
	"github.com/intake-dev/intake/pkg/config"
)

// badInputMaxSize is the server's max-size in TestBadInputEndToEnd.
const badInputMaxSize = 1 << 20

// Targets of a bad request. Each upload target is created afresh for its case.
const (
	toCreate   = "create"   // the creation URL
	toUpload   = "upload"   // Upload-Length 10, "hello" already stored (offset 5)
	toDeferred = "deferred" // deferred length, badInputMaxSize-100 bytes stored
	toFull     = "full"     // deferred length, badInputMaxSize bytes stored
	toMissing  = "missing"  // an id no upload has (badInputCase.id)
	toAPI      = "api"      // GET /v1/uploads/{id} for an id no upload has
)

// kept is what an over-length request leaves behind: tusd stores what fits
// before answering 413.
type kept struct {
	offset int64
	state  catalog.State
}

type badInputCase struct {
	name    string
	method  string
	target  string
	header  []string // name/value pairs over Tus-Resumable: 1.0.0; "" removes
	body    []byte
	chunked bool // hide the body length: Transfer-Encoding: chunked
	status  int
	code    string // "" for HEAD, which has no body
	// kept, when set, is the target upload's state afterwards; otherwise
	// nothing at all may change.
	kept *kept
	// id is the escaped id for toMissing and toAPI; "" means "no-such-upload".
	id string
}

func octetAt(offset int64, kv ...string) []string {
	return append([]string{"Content-Type", "application/offset+octet-stream", "Upload-Offset", strconv.FormatInt(offset, 10)}, kv...)
}

func md(key, value string) string {
	return key + " " + base64.StdEncoding.EncodeToString([]byte(value))
}

func badInputCases() []badInputCase {
	const maxSize = badInputMaxSize
	return []badInputCase{
		// Tus-Resumable: missing or unsupported is 412 with Tus-Version.
		{name: "POST without Tus-Resumable", method: "POST", target: toCreate, header: []string{"Tus-Resumable", "", "Upload-Length", "10"}, status: 412, code: "unsupported_version"},
		{name: "POST with unsupported Tus-Resumable", method: "POST", target: toCreate, header: []string{"Tus-Resumable", "0.2.2", "Upload-Length", "10"}, status: 412, code: "unsupported_version"},
		{name: "PATCH without Tus-Resumable", method: "PATCH", target: toUpload, header: octetAt(5, "Tus-Resumable", ""), body: []byte("abc"), status: 412, code: "unsupported_version"},
		{name: "PATCH with unsupported Tus-Resumable", method: "PATCH", target: toUpload, header: octetAt(5, "Tus-Resumable", "2.0.0"), body: []byte("abc"), status: 412, code: "unsupported_version"},
		{name: "HEAD without Tus-Resumable", method: "HEAD", target: toUpload, header: []string{"Tus-Resumable", ""}, status: 412},
		{name: "DELETE without Tus-Resumable", method: "DELETE", target: toUpload, header: []string{"Tus-Resumable", ""}, status: 412, code: "unsupported_version"},
		{name: "DELETE with unsupported Tus-Resumable", method: "DELETE", target: toUpload, header: []string{"Tus-Resumable", "0.2.2"}, status: 412, code: "unsupported_version"},

		// Content-Type of a PATCH.
		{name: "PATCH with application/octet-stream", method: "PATCH", target: toUpload, header: []string{"Content-Type", "application/octet-stream", "Upload-Offset", "5"}, body: []byte("abc"), status: 415, code: "invalid_content_type"},
		{name: "PATCH without Content-Type", method: "PATCH", target: toUpload, header: []string{"Upload-Offset", "5"}, body: []byte("abc"), status: 415, code: "invalid_content_type"},

		// Upload-Offset.
		{name: "negative Upload-Offset", method: "PATCH", target: toUpload, header: octetAt(-1), body: []byte("abc"), status: 400, code: "invalid_offset"},
		{name: "non-numeric Upload-Offset", method: "PATCH", target: toUpload, header: octetAt(5, "Upload-Offset", "five"), body: []byte("abc"), status: 400, code: "invalid_offset"},
		{name: "offset behind the upload", method: "PATCH", target: toUpload, header: octetAt(0), body: []byte("abc"), status: 409, code: "mismatched_offset"},
		{name: "offset ahead of the upload", method: "PATCH", target: toUpload, header: octetAt(7), body: []byte("abc"), status: 409, code: "mismatched_offset"},

		// Upload-Length.
		{name: "negative Upload-Length", method: "POST", target: toCreate, header: []string{"Upload-Length", "-1"}, status: 400, code: "invalid_upload_length"},
		{name: "non-numeric Upload-Length", method: "POST", target: toCreate, header: []string{"Upload-Length", "ten"}, status: 400, code: "invalid_upload_length"},
		{name: "negative Upload-Length in PATCH", method: "PATCH", target: toDeferred, header: octetAt(maxSize-100, "Upload-Length", "-1"), body: []byte("abc"), status: 400, code: "invalid_upload_length"},

		// Bodies longer than the declared length.
		{name: "PATCH past the length, Content-Length", method: "PATCH", target: toUpload, header: octetAt(5), body: []byte("world!"), status: 413, code: "upload_size_exceeded"},
		{name: "PATCH past the length, chunked", method: "PATCH", target: toUpload, header: octetAt(5), body: []byte("world!"), chunked: true, status: 413, code: "upload_size_exceeded",
			kept: &kept{offset: 10, state: catalog.StateComplete}},
		{name: "creation-with-upload past the length", method: "POST", target: toCreate, header: octetAt(0, "Upload-Offset", "", "Upload-Length", "10"), body: []byte("hello world"), status: 413, code: "upload_size_exceeded"},

		// Upload-Metadata.
		{name: "metadata with bad base64", method: "POST", target: toCreate, header: []string{"Upload-Length", "10", "Upload-Metadata", "filename ***"}, status: 400, code: "invalid_metadata"},
		{name: "metadata with duplicate keys", method: "POST", target: toCreate, header: []string{"Upload-Length", "10", "Upload-Metadata", md("k", "a") + "," + md("k", "b")}, status: 400, code: "invalid_metadata"},
		{name: "oversized metadata", method: "POST", target: toCreate, header: []string{"Upload-Length", "10", "Upload-Metadata", md("k", strings.Repeat("a", 4096))}, status: 431, code: "metadata_too_large"},
		{name: "metadata value with a NUL byte", method: "POST", target: toCreate, header: []string{"Upload-Length", "10", "Upload-Metadata", md("filename", "a\x00b")}, status: 400, code: "invalid_metadata"},
		{name: "metadata value not UTF-8", method: "POST", target: toCreate, header: []string{"Upload-Length", "10", "Upload-Metadata", md("filename", "\xff\xfe")}, status: 400, code: "invalid_metadata"},
		// A creation-with-upload carrying a bad metadata value must not keep its body either.
		{name: "metadata with a NUL byte and a body", method: "POST", target: toCreate, header: octetAt(0, "Upload-Offset", "", "Upload-Length", "10", "Upload-Metadata", md("filename", "a\x00b")), body: []byte("hello"), status: 400, code: "invalid_metadata"},

		// Unknown ids.
		{name: "HEAD unknown id", method: "HEAD", target: toMissing, status: 404},
		{name: "PATCH unknown id", method: "PATCH", target: toMissing, header: octetAt(0), body: []byte("abc"), status: 404, code: "upload_not_found"},
		{name: "DELETE unknown id", method: "DELETE", target: toMissing, status: 404, code: "upload_not_found"},
		{name: "GET unknown id", method: "GET", target: toMissing, status: 404, code: "upload_not_found"},
		{name: "GET unknown id with a NUL byte", method: "GET", target: toMissing, id: "abc%00", status: 404, code: "upload_not_found"},
		{name: "PATCH unknown id not UTF-8", method: "PATCH", target: toMissing, id: "%FF%FE", header: octetAt(0), body: []byte("abc"), status: 404, code: "upload_not_found"},
		{name: "API GET unknown id", method: "GET", target: toAPI, status: 404, code: "upload_not_found"},
		{name: "API GET unknown id with a NUL byte", method: "GET", target: toAPI, id: "abc%00", status: 404, code: "upload_not_found"},

		// max-size.
		{name: "Upload-Length over max size", method: "POST", target: toCreate, header: []string{"Upload-Length", strconv.Itoa(maxSize + 1)}, status: 413, code: "max_size_exceeded"},
		{name: "creation-with-upload over max size", method: "POST", target: toCreate, header: octetAt(0, "Upload-Offset", "", "Upload-Length", strconv.Itoa(maxSize+1)), body: []byte("hello"), status: 413, code: "max_size_exceeded"},
		{name: "PATCH declaring a length over max size", method: "PATCH", target: toDeferred, header: octetAt(maxSize-100, "Upload-Length", strconv.Itoa(maxSize+1)), body: []byte("abc"), status: 413, code: "max_size_exceeded"},
		{name: "deferred upload grows past max size, Content-Length", method: "PATCH", target: toDeferred, header: octetAt(maxSize - 100), body: bytes.Repeat([]byte("x"), 200), status: 413, code: "upload_size_exceeded",
			kept: &kept{offset: maxSize, state: catalog.StateReceiving}},
		{name: "deferred upload grows past max size, chunked", method: "PATCH", target: toDeferred, header: octetAt(maxSize - 100), body: bytes.Repeat([]byte("x"), 200), chunked: true, status: 413, code: "upload_size_exceeded",
			kept: &kept{offset: maxSize, state: catalog.StateReceiving}},
		{name: "deferred creation-with-upload past max size", method: "POST", target: toCreate, header: octetAt(0, "Upload-Offset", "", "Upload-Defer-Length", "1"), body: bytes.Repeat([]byte("x"), maxSize+10), status: 413, code: "max_size_exceeded"},
		{name: "deferred upload at max size takes no more", method: "PATCH", target: toFull, header: octetAt(maxSize), body: []byte("x"), status: 413, code: "upload_size_exceeded"},
	}
}

// TestBadInputEndToEnd sends every kind of bad request through intake's real
// handler, with both catalogs: each gets its status and a JSON error with a
// stable code, never a 500, and stores nothing it should not. Where tusd
// keeps what fits of an over-long body, HEAD, the catalog and the disk agree
// on what was kept.
func TestBadInputEndToEnd(t *testing.T) {
	forEachBackend(t, func(t *testing.T, cfg config.Config) {
		cfg.MaxSize = badInputMaxSize
		ts := startServer(t, cfg)
		// The cases share one server, so they run in order: each compares
		// the whole catalog and uploads directory before and after.
		for _, tc := range badInputCases() {
			t.Run(tc.name, func(t *testing.T) { ts.runBadInput(t, tc) })
		}
	})
}

func (ts *testServer) runBadInput(t *testing.T, tc badInputCase) {
	ctx := context.Background()
	missingID := tc.id
	if missingID == "" {
		missingID = "no-such-upload"
	}
	var target, id string
	switch tc.target {
	case toCreate:
		target = ts.client.Endpoint
	case toMissing:
		target = ts.client.Endpoint + missingID
	case toAPI:
		target = ts.base + "/v1/uploads/" + missingID
	case toUpload:
		target = ts.newUpload(t, client.Upload{Size: 10}, []byte("hello"))
	case toDeferred:
		target = ts.newUpload(t, client.Upload{Defer: true}, bytes.Repeat([]byte("d"), badInputMaxSize-100))
	case toFull:
		target = ts.newUpload(t, client.Upload{Defer: true}, bytes.Repeat([]byte("f"), badInputMaxSize))
	default:
		t.Fatalf("unknown target %q", tc.target)
	}
	if tc.target != toCreate && tc.target != toMissing && tc.target != toAPI {
		id = idOf(target)
	}
	before := ts.snapshot(t)

	res := sendRaw(t, tc.method, target, tc.header, tc.body, tc.chunked)
	checkErrorResponse(t, tc.method, res, tc.status, tc.code, tc.target != toAPI)
	if tc.target == toCreate {
		if loc := res.header.Get("Location"); loc != "" {
			t.Errorf("rejected creation answered with Location %q", loc)
		}
	}

	want := before
	if tc.kept != nil {
		s := want.sessions[id]
		s.offset, s.state = tc.kept.offset, tc.kept.state
		want.sessions = maps.Clone(want.sessions)
		want.sessions[id] = s
		want.files = maps.Clone(want.files)
		want.files[id] = tc.kept.offset
	}
	got := ts.snapshot(t)
	if diff := want.diff(got); diff != "" {
		t.Errorf("stored state changed:\n%s", diff)
	}

	if id != "" {
		// HEAD, the catalog and the disk must tell the same story.
		info, err := ts.client.Head(ctx, target)
		if err != nil {
			t.Fatalf("HEAD after the bad request: %v", err)
		}
		sess := got.sessions[id]
		if disk := got.files[id]; info.Offset != sess.offset || disk != sess.offset {
			t.Errorf("offset: HEAD %d, catalog %d, disk %d; want all equal", info.Offset, sess.offset, disk)
		}
		if sess.offset > badInputMaxSize {
			t.Errorf("upload holds %d bytes, more than max-size %d", sess.offset, badInputMaxSize)
		}
	}
}

// newUpload creates an upload and stores data in it, checking that the
// server accepts every byte.
func (ts *testServer) newUpload(t *testing.T, up client.Upload, data []byte) string {
	t.Helper()
	ctx := context.Background()
	url, _, err := ts.client.Create(ctx, up, nil, 0)
	if err != nil {
		t.Fatalf("creating the target upload: %v", err)
	}
	if len(data) > 0 {
		off, err := ts.client.Patch(ctx, url, 0, bytes.NewReader(data), int64(len(data)), -1)
		if err != nil || off != int64(len(data)) {
			t.Fatalf("filling the target upload: offset %d, %v; want %d", off, err, len(data))
		}
	}
	return url
}

type rawResponse struct {
	status int
	header http.Header
	body   []byte
}

// sendRaw sends a request with Tus-Resumable: 1.0.0 and the given
// name/value pairs on top; an empty value removes the header.
func sendRaw(t *testing.T, method, url string, kv []string, body []byte, chunked bool) rawResponse {
	t.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
		if chunked {
			r = io.MultiReader(r) // the transport cannot see its length
		}
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Tus-Resumable", "1.0.0")
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			req.Header.Del(kv[i])
		} else {
			req.Header.Set(kv[i], kv[i+1])
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	return rawResponse{status: resp.StatusCode, header: resp.Header, body: b}
}

// checkErrorResponse checks the status, the tus headers (when tus is set;
// intake's /v1 API is not tus) and, except for HEAD, the body
// {"error":{"code","message"}} and nothing else.
func checkErrorResponse(t *testing.T, method string, res rawResponse, status int, code string, tus bool) {
	t.Helper()
	if res.status >= 500 {
		t.Errorf("bad input answered %d %s", res.status, res.body)
	}
	if res.status != status {
		t.Errorf("status: got %d (%s); want %d", res.status, res.body, status)
	}
	if got := res.header.Get("Tus-Resumable"); tus && got != "1.0.0" {
		t.Errorf("Tus-Resumable: got %q; want 1.0.0", got)
	}
	if status == http.StatusPreconditionFailed {
		if got := res.header.Get("Tus-Version"); got != "1.0.0" {
			t.Errorf("Tus-Version on 412: got %q; want 1.0.0", got)
		}
	}
	if method == http.MethodHead {
		if len(res.body) != 0 {
			t.Errorf("HEAD answered with a body: %q", res.body)
		}
		return
	}
	if ct := res.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type: got %q; want application/json", ct)
	}
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	dec := json.NewDecoder(bytes.NewReader(res.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		t.Fatalf("body %q is not the JSON error shape: %v", res.body, err)
	}
	if body.Error.Code != code {
		t.Errorf("code: got %q (message %q); want %q", body.Error.Code, body.Error.Message, code)
	}
	if body.Error.Message == "" {
		t.Error("error message is empty")
	}
}

// sessionState is what a bad request must not change about a session.
type sessionState struct {
	state  catalog.State
	offset int64
	size   int64 // -1 while deferred
	meta   string
}

// stored is everything the server keeps: every catalog session and the size
// of every file in the uploads directory (tusd's .info files by name only,
// as size -1).
type stored struct {
	sessions map[string]sessionState
	files    map[string]int64
}

func (ts *testServer) snapshot(t *testing.T) stored {
	t.Helper()
	list, err := ts.srv.Catalog().List(context.Background(), catalog.ListOptions{Limit: 100000})
	if err != nil {
		t.Fatalf("listing sessions: %v", err)
	}
	s := stored{sessions: map[string]sessionState{}, files: map[string]int64{}}
	for _, sess := range list {
		size := int64(-1)
		if sess.Size != nil {
			size = *sess.Size
		}
		m, _ := json.Marshal(sess.Metadata)
		s.sessions[sess.ID] = sessionState{state: sess.State, offset: sess.Offset, size: size, meta: string(m)}
	}
	dir := ts.cfg.UploadsDir()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".info") {
			s.files[e.Name()] = -1
			continue
		}
		st, err := os.Stat(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		s.files[e.Name()] = st.Size()
	}
	return s
}

// diff describes how got differs from s, or returns "".
func (s stored) diff(got stored) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(s.sessions)) {
		if g, ok := got.sessions[k]; !ok {
			fmt.Fprintf(&b, "session %s disappeared\n", k)
		} else if g != s.sessions[k] {
			fmt.Fprintf(&b, "session %s: got %+v; want %+v\n", k, g, s.sessions[k])
		}
	}
	for _, k := range slices.Sorted(maps.Keys(got.sessions)) {
		if _, ok := s.sessions[k]; !ok {
			fmt.Fprintf(&b, "new session %s: %+v\n", k, got.sessions[k])
		}
	}
	for _, k := range slices.Sorted(maps.Keys(s.files)) {
		if g, ok := got.files[k]; !ok {
			fmt.Fprintf(&b, "file %s disappeared\n", k)
		} else if g != s.files[k] {
			fmt.Fprintf(&b, "file %s: got %d bytes; want %d\n", k, g, s.files[k])
		}
	}
	for _, k := range slices.Sorted(maps.Keys(got.files)) {
		if _, ok := s.files[k]; !ok {
			fmt.Fprintf(&b, "new file %s (%d bytes)\n", k, got.files[k])
		}
	}
	return b.String()
}
