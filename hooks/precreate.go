package hooks

import (
	"fmt"
	"mime"
	"net/http"
	"strings"
)

// Refusal is a policy's "no": the HTTP status, a stable code and a message
// for the person behind the client.
type Refusal struct {
	Status  int
	Code    string
	Message string
}

func (r *Refusal) Error() string { return r.Code + ": " + r.Message }

// Limits narrow what one request may do (from its token's claims). Zero
// values mean no limit.
type Limits struct {
	MaxSize      int64
	AllowedTypes []string
	// UploadID limits the request to resuming that one upload.
	UploadID string
}

// NewUpload is what a creation request declares.
type NewUpload struct {
	Size     int64 // ignored when Deferred
	Deferred bool
	FileType string // the filetype metadata, "" when absent
	IsFinal  bool   // a concatenation: its size is the sum of its partials
	// IsPartial marks a piece of a parallel upload. tus-js-client and Uppy
	// send partials without metadata; the final upload carries the type.
	IsPartial bool
}

// CheckCreate decides whether an upload may be created under limits.
func CheckCreate(l Limits, u NewUpload) *Refusal {
	if l.UploadID != "" {
		return &Refusal{http.StatusForbidden, "token_scope",
			"this token may only resume upload " + l.UploadID + "; ask for a token that may create uploads"}
	}
	if l.MaxSize > 0 && !u.Deferred && u.Size > l.MaxSize {
		return &Refusal{http.StatusRequestEntityTooLarge, "max_size_exceeded",
			fmt.Sprintf("the upload is %d bytes; this token allows at most %d", u.Size, l.MaxSize)}
	}
	// A final upload needs no type of its own (its partials were checked),
	// but one it declares must be allowed like any other.
	if len(l.AllowedTypes) > 0 && !((u.IsFinal || u.IsPartial) && u.FileType == "") && !TypeAllowed(l.AllowedTypes, u.FileType) {
		declared := u.FileType
		if declared == "" {
			declared = "none"
		}
		return &Refusal{http.StatusUnsupportedMediaType, "type_not_allowed",
			fmt.Sprintf("file type %s is not allowed; this token allows %s", declared, strings.Join(l.AllowedTypes, ", "))}
	}
	return nil
}

// CheckLength decides whether a deferred upload may declare (or grow to)
// size bytes under limits.
func CheckLength(l Limits, size int64) *Refusal {
	if l.MaxSize > 0 && size > l.MaxSize {
		return &Refusal{http.StatusRequestEntityTooLarge, "max_size_exceeded",
			fmt.Sprintf("the upload would be %d bytes; this token allows at most %d", size, l.MaxSize)}
	}
	return nil
}

// TypeAllowed reports whether a media type matches one of patterns:
// "video/mp4" exactly, "video/*" any subtype, "*/*" or "*" anything.
// Parameters ("; charset=...") and case are ignored. An empty or
// unparsable type matches only "*" patterns.
func TypeAllowed(patterns []string, mediaType string) bool {
	mt, _, err := mime.ParseMediaType(mediaType)
	typ, sub, ok := strings.Cut(mt, "/")
	valid := err == nil && ok && typ != "" && sub != ""
	for _, p := range patterns {
		p = strings.ToLower(strings.TrimSpace(p))
		switch {
		case p == "*" || p == "*/*":
			return true
		case !valid:
		case strings.HasSuffix(p, "/*"):
			if strings.TrimSuffix(p, "/*") == typ {
				return true
			}
		case p == mt:
			return true
		}
	}
	return false
}
