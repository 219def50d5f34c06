package hooks

import (
	"net/http"
	"testing"
)

func TestTypeAllowed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		patterns []string
		typ      string
		want     bool
	}{
		{[]string{"video/*"}, "video/mp4", true},
		{[]string{"video/*"}, "VIDEO/MP4", true},
		{[]string{"video/*"}, "video/mp4; codecs=avc1", true},
		{[]string{"video/*"}, "videos/mp4", false},
		{[]string{"video/*"}, "audio/mpeg", false},
		{[]string{"image/png"}, "image/png", true},
		{[]string{"image/png"}, "image/pngx", false},
		{[]string{"image/png", "video/*"}, "video/webm", true},
		{[]string{"image/png"}, "", false},
		{[]string{"image/png"}, "garbage", false},
		{[]string{"*/*"}, "", true},
		{[]string{"*"}, "whatever", true},
		{[]string{"video/*"}, "video/", false},
	}
	for _, tc := range tests {
		if got := TypeAllowed(tc.patterns, tc.typ); got != tc.want {
			t.Errorf("TypeAllowed(%v, %q) = %v; want %v", tc.patterns, tc.typ, got, tc.want)
		}
	}
}

func TestCheckCreate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		limits Limits
		up     NewUpload
		status int // 0: allowed
	}{
		{"no limits", Limits{}, NewUpload{Size: 1 << 40}, 0},
		{"under max", Limits{MaxSize: 100}, NewUpload{Size: 100}, 0},
		{"over max", Limits{MaxSize: 100}, NewUpload{Size: 101}, http.StatusRequestEntityTooLarge},
		{"deferred under a max is checked later", Limits{MaxSize: 100}, NewUpload{Deferred: true}, 0},
		{"type allowed", Limits{AllowedTypes: []string{"video/*"}}, NewUpload{Size: 1, FileType: "video/mp4"}, 0},
		{"type refused", Limits{AllowedTypes: []string{"video/*"}}, NewUpload{Size: 1, FileType: "image/png"}, http.StatusUnsupportedMediaType},
		{"type missing", Limits{AllowedTypes: []string{"video/*"}}, NewUpload{Size: 1}, http.StatusUnsupportedMediaType},
		{"final upload skips the type hint", Limits{AllowedTypes: []string{"video/*"}}, NewUpload{Size: 1, IsFinal: true}, 0},
		{"final upload still capped", Limits{MaxSize: 10}, NewUpload{Size: 11, IsFinal: true}, http.StatusRequestEntityTooLarge},
		{"partial upload without a type (tus-js-client parallel)", Limits{AllowedTypes: []string{"video/*"}}, NewUpload{Size: 1, IsPartial: true}, 0},
		{"partial upload declaring a refused type", Limits{AllowedTypes: []string{"video/*"}}, NewUpload{Size: 1, IsPartial: true, FileType: "image/png"}, http.StatusUnsupportedMediaType},
		{"resume-only token creates nothing", Limits{UploadID: "abc"}, NewUpload{Size: 1}, http.StatusForbidden},
	}
	for _, tc := range tests {
		r := CheckCreate(tc.limits, tc.up)
		switch {
		case tc.status == 0 && r != nil:
			t.Errorf("%s: refused (%v); want allowed", tc.name, r)
		case tc.status != 0 && (r == nil || r.Status != tc.status):
			t.Errorf("%s: got %v; want status %d", tc.name, r, tc.status)
		case r != nil && (r.Code == "" || r.Message == ""):
			t.Errorf("%s: refusal without code or message: %+v", tc.name, r)
		}
	}
}

func TestCheckLength(t *testing.T) {
	t.Parallel()
	if r := CheckLength(Limits{MaxSize: 10}, 10); r != nil {
		t.Errorf("length at the max refused: %v", r)
	}
	if r := CheckLength(Limits{MaxSize: 10}, 11); r == nil || r.Status != http.StatusRequestEntityTooLarge {
		t.Errorf("length over the max: %v; want 413", r)
	}
	if r := CheckLength(Limits{}, 1<<50); r != nil {
		t.Errorf("no limit refused: %v", r)
	}
}
