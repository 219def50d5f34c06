package hooks

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
)

// usage is a fake Usage: bytes per owner, or err for everyone.
type usage struct {
	bytes map[string]int64
	err   error
	calls int
}

func (u *usage) OwnerUsage(_ context.Context, owner string) (int64, error) {
	u.calls++
	return u.bytes[owner], u.err
}

func TestPolicyCheckCreate(t *testing.T) {
	t.Parallel()
	const quota = 10_000
	used := map[string]int64{"alice": 9_000, "full": quota, "over": quota + 5}
	md := func(kv ...string) map[string]string {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name   string
		policy Policy
		owner  string
		up     NewUpload
		status int    // 0: allowed
		msg    string // in the message
	}{
		{"zero policy", Policy{}, "alice", NewUpload{Size: 1 << 50}, 0, ""},

		{"text: unicode metadata", Policy{}, "", NewUpload{Size: 1, Metadata: md("filename", "日本語 🎉.txt")}, 0, ""},
		{"text: NUL byte", Policy{}, "", NewUpload{Size: 1, Metadata: md("filename", "a\x00.txt")}, http.StatusBadRequest,
			`the value of metadata key "filename" is not text`},
		{"text: invalid UTF-8", Policy{}, "", NewUpload{Size: 1, Metadata: md("a", "ok", "b", "\xff\xfe")}, http.StatusBadRequest, `key "b"`},
		{"order: text before quota", Policy{QuotaBytes: quota}, "alice",
			NewUpload{Size: quota, Metadata: md("filename", "\x00")}, http.StatusBadRequest, ""},

		{"quota: fits exactly", Policy{QuotaBytes: quota}, "alice", NewUpload{Size: 1_000}, 0, ""},
		{"quota: one byte over", Policy{QuotaBytes: quota}, "alice", NewUpload{Size: 1_001}, http.StatusRequestEntityTooLarge,
			"only 1000 bytes of your 9.8 KiB (10000 bytes) quota is left"},
		{"quota: message states the need", Policy{QuotaBytes: quota}, "alice", NewUpload{Size: 5_000}, http.StatusRequestEntityTooLarge,
			"needs 4.9 KiB (5000 bytes)"},
		{"quota: another owner unaffected", Policy{QuotaBytes: quota}, "bob", NewUpload{Size: quota}, 0, ""},
		{"quota: anonymous owner has one", Policy{QuotaBytes: quota}, "", NewUpload{Size: quota + 1}, http.StatusRequestEntityTooLarge, "quota"},
		{"quota: empty upload when full", Policy{QuotaBytes: quota}, "full", NewUpload{Size: 0}, 0, ""},
		{"quota: used up", Policy{QuotaBytes: quota}, "full", NewUpload{Size: 1}, http.StatusRequestEntityTooLarge, "only 0 bytes"},
		{"quota: deferred counts nothing yet", Policy{QuotaBytes: quota}, "alice", NewUpload{Deferred: true}, 0, ""},
		// Any byte it received would be over.
		{"quota: deferred when full", Policy{QuotaBytes: quota}, "full", NewUpload{Deferred: true}, http.StatusRequestEntityTooLarge, "used up (0 bytes left)"},
		{"quota: deferred counts its creation body", Policy{QuotaBytes: quota}, "alice", NewUpload{Deferred: true, Body: 1_001}, http.StatusRequestEntityTooLarge, "1000 bytes"},
		{"quota: deferred with a body that fits", Policy{QuotaBytes: quota}, "alice", NewUpload{Deferred: true, Body: 1_000}, 0, ""},
		{"quota: deferred by an owner already over", Policy{QuotaBytes: quota}, "over", NewUpload{Deferred: true}, http.StatusRequestEntityTooLarge, "used up"},
		{"quota: final upload counts its size", Policy{QuotaBytes: quota}, "alice", NewUpload{Size: 2_000, IsFinal: true}, http.StatusRequestEntityTooLarge, "quota"},
		{"quota: partial upload counts", Policy{QuotaBytes: quota}, "alice", NewUpload{Size: 2_000, IsPartial: true}, http.StatusRequestEntityTooLarge, "quota"},
		{"quota: huge size does not overflow", Policy{QuotaBytes: quota}, "alice", NewUpload{Size: 1<<63 - 1}, http.StatusRequestEntityTooLarge, "quota"},

		{"types: allowed", Policy{AllowedTypes: []string{"video/*", "image/png"}}, "", NewUpload{Size: 1, FileType: "image/png"}, 0, ""},
		{"types: refused", Policy{AllowedTypes: []string{"video/*", "image/png"}}, "", NewUpload{Size: 1, FileType: "text/plain"}, http.StatusUnsupportedMediaType,
			"file type text/plain is not allowed; this server accepts only video/*, image/png"},
		{"types: none declared", Policy{AllowedTypes: []string{"image/*"}}, "", NewUpload{Size: 1}, http.StatusUnsupportedMediaType, "file type none"},
		{"types: final without type passes", Policy{AllowedTypes: []string{"image/*"}}, "", NewUpload{Size: 1, IsFinal: true}, 0, ""},
		{"types: partial without type passes", Policy{AllowedTypes: []string{"image/*"}}, "", NewUpload{Size: 1, IsPartial: true}, 0, ""},
		{"types: final declaring a refused type", Policy{AllowedTypes: []string{"image/*"}}, "", NewUpload{Size: 1, IsFinal: true, FileType: "text/plain"}, http.StatusUnsupportedMediaType, "text/plain"},

		{"required: present", Policy{RequiredMetadata: []string{"filename", "project"}}, "",
			NewUpload{Size: 1, Metadata: md("filename", "a", "project", "p")}, 0, ""},
		{"required: one missing", Policy{RequiredMetadata: []string{"filename", "project"}}, "",
			NewUpload{Size: 1, Metadata: md("filename", "a")}, http.StatusBadRequest, "Upload-Metadata lacks project;"},
		{"required: all missing listed", Policy{RequiredMetadata: []string{"filename", "project"}}, "",
			NewUpload{Size: 1}, http.StatusBadRequest, "lacks filename, project;"},
		{"required: empty value is missing", Policy{RequiredMetadata: []string{"project"}}, "",
			NewUpload{Size: 1, Metadata: md("project", "")}, http.StatusBadRequest, "lacks project"},
		{"required: partial exempt", Policy{RequiredMetadata: []string{"project"}}, "",
			NewUpload{Size: 1, IsPartial: true}, 0, ""},
		{"required: final checked", Policy{RequiredMetadata: []string{"project"}}, "",
			NewUpload{Size: 1, IsFinal: true}, http.StatusBadRequest, "lacks project"},

		// A request refused anyway never costs a usage query (checked below).
		{"order: type before quota", Policy{QuotaBytes: quota, AllowedTypes: []string{"image/*"}}, "alice",
			NewUpload{Size: quota, FileType: "text/plain"}, http.StatusUnsupportedMediaType, ""},
		{"order: metadata before quota", Policy{QuotaBytes: quota, RequiredMetadata: []string{"project"}}, "alice",
			NewUpload{Size: quota}, http.StatusBadRequest, ""},
	}
	for _, tc := range tests {
		u := &usage{bytes: used}
		if tc.policy.QuotaBytes > 0 {
			tc.policy.Usage = u
		}
		r, err := tc.policy.CheckCreate(context.Background(), tc.owner, tc.up)
		switch {
		case err != nil:
			t.Errorf("%s: error %v", tc.name, err)
		case tc.status == 0 && r != nil:
			t.Errorf("%s: refused (%v); want allowed", tc.name, r)
		case tc.status != 0 && (r == nil || r.Status != tc.status):
			t.Errorf("%s: got %v; want status %d", tc.name, r, tc.status)
		case r != nil && (r.Code == "" || r.Message == "" || !strings.Contains(r.Message, tc.msg)):
			t.Errorf("%s: refusal %+v; want a code and a message containing %q", tc.name, r, tc.msg)
		}
		if strings.HasPrefix(tc.name, "order:") && u.calls != 0 {
			t.Errorf("%s: %d usage queries; want none", tc.name, u.calls)
		}
	}
}

func TestPolicyCheckLength(t *testing.T) {
	t.Parallel()
	// alice holds 9000 bytes, 3000 of them the committed offset of the
	// deferred upload now declaring its length.
	p := Policy{QuotaBytes: 10_000, Usage: &usage{bytes: map[string]int64{"alice": 9_000}}}
	tests := []struct {
		counted, length int64
		status          int
	}{
		{3_000, 4_000, 0},
		{3_000, 4_001, http.StatusRequestEntityTooLarge},
		{0, 1_000, 0},
		{0, 1_001, http.StatusRequestEntityTooLarge},
		// More counted than used (a concurrent release): never negative.
		{20_000, 10_000, 0},
	}
	for _, tc := range tests {
		r, err := p.CheckLength(context.Background(), "alice", tc.counted, tc.length)
		if err != nil {
			t.Fatal(err)
		}
		if got := statusOf(r); got != tc.status {
			t.Errorf("CheckLength(counted %d, length %d) = %v; want status %d", tc.counted, tc.length, r, tc.status)
		}
	}
	if r, err := (Policy{}).CheckLength(context.Background(), "alice", 0, 1<<60); r != nil || err != nil {
		t.Errorf("no quota: CheckLength = %v, %v; want allowed", r, err)
	}
}

// A usage that cannot be read must never let an upload through.
func TestPolicyUsageError(t *testing.T) {
	t.Parallel()
	boom := errors.New("catalog down")
	p := Policy{QuotaBytes: 10, Usage: &usage{err: boom}}
	if r, err := p.CheckCreate(context.Background(), "alice", NewUpload{Size: 1}); !errors.Is(err, boom) || r != nil {
		t.Errorf("CheckCreate = %v, %v; want the usage error", r, err)
	}
	if r, err := p.CheckLength(context.Background(), "alice", 0, 1); !errors.Is(err, boom) || r != nil {
		t.Errorf("CheckLength = %v, %v; want the usage error", r, err)
	}
	if _, err := (Policy{QuotaBytes: 10}).CheckCreate(context.Background(), "alice", NewUpload{Size: 1}); err == nil {
		t.Error("quota without Usage: no error; want one")
	}
}

func TestHumanBytes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		n    int64
		want string
	}{
		{0, "0 bytes"},
		{1023, "1023 bytes"},
		{1024, "1.0 KiB (1024 bytes)"},
		{3 << 20, "3.0 MiB (3145728 bytes)"},
		{5 << 30, "5.0 GiB (5368709120 bytes)"},
		{1<<63 - 1, "8.0 EiB (9223372036854775807 bytes)"},
	}
	for _, tc := range tests {
		if got := humanBytes(tc.n); got != tc.want {
			t.Errorf("humanBytes(%d) = %q; want %q", tc.n, got, tc.want)
		}
	}
}

func statusOf(r *Refusal) int {
	if r == nil {
		return 0
	}
	return r.Status
}
