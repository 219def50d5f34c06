package protocol

import (
	"io"
	"strings"
	"testing"
)

// TestBadInput is the policy table: every bad request gets the right status
// and a JSON error, never a 500, and changes nothing.
func TestBadInput(t *testing.T) {
	t.Parallel()

	const (
		create  = "create"  // POST to the creation URL
		upload  = "upload"  // a fresh upload of 10 bytes, nothing written yet
		missing = "missing" // an upload that does not exist
	)
	octet := []string{"Content-Type", offsetMediaType}
	patchAt := func(offset string, kv ...string) []string {
		return append(append([]string{}, octet...), append([]string{"Upload-Offset", offset}, kv...)...)
	}

	for _, tc := range []struct {
		name    string
		method  string
		target  string
		header  []string
		body    string
		chunked bool // hide the body length: Transfer-Encoding: chunked
		status  int
		code    string
		// offset is the upload's offset afterwards ("" means not checked).
		offset string
	}{
		// Tus-Resumable
		{name: "POST without Tus-Resumable", method: "POST", target: create, header: []string{"Tus-Resumable", "", "Upload-Length", "10"}, status: 412, code: "unsupported_version"},
		{name: "PATCH with unsupported Tus-Resumable", method: "PATCH", target: upload, header: append(patchAt("0"), "Tus-Resumable", "0.2.2"), body: "hello", status: 412, code: "unsupported_version", offset: "0"},
		{name: "HEAD without Tus-Resumable", method: "HEAD", target: upload, header: []string{"Tus-Resumable", ""}, status: 412},
		{name: "DELETE without Tus-Resumable", method: "DELETE", target: upload, header: []string{"Tus-Resumable", ""}, status: 412, code: "unsupported_version", offset: "0"},

		// Content-Type
		{name: "PATCH with octet-stream", method: "PATCH", target: upload, header: []string{"Content-Type", "application/octet-stream", "Upload-Offset", "0"}, body: "hello", status: 415, code: "invalid_content_type", offset: "0"},
		{name: "PATCH without Content-Type", method: "PATCH", target: upload, header: []string{"Upload-Offset", "0"}, body: "hello", status: 415, code: "invalid_content_type", offset: "0"},

		// Upload-Offset
		{name: "negative offset", method: "PATCH", target: upload, header: patchAt("-1"), body: "hello", status: 400, code: "invalid_offset", offset: "0"},
		{name: "non-numeric offset", method: "PATCH", target: upload, header: patchAt("five"), body: "hello", status: 400, code: "invalid_offset", offset: "0"},
		{name: "offset with plus sign", method: "PATCH", target: upload, header: patchAt("+0"), body: "hello", status: 400, code: "invalid_offset", offset: "0"},
		{name: "offset with inner space", method: "PATCH", target: upload, header: patchAt("0 0"), body: "hello", status: 400, code: "invalid_offset", offset: "0"},
		{name: "missing offset", method: "PATCH", target: upload, header: octet, body: "hello", status: 400, code: "invalid_offset", offset: "0"},
		{name: "offset mismatch", method: "PATCH", target: upload, header: patchAt("5"), body: "hello", status: 409, code: "mismatched_offset", offset: "0"},

		// Upload-Length
		{name: "negative length", method: "POST", target: create, header: []string{"Upload-Length", "-1"}, status: 400, code: "invalid_upload_length"},
		{name: "non-numeric length", method: "POST", target: create, header: []string{"Upload-Length", "ten"}, status: 400, code: "invalid_upload_length"},
		{name: "length with plus sign", method: "POST", target: create, header: []string{"Upload-Length", "+10"}, status: 400, code: "invalid_upload_length"},
		{name: "length with inner space", method: "POST", target: create, header: []string{"Upload-Length", "1 0"}, status: 400, code: "invalid_upload_length"},
		{name: "no length at all", method: "POST", target: create, status: 400, code: "invalid_upload_length"},
		{name: "length and deferred length", method: "POST", target: create, header: []string{"Upload-Length", "10", "Upload-Defer-Length", "1"}, status: 400, code: "ambiguous_upload_length"},
		{name: "deferred length not 1", method: "POST", target: create, header: []string{"Upload-Defer-Length", "2"}, status: 400, code: "invalid_upload_length_defer"},
		{name: "negative length in PATCH", method: "PATCH", target: upload, header: patchAt("0", "Upload-Length", "-1"), body: "hello", status: 400, code: "invalid_upload_length", offset: "0"},
		{name: "over max size", method: "POST", target: create, header: []string{"Upload-Length", "2097152"}, status: 413, code: "max_size_exceeded"},

		// Bodies longer than the upload
		{name: "PATCH past length, Content-Length", method: "PATCH", target: upload, header: patchAt("0"), body: "hello world", status: 413, code: "upload_size_exceeded", offset: "0"},
		// tusd stores what fits, completing the upload, then reports 413;
		// the offset stays truthful.
		{name: "PATCH past length, chunked", method: "PATCH", target: upload, header: patchAt("0"), body: "hello world", chunked: true, status: 413, code: "upload_size_exceeded", offset: "10"},
		{name: "creation-with-upload past length", method: "POST", target: create, header: append([]string{"Upload-Length", "3"}, octet...), body: "hello", status: 413, code: "upload_size_exceeded"},

		// Upload-Metadata
		{name: "metadata bad base64", method: "POST", target: create, header: []string{"Upload-Length", "10", "Upload-Metadata", "filename ***"}, status: 400, code: "invalid_metadata"},
		{name: "metadata duplicate keys", method: "POST", target: create, header: []string{"Upload-Length", "10", "Upload-Metadata", "k YQ==,k Yg=="}, status: 400, code: "invalid_metadata"},
		{name: "metadata key with space", method: "POST", target: create, header: []string{"Upload-Length", "10", "Upload-Metadata", "file name YQ=="}, status: 400, code: "invalid_metadata"},
		{name: "metadata oversized", method: "POST", target: create, header: []string{"Upload-Length", "10", "Upload-Metadata", "k " + strings.Repeat("YWFh", 1100)}, status: 431, code: "metadata_too_large"},

		// Concatenation
		{name: "final with Upload-Length", method: "POST", target: create, header: []string{"Upload-Length", "10", "Upload-Concat", "final;/files/a"}, status: 400, code: "invalid_upload_length"},
		{name: "malformed Upload-Concat", method: "POST", target: create, header: []string{"Upload-Length", "10", "Upload-Concat", "final"}, status: 400, code: "invalid_concat"},

		// Unknown uploads and wrong places
		{name: "PATCH unknown id", method: "PATCH", target: missing, header: patchAt("0"), body: "hello", status: 404, code: "upload_not_found"},
		{name: "HEAD unknown id", method: "HEAD", target: missing, status: 404},
		{name: "DELETE unknown id", method: "DELETE", target: missing, status: 404, code: "upload_not_found"},
		{name: "GET unknown id", method: "GET", target: missing, status: 404, code: "upload_not_found"},
		{name: "PATCH the creation URL", method: "PATCH", target: create, header: patchAt("0"), body: "hello", status: 405, code: "method_not_allowed"},
		{name: "POST an upload", method: "POST", target: upload, header: []string{"Upload-Length", "10"}, status: 405, code: "method_not_allowed", offset: "0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			var target string
			switch tc.target {
			case create:
				target = b.base
			case upload:
				target = b.create(t, 10)
			case missing:
				target = b.base + "does-not-exist"
			}
			before := b.uploads(t)

			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
				if tc.chunked {
					body = io.MultiReader(body)
				}
			}
			res := b.do(t, tc.method, target, hdr(tc.header...), body)
			assertError(t, tc.method, res, tc.status, tc.code)

			if n := b.uploads(t); n != before {
				t.Errorf("uploads stored: got %d; want %d", n, before)
			}
			if tc.offset != "" {
				if got := b.offset(t, target); got != tc.offset {
					t.Errorf("offset afterwards: got %s; want %s", got, tc.offset)
				}
			}
		})
	}
}
