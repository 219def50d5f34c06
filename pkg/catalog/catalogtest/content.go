package catalogtest

import (
	"fmt"
	"strings"
	"testing"

	"github.com/intake-dev/intake/pkg/catalog"
)

// --- content types ---

func testFinalizeContentType(t *testing.T, c catalog.Catalog) {
	ctx := t.Context()
	d := digest(t, "content")

	// Sniffed before the session completes: it takes the type in the same
	// transaction, and the new blob takes the session's type.
	a := create(t, c, catalog.Session{ID: id(t, "a"), Size: size(4), Offset: 4})
	blob, _ := finalizeTyped(t, c, a.ID, 4, d, "application/pdf")
	if blob.ContentType != "application/pdf" {
		t.Errorf("blob created by Finalize: ContentType %q; want the session's", blob.ContentType)
	}
	got := get(t, c, a.ID)
	want := a
	want.State, want.SHA256, want.BlobSHA256 = complete, d, d
	want.ContentType, want.UpdatedAt, want.CompletedAt = "application/pdf", got.UpdatedAt, got.CompletedAt
	checkSession(t, got, want)
	if !got.UpdatedAt.After(a.UpdatedAt) {
		t.Errorf("UpdatedAt = %v; want after %v", got.UpdatedAt, a.UpdatedAt)
	}
	again, existed := finalizeTyped(t, c, a.ID, 4, d, "application/pdf")
	checkSession(t, get(t, c, a.ID), got) // a no-op
	checkBlob(t, "blob from Finalize(a) again", again, blob)
	if existed {
		t.Errorf("Finalize(a) again: existed = true; want false")
	}

	// A session without a type takes the blob's.
	b := create(t, c, catalog.Session{ID: id(t, "b"), Size: size(4), Offset: 4})
	finalize(t, c, b.ID, 4, d)
	if got := get(t, c, b.ID); got.ContentType != "application/pdf" {
		t.Errorf("session finalized onto a typed blob: ContentType %q; want the blob's", got.ContentType)
	}

	// Sniffed again by a retry after Finalize: the session and the blob
	// take it, not the other sessions of the blob.
	aBefore := get(t, c, a.ID)
	bBefore := get(t, c, b.ID)
	blob, existed = finalizeTyped(t, c, b.ID, 4, d, "text/plain; charset=utf-8")
	if !existed || blob.ContentType != "text/plain; charset=utf-8" {
		t.Errorf("Finalize(b) again = %+v, existed %v; want a's blob, now text/plain", blob, existed)
	}
	bAfter := get(t, c, b.ID)
	wantB := bBefore
	wantB.ContentType, wantB.UpdatedAt = "text/plain; charset=utf-8", bAfter.UpdatedAt
	checkSession(t, bAfter, wantB)
	if got := getBlob(t, c, d).ContentType; got != "text/plain; charset=utf-8" {
		t.Errorf("blob ContentType = %q; want the type set through b", got)
	}
	checkSession(t, get(t, c, a.ID), aBefore)

	// The session's own type again: nothing changes on it, but the blob
	// takes it back.
	finalizeTyped(t, c, a.ID, 4, d, "application/pdf")
	checkSession(t, get(t, c, a.ID), aBefore)
	if got := getBlob(t, c, d).ContentType; got != "application/pdf" {
		t.Errorf("blob ContentType = %q; want application/pdf again", got)
	}

	// A deduplicated session takes the blob's type.
	x := catalog.Session{ID: id(t, "x"), Size: size(4)}
	wantErr(t, "CreateDeduped", c.CreateDeduped(ctx, x, d), nil)
	if got := get(t, c, x.ID); got.ContentType != "application/pdf" {
		t.Errorf("deduplicated session: ContentType %q; want the blob's", got.ContentType)
	}

	// A blob without a type takes the type of the next session finalized
	// onto it, and keeps it afterwards.
	d2 := digest(t, "untyped")
	e := create(t, c, catalog.Session{ID: id(t, "e"), Size: size(2), Offset: 2})
	if blob, _ := finalize(t, c, e.ID, 2, d2); blob.ContentType != "" {
		t.Errorf("blob of an untyped session: ContentType %q; want none", blob.ContentType)
	}
	f := create(t, c, catalog.Session{ID: id(t, "f"), Size: size(2), Offset: 2})
	if blob, existed := finalizeTyped(t, c, f.ID, 2, d2, "text/csv"); !existed || blob.ContentType != "text/csv" {
		t.Errorf("Finalize(f) = %+v, existed %v; want the existing blob, now text/csv", blob, existed)
	}
	g := create(t, c, catalog.Session{ID: id(t, "g"), Size: size(2), Offset: 2})
	if blob, _ := finalizeTyped(t, c, g.ID, 2, d2, "image/png"); blob.ContentType != "text/csv" {
		t.Errorf("Finalize(g): blob ContentType %q; want text/csv kept", blob.ContentType)
	}
	if got := get(t, c, g.ID); got.ContentType != "image/png" {
		t.Errorf("g: ContentType %q; want its own kept", got.ContentType)
	}
	if got := get(t, c, e.ID); got.ContentType != "" {
		t.Errorf("e: ContentType %q; want none: only its blob changed", got.ContentType)
	}

	// Partial uploads are never finalized: no type either.
	p := create(t, c, catalog.Session{ID: id(t, "partial"), State: complete, Size: size(2), Offset: 2, IsPartial: true})
	_, _, err := c.Finalize(ctx, p.ID, 2, digest(t, "partial"), "image/png")
	wantErr(t, "Finalize(partial) with a type", err, catalog.ErrConflict)
	checkSession(t, get(t, c, p.ID), p)

	// Sessions whose bytes are gone or refused.
	for _, st := range []catalog.State{terminated, failed, rejected, expired} {
		s := create(t, c, catalog.Session{ID: id(t, string(st)), State: st, Size: size(2), Offset: 2})
		_, _, err := c.Finalize(ctx, s.ID, 2, digest(t, string(st)), "image/png")
		wantErr(t, "Finalize with a type on "+string(st), err, catalog.ErrConflict)
		checkSession(t, get(t, c, s.ID), s)
	}
}

func testFinalizeContentTypeInvalid(t *testing.T, c catalog.Catalog) {
	ctx := t.Context()
	d := digest(t, "content")
	s := create(t, c, catalog.Session{ID: id(t, "upload"), Size: size(3)})
	// "" is no media type either, but to Finalize it means none is known
	// (see e in FinalizeContentType).
	for _, ct := range []string{
		"text",
		"/plain",
		"text/",
		"text/plain/x",
		"text /plain",
		" text/plain",
		"text/plain ",
		"tëxt/plain",
		"text/plain\n",
		"text/pl\x00ain",
		"text/plain; charset",
		"text/plain;;",
		strings.Repeat("a", 250) + "/bbbbb", // 256 bytes
	} {
		_, _, err := c.Finalize(ctx, s.ID, 3, d, ct)
		wantErr(t, fmt.Sprintf("Finalize(%q)", ct), err, catalog.ErrInvalid)
	}
	checkSession(t, get(t, c, s.ID), s)
	_, err := c.GetBlob(ctx, d)
	wantErr(t, "GetBlob after refused Finalizes", err, catalog.ErrNotFound)

	// The first links the session, the others replace its type.
	for _, ct := range []string{
		"application/pdf",
		"text/plain; charset=utf-8",
		"application/vnd.openxmlformats-officedocument.wordprocessingml.document",
		"image/svg+xml",
		strings.Repeat("a", 250) + "/bbbb", // 255 bytes
	} {
		_, _, err := c.Finalize(ctx, s.ID, 3, d, ct)
		wantErr(t, fmt.Sprintf("Finalize(%q)", ct), err, nil)
		if got := get(t, c, s.ID); got.ContentType != ct {
			t.Errorf("ContentType = %q; want %q", got.ContentType, ct)
		}
	}
}

// --- rejection ---

func testReject(t *testing.T, c catalog.Catalog) {
	ctx := t.Context()
	d := digest(t, "content")
	a := create(t, c, catalog.Session{ID: id(t, "a"), Owner: id(t, "owner"), Size: size(4), Offset: 4,
		Storage: map[string]string{"Path": "/data/a"}})
	first, _ := finalizeTyped(t, c, a.ID, 4, d, "application/x-msdownload")
	b := create(t, c, catalog.Session{ID: id(t, "b"), Size: size(4), Offset: 4})
	finalize(t, c, b.ID, 4, d)

	aDone := get(t, c, a.ID)
	blob, last, err := c.Reject(ctx, a.ID)
	wantErr(t, "Reject(a)", err, nil)
	want := first
	want.Refs = 1
	checkBlob(t, "blob from Reject(a)", blob, want)
	if last {
		t.Errorf("Reject(a): last = true; want false")
	}
	got := get(t, c, a.ID)
	wantA := aDone
	wantA.State, wantA.BlobSHA256, wantA.UpdatedAt = rejected, "", got.UpdatedAt
	checkSession(t, got, wantA) // SHA256, CompletedAt and ContentType stay
	if !got.UpdatedAt.After(aDone.UpdatedAt) {
		t.Errorf("UpdatedAt = %v; want after %v", got.UpdatedAt, aDone.UpdatedAt)
	}
	if list := list(t, c, catalog.ListOptions{Owner: a.Owner, State: rejected}); len(list) != 1 || list[0].ID != a.ID {
		t.Errorf("List(rejected) = %q; want [%s]", ids(list), a.ID)
	}

	// Again: a no-op.
	blob, last, err = c.Reject(ctx, a.ID)
	wantErr(t, "Reject(a) again", err, nil)
	if last || blob.SHA256 != "" {
		t.Errorf("Reject(a) again = %+v, %v; want a zero Blob, false", blob, last)
	}
	checkSession(t, get(t, c, a.ID), got)

	// The last reference: the blob row goes, the caller deletes the bytes
	// (the object of a, which is not b's).
	blob, last, err = c.Reject(ctx, b.ID)
	wantErr(t, "Reject(b)", err, nil)
	want.Refs = 0
	checkBlob(t, "blob from the last Reject", blob, want)
	if !last {
		t.Errorf("last Reject: last = false; want true")
	}
	_, err = c.GetBlob(ctx, d)
	wantErr(t, "GetBlob after the last Reject", err, catalog.ErrNotFound)
}

func testRejectStates(t *testing.T, c catalog.Catalog) {
	ctx := t.Context()
	// Sessions without a blob: all their bytes in (receiving, or complete
	// without a digest), just rejected. The offset stays what it was.
	for _, s := range []catalog.Session{
		{ID: id(t, "receiving"), Size: size(5), Offset: 5},
		{ID: id(t, "receiving-behind"), Size: size(5), Offset: 2},
		{ID: id(t, "complete"), State: complete, Size: size(5), Offset: 5},
	} {
		s = create(t, c, s)
		blob, last, err := c.Reject(ctx, s.ID)
		wantErr(t, "Reject("+s.ID+")", err, nil)
		if last || blob.SHA256 != "" {
			t.Errorf("Reject(%s) = %+v, %v; want a zero Blob, false", s.ID, blob, last)
		}
		got := get(t, c, s.ID)
		want := s
		want.State, want.UpdatedAt = rejected, got.UpdatedAt
		checkSession(t, got, want)
	}

	for _, st := range []catalog.State{terminated, failed, expired} {
		s := create(t, c, catalog.Session{ID: id(t, string(st)), State: st, Size: size(5), Offset: 5})
		_, _, err := c.Reject(ctx, s.ID)
		wantErr(t, "Reject on "+string(st), err, catalog.ErrConflict)
		checkSession(t, get(t, c, s.ID), s)
	}

	// Rejected is final.
	d := digest(t, "content")
	s := create(t, c, catalog.Session{ID: id(t, "final"), Size: size(5), Offset: 5})
	finalize(t, c, s.ID, 5, d)
	if _, _, err := c.Reject(ctx, s.ID); err != nil {
		t.Fatalf("Reject = %v", err)
	}
	done := get(t, c, s.ID)
	wantErr(t, "SetState(terminated) on rejected", c.SetState(ctx, s.ID, terminated), catalog.ErrConflict)
	wantErr(t, "SetState(failed) on rejected", c.SetState(ctx, s.ID, failed), catalog.ErrConflict)
	_, _, err := c.Release(ctx, s.ID)
	wantErr(t, "Release on rejected", err, catalog.ErrConflict)
	_, _, err = c.Finalize(ctx, s.ID, 5, d, "")
	wantErr(t, "Finalize on rejected", err, catalog.ErrConflict)
	wantErr(t, "Complete on rejected", c.Complete(ctx, s.ID, 5), catalog.ErrConflict)
	wantErr(t, "SetOffset on rejected", c.SetOffset(ctx, s.ID, 5), catalog.ErrConflict)
	wantErr(t, "CommitOffset on rejected", c.CommitOffset(ctx, s.ID, 5, nil), catalog.ErrConflict)
	_, _, err = c.Finalize(ctx, s.ID, 5, d, "text/plain")
	wantErr(t, "Finalize with a type on rejected", err, catalog.ErrConflict)
	checkSession(t, get(t, c, s.ID), done)
}
