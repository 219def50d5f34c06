package rule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/intake-dev/intake/pkg/catalog"
)

// The catalogs' SQL must agree with these tables; the conformance suite
// checks the catalogs, these check the verdicts on their own.

type verdict int

const (
	noop verdict = iota
	apply
	refuse
)

func (v verdict) String() string { return [...]string{"no-op", "apply", "refuse"}[v] }

func judge(t *testing.T, apply_ bool, err error) verdict {
	t.Helper()
	switch {
	case err != nil && apply_:
		t.Fatalf("check returned apply with error %v", err)
	case err != nil:
		if !errors.Is(err, catalog.ErrConflict) {
			t.Fatalf("got error %v; want ErrConflict", err)
		}
		return refuse
	case apply_:
		return apply
	}
	return noop
}

func size(n int64) *int64 { return &n }

func cur(state catalog.State, offset int64, size *int64) Current {
	return Current{State: state, Offset: offset, Size: size}
}

var (
	receiving  = catalog.StateReceiving
	complete   = catalog.StateComplete
	terminated = catalog.StateTerminated
	failed     = catalog.StateFailed
	rejected   = catalog.StateRejected
	expired    = catalog.StateExpired
)

func TestSetOffset(t *testing.T) {
	t.Parallel()
	tests := []struct {
		cur    Current
		offset int64
		want   verdict
	}{
		{cur(receiving, 10, size(100)), 11, apply},
		{cur(receiving, 10, size(100)), 100, apply},
		{cur(receiving, 10, size(100)), 10, noop},
		{cur(receiving, 10, size(100)), 9, refuse},
		{cur(receiving, 10, size(100)), 101, refuse},
		{cur(receiving, 10, nil), 1 << 50, apply},
		{cur(complete, 100, size(100)), 100, refuse},
		{cur(terminated, 10, size(100)), 10, refuse},
		{cur(failed, 10, size(100)), 20, refuse},
		{cur(expired, 10, size(100)), 10, refuse},
		{cur(expired, 10, nil), 20, refuse},
	}
	for _, tt := range tests {
		ok, err := SetOffset(tt.cur, tt.offset)
		if got := judge(t, ok, err); got != tt.want {
			t.Errorf("SetOffset(%+v, %d) = %v; want %v", tt.cur, tt.offset, got, tt.want)
		}
	}
}

func TestDeclareLength(t *testing.T) {
	t.Parallel()
	tests := []struct {
		cur  Current
		size int64
		want verdict
	}{
		{cur(receiving, 10, nil), 10, apply},
		{cur(receiving, 10, nil), 11, apply},
		{cur(receiving, 10, nil), 9, refuse},
		{cur(receiving, 10, size(20)), 20, noop},
		{cur(receiving, 10, size(20)), 21, refuse},
		{cur(complete, 20, size(20)), 20, noop},
		{cur(terminated, 0, nil), 5, refuse},
		{cur(failed, 0, nil), 5, refuse},
		{cur(expired, 0, nil), 5, refuse},
		{cur(expired, 0, size(5)), 6, refuse},
	}
	for _, tt := range tests {
		ok, err := DeclareLength(tt.cur, tt.size)
		if got := judge(t, ok, err); got != tt.want {
			t.Errorf("DeclareLength(%+v, %d) = %v; want %v", tt.cur, tt.size, got, tt.want)
		}
	}
}

func TestComplete(t *testing.T) {
	t.Parallel()
	tests := []struct {
		cur    Current
		offset int64
		want   verdict
	}{
		{cur(receiving, 10, size(20)), 20, apply},
		{cur(receiving, 0, size(0)), 0, apply},
		{cur(receiving, 10, size(20)), 19, refuse},
		{cur(receiving, 10, nil), 10, refuse},
		{cur(complete, 20, size(20)), 20, noop},
		{cur(complete, 20, size(20)), 19, refuse},
		{cur(terminated, 20, size(20)), 20, refuse},
		{cur(failed, 20, size(20)), 20, refuse},
		{cur(expired, 20, size(20)), 20, refuse},
	}
	for _, tt := range tests {
		ok, err := Complete(tt.cur, tt.offset)
		if got := judge(t, ok, err); got != tt.want {
			t.Errorf("Complete(%+v, %d) = %v; want %v", tt.cur, tt.offset, got, tt.want)
		}
	}
}

func TestSetState(t *testing.T) {
	t.Parallel()
	tests := []struct {
		from, to catalog.State
		want     verdict
	}{
		{receiving, terminated, apply},
		{receiving, failed, apply},
		{complete, terminated, apply},
		{complete, failed, refuse},
		{terminated, terminated, noop},
		{terminated, failed, refuse},
		{failed, failed, noop},
		{failed, terminated, refuse},
		{rejected, terminated, refuse},
		{rejected, failed, refuse},
		{expired, terminated, refuse},
		{expired, failed, refuse},
	}
	for _, tt := range tests {
		if err := StateArg(tt.to); err != nil {
			t.Fatalf("StateArg(%s) = %v", tt.to, err)
		}
		ok, err := SetState(Current{State: tt.from}, tt.to)
		if got := judge(t, ok, err); got != tt.want {
			t.Errorf("SetState(%s -> %s) = %v; want %v", tt.from, tt.to, got, tt.want)
		}
	}
	for _, to := range []catalog.State{receiving, complete, rejected, expired, "", "bogus"} {
		if err := StateArg(to); !errors.Is(err, catalog.ErrInvalid) {
			t.Errorf("StateArg(%q) = %v; want ErrInvalid", to, err)
		}
	}
}

func TestCommitOffset(t *testing.T) {
	t.Parallel()
	st := []byte("state")
	hashed := func(c Current, state []byte, at int64) Current { c.HashState, c.HashOffset = state, at; return c }
	tests := []struct {
		cur    Current
		offset int64
		state  []byte
		want   verdict
	}{
		{cur(receiving, 10, size(100)), 11, st, apply},
		{cur(receiving, 10, size(100)), 100, nil, apply},
		{cur(receiving, 10, size(100)), 9, st, refuse},
		{cur(receiving, 10, size(100)), 101, st, refuse},
		{cur(receiving, 10, nil), 1 << 50, st, apply},
		// The current offset: a no-op only with the stored state at it.
		{hashed(cur(receiving, 10, size(100)), st, 10), 10, st, noop},
		{hashed(cur(receiving, 10, size(100)), st, 10), 10, []byte("other"), apply},
		{hashed(cur(receiving, 10, size(100)), st, 10), 10, nil, apply},
		{cur(receiving, 10, size(100)), 10, nil, noop},
		{cur(receiving, 10, size(100)), 10, []byte{}, noop},
		// SetOffset moved the offset past the state: the same bytes at the
		// new offset are a new state.
		{hashed(cur(receiving, 10, size(100)), st, 4), 10, st, apply},
		{hashed(cur(complete, 100, size(100)), st, 100), 100, st, refuse},
		{cur(terminated, 10, size(100)), 10, nil, refuse},
		{cur(failed, 10, size(100)), 20, st, refuse},
		{hashed(cur(expired, 10, size(100)), st, 10), 10, st, refuse},
		{cur(expired, 10, size(100)), 20, st, refuse},
	}
	for _, tt := range tests {
		state, at := HashState(tt.offset, tt.state)
		ok, err := CommitOffset(tt.cur, tt.offset, state, at)
		if got := judge(t, ok, err); got != tt.want {
			t.Errorf("CommitOffset(%+v, %d, %q) = %v; want %v", tt.cur, tt.offset, tt.state, got, tt.want)
		}
	}
}

func TestHashState(t *testing.T) {
	t.Parallel()
	if s, at := HashState(7, []byte{}); s != nil || at != 0 {
		t.Errorf("HashState(7, empty) = %v, %d; want nil, 0", s, at)
	}
	if s, at := HashState(7, []byte{0}); len(s) != 1 || at != 7 {
		t.Errorf("HashState(7, [0]) = %v, %d; want [0], 7", s, at)
	}
}

const (
	digestA = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
	digestB = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
)

func TestDigestArg(t *testing.T) {
	t.Parallel()
	if err := DigestArg(digestA); err != nil {
		t.Errorf("DigestArg(valid) = %v", err)
	}
	for _, bad := range []string{"", "abc", strings.ToUpper(digestA), digestA + "0", digestA[:63] + "g", digestA[:63] + "\x00"} {
		if err := DigestArg(bad); !errors.Is(err, catalog.ErrInvalid) {
			t.Errorf("DigestArg(%q) = %v; want ErrInvalid", bad, err)
		}
	}
}

func TestFinalize(t *testing.T) {
	t.Parallel()
	digested := func(c Current, sha string, partial bool) Current {
		c.SHA256, c.IsPartial = sha, partial
		if sha != "" && c.State == complete {
			c.Blob = sha
		}
		return c
	}
	tests := []struct {
		name string
		cur  Current
		size int64
		want verdict
	}{
		{"receiving", cur(receiving, 10, size(20)), 20, apply},
		{"receiving at size", cur(receiving, 20, size(20)), 20, apply},
		{"empty", cur(receiving, 0, size(0)), 0, apply},
		{"other size", cur(receiving, 10, size(20)), 19, refuse},
		{"deferred", cur(receiving, 10, nil), 10, refuse},
		{"partial", digested(cur(receiving, 20, size(20)), "", true), 20, refuse},
		{"complete partial", digested(cur(complete, 20, size(20)), "", true), 20, refuse},
		{"complete without digest", cur(complete, 20, size(20)), 20, apply},
		{"complete without digest, other size", cur(complete, 20, size(20)), 21, refuse},
		{"retry", digested(cur(complete, 20, size(20)), digestA, false), 20, noop},
		{"retry, other size", digested(cur(complete, 20, size(20)), digestA, false), 21, refuse},
		{"other digest", digested(cur(complete, 20, size(20)), digestB, false), 20, refuse},
		{"released", digested(cur(terminated, 20, size(20)), digestA, false), 20, refuse},
		{"terminated", cur(terminated, 20, size(20)), 20, refuse},
		{"failed", cur(failed, 20, size(20)), 20, refuse},
		{"expired", cur(expired, 20, size(20)), 20, refuse},
	}
	for _, tt := range tests {
		ok, err := Finalize(tt.cur, tt.size, digestA)
		if got := judge(t, ok, err); got != tt.want {
			t.Errorf("%s: Finalize(%+v, %d) = %v; want %v", tt.name, tt.cur, tt.size, got, tt.want)
		}
	}
}

func TestRelease(t *testing.T) {
	t.Parallel()
	linked := cur(complete, 5, size(5))
	linked.SHA256, linked.Blob = digestA, digestA
	tests := []struct {
		cur  Current
		want verdict
	}{
		{linked, apply},
		{cur(complete, 5, size(5)), apply},
		{cur(receiving, 1, size(5)), apply},
		{cur(terminated, 5, size(5)), noop},
		{cur(failed, 5, size(5)), refuse},
		{cur(rejected, 5, size(5)), refuse},
		{cur(expired, 5, size(5)), refuse},
	}
	for _, tt := range tests {
		ok, err := LetGo(tt.cur, terminated)
		if got := judge(t, ok, err); got != tt.want {
			t.Errorf("LetGo(%+v, terminated) = %v; want %v", tt.cur, got, tt.want)
		}
	}
	// SetState must not drop a reference behind the count's back.
	ok, err := SetState(linked, terminated)
	if got := judge(t, ok, err); got != refuse {
		t.Errorf("SetState(terminated) on a session with a blob = %v; want refuse", got)
	}
}

func TestCreateDigestFields(t *testing.T) {
	t.Parallel()
	for _, s := range []catalog.Session{
		{ID: "a", HashState: []byte{1}},
		{ID: "a", HashOffset: 1, Offset: 1},
		{ID: "a", SHA256: digestA},
		{ID: "a", BlobSHA256: digestA},
		{ID: "a", ContentType: "text/plain"},
	} {
		if _, err := Create(s); !errors.Is(err, catalog.ErrInvalid) {
			t.Errorf("Create(%+v) = %v; want ErrInvalid", s, err)
		}
	}
}

func TestCreateDeduped(t *testing.T) {
	t.Parallel()
	got, err := CreateDeduped(catalog.Session{ID: "a", Size: size(5)}, digestA)
	if err != nil {
		t.Fatalf("CreateDeduped = %v", err)
	}
	if got.State != complete || got.Offset != 5 || got.SHA256 != digestA || got.BlobSHA256 != digestA || got.Metadata == nil {
		t.Errorf("CreateDeduped = %+v; want complete at 5 on the blob, defaults filled in", got)
	}
	if _, err := CreateDeduped(catalog.Session{ID: "a", Size: size(5), State: complete, Offset: 5}, digestA); err != nil {
		t.Errorf("CreateDeduped(complete at its size) = %v; want nil", err)
	}
	for _, tt := range []struct {
		s   catalog.Session
		sha string
	}{
		{catalog.Session{ID: "a", Size: size(5)}, "nothex"},
		{catalog.Session{ID: "a"}, digestA},
		{catalog.Session{ID: "a", Size: size(5), State: receiving}, digestA},
		{catalog.Session{ID: "a", Size: size(5), Offset: 3}, digestA},
		{catalog.Session{ID: "a", Size: size(5), IsPartial: true}, digestA},
		{catalog.Session{ID: "a", Size: size(5), IsFinal: true, PartialIDs: []string{"p"}}, digestA},
		{catalog.Session{ID: "a", Size: size(5), SHA256: digestA}, digestA},
		{catalog.Session{ID: "", Size: size(5)}, digestA},
	} {
		if _, err := CreateDeduped(tt.s, tt.sha); !errors.Is(err, catalog.ErrInvalid) {
			t.Errorf("CreateDeduped(%+v, %q) = %v; want ErrInvalid", tt.s, tt.sha, err)
		}
	}
}

func TestApply(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	errDB := errors.New("db down")
	cur := func(context.Context) (Current, error) { return Current{State: receiving}, nil }
	changed := func(context.Context) (bool, error) { return true, nil }
	missed := func(context.Context) (bool, error) { return false, nil }

	if err := Apply(ctx, changed, nil, nil); err != nil {
		t.Errorf("changed row: got %v; want nil", err)
	}
	if err := Apply(ctx, func(context.Context) (bool, error) { return false, errDB }, cur, nil); !errors.Is(err, errDB) {
		t.Errorf("update error: got %v; want %v", err, errDB)
	}
	if err := Apply(ctx, missed, func(context.Context) (Current, error) { return Current{}, errDB }, nil); !errors.Is(err, errDB) {
		t.Errorf("read error: got %v; want %v", err, errDB)
	}
	noopCheck := func(Current) (bool, error) { return false, nil }
	if err := Apply(ctx, missed, cur, noopCheck); err != nil {
		t.Errorf("no-op: got %v; want nil", err)
	}
	updates := 0
	disagree := func(context.Context) (bool, error) { updates++; return false, nil }
	if err := Apply(ctx, disagree, cur, func(Current) (bool, error) { return true, nil }); err == nil {
		t.Errorf("SQL and rule disagree: got nil error; want one")
	}
	if updates != 3 {
		t.Errorf("updates tried = %d; want 3", updates)
	}
}

func TestListLimit(t *testing.T) {
	t.Parallel()
	if n, err := ListLimit(catalog.ListOptions{}); err != nil || n != DefaultListLimit {
		t.Errorf("ListLimit(zero) = %d, %v; want %d, nil", n, err, DefaultListLimit)
	}
	if n, err := ListLimit(catalog.ListOptions{Limit: 7}); err != nil || n != 7 {
		t.Errorf("ListLimit(7) = %d, %v; want 7, nil", n, err)
	}
	for _, opts := range []catalog.ListOptions{{Limit: -1}, {State: "bogus"}, {BeforeID: "x"}} {
		if _, err := ListLimit(opts); !errors.Is(err, catalog.ErrInvalid) {
			t.Errorf("ListLimit(%+v) = %v; want ErrInvalid", opts, err)
		}
	}
}

func TestReject(t *testing.T) {
	t.Parallel()
	linked := cur(complete, 5, size(5))
	linked.SHA256, linked.Blob = digestA, digestA
	tests := []struct {
		cur  Current
		want verdict
	}{
		{linked, apply},
		{cur(complete, 5, size(5)), apply},
		{cur(receiving, 5, size(5)), apply},
		{cur(receiving, 2, nil), apply},
		{cur(rejected, 5, size(5)), noop},
		{cur(terminated, 5, size(5)), refuse},
		{cur(expired, 5, size(5)), refuse},
		{cur(failed, 5, size(5)), refuse},
	}
	for _, tt := range tests {
		ok, err := LetGo(tt.cur, rejected)
		if got := judge(t, ok, err); got != tt.want {
			t.Errorf("LetGo(%+v, rejected) = %v; want %v", tt.cur, got, tt.want)
		}
	}
}

func TestContentTypeArg(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		ct    string
		valid bool
	}{
		{"application/pdf", true},
		{"text/plain; charset=utf-8", true},
		{`text/plain; charset="utf-8"`, true},
		{"image/svg+xml", true},
		{"application/vnd.ms-excel", true},
		{strings.Repeat("a", 250) + "/bbbb", true}, // 255 bytes
		{strings.Repeat("a", 250) + "/bbbbb", false},
		{"", false},
		{"text", false}, // a disposition, not a media type
		{"/plain", false},
		{"text/", false},
		{"text/plain/x", false},
		{"text /plain", false},
		{" text/plain", false},
		{"text/plain ", false},
		{"text/plain\t", false},
		{"tëxt/plain", false},
		{"text/pl\x00ain", false},
		{"text/plain; charset", false},
		{"text/plain;;", false},
	} {
		err := ContentTypeArg(tt.ct)
		if tt.valid && err != nil {
			t.Errorf("ContentTypeArg(%q) = %v; want nil", tt.ct, err)
		}
		if !tt.valid && !errors.Is(err, catalog.ErrInvalid) {
			t.Errorf("ContentTypeArg(%q) = %v; want ErrInvalid", tt.ct, err)
		}
	}
}

func TestContentType(t *testing.T) {
	t.Parallel()
	typed := func(state catalog.State, ct string) Current { return Current{State: state, ContentType: ct} }
	tests := []struct {
		cur  Current
		ct   string
		want verdict
	}{
		{typed(receiving, ""), "image/png", apply},
		{typed(receiving, "image/png"), "image/png", noop},
		{typed(receiving, "image/png"), "image/gif", apply},
		{typed(complete, ""), "image/png", apply},
		{typed(complete, "image/png"), "image/png", noop},
		{typed(terminated, ""), "image/png", refuse},
		{typed(failed, ""), "image/png", refuse},
		{typed(rejected, "image/png"), "image/png", refuse},
		{typed(expired, ""), "image/png", refuse},
	}
	for _, tt := range tests {
		ok, err := ContentType(tt.cur, tt.ct)
		if got := judge(t, ok, err); got != tt.want {
			t.Errorf("ContentType(%+v, %q) = %v; want %v", tt.cur, tt.ct, got, tt.want)
		}
	}
}

func TestNewEvent(t *testing.T) {
	t.Parallel()
	created := time.Date(2024, 1, 2, 3, 4, 5, 6000, time.UTC)
	updated := created.Add(time.Second)
	s := catalog.Session{ID: "a", Owner: "alice", Size: size(5), Offset: 5, State: complete,
		SHA256: digestA, BlobSHA256: digestA, ContentType: "image/png",
		Metadata: map[string]string{"filename": "a.png"}, Storage: map[string]string{"Path": "/a"},
		CreatedAt: created, UpdatedAt: updated, CompletedAt: &updated}
	e, err := NewEvent(catalog.EventCompleted, s, map[string]string{"Path": "/blob"})
	if err != nil {
		t.Fatal(err)
	}
	if len(e.ID) != 32 || strings.Trim(e.ID, "0123456789abcdef") != "" {
		t.Errorf("ID = %q; want 32 lowercase hex digits", e.ID)
	}
	if other, _ := NewEvent(catalog.EventCompleted, s, map[string]string{}); other.ID == e.ID {
		t.Errorf("two events share the id %s", e.ID)
	}
	if e.Type != catalog.EventCompleted || e.UploadID != "a" || !e.OccurredAt.Equal(updated) || !e.NextAttemptAt.Equal(updated) {
		t.Errorf("event = %+v; want upload.completed of a, at and due at %v", e, updated)
	}
	const want = `{"id":"a","owner":"alice","size":5,"offset":5,"state":"complete",` +
		`"sha256":"` + digestA + `","content_type":"image/png","metadata":{"filename":"a.png"},` +
		`"storage":{"Path":"/a"},"blob_storage":{"Path":"/blob"},` +
		`"created_at":"2024-01-02T03:04:05.000006Z","completed_at":"2024-01-02T03:04:06.000006Z"}`
	if string(e.Payload) != want {
		t.Errorf("payload:\n%s\nwant\n%s", e.Payload, want)
	}

	// Unknowns are null: a deferred size, no completion, no blob.
	s = catalog.Session{ID: "b", State: receiving, Metadata: map[string]string{}, Storage: map[string]string{},
		CreatedAt: created, UpdatedAt: created}
	e, err = NewEvent(catalog.EventCreated, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	var snap map[string]any
	if err := json.Unmarshal(e.Payload, &snap); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"size", "completed_at", "blob_storage"} {
		if v, ok := snap[k]; !ok || v != nil {
			t.Errorf("payload %s = %v (present %v); want null", k, v, ok)
		}
	}
	// A snapshot whose blob storage does not match its reference is a bug.
	if _, err := NewEvent(catalog.EventCreated, s, map[string]string{}); err == nil {
		t.Error("NewEvent with blob storage for a session without a blob = nil; want an error")
	}
}

func TestLastError(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		"connection refused",
		"",
		"bad \xff byte and \x00 NUL",
		strings.Repeat("x", 5000),
		strings.Repeat("x", MaxLastError-1) + "é", // the rune would straddle the cut
	} {
		got := LastError(in)
		if !utf8.ValidString(got) || strings.ContainsRune(got, 0) || len(got) > MaxLastError {
			t.Errorf("LastError(%.20q...) = %.20q... (%d bytes); want valid UTF-8 without NUL, at most %d bytes", in, got, len(got), MaxLastError)
		}
		if utf8.ValidString(in) && !strings.ContainsRune(in, 0) && len(in) <= MaxLastError && got != in {
			t.Errorf("LastError(%q) = %q; want it unchanged", in, got)
		}
	}
}

func TestOutboxArgs(t *testing.T) {
	t.Parallel()
	now := time.Date(2024, 1, 1, 0, 0, 0, 1500, time.UTC)
	if until, err := Claim(now, 1, time.Minute); err != nil || !until.Equal(time.Date(2024, 1, 1, 0, 1, 0, 1000, time.UTC)) {
		t.Errorf("Claim = %v, %v; want the lease's end to the microsecond", until, err)
	}
	for _, bad := range []struct {
		limit int
		lease time.Duration
	}{{0, time.Minute}, {-1, time.Minute}, {1, 0}, {1, -1}} {
		if _, err := Claim(now, bad.limit, bad.lease); !errors.Is(err, catalog.ErrInvalid) {
			t.Errorf("Claim(%d, %v) = %v; want ErrInvalid", bad.limit, bad.lease, err)
		}
	}
	if n, err := EventLimit(catalog.EventFilter{}); err != nil || n != DefaultEventLimit {
		t.Errorf("EventLimit(zero) = %d, %v; want %d", n, err, DefaultEventLimit)
	}
	for _, f := range []catalog.EventFilter{{Limit: -1}, {Failed: true, Pending: true}} {
		if _, err := EventLimit(f); !errors.Is(err, catalog.ErrInvalid) {
			t.Errorf("EventLimit(%+v) = %v; want ErrInvalid", f, err)
		}
	}
	if err := AttemptsArg(-1); !errors.Is(err, catalog.ErrInvalid) {
		t.Errorf("AttemptsArg(-1) = %v; want ErrInvalid", err)
	}
	for _, tt := range []struct {
		exists, deliveredOK bool
		want                error
	}{
		{false, false, catalog.ErrNotFound},
		{false, true, catalog.ErrNotFound},
		{true, false, catalog.ErrConflict},
		{true, true, nil},
	} {
		err := EventFound(tt.exists, tt.deliveredOK)
		if !errors.Is(err, tt.want) {
			t.Errorf("EventFound(%v, %v) = %v; want %v", tt.exists, tt.deliveredOK, err, tt.want)
		}
	}
}

func TestExpiredLimit(t *testing.T) {
	t.Parallel()
	if err := ExpiredLimit(1); err != nil {
		t.Errorf("ExpiredLimit(1) = %v; want nil", err)
	}
	for _, n := range []int{0, -1} {
		if err := ExpiredLimit(n); !errors.Is(err, catalog.ErrInvalid) {
			t.Errorf("ExpiredLimit(%d) = %v; want ErrInvalid", n, err)
		}
	}
}

func TestKnownBatches(t *testing.T) {
	t.Parallel()
	if got := KnownBatches(nil); len(got) != 0 {
		t.Errorf("KnownBatches(nil) = %q; want none", got)
	}
	// Ids no session can have are dropped, repeats looked up once.
	if got := KnownBatches([]string{"", "a\x00", "\xff", "a", "b", "a"}); len(got) != 1 || !slices.Equal(got[0], []string{"a", "b"}) {
		t.Errorf("KnownBatches = %q; want [[a b]]", got)
	}
	var ids []string
	for i := range 2*KnownBatch + 1 {
		ids = append(ids, fmt.Sprint(i))
	}
	got := KnownBatches(ids)
	if len(got) != 3 || len(got[0]) != KnownBatch || len(got[1]) != KnownBatch || len(got[2]) != 1 {
		t.Fatalf("KnownBatches(%d ids) = batches of %d, ...; want %d, %d, 1", len(ids), len(got[0]), KnownBatch, KnownBatch)
	}
	if !slices.Equal(slices.Concat(got...), ids) {
		t.Errorf("KnownBatches lost or reordered ids")
	}
}
