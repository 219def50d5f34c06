package catalogtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/intake-dev/intake/pkg/catalog"
)

const (
	receiving  = catalog.StateReceiving
	complete   = catalog.StateComplete
	terminated = catalog.StateTerminated
	failed     = catalog.StateFailed
	rejected   = catalog.StateRejected
	expired    = catalog.StateExpired
)

// Run runs the suite. newCatalog must return an empty, migrated catalog and
// close it in t.Cleanup; Run calls it once for the subtests that share a
// catalog (each uses its own ids, and they run in parallel) and once more
// for each subtest that must see a catalog to itself (List, the outbox,
// Close).
func Run(t *testing.T, newCatalog func(t *testing.T) catalog.Catalog) {
	shared := newCatalog(t)
	withShared := func(f func(*testing.T, catalog.Catalog)) func(*testing.T) {
		return func(t *testing.T) {
			t.Parallel()
			f(t, shared)
		}
	}
	withOwn := func(f func(*testing.T, catalog.Catalog)) func(*testing.T) {
		return func(t *testing.T) {
			t.Parallel()
			f(t, newCatalog(t))
		}
	}

	t.Run("CreateGetAllFields", withShared(testCreateGetAllFields))
	t.Run("CreateDefaults", withShared(testCreateDefaults))
	t.Run("DeferredAndZeroSize", withShared(testDeferredAndZeroSize))
	t.Run("PartialAndFinal", withShared(testPartialAndFinal))
	t.Run("CreateComplete", withShared(testCreateComplete))
	t.Run("CreateInvalid", withShared(testCreateInvalid))
	t.Run("CreateExists", withShared(testCreateExists))
	t.Run("NotFound", withShared(testNotFound))
	t.Run("SetOffset", withShared(testSetOffset))
	t.Run("SetOffsetTerminal", withShared(testSetOffsetTerminal))
	t.Run("CommitOffset", withShared(testCommitOffset))
	t.Run("CommitOffsetTerminal", withShared(testCommitOffsetTerminal))
	t.Run("SetOffsetKeepsHashState", withShared(testSetOffsetKeepsHashState))
	t.Run("UpdatedAt", withShared(testUpdatedAt))
	t.Run("DeclareLength", withShared(testDeclareLength))
	t.Run("Complete", withShared(testComplete))
	t.Run("CompleteConflicts", withShared(testCompleteConflicts))
	t.Run("SetState", withShared(testSetState))
	t.Run("Finalize", withShared(testFinalize))
	t.Run("FinalizeStates", withShared(testFinalizeStates))
	t.Run("FinalizeInvalid", withShared(testFinalizeInvalid))
	t.Run("CreateDeduped", withShared(testCreateDeduped))
	t.Run("CreateDedupedRefused", withShared(testCreateDedupedRefused))
	t.Run("Release", withShared(testRelease))
	t.Run("ReleaseStates", withShared(testReleaseStates))
	t.Run("BlobNotFound", withShared(testBlobNotFound))
	t.Run("FindBlob", withShared(testFindBlob))
	t.Run("FinalizeContentType", withShared(testFinalizeContentType))
	t.Run("FinalizeContentTypeInvalid", withShared(testFinalizeContentTypeInvalid))
	t.Run("Reject", withShared(testReject))
	t.Run("RejectStates", withShared(testRejectStates))
	t.Run("ExpireStates", withShared(testExpireStates))
	t.Run("Known", withShared(testKnown))
	t.Run("OwnerUsage", withShared(testOwnerUsage))
	t.Run("ConcurrentSetOffset", withShared(testConcurrentSetOffset))
	t.Run("ConcurrentCompleteAndFail", withShared(testConcurrentCompleteAndFail))
	t.Run("ConcurrentFinalizeAndRelease", withShared(testConcurrentFinalizeAndRelease))
	t.Run("ReleaseRacesFinalize", withShared(testReleaseRacesFinalize))
	t.Run("ReleaseRacesCreateDeduped", withShared(testReleaseRacesCreateDeduped))
	t.Run("ExpireRacesCommitOffset", withShared(testExpireRacesCommitOffset))
	t.Run("CanceledContext", withShared(testCanceledContext))
	t.Run("Ping", withShared(testPing))
	t.Run("Migrations", withShared(testMigrations))
	t.Run("ListEmpty", withOwn(testListEmpty))
	t.Run("ListFilters", withOwn(testListFilters))
	t.Run("ListPagination", withOwn(testListPagination))
	t.Run("ListDefaultLimit", withOwn(testListDefaultLimit))
	t.Run("ListInvalid", withOwn(testListInvalid))
	t.Run("TransitionEvents", withOwn(testTransitionEvents))
	t.Run("ClaimEvents", withOwn(testClaimEvents))
	t.Run("ClaimEventsConcurrent", withOwn(testClaimEventsConcurrent))
	t.Run("EventDelivery", withOwn(testEventDelivery))
	t.Run("ListEvents", withOwn(testListEvents))
	t.Run("ListExpired", withOwn(testListExpired))
	t.Run("Expire", withOwn(testExpire))
	t.Run("ExpireLosesToCommitOffset", withOwn(testExpireLosesToCommitOffset))
	t.Run("PurgeEvents", withOwn(testPurgeEvents))
	t.Run("Close", withOwn(testClose))
}

// --- helpers ---

func size(n int64) *int64 { return &n }

// id returns an id unique to the running subtest.
func id(t *testing.T, suffix string) string { return t.Name() + "/" + suffix }

// micro is what the catalog is documented to keep of a time.
func micro(t time.Time) time.Time { return t.Truncate(time.Microsecond).UTC() }

func create(t *testing.T, c catalog.Catalog, s catalog.Session) catalog.Session {
	t.Helper()
	if err := c.Create(t.Context(), s); err != nil {
		t.Fatalf("Create(%s) = %v; want nil", s.ID, err)
	}
	return get(t, c, s.ID)
}

func get(t *testing.T, c catalog.Catalog, id string) catalog.Session {
	t.Helper()
	s, err := c.Get(t.Context(), id)
	if err != nil {
		t.Fatalf("Get(%s) = %v; want nil", id, err)
	}
	return s
}

// wantErr checks err against a sentinel; want nil means success.
func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	switch {
	case want == nil && err != nil:
		t.Errorf("%s = %v; want nil", what, err)
	case want != nil && !errors.Is(err, want):
		t.Errorf("%s = %v; want %v", what, err, want)
	}
}

func fmtSize(p *int64) string {
	if p == nil {
		return "nil"
	}
	return fmt.Sprint(*p)
}

func fmtTime(p *time.Time) string {
	if p == nil {
		return "nil"
	}
	return p.Format(time.RFC3339Nano)
}

// diff lists the fields where got is not want. Maps and slices compare by
// content but also by nil-ness, which the catalog documents.
func diff(got, want catalog.Session) []string {
	var out []string
	add := func(field string, g, w any) {
		out = append(out, fmt.Sprintf("%s: got %v; want %v", field, g, w))
	}
	if got.ID != want.ID {
		add("ID", got.ID, want.ID)
	}
	if got.Owner != want.Owner {
		add("Owner", got.Owner, want.Owner)
	}
	if fmtSize(got.Size) != fmtSize(want.Size) {
		add("Size", fmtSize(got.Size), fmtSize(want.Size))
	}
	if got.Offset != want.Offset {
		add("Offset", got.Offset, want.Offset)
	}
	if got.State != want.State {
		add("State", got.State, want.State)
	}
	if (got.Metadata == nil) != (want.Metadata == nil) || !mapsEqual(got.Metadata, want.Metadata) {
		add("Metadata", fmt.Sprintf("%#v", got.Metadata), fmt.Sprintf("%#v", want.Metadata))
	}
	if got.IsPartial != want.IsPartial {
		add("IsPartial", got.IsPartial, want.IsPartial)
	}
	if got.IsFinal != want.IsFinal {
		add("IsFinal", got.IsFinal, want.IsFinal)
	}
	if (got.PartialIDs == nil) != (want.PartialIDs == nil) || !slices.Equal(got.PartialIDs, want.PartialIDs) {
		add("PartialIDs", fmt.Sprintf("%#v", got.PartialIDs), fmt.Sprintf("%#v", want.PartialIDs))
	}
	if (got.Storage == nil) != (want.Storage == nil) || !mapsEqual(got.Storage, want.Storage) {
		add("Storage", fmt.Sprintf("%#v", got.Storage), fmt.Sprintf("%#v", want.Storage))
	}
	if (got.HashState == nil) != (want.HashState == nil) || !bytes.Equal(got.HashState, want.HashState) {
		add("HashState", fmt.Sprintf("%#v", got.HashState), fmt.Sprintf("%#v", want.HashState))
	}
	if got.HashOffset != want.HashOffset {
		add("HashOffset", got.HashOffset, want.HashOffset)
	}
	if got.SHA256 != want.SHA256 {
		add("SHA256", got.SHA256, want.SHA256)
	}
	if got.BlobSHA256 != want.BlobSHA256 {
		add("BlobSHA256", got.BlobSHA256, want.BlobSHA256)
	}
	if got.ContentType != want.ContentType {
		add("ContentType", got.ContentType, want.ContentType)
	}
	if !got.CreatedAt.Equal(want.CreatedAt) {
		add("CreatedAt", got.CreatedAt.Format(time.RFC3339Nano), want.CreatedAt.Format(time.RFC3339Nano))
	}
	if !got.UpdatedAt.Equal(want.UpdatedAt) {
		add("UpdatedAt", got.UpdatedAt.Format(time.RFC3339Nano), want.UpdatedAt.Format(time.RFC3339Nano))
	}
	if (got.CompletedAt == nil) != (want.CompletedAt == nil) ||
		got.CompletedAt != nil && !got.CompletedAt.Equal(*want.CompletedAt) {
		add("CompletedAt", fmtTime(got.CompletedAt), fmtTime(want.CompletedAt))
	}
	for _, tm := range []struct {
		name string
		t    *time.Time
	}{{"CreatedAt", &got.CreatedAt}, {"UpdatedAt", &got.UpdatedAt}, {"CompletedAt", got.CompletedAt}} {
		if tm.t != nil && tm.t.Location() != time.UTC {
			add(tm.name+" location", tm.t.Location(), time.UTC)
		}
	}
	return out
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func checkSession(t *testing.T, got, want catalog.Session) {
	t.Helper()
	if d := diff(got, want); len(d) > 0 {
		t.Errorf("session %s:\n\t%s", want.ID, strings.Join(d, "\n\t"))
	}
}

// --- create and get ---

func testCreateGetAllFields(t *testing.T, c catalog.Catalog) {
	zone := time.FixedZone("UTC+5:30", 5*3600+1800)
	createdAt := time.Date(2024, 2, 29, 23, 59, 58, 123456789, zone)
	in := catalog.Session{
		ID:     id(t, "upload"),
		Owner:  "alice@example.com",
		Size:   size(1<<40 + 3),
		Offset: 12345,
		State:  receiving,
		Metadata: map[string]string{
			"filename":  "résumé 📄.pdf",
			"日本語":       "ファイル名",
			"empty":     "",
			`quote"key`: "line\nbreak\ttab \\ back\u2028sep",
			"filetype":  "application/pdf",
			"emoji 👩‍💻": "🏳️‍🌈",
		},
		Storage:   map[string]string{"Type": "s3store", "Bucket": "b", "Key": "prefix/abc+def"},
		CreatedAt: createdAt,
		UpdatedAt: createdAt.Add(1500 * time.Millisecond),
	}
	want := in
	want.CreatedAt = micro(in.CreatedAt)
	want.UpdatedAt = micro(in.UpdatedAt)

	checkSession(t, create(t, c, in), want)
}

func testCreateDefaults(t *testing.T, c catalog.Catalog) {
	// Nil and empty collections read back the same way: maps non-nil and
	// empty, PartialIDs nil.
	for _, tt := range []struct {
		name string
		in   catalog.Session
	}{
		{"nil", catalog.Session{}},
		{"empty", catalog.Session{Metadata: map[string]string{}, Storage: map[string]string{}, PartialIDs: []string{}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in
			in.ID = id(t, "upload")
			before := time.Now()
			got := create(t, c, in)
			after := time.Now()

			want := catalog.Session{
				ID: in.ID, State: receiving,
				Metadata: map[string]string{}, Storage: map[string]string{},
				CreatedAt: got.CreatedAt, UpdatedAt: got.CreatedAt,
			}
			checkSession(t, got, want)
			// The catalog's clock may be a database server's: allow skew.
			const skew = time.Minute
			if got.CreatedAt.Before(before.Add(-skew)) || got.CreatedAt.After(after.Add(skew)) {
				t.Errorf("CreatedAt = %v; want about %v", got.CreatedAt, before)
			}
			if !got.SizeDeferred() {
				t.Errorf("SizeDeferred() = false; want true")
			}
		})
	}
}

func testDeferredAndZeroSize(t *testing.T, c catalog.Catalog) {
	deferred := create(t, c, catalog.Session{ID: id(t, "deferred"), Offset: 7})
	if deferred.Size != nil || deferred.Offset != 7 {
		t.Errorf("deferred: Size = %s, Offset = %d; want nil, 7", fmtSize(deferred.Size), deferred.Offset)
	}
	zero := create(t, c, catalog.Session{ID: id(t, "zero"), Size: size(0)})
	if zero.Size == nil || *zero.Size != 0 || zero.SizeDeferred() {
		t.Errorf("zero: Size = %s; want 0, not deferred", fmtSize(zero.Size))
	}
}

func testPartialAndFinal(t *testing.T, c catalog.Catalog) {
	p1 := create(t, c, catalog.Session{ID: id(t, "p1"), Size: size(3), IsPartial: true})
	if !p1.IsPartial || p1.IsFinal || p1.PartialIDs != nil {
		t.Errorf("partial: IsPartial %v, IsFinal %v, PartialIDs %#v; want true, false, nil", p1.IsPartial, p1.IsFinal, p1.PartialIDs)
	}
	// Order matters: the final upload is the partials concatenated in order.
	parts := []string{id(t, "z"), id(t, "p1"), id(t, "a"), id(t, "p1")}
	final := create(t, c, catalog.Session{ID: id(t, "final"), Size: size(12), IsFinal: true, PartialIDs: parts})
	if !final.IsFinal || final.IsPartial || !slices.Equal(final.PartialIDs, parts) {
		t.Errorf("final: IsFinal %v, IsPartial %v, PartialIDs %q; want true, false, %q", final.IsFinal, final.IsPartial, final.PartialIDs, parts)
	}
}

func testCreateComplete(t *testing.T, c catalog.Catalog) {
	got := create(t, c, catalog.Session{ID: id(t, "implicit"), State: complete, Size: size(5), Offset: 5})
	if got.CompletedAt == nil {
		t.Fatalf("CompletedAt = nil; want set for a session created complete")
	}
	if got.CompletedAt.Before(got.CreatedAt) || got.CompletedAt.After(got.UpdatedAt) {
		t.Errorf("CompletedAt = %v; want between CreatedAt %v and UpdatedAt %v", got.CompletedAt, got.CreatedAt, got.UpdatedAt)
	}

	created := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	done := created.Add(time.Hour)
	got = create(t, c, catalog.Session{ID: id(t, "explicit"), State: complete, Size: size(5), Offset: 5,
		CreatedAt: created, UpdatedAt: done, CompletedAt: &done})
	if got.CompletedAt == nil || !got.CompletedAt.Equal(done) {
		t.Errorf("CompletedAt = %s; want %v", fmtTime(got.CompletedAt), done)
	}
}

func testCreateInvalid(t *testing.T, c catalog.Catalog) {
	now := time.Now()
	tests := []struct {
		name string
		s    catalog.Session
	}{
		{"empty id", catalog.Session{}},
		{"unknown state", catalog.Session{State: "paused"}},
		{"negative offset", catalog.Session{Offset: -1}},
		{"negative size", catalog.Session{Size: size(-1)}},
		{"offset past size", catalog.Session{Size: size(3), Offset: 4}},
		{"complete deferred", catalog.Session{State: complete, Offset: 3}},
		{"complete short", catalog.Session{State: complete, Size: size(3), Offset: 2}},
		{"partial and final", catalog.Session{IsPartial: true, IsFinal: true, PartialIDs: []string{"p"}}},
		{"final without partials", catalog.Session{IsFinal: true}},
		{"partials without final", catalog.Session{PartialIDs: []string{"p"}}},
		{"metadata not utf8", catalog.Session{Metadata: map[string]string{"name": "\xff\xfe"}}},
		{"metadata nul", catalog.Session{Metadata: map[string]string{"name": "a\x00b"}}},
		{"metadata key not utf8", catalog.Session{Metadata: map[string]string{"\xc3": "v"}}},
		{"storage nul", catalog.Session{Storage: map[string]string{"Path": "\x00"}}},
		{"owner not utf8", catalog.Session{Owner: "\xff"}},
		{"updated before created", catalog.Session{CreatedAt: now, UpdatedAt: now.Add(-time.Hour)}},
		// Only CommitOffset, Finalize and CreateDeduped write these.
		{"hash state", catalog.Session{HashState: []byte{1}}},
		{"hash offset", catalog.Session{Offset: 3, HashOffset: 3}},
		{"sha256", catalog.Session{State: complete, Size: size(3), Offset: 3, SHA256: emptyDigest}},
		{"blob", catalog.Session{State: complete, Size: size(3), Offset: 3, SHA256: emptyDigest, BlobSHA256: emptyDigest}},
		// Only Finalize and CreateDeduped write it.
		{"content type", catalog.Session{ContentType: "text/plain"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.s
			if tt.name != "empty id" {
				s.ID = id(t, "upload")
			}
			wantErr(t, "Create", c.Create(t.Context(), s), catalog.ErrInvalid)
			if s.ID != "" {
				_, err := c.Get(t.Context(), s.ID)
				wantErr(t, "Get after a refused Create", err, catalog.ErrNotFound)
			}
		})
	}
}

func testCreateExists(t *testing.T, c catalog.Catalog) {
	first := create(t, c, catalog.Session{ID: id(t, "upload"), Owner: "alice", Size: size(10)})
	err := c.Create(t.Context(), catalog.Session{ID: first.ID, Owner: "mallory", Size: size(99)})
	wantErr(t, "second Create", err, catalog.ErrExists)
	checkSession(t, get(t, c, first.ID), first)
}

func testNotFound(t *testing.T, c catalog.Catalog) {
	ctx := t.Context()
	missing := id(t, "missing")
	_, err := c.Get(ctx, missing)
	wantErr(t, "Get", err, catalog.ErrNotFound)
	wantErr(t, "SetOffset", c.SetOffset(ctx, missing, 1), catalog.ErrNotFound)
	wantErr(t, "SetOffset(0)", c.SetOffset(ctx, missing, 0), catalog.ErrNotFound)
	wantErr(t, "DeclareLength", c.DeclareLength(ctx, missing, 1), catalog.ErrNotFound)
	wantErr(t, "Complete", c.Complete(ctx, missing, 0), catalog.ErrNotFound)
	wantErr(t, "SetState(terminated)", c.SetState(ctx, missing, terminated), catalog.ErrNotFound)
	wantErr(t, "SetState(failed)", c.SetState(ctx, missing, failed), catalog.ErrNotFound)
	wantErr(t, "CommitOffset", c.CommitOffset(ctx, missing, 1, []byte{1}), catalog.ErrNotFound)
	_, _, err = c.Finalize(ctx, missing, 0, emptyDigest, "")
	wantErr(t, "Finalize", err, catalog.ErrNotFound)
	_, _, err = c.Release(ctx, missing)
	wantErr(t, "Release", err, catalog.ErrNotFound)
	_, _, err = c.Finalize(ctx, missing, 0, emptyDigest, "text/plain")
	wantErr(t, "Finalize with a type", err, catalog.ErrNotFound)
	_, _, err = c.Reject(ctx, missing)
	wantErr(t, "Reject", err, catalog.ErrNotFound)
	_, err = c.Expire(ctx, missing, time.Now().Add(time.Hour))
	wantErr(t, "Expire", err, catalog.ErrNotFound)
	// Ids no session can have (Create refuses them) are not found, rather
	// than a driver error about their encoding.
	for _, bad := range []string{"", "abc\x00def", "\xff\xfe"} {
		_, err := c.Get(ctx, bad)
		wantErr(t, fmt.Sprintf("Get(%q)", bad), err, catalog.ErrNotFound)
		wantErr(t, fmt.Sprintf("SetOffset(%q)", bad), c.SetOffset(ctx, bad, 1), catalog.ErrNotFound)
		wantErr(t, fmt.Sprintf("DeclareLength(%q)", bad), c.DeclareLength(ctx, bad, 1), catalog.ErrNotFound)
		wantErr(t, fmt.Sprintf("Complete(%q)", bad), c.Complete(ctx, bad, 0), catalog.ErrNotFound)
		wantErr(t, fmt.Sprintf("SetState(%q)", bad), c.SetState(ctx, bad, terminated), catalog.ErrNotFound)
		wantErr(t, fmt.Sprintf("CommitOffset(%q)", bad), c.CommitOffset(ctx, bad, 1, nil), catalog.ErrNotFound)
		_, _, err = c.Finalize(ctx, bad, 0, emptyDigest, "")
		wantErr(t, fmt.Sprintf("Finalize(%q)", bad), err, catalog.ErrNotFound)
		_, _, err = c.Release(ctx, bad)
		wantErr(t, fmt.Sprintf("Release(%q)", bad), err, catalog.ErrNotFound)
		_, _, err = c.Finalize(ctx, bad, 0, emptyDigest, "text/plain")
		wantErr(t, fmt.Sprintf("Finalize(%q) with a type", bad), err, catalog.ErrNotFound)
		_, _, err = c.Reject(ctx, bad)
		wantErr(t, fmt.Sprintf("Reject(%q)", bad), err, catalog.ErrNotFound)
		_, err = c.Expire(ctx, bad, time.Now().Add(time.Hour))
		wantErr(t, fmt.Sprintf("Expire(%q)", bad), err, catalog.ErrNotFound)
	}
	// No event has these ids either; nothing is claimed to find out.
	for _, bad := range []string{missing, strings.Repeat("0", 32), "", "abc\x00def", "\xff\xfe"} {
		wantErr(t, fmt.Sprintf("MarkDelivered(%q)", bad), c.MarkDelivered(ctx, bad, time.Now()), catalog.ErrNotFound)
		wantErr(t, fmt.Sprintf("MarkFailed(%q)", bad), c.MarkFailed(ctx, bad, 1, time.Now(), "x", false), catalog.ErrNotFound)
		wantErr(t, fmt.Sprintf("RetryEvent(%q)", bad), c.RetryEvent(ctx, bad, time.Now()), catalog.ErrNotFound)
	}
	// Ids are compared exactly.
	create(t, c, catalog.Session{ID: id(t, "Upload")})
	_, err = c.Get(ctx, id(t, "upload"))
	wantErr(t, "Get with other case", err, catalog.ErrNotFound)
}

// --- offsets ---

func testSetOffset(t *testing.T, c catalog.Catalog) {
	s := create(t, c, catalog.Session{ID: id(t, "upload"), Size: size(100)})
	steps := []struct {
		offset     int64
		want       error
		wantOffset int64
		changes    bool
	}{
		{10, nil, 10, true},
		{10, nil, 10, false}, // same value: no-op
		{9, catalog.ErrConflict, 10, false},
		{0, catalog.ErrConflict, 10, false},
		{101, catalog.ErrConflict, 10, false},
		{-1, catalog.ErrInvalid, 10, false},
		{99, nil, 99, true},
		{100, nil, 100, true},
		{100, nil, 100, false},
	}
	prev := s
	for _, st := range steps {
		wantErr(t, fmt.Sprintf("SetOffset(%d) at %d", st.offset, prev.Offset), c.SetOffset(t.Context(), s.ID, st.offset), st.want)
		got := get(t, c, s.ID)
		if got.Offset != st.wantOffset {
			t.Errorf("after SetOffset(%d): Offset = %d; want %d", st.offset, got.Offset, st.wantOffset)
		}
		if changed := !got.UpdatedAt.Equal(prev.UpdatedAt); changed != st.changes {
			t.Errorf("after SetOffset(%d): UpdatedAt changed = %v; want %v", st.offset, changed, st.changes)
		}
		if got.State != receiving {
			t.Errorf("after SetOffset(%d): State = %s; want receiving", st.offset, got.State)
		}
		prev = got
	}

	deferred := create(t, c, catalog.Session{ID: id(t, "deferred")})
	wantErr(t, "SetOffset(2^50) without a size", c.SetOffset(t.Context(), deferred.ID, 1<<50), nil)
	if got := get(t, c, deferred.ID); got.Offset != 1<<50 {
		t.Errorf("Offset = %d; want %d", got.Offset, int64(1<<50))
	}
}

func testSetOffsetTerminal(t *testing.T, c catalog.Catalog) {
	for _, st := range []catalog.State{complete, terminated, failed, expired} {
		t.Run(string(st), func(t *testing.T) {
			s := create(t, c, catalog.Session{ID: id(t, "upload"), State: st, Size: size(10), Offset: 10})
			wantErr(t, "SetOffset(current)", c.SetOffset(t.Context(), s.ID, 10), catalog.ErrConflict)
			wantErr(t, "SetOffset(lower)", c.SetOffset(t.Context(), s.ID, 5), catalog.ErrConflict)
			checkSession(t, get(t, c, s.ID), s)

			if st == complete {
				return // a complete session always has a size
			}
			d := create(t, c, catalog.Session{ID: id(t, "deferred"), State: st, Offset: 4})
			wantErr(t, "SetOffset(higher) without a size", c.SetOffset(t.Context(), d.ID, 5), catalog.ErrConflict)
			checkSession(t, get(t, c, d.ID), d)
		})
	}
}

func testUpdatedAt(t *testing.T, c catalog.Catalog) {
	// Changes in quick succession, faster than any clock tick, must still
	// each move UpdatedAt forwards.
	s := create(t, c, catalog.Session{ID: id(t, "quick")})
	prev := s.UpdatedAt
	for off := int64(1); off <= 5; off++ {
		if err := c.SetOffset(t.Context(), s.ID, off); err != nil {
			t.Fatalf("SetOffset(%d) = %v", off, err)
		}
		got := get(t, c, s.ID)
		if !got.UpdatedAt.After(prev) {
			t.Errorf("after SetOffset(%d): UpdatedAt = %v; want after %v", off, got.UpdatedAt, prev)
		}
		if !got.CreatedAt.Equal(s.CreatedAt) {
			t.Errorf("CreatedAt changed to %v; want %v", got.CreatedAt, s.CreatedAt)
		}
		prev = got.UpdatedAt
	}

	// UpdatedAt never moves backwards, even from a time ahead of the
	// catalog's clock.
	future := micro(time.Now().Add(time.Hour))
	f := create(t, c, catalog.Session{ID: id(t, "future"), CreatedAt: future, UpdatedAt: future})
	if err := c.SetOffset(t.Context(), f.ID, 1); err != nil {
		t.Fatalf("SetOffset = %v", err)
	}
	got := get(t, c, f.ID)
	if !got.UpdatedAt.After(future) || got.UpdatedAt.After(future.Add(time.Second)) {
		t.Errorf("UpdatedAt = %v; want just after %v", got.UpdatedAt, future)
	}
}

// --- lengths ---

func testDeclareLength(t *testing.T, c catalog.Catalog) {
	ctx := t.Context()
	s := create(t, c, catalog.Session{ID: id(t, "deferred"), Offset: 50})
	steps := []struct {
		size     int64
		want     error
		wantSize *int64
		changes  bool
	}{
		{49, catalog.ErrConflict, nil, false}, // below the committed offset
		{-1, catalog.ErrInvalid, nil, false},
		{100, nil, size(100), true},
		{100, nil, size(100), false}, // same again: no-op
		{101, catalog.ErrConflict, size(100), false},
		{50, catalog.ErrConflict, size(100), false},
	}
	prev := s
	for _, st := range steps {
		wantErr(t, fmt.Sprintf("DeclareLength(%d)", st.size), c.DeclareLength(ctx, s.ID, st.size), st.want)
		got := get(t, c, s.ID)
		if fmtSize(got.Size) != fmtSize(st.wantSize) {
			t.Errorf("after DeclareLength(%d): Size = %s; want %s", st.size, fmtSize(got.Size), fmtSize(st.wantSize))
		}
		if got.Offset != 50 {
			t.Errorf("after DeclareLength(%d): Offset = %d; want 50", st.size, got.Offset)
		}
		if changed := !got.UpdatedAt.Equal(prev.UpdatedAt); changed != st.changes {
			t.Errorf("after DeclareLength(%d): UpdatedAt changed = %v; want %v", st.size, changed, st.changes)
		}
		prev = got
	}
	// The declared size now bounds the offset.
	wantErr(t, "SetOffset past the declared size", c.SetOffset(ctx, s.ID, 101), catalog.ErrConflict)
	wantErr(t, "SetOffset to the declared size", c.SetOffset(ctx, s.ID, 100), nil)

	// A size equal to the committed offset is fine, and completes.
	eq := create(t, c, catalog.Session{ID: id(t, "equal"), Offset: 7})
	wantErr(t, "DeclareLength(offset)", c.DeclareLength(ctx, eq.ID, 7), nil)
	wantErr(t, "Complete after DeclareLength", c.Complete(ctx, eq.ID, 7), nil)
	wantErr(t, "DeclareLength(same) on complete", c.DeclareLength(ctx, eq.ID, 7), nil)
	wantErr(t, "DeclareLength(other) on complete", c.DeclareLength(ctx, eq.ID, 8), catalog.ErrConflict)

	fixed := create(t, c, catalog.Session{ID: id(t, "fixed"), Size: size(10)})
	wantErr(t, "DeclareLength(same) on a sized session", c.DeclareLength(ctx, fixed.ID, 10), nil)
	wantErr(t, "DeclareLength(other) on a sized session", c.DeclareLength(ctx, fixed.ID, 11), catalog.ErrConflict)
	checkSession(t, get(t, c, fixed.ID), fixed)

	zero := create(t, c, catalog.Session{ID: id(t, "zero")})
	wantErr(t, "DeclareLength(0)", c.DeclareLength(ctx, zero.ID, 0), nil)
	if got := get(t, c, zero.ID); got.Size == nil || *got.Size != 0 {
		t.Errorf("Size = %s; want 0", fmtSize(got.Size))
	}

	for _, st := range []catalog.State{terminated, failed, expired} {
		d := create(t, c, catalog.Session{ID: id(t, string(st)), State: st, Offset: 3})
		wantErr(t, "DeclareLength on "+string(st), c.DeclareLength(ctx, d.ID, 10), catalog.ErrConflict)
		checkSession(t, get(t, c, d.ID), d)
	}
}

// --- completion ---

func testComplete(t *testing.T, c catalog.Catalog) {
	ctx := t.Context()
	s := create(t, c, catalog.Session{ID: id(t, "upload"), Size: size(100), Offset: 40})

	wantErr(t, "Complete(99) on size 100", c.Complete(ctx, s.ID, 99), catalog.ErrConflict)
	wantErr(t, "Complete(101) on size 100", c.Complete(ctx, s.ID, 101), catalog.ErrConflict)
	wantErr(t, "Complete(-1)", c.Complete(ctx, s.ID, -1), catalog.ErrInvalid)
	checkSession(t, get(t, c, s.ID), s)

	wantErr(t, "Complete(100)", c.Complete(ctx, s.ID, 100), nil)
	done := get(t, c, s.ID)
	if done.State != complete || done.Offset != 100 {
		t.Errorf("State, Offset = %s, %d; want complete, 100", done.State, done.Offset)
	}
	if done.CompletedAt == nil {
		t.Fatalf("CompletedAt = nil; want set")
	}
	if !done.UpdatedAt.After(s.UpdatedAt) {
		t.Errorf("UpdatedAt = %v; want after %v", done.UpdatedAt, s.UpdatedAt)
	}
	if done.CompletedAt.Before(s.UpdatedAt) || done.CompletedAt.After(done.UpdatedAt) {
		t.Errorf("CompletedAt = %v; want between %v and %v", done.CompletedAt, s.UpdatedAt, done.UpdatedAt)
	}

	// Finalization may be retried: same offset is a no-op that keeps the
	// first completion time.
	wantErr(t, "Complete(100) again", c.Complete(ctx, s.ID, 100), nil)
	checkSession(t, get(t, c, s.ID), done)
	wantErr(t, "Complete(99) on complete", c.Complete(ctx, s.ID, 99), catalog.ErrConflict)
	wantErr(t, "SetOffset on complete", c.SetOffset(ctx, s.ID, 100), catalog.ErrConflict)
	checkSession(t, get(t, c, s.ID), done)

	empty := create(t, c, catalog.Session{ID: id(t, "empty"), Size: size(0)})
	wantErr(t, "Complete(0) on an empty upload", c.Complete(ctx, empty.ID, 0), nil)
	if got := get(t, c, empty.ID); got.State != complete || got.CompletedAt == nil {
		t.Errorf("empty upload: State %s, CompletedAt %s; want complete, set", got.State, fmtTime(got.CompletedAt))
	}
}

func testCompleteConflicts(t *testing.T, c catalog.Catalog) {
	ctx := t.Context()
	deferred := create(t, c, catalog.Session{ID: id(t, "deferred"), Offset: 10})
	wantErr(t, "Complete on a deferred size", c.Complete(ctx, deferred.ID, 10), catalog.ErrConflict)
	checkSession(t, get(t, c, deferred.ID), deferred)

	for _, st := range []catalog.State{terminated, failed, expired} {
		s := create(t, c, catalog.Session{ID: id(t, string(st)), State: st, Size: size(10), Offset: 10})
		wantErr(t, "Complete on "+string(st), c.Complete(ctx, s.ID, 10), catalog.ErrConflict)
		checkSession(t, get(t, c, s.ID), s)
	}
}

// --- states ---

func testSetState(t *testing.T, c catalog.Catalog) {
	tests := []struct {
		from, to  catalog.State
		want      error
		wantState catalog.State
	}{
		{receiving, terminated, nil, terminated},
		{receiving, failed, nil, failed},
		{complete, terminated, nil, terminated},
		{complete, failed, catalog.ErrConflict, complete},
		{terminated, terminated, nil, terminated},
		{terminated, failed, catalog.ErrConflict, terminated},
		{failed, failed, nil, failed},
		{failed, terminated, catalog.ErrConflict, failed},
		{rejected, terminated, catalog.ErrConflict, rejected},
		{rejected, failed, catalog.ErrConflict, rejected},
		{expired, terminated, catalog.ErrConflict, expired},
		{expired, failed, catalog.ErrConflict, expired},
		{receiving, expired, catalog.ErrInvalid, receiving},
		{expired, expired, catalog.ErrInvalid, expired},
		{receiving, rejected, catalog.ErrInvalid, receiving},
		{complete, rejected, catalog.ErrInvalid, complete},
		{receiving, receiving, catalog.ErrInvalid, receiving},
		{receiving, complete, catalog.ErrInvalid, receiving},
		{complete, complete, catalog.ErrInvalid, complete},
		{terminated, receiving, catalog.ErrInvalid, terminated},
		{receiving, "bogus", catalog.ErrInvalid, receiving},
		{receiving, "", catalog.ErrInvalid, receiving},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s_to_%s", tt.from, tt.to), func(t *testing.T) {
			t.Parallel()
			in := catalog.Session{ID: id(t, "upload"), State: tt.from, Size: size(10), Offset: 10}
			if tt.from == receiving {
				in.Offset = 4
			}
			s := create(t, c, in)
			wantErr(t, fmt.Sprintf("SetState(%s) from %s", tt.to, tt.from), c.SetState(t.Context(), s.ID, tt.to), tt.want)

			want := s
			if tt.want == nil && tt.from != tt.to {
				got := get(t, c, s.ID)
				if !got.UpdatedAt.After(s.UpdatedAt) {
					t.Errorf("UpdatedAt = %v; want after %v", got.UpdatedAt, s.UpdatedAt)
				}
				want.State, want.UpdatedAt = tt.wantState, got.UpdatedAt
			}
			// Everything else, CompletedAt included, stays as it was.
			checkSession(t, get(t, c, s.ID), want)
		})
	}
}

// --- concurrency ---

func testConcurrentSetOffset(t *testing.T, c catalog.Catalog) {
	const (
		workers = 16
		max     = 120
	)
	s := create(t, c, catalog.Session{ID: id(t, "upload"), Size: size(max)})
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		accepted int
	)
	for w := range workers {
		wg.Go(func() {
			offsets := make([]int64, max)
			for i := range offsets {
				offsets[i] = int64(i + 1)
			}
			r := rand.New(rand.NewPCG(uint64(w), 42))
			r.Shuffle(len(offsets), func(i, j int) { offsets[i], offsets[j] = offsets[j], offsets[i] })
			for _, off := range offsets {
				err := c.SetOffset(t.Context(), s.ID, off)
				if err != nil && !errors.Is(err, catalog.ErrConflict) {
					t.Errorf("SetOffset(%d) = %v; want nil or ErrConflict", off, err)
					return
				}
				if err == nil {
					mu.Lock()
					accepted++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	got := get(t, c, s.ID)
	if got.Offset != max {
		t.Errorf("Offset = %d; want %d", got.Offset, max)
	}
	if accepted < workers { // every worker reaches max eventually: its no-op succeeds
		t.Errorf("%d calls succeeded; want at least %d", accepted, workers)
	}
}

func testConcurrentCompleteAndFail(t *testing.T, c catalog.Catalog) {
	for i := range 20 {
		s := create(t, c, catalog.Session{ID: id(t, fmt.Sprint(i)), Size: size(10), Offset: 10})
		var completeErr, failErr error
		var wg sync.WaitGroup
		wg.Go(func() { completeErr = c.Complete(t.Context(), s.ID, 10) })
		wg.Go(func() { failErr = c.SetState(t.Context(), s.ID, failed) })
		wg.Wait()

		got := get(t, c, s.ID)
		switch {
		case completeErr == nil && errors.Is(failErr, catalog.ErrConflict) && got.State == complete && got.CompletedAt != nil:
		case failErr == nil && errors.Is(completeErr, catalog.ErrConflict) && got.State == failed && got.CompletedAt == nil:
		default:
			t.Errorf("round %d: Complete = %v, SetState(failed) = %v, final state %s (CompletedAt %s); want exactly one winner",
				i, completeErr, failErr, got.State, fmtTime(got.CompletedAt))
		}
	}
}

// --- plumbing ---

func testCanceledContext(t *testing.T, c catalog.Catalog) {
	s := create(t, c, catalog.Session{ID: id(t, "upload"), Size: size(10)})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := c.Get(ctx, s.ID)
	wantErr(t, "Get with a canceled context", err, context.Canceled)
	wantErr(t, "SetOffset with a canceled context", c.SetOffset(ctx, s.ID, 1), context.Canceled)
	wantErr(t, "Create with a canceled context", c.Create(ctx, catalog.Session{ID: id(t, "other")}), context.Canceled)
	_, err = c.List(ctx, catalog.ListOptions{})
	wantErr(t, "List with a canceled context", err, context.Canceled)
	wantErr(t, "CommitOffset with a canceled context", c.CommitOffset(ctx, s.ID, 1, []byte{1}), context.Canceled)
	d := digest(t, "content")
	_, _, err = c.Finalize(ctx, s.ID, 10, d, "")
	wantErr(t, "Finalize with a canceled context", err, context.Canceled)
	_, _, err = c.Release(ctx, s.ID)
	wantErr(t, "Release with a canceled context", err, context.Canceled)
	wantErr(t, "CreateDeduped with a canceled context", c.CreateDeduped(ctx, catalog.Session{ID: id(t, "dedup"), Size: size(10)}, d), context.Canceled)
	_, err = c.GetBlob(ctx, d)
	wantErr(t, "GetBlob with a canceled context", err, context.Canceled)
	_, err = c.FindBlob(ctx, d, "", false)
	wantErr(t, "FindBlob with a canceled context", err, context.Canceled)
	_, _, err = c.Finalize(ctx, s.ID, 10, d, "text/plain")
	wantErr(t, "Finalize with a type and a canceled context", err, context.Canceled)
	_, _, err = c.Reject(ctx, s.ID)
	wantErr(t, "Reject with a canceled context", err, context.Canceled)
	_, err = c.ListExpired(ctx, time.Now().Add(time.Hour), 1)
	wantErr(t, "ListExpired with a canceled context", err, context.Canceled)
	_, err = c.Expire(ctx, s.ID, time.Now().Add(time.Hour))
	wantErr(t, "Expire with a canceled context", err, context.Canceled)
	_, err = c.Known(ctx, []string{s.ID})
	wantErr(t, "Known with a canceled context", err, context.Canceled)
	// The outbox calls fail before they reach any event: the catalog is
	// shared, and no other subtest's event may be claimed or changed.
	_, err = c.ClaimEvents(ctx, time.Now(), 1, time.Minute)
	wantErr(t, "ClaimEvents with a canceled context", err, context.Canceled)
	_, err = c.ListEvents(ctx, catalog.EventFilter{})
	wantErr(t, "ListEvents with a canceled context", err, context.Canceled)
	e := strings.Repeat("0", 32)
	wantErr(t, "MarkDelivered with a canceled context", c.MarkDelivered(ctx, e, time.Now()), context.Canceled)
	wantErr(t, "MarkFailed with a canceled context", c.MarkFailed(ctx, e, 1, time.Now(), "x", true), context.Canceled)
	wantErr(t, "RetryEvent with a canceled context", c.RetryEvent(ctx, e, time.Now()), context.Canceled)
	// Nothing the other subtests write was delivered that long ago, should
	// the call get through.
	_, err = c.PurgeEvents(ctx, time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC))
	wantErr(t, "PurgeEvents with a canceled context", err, context.Canceled)
	checkSession(t, get(t, c, s.ID), s)
}

func testPing(t *testing.T, c catalog.Catalog) {
	wantErr(t, "Ping", c.Ping(t.Context()), nil)
}

func testMigrations(t *testing.T, c catalog.Catalog) {
	m, ok := c.(catalog.Migrator)
	if !ok {
		t.Skip("catalog does not implement catalog.Migrator")
	}
	status, err := m.MigrationStatus(t.Context())
	if err != nil {
		t.Fatalf("MigrationStatus = %v", err)
	}
	if len(status) == 0 {
		t.Fatal("MigrationStatus lists no migrations")
	}
	for i, s := range status {
		if s.Version != i+1 || s.Name == "" || s.AppliedAt == nil {
			t.Errorf("status[%d] = %+v; want version %d, named, applied", i, s, i+1)
		}
	}
	applied, err := m.MigrateUp(t.Context())
	if err != nil || len(applied) != 0 {
		t.Errorf("MigrateUp on a current schema = %+v, %v; want nothing applied", applied, err)
	}
}

func testClose(t *testing.T, c catalog.Catalog) {
	wantErr(t, "Close", c.Close(), nil)
	if err := c.Ping(t.Context()); err == nil {
		t.Error("Ping after Close = nil; want an error")
	}
	// The constructor's cleanup closes it again; that must be harmless.
	wantErr(t, "second Close", c.Close(), nil)
}

// --- listing ---

func ids(ss []catalog.Session) []string {
	out := make([]string, 0, len(ss))
	for _, s := range ss {
		out = append(out, s.ID)
	}
	return out
}

func list(t *testing.T, c catalog.Catalog, opts catalog.ListOptions) []catalog.Session {
	t.Helper()
	ss, err := c.List(t.Context(), opts)
	if err != nil {
		t.Fatalf("List(%+v) = %v", opts, err)
	}
	return ss
}

func testListEmpty(t *testing.T, c catalog.Catalog) {
	if got := list(t, c, catalog.ListOptions{}); len(got) != 0 {
		t.Errorf("List on an empty catalog = %q; want none", ids(got))
	}
}

func testListFilters(t *testing.T, c catalog.Catalog) {
	base := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	at := func(sec int) time.Time { return base.Add(time.Duration(sec) * time.Second) }
	fixtures := []catalog.Session{
		{ID: "s1", Owner: "alice", CreatedAt: at(1)},
		{ID: "s2", Owner: "bob", State: complete, Size: size(1), Offset: 1, CreatedAt: at(2)},
		{ID: "s3", Owner: "alice", State: failed, CreatedAt: at(3)},
		{ID: "s4", CreatedAt: at(4)}, // anonymous
		{ID: "tie-a", Owner: "alice", CreatedAt: at(5)},
		{ID: "tie-b", Owner: "alice", CreatedAt: at(5), Metadata: map[string]string{"name": "ünï"}},
		{ID: "s7", Owner: "bob", Size: size(9), CreatedAt: at(6)},
	}
	stored := map[string]catalog.Session{}
	for _, s := range fixtures {
		stored[s.ID] = create(t, c, s)
	}
	// A state change must show in state filters.
	wantErr(t, "SetState(s7, terminated)", c.SetState(t.Context(), "s7", terminated), nil)
	stored["s7"] = get(t, c, "s7")
	// Digests show in List; the hash state does not.
	wantErr(t, "CommitOffset(s4)", c.CommitOffset(t.Context(), "s4", 2, []byte("state")), nil)
	stored["s4"] = get(t, c, "s4")
	finalize(t, c, "s2", 1, digest(t, "s2"))
	stored["s2"] = get(t, c, "s2")
	if _, _, err := c.Reject(t.Context(), "s1"); err != nil {
		t.Fatalf("Reject(s1) = %v", err)
	}
	stored["s1"] = get(t, c, "s1")

	tests := []struct {
		name string
		opts catalog.ListOptions
		want []string
	}{
		{"all", catalog.ListOptions{}, []string{"s7", "tie-b", "tie-a", "s4", "s3", "s2", "s1"}},
		{"owner", catalog.ListOptions{Owner: "alice"}, []string{"tie-b", "tie-a", "s3", "s1"}},
		{"unknown owner", catalog.ListOptions{Owner: "nobody"}, nil},
		{"state", catalog.ListOptions{State: receiving}, []string{"tie-b", "tie-a", "s4"}},
		{"rejected", catalog.ListOptions{State: rejected}, []string{"s1"}},
		{"changed state", catalog.ListOptions{State: terminated}, []string{"s7"}},
		{"owner and state", catalog.ListOptions{Owner: "alice", State: failed}, []string{"s3"}},
		{"owner and other state", catalog.ListOptions{Owner: "bob", State: failed}, nil},
		{"limit", catalog.ListOptions{Limit: 2}, []string{"s7", "tie-b"}},
		{"limit above count", catalog.ListOptions{Limit: 50}, []string{"s7", "tie-b", "tie-a", "s4", "s3", "s2", "s1"}},
		{"before is strict", catalog.ListOptions{Before: at(5)}, []string{"s4", "s3", "s2", "s1"}},
		{"before below a microsecond", catalog.ListOptions{Before: at(5).Add(500 * time.Nanosecond)}, []string{"s4", "s3", "s2", "s1"}},
		{"before a microsecond later", catalog.ListOptions{Before: at(5).Add(time.Microsecond)}, []string{"tie-b", "tie-a", "s4", "s3", "s2", "s1"}},
		{"before with id inside a tie", catalog.ListOptions{Before: at(5), BeforeID: "tie-b"}, []string{"tie-a", "s4", "s3", "s2", "s1"}},
		{"before with id after a tie", catalog.ListOptions{Before: at(5), BeforeID: "zzz"}, []string{"tie-b", "tie-a", "s4", "s3", "s2", "s1"}},
		{"before in another zone", catalog.ListOptions{Before: at(3).In(time.FixedZone("x", -7*3600))}, []string{"s2", "s1"}},
		{"before the first", catalog.ListOptions{Before: at(1)}, nil},
		{"before, owner and limit", catalog.ListOptions{Owner: "alice", Before: at(5), BeforeID: "tie-b", Limit: 2}, []string{"tie-a", "s3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := list(t, c, tt.opts)
			if !slices.Equal(ids(got), tt.want) && !(len(got) == 0 && len(tt.want) == 0) {
				t.Fatalf("List(%+v) = %q; want %q", tt.opts, ids(got), tt.want)
			}
			for _, s := range got {
				want := stored[s.ID]
				want.HashState = nil
				checkSession(t, s, want)
			}
		})
	}
}

func testListPagination(t *testing.T, c catalog.Catalog) {
	// 23 sessions in runs of equal creation times, so page boundaries fall
	// inside ties.
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 23 {
		owner := "even"
		if i%2 == 1 {
			owner = "odd"
		}
		create(t, c, catalog.Session{
			ID:        fmt.Sprintf("u%02d", (i*7)%23), // ids not in creation order
			Owner:     owner,
			CreatedAt: base.Add(time.Duration(i/3) * time.Millisecond),
		})
	}
	for _, owner := range []string{"", "odd"} {
		t.Run("owner="+owner, func(t *testing.T) {
			all := list(t, c, catalog.ListOptions{Owner: owner})
			for i := 1; i < len(all); i++ {
				a, b := all[i-1], all[i]
				if a.CreatedAt.Before(b.CreatedAt) || a.CreatedAt.Equal(b.CreatedAt) && a.ID <= b.ID {
					t.Fatalf("List order broken at %d: %s@%v then %s@%v", i, a.ID, a.CreatedAt, b.ID, b.CreatedAt)
				}
			}
			var paged []catalog.Session
			opts := catalog.ListOptions{Owner: owner, Limit: 4}
			for page := 0; ; page++ {
				if page > 10 {
					t.Fatal("pagination does not end")
				}
				got := list(t, c, opts)
				paged = append(paged, got...)
				if len(got) < opts.Limit {
					break
				}
				last := got[len(got)-1]
				opts.Before, opts.BeforeID = last.CreatedAt, last.ID
			}
			if !slices.Equal(ids(paged), ids(all)) {
				t.Errorf("pages = %q; want %q", ids(paged), ids(all))
			}
		})
	}
}

func testListDefaultLimit(t *testing.T, c catalog.Catalog) {
	for i := range 101 {
		create(t, c, catalog.Session{ID: fmt.Sprintf("u%03d", i)})
	}
	if got := list(t, c, catalog.ListOptions{}); len(got) != 100 {
		t.Errorf("List with the default limit returned %d; want 100", len(got))
	}
	if got := list(t, c, catalog.ListOptions{Limit: 101}); len(got) != 101 {
		t.Errorf("List(Limit 101) returned %d; want 101", len(got))
	}
}

func testListInvalid(t *testing.T, c catalog.Catalog) {
	for _, opts := range []catalog.ListOptions{
		{Limit: -1},
		{State: "paused"},
		{BeforeID: "x"},
	} {
		_, err := c.List(t.Context(), opts)
		wantErr(t, fmt.Sprintf("List(%+v)", opts), err, catalog.ErrInvalid)
	}
}
