package webhook_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/intake-dev/intake/pkg/catalog"
	"github.com/intake-dev/intake/pkg/webhook"
)

// TestNewBody: the documented JSON from the catalog's snapshot — where the
// bytes are for each store, and null for what is not known.
func TestNewBody(t *testing.T) {
	t.Parallel()
	const sum = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
	occurred := time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC)
	tests := []struct {
		name    string
		payload string
		want    string // the "upload" object
	}{
		{"created, file store, deferred length",
			`{"id":"u1","owner":"","size":null,"offset":0,"state":"receiving","sha256":"","content_type":"",
			  "metadata":{"filetype":"video/mp4"},"storage":{"Type":"filestore","Path":"/srv/intake/uploads/u1"},"blob_storage":null,
			  "created_at":"2026-01-02T03:04:05Z","completed_at":null}`,
			`{"id":"u1","owner":"","size":null,"sha256":null,"content_type":null,"filename":null,
			  "metadata":{"filetype":"video/mp4"},"storage":{"backend":"file","bucket":null,"key":"u1"},"download_url":null}`},
		{"completed, file store",
			`{"id":"u2","owner":"alice","size":5,"offset":5,"state":"complete","sha256":"` + sum + `","content_type":"text/plain",
			  "metadata":{"filename":"hello.txt"},"storage":{"Type":"filestore","Path":"/srv/intake/uploads/u2"},
			  "blob_storage":{"Type":"filestore","Path":"/srv/intake/uploads/u2"}}`,
			`{"id":"u2","owner":"alice","size":5,"sha256":"` + sum + `","content_type":"text/plain","filename":"hello.txt",
			  "metadata":{"filename":"hello.txt"},"storage":{"backend":"file","bucket":null,"key":"u2"},
			  "download_url":"https://uploads.example.com/files/u2"}`},
		// Deduplicated: the bytes are the first upload's object.
		{"completed, deduplicated on s3",
			`{"id":"u3+mp3","owner":"bob","size":5,"state":"complete","sha256":"` + sum + `",
			  "metadata":{},"storage":{"Type":"s3store","Bucket":"up","Key":"pre/u3"},
			  "blob_storage":{"Type":"s3store","Bucket":"up","Key":"pre/u1"}}`,
			`{"id":"u3+mp3","owner":"bob","size":5,"sha256":"` + sum + `","content_type":null,"filename":null,
			  "metadata":{},"storage":{"backend":"s3","bucket":"up","key":"pre/u1"},
			  "download_url":"https://uploads.example.com/files/u3+mp3"}`},
		{"terminated after completion: no download",
			`{"id":"u4","owner":"","size":5,"state":"terminated","sha256":"` + sum + `","metadata":null,
			  "storage":{"Type":"s3store","Bucket":"up","Key":"u4"}}`,
			`{"id":"u4","owner":"","size":5,"sha256":"` + sum + `","content_type":null,"filename":null,
			  "metadata":{},"storage":{"backend":"s3","bucket":"up","key":"u4"},"download_url":null}`},
		{"no storage yet",
			`{"id":"u5","owner":"","size":0,"state":"receiving","metadata":{"filename":""},"storage":{}}`,
			`{"id":"u5","owner":"","size":0,"sha256":null,"content_type":null,"filename":"",
			  "metadata":{"filename":""},"storage":null,"download_url":null}`},
		{"a store intake does not know",
			`{"id":"u6","owner":"","size":1,"state":"receiving","storage":{"Type":"gcsstore","Bucket":"b","Key":"k"}}`,
			`{"id":"u6","owner":"","size":1,"sha256":null,"content_type":null,"filename":null,
			  "metadata":{},"storage":{"backend":"gcsstore","bucket":"b","key":"k"},"download_url":null}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ev := catalog.Event{ID: "ev-1", Type: catalog.EventCompleted, UploadID: "ignored", OccurredAt: occurred.In(time.FixedZone("x", 3600)), Payload: []byte(tt.payload)}
			body, err := webhook.NewBody(ev, "https://uploads.example.com/files/")
			if err != nil {
				t.Fatalf("NewBody: %v", err)
			}
			got, err := json.Marshal(body)
			if err != nil {
				t.Fatal(err)
			}
			want := `{"id":"ev-1","type":"upload.completed","occurred_at":"2026-01-02T03:04:05.123456Z","upload":` + compact(t, tt.want) + `}`
			if string(got) != want {
				t.Errorf("body:\n got %s\nwant %s", got, want)
			}
		})
	}
}

func TestNewBodyWithoutDownloadBase(t *testing.T) {
	t.Parallel()
	ev := catalog.Event{ID: "ev-1", Type: catalog.EventCompleted, UploadID: "u1",
		Payload: []byte(`{"id":"u1","state":"complete","size":1,"sha256":"ab"}`)}
	body, err := webhook.NewBody(ev, "")
	if err != nil || body.Upload.DownloadURL != nil {
		t.Errorf("NewBody without a download base: download_url %v, %v; want null, nil", body.Upload.DownloadURL, err)
	}
}

// A payload the dispatcher cannot read is an error, not an empty upload.
func TestNewBodyBadPayload(t *testing.T) {
	t.Parallel()
	for _, p := range []string{"", "{", `{"size":"big"}`} {
		if _, err := webhook.NewBody(catalog.Event{ID: "ev-1", Payload: []byte(p)}, ""); err == nil || !strings.Contains(err.Error(), "ev-1") {
			t.Errorf("NewBody(payload %q) = %v; want an error naming the event", p, err)
		}
	}
}

// compact rewrites an expected upload object in the field order of the
// type; unknown fields are an error in the test itself.
func compact(t *testing.T, s string) string {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	var u webhook.Upload
	if err := dec.Decode(&u); err != nil {
		t.Fatalf("bad want %s: %v", s, err)
	}
	b, err := json.Marshal(u)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
