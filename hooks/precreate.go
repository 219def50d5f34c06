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
	// Body is the length of the upload data the creation request carries
	// (creation-with-upload), 0 when it carries none.
	Body     int64
	FileType string // the filetype metadata, "" when absent
	IsFinal  bool   // a concatenation: its size is the sum of its partials
	// IsPartial marks a piece of a parallel upload. tus-js-client and Uppy
	// send partials without metadata; the final upload carries the type.
	IsPartial bool
	// Metadata is the decoded Upload-Metadata (nil when there is none);
	// the server's policy reads it, token limits do not.
	Metadata map[string]string
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
	return checkType(l.AllowedTypes, u, "this token")
}

// checkType applies allowed type patterns to the declared filetype; who
// names whose rule it is in the message. A partial or final upload may
// declare no type (tus-js-client and Uppy send partials without metadata,
// and the final upload may carry none either), but a type either declares
// must be allowed like any other.
func checkType(patterns []string, u NewUpload, who string) *Refusal {
	if len(patterns) == 0 || (u.IsFinal || u.IsPartial) && u.FileType == "" || TypeAllowed(patterns, u.FileType) {
		return nil
	}
	declared := u.FileType
	if declared == "" {
		declared = "none"
	}
	return &Refusal{http.StatusUnsupportedMediaType, "type_not_allowed",
		fmt.Sprintf("file type %s is not allowed; %s accepts only %s", declared, who, strings.Join(patterns, ", "))}
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
