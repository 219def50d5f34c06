package webhook

import (
	"encoding/json"
	"fmt"
	"net/url"
	"path/filepath"
	"time"

	"github.com/intake-dev/intake/pkg/catalog"
)

// Body is the JSON a receiver gets; the README documents it.
type Body struct {
	ID         string    `json:"id"`
	Type       string    `json:"type"`
	OccurredAt time.Time `json:"occurred_at"`
	Upload     Upload    `json:"upload"`
}

// Upload is the upload as it was when the event occurred. Unknown values
// are null: the size of a deferred-length upload, the digest and sniffed
// type before completion, the download URL of an upload that is not
// complete.
type Upload struct {
	ID          string            `json:"id"`
	Owner       string            `json:"owner"`
	Size        *int64            `json:"size"`
	SHA256      *string           `json:"sha256"`
	ContentType *string           `json:"content_type"`
	Filename    *string           `json:"filename"`
	Metadata    map[string]string `json:"metadata"`
	Storage     *Storage          `json:"storage"`
	DownloadURL *string           `json:"download_url"`
}

// Storage says where the bytes are: backend "file" (key: the object's file
// name under the uploads directory) or "s3" (bucket and object key).
type Storage struct {
	Backend string  `json:"backend"`
	Bucket  *string `json:"bucket"`
	Key     string  `json:"key"`
}

// snapshot is catalog.Event.Payload.
type snapshot struct {
	ID          string            `json:"id"`
	Owner       string            `json:"owner"`
	Size        *int64            `json:"size"`
	State       string            `json:"state"`
	SHA256      string            `json:"sha256"`
	ContentType string            `json:"content_type"`
	Metadata    map[string]string `json:"metadata"`
	Storage     map[string]string `json:"storage"`
	BlobStorage map[string]string `json:"blob_storage"`
}

// NewBody renders an event. downloadBase, when not empty, is the tus
// endpoint's public URL ending in "/" (https://uploads.example.com/files/);
// a complete upload's download_url is it followed by the upload id.
func NewBody(ev catalog.Event, downloadBase string) (Body, error) {
	var s snapshot
	if err := json.Unmarshal(ev.Payload, &s); err != nil {
		return Body{}, fmt.Errorf("decoding payload of event %s: %w", ev.ID, err)
	}
	if s.ID == "" {
		s.ID = ev.UploadID
	}
	md := s.Metadata
	if md == nil {
		md = map[string]string{}
	}
	up := Upload{
		ID:          s.ID,
		Owner:       s.Owner,
		Size:        s.Size,
		SHA256:      nonEmpty(s.SHA256),
		ContentType: nonEmpty(s.ContentType),
		Metadata:    md,
		Storage:     storageOf(s.ID, s.Storage, s.BlobStorage),
	}
	if name, ok := md["filename"]; ok {
		up.Filename = &name
	}
	if downloadBase != "" && s.State == string(catalog.StateComplete) {
		u := downloadBase + url.PathEscape(s.ID)
		up.DownloadURL = &u
	}
	return Body{ID: ev.ID, Type: ev.Type, OccurredAt: ev.OccurredAt.UTC(), Upload: up}, nil
}

// storageOf maps the store's description of the bytes to the documented
// form. A blob's description wins: after deduplication the bytes are
// another upload's object.
func storageOf(uploadID string, own, blob map[string]string) *Storage {
	m := own
	if len(blob) > 0 {
		m = blob
	}
	switch m["Type"] {
	case "":
		return nil
	case "filestore":
		key := uploadID
		if p := m["Path"]; p != "" {
			key = filepath.Base(p)
		}
		return &Storage{Backend: "file", Key: key}
	case "s3store":
		return &Storage{Backend: "s3", Bucket: nonEmpty(m["Bucket"]), Key: m["Key"]}
	default:
		key := m["Key"]
		if key == "" && m["Path"] != "" {
			key = filepath.Base(m["Path"])
		}
		return &Storage{Backend: m["Type"], Bucket: nonEmpty(m["Bucket"]), Key: key}
	}
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
