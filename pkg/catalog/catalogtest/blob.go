package catalogtest

import (
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/intake-dev/intake/pkg/catalog"
)

// emptyDigest is the SHA-256 of no bytes. Subtests that share a catalog
// use it only where no blob is created: blobs are global.
const emptyDigest = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// digest returns the SHA-256 of content unique to the running subtest, so
// that subtests sharing a catalog never share a blob.
func digest(t *testing.T, suffix string) string {
	sum := sha256.Sum256([]byte(id(t, suffix)))
	return hex.EncodeToString(sum[:])
}

// hashState returns the marshalled digest state after data, as a store
// would commit it.
func hashState(t *testing.T, data string) []byte {
	t.Helper()
	h := sha256.New()
	h.Write([]byte(data))
	b, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func finalize(t *testing.T, c catalog.Catalog, id string, size int64, sha string) (catalog.Blob, bool) {
	t.Helper()
	return finalizeTyped(t, c, id, size, sha, "")
}

func finalizeTyped(t *testing.T, c catalog.Catalog, id string, size int64, sha, contentType string) (catalog.Blob, bool) {
	t.Helper()
	blob, existed, err := c.Finalize(t.Context(), id, size, sha, contentType)
	if err != nil {
		t.Fatalf("Finalize(%s, %d, %q) = %v; want nil", id, size, contentType, err)
	}
	return blob, existed
}

func getBlob(t *testing.T, c catalog.Catalog, sha string) catalog.Blob {
	t.Helper()
	b, err := c.GetBlob(t.Context(), sha)
	if err != nil {
		t.Fatalf("GetBlob(%s) = %v; want nil", sha, err)
	}
	return b
}

func refs(t *testing.T, c catalog.Catalog, sha string) int64 {
	t.Helper()
	return getBlob(t, c, sha).Refs
}

func checkBlob(t *testing.T, what string, got, want catalog.Blob) {
	t.Helper()
	var d []string
	add := func(field string, g, w any) { d = append(d, fmt.Sprintf("%s: got %v; want %v", field, g, w)) }
	if got.SHA256 != want.SHA256 {
		add("SHA256", got.SHA256, want.SHA256)
	}
	if got.Size != want.Size {
		add("Size", got.Size, want.Size)
	}
	if got.UploadID != want.UploadID {
		add("UploadID", got.UploadID, want.UploadID)
	}
	if got.Storage == nil || !mapsEqual(got.Storage, want.Storage) {
		add("Storage", fmt.Sprintf("%#v", got.Storage), fmt.Sprintf("%#v", want.Storage))
	}
	if got.Refs != want.Refs {
		add("Refs", got.Refs, want.Refs)
	}
	if got.ContentType != want.ContentType {
		add("ContentType", got.ContentType, want.ContentType)
	}
	if !got.CreatedAt.Equal(want.CreatedAt) {
		add("CreatedAt", got.CreatedAt.Format(time.RFC3339Nano), want.CreatedAt.Format(time.RFC3339Nano))
	}
	if got.CreatedAt.Location() != time.UTC {
		add("CreatedAt location", got.CreatedAt.Location(), time.UTC)
	}
	if len(d) > 0 {
		t.Errorf("%s:\n\t%s", what, strings.Join(d, "\n\t"))
	}
}

// --- digest state ---

func testCommitOffset(t *testing.T, c catalog.Catalog) {
	s := create(t, c, catalog.Session{ID: id(t, "upload"), Size: size(100)})
	st10 := hashState(t, "0123456789")
	other := []byte{0, 0xff, 0, 1} // opaque bytes must round-trip exactly
	st100 := hashState(t, strings.Repeat("x", 100))
	steps := []struct {
		name       string
		offset     int64
		state      []byte
		want       error
		wantOffset int64
		wantState  []byte
		wantAt     int64
		changes    bool
	}{
		{"first", 10, st10, nil, 10, st10, 10, true},
		{"same again", 10, st10, nil, 10, st10, 10, false},
		{"same offset, new state", 10, other, nil, 10, other, 10, true},
		{"behind", 9, st10, catalog.ErrConflict, 10, other, 10, false},
		{"zero", 0, nil, catalog.ErrConflict, 10, other, 10, false},
		{"past size", 101, st10, catalog.ErrConflict, 10, other, 10, false},
		{"negative", -1, st10, catalog.ErrInvalid, 10, other, 10, false},
		{"without state", 50, nil, nil, 50, nil, 0, true},
		{"without state again", 50, nil, nil, 50, nil, 0, false},
		{"empty state is none", 50, []byte{}, nil, 50, nil, 0, false},
		{"state at the same offset", 50, other, nil, 50, other, 50, true},
		{"clearing at the same offset", 50, nil, nil, 50, nil, 0, true},
		{"to the size", 100, st100, nil, 100, st100, 100, true},
	}
	prev := s
	for _, st := range steps {
		wantErr(t, fmt.Sprintf("%s: CommitOffset(%d)", st.name, st.offset), c.CommitOffset(t.Context(), s.ID, st.offset, st.state), st.want)
		got := get(t, c, s.ID)
		want := prev
		want.Offset, want.HashState, want.HashOffset = st.wantOffset, st.wantState, st.wantAt
		if st.changes {
			if !got.UpdatedAt.After(prev.UpdatedAt) {
				t.Errorf("%s: UpdatedAt = %v; want after %v", st.name, got.UpdatedAt, prev.UpdatedAt)
			}
			want.UpdatedAt = got.UpdatedAt
		}
		if d := diff(got, want); len(d) > 0 {
			t.Errorf("%s: session:\n\t%s", st.name, strings.Join(d, "\n\t"))
		}
		prev = got
	}

	deferred := create(t, c, catalog.Session{ID: id(t, "deferred")})
	wantErr(t, "CommitOffset(2^50) without a size", c.CommitOffset(t.Context(), deferred.ID, 1<<50, st10), nil)
	if got := get(t, c, deferred.ID); got.Offset != 1<<50 || got.HashOffset != 1<<50 {
		t.Errorf("Offset, HashOffset = %d, %d; want %d for both", got.Offset, got.HashOffset, int64(1<<50))
	}
}

func testCommitOffsetTerminal(t *testing.T, c catalog.Catalog) {
	for _, st := range []catalog.State{complete, terminated, failed, expired} {
		t.Run(string(st), func(t *testing.T) {
			s := create(t, c, catalog.Session{ID: id(t, "upload"), State: st, Size: size(10), Offset: 10})
			wantErr(t, "CommitOffset(current)", c.CommitOffset(t.Context(), s.ID, 10, []byte{1}), catalog.ErrConflict)
			wantErr(t, "CommitOffset(current) without state", c.CommitOffset(t.Context(), s.ID, 10, nil), catalog.ErrConflict)
			wantErr(t, "CommitOffset(lower)", c.CommitOffset(t.Context(), s.ID, 5, []byte{1}), catalog.ErrConflict)
			checkSession(t, get(t, c, s.ID), s)
		})
	}
}

// SetOffset (a repair from the store) and Complete leave the digest state
// where it was, so a state behind the offset shows as HashOffset < Offset.
func testSetOffsetKeepsHashState(t *testing.T, c catalog.Catalog) {
	ctx := t.Context()
	s := create(t, c, catalog.Session{ID: id(t, "upload"), Size: size(30)})
	st10 := hashState(t, "0123456789")
	wantErr(t, "CommitOffset(10)", c.CommitOffset(ctx, s.ID, 10, st10), nil)
	wantErr(t, "SetOffset(20)", c.SetOffset(ctx, s.ID, 20), nil)
	got := get(t, c, s.ID)
	if got.Offset != 20 || got.HashOffset != 10 || string(got.HashState) != string(st10) {
		t.Errorf("after SetOffset: Offset %d, HashOffset %d, HashState %x; want 20, 10, %x", got.Offset, got.HashOffset, got.HashState, st10)
	}
	wantErr(t, "SetOffset(20) again", c.SetOffset(ctx, s.ID, 20), nil)

	// The state at the current offset replaces the lagging one.
	st20 := hashState(t, "01234567890123456789")
	wantErr(t, "CommitOffset(20)", c.CommitOffset(ctx, s.ID, 20, st20), nil)
	after := get(t, c, s.ID)
	if after.Offset != 20 || after.HashOffset != 20 || string(after.HashState) != string(st20) {
		t.Errorf("after CommitOffset(20): Offset %d, HashOffset %d; want 20, 20 with the new state", after.Offset, after.HashOffset)
	}
	if !after.UpdatedAt.After(got.UpdatedAt) {
		t.Errorf("UpdatedAt = %v; want after %v", after.UpdatedAt, got.UpdatedAt)
	}

	wantErr(t, "Complete(30)", c.Complete(ctx, s.ID, 30), nil)
	if done := get(t, c, s.ID); done.HashOffset != 20 || string(done.HashState) != string(st20) {
		t.Errorf("after Complete: HashOffset %d; want 20 with the state kept", done.HashOffset)
	}
}

// --- finalization ---

func testFinalize(t *testing.T, c catalog.Catalog) {
	ctx := t.Context()
	d := digest(t, "content")
	a := create(t, c, catalog.Session{ID: id(t, "a"), Owner: "alice", Size: size(5), Offset: 3,
		Storage: map[string]string{"Type": "filestore", "Path": "/data/a"}})

	blob, existed := finalize(t, c, a.ID, 5, d)
	if existed {
		t.Errorf("first Finalize: existed = true; want false")
	}
	want := catalog.Blob{SHA256: d, Size: 5, UploadID: a.ID, Storage: a.Storage, Refs: 1, CreatedAt: blob.CreatedAt}
	checkBlob(t, "blob from the first Finalize", blob, want)
	if blob.CreatedAt.IsZero() {
		t.Errorf("blob CreatedAt is zero")
	}
	checkBlob(t, "GetBlob after the first Finalize", getBlob(t, c, d), want)

	aDone := get(t, c, a.ID)
	wantA := a
	wantA.State, wantA.Offset, wantA.SHA256, wantA.BlobSHA256 = complete, 5, d, d
	wantA.UpdatedAt, wantA.CompletedAt = aDone.UpdatedAt, aDone.CompletedAt
	checkSession(t, aDone, wantA)
	if !aDone.UpdatedAt.After(a.UpdatedAt) || aDone.CompletedAt == nil || aDone.CompletedAt.After(aDone.UpdatedAt) {
		t.Errorf("UpdatedAt %v, CompletedAt %s; want a change after %v, completed by then", aDone.UpdatedAt, fmtTime(aDone.CompletedAt), a.UpdatedAt)
	}

	// The same content again: a reference to the first object.
	b := create(t, c, catalog.Session{ID: id(t, "b"), Owner: "bob", Size: size(5), Offset: 5,
		Storage: map[string]string{"Type": "filestore", "Path": "/data/b"}})
	blob, existed = finalize(t, c, b.ID, 5, d)
	if !existed {
		t.Errorf("second Finalize: existed = false; want true")
	}
	want.Refs = 2
	checkBlob(t, "blob from the second Finalize", blob, want)
	bDone := get(t, c, b.ID)
	if bDone.State != complete || bDone.SHA256 != d || bDone.BlobSHA256 != d || bDone.Storage["Path"] != "/data/b" {
		t.Errorf("second session: State %s, SHA256 %q, BlobSHA256 %q, Storage %v; want complete on the blob, its own storage kept",
			bDone.State, bDone.SHA256, bDone.BlobSHA256, bDone.Storage)
	}

	// Retries after a crash report the same and change nothing.
	for _, s := range []catalog.Session{aDone, bDone} {
		blob, existed = finalize(t, c, s.ID, 5, d)
		if existed != (s.ID != a.ID) {
			t.Errorf("retried Finalize(%s): existed = %v; want %v", s.ID, existed, s.ID != a.ID)
		}
		checkBlob(t, "blob from a retried Finalize", blob, want)
		checkSession(t, get(t, c, s.ID), s)
	}

	// Another digest or size on a finalized session.
	_, _, err := c.Finalize(ctx, a.ID, 5, digest(t, "other"), "")
	wantErr(t, "Finalize with another digest", err, catalog.ErrConflict)
	_, _, err = c.Finalize(ctx, a.ID, 6, d, "")
	wantErr(t, "Finalize with another size", err, catalog.ErrConflict)
	checkSession(t, get(t, c, a.ID), aDone)

	// A session whose size is not the given one.
	other := digest(t, "six bytes")
	s6 := create(t, c, catalog.Session{ID: id(t, "six"), Size: size(6), Offset: 6})
	_, _, err = c.Finalize(ctx, s6.ID, 5, other, "")
	wantErr(t, "Finalize(5) on size 6", err, catalog.ErrConflict)
	_, _, err = c.Finalize(ctx, s6.ID, 7, other, "")
	wantErr(t, "Finalize(7) on size 6", err, catalog.ErrConflict)
	// The digest of 5 stored bytes with 6 bytes: nothing changes, the
	// session and the blob stay as they were.
	_, _, err = c.Finalize(ctx, s6.ID, 6, d, "")
	wantErr(t, "Finalize onto a blob of another size", err, catalog.ErrConflict)
	checkSession(t, get(t, c, s6.ID), s6)
	checkBlob(t, "blob after a refused Finalize", getBlob(t, c, d), want)
	if _, existed := finalize(t, c, s6.ID, 6, other); existed {
		t.Errorf("Finalize(six) with its own digest: existed = true; want false")
	}
}

func testFinalizeStates(t *testing.T, c catalog.Catalog) {
	ctx := t.Context()
	refused := func(name string, s catalog.Session, size int64) {
		t.Helper()
		s = create(t, c, s)
		_, _, err := c.Finalize(ctx, s.ID, size, digest(t, name), "")
		wantErr(t, "Finalize on "+name, err, catalog.ErrConflict)
		checkSession(t, get(t, c, s.ID), s)
		_, err = c.GetBlob(ctx, digest(t, name))
		wantErr(t, "GetBlob after Finalize on "+name, err, catalog.ErrNotFound)
	}
	refused("deferred", catalog.Session{ID: id(t, "deferred"), Offset: 5}, 5)
	refused("partial", catalog.Session{ID: id(t, "partial"), Size: size(5), Offset: 5, IsPartial: true}, 5)
	refused("complete partial", catalog.Session{ID: id(t, "complete-partial"), State: complete, Size: size(5), Offset: 5, IsPartial: true}, 5)
	refused("terminated", catalog.Session{ID: id(t, "terminated"), State: terminated, Size: size(5), Offset: 5}, 5)
	refused("failed", catalog.Session{ID: id(t, "failed"), State: failed, Size: size(5), Offset: 5}, 5)
	refused("complete at another size", catalog.Session{ID: id(t, "complete-other"), State: complete, Size: size(5), Offset: 5}, 4)
	refused("rejected", catalog.Session{ID: id(t, "rejected"), State: rejected, Size: size(5), Offset: 5}, 5)
	refused("expired", catalog.Session{ID: id(t, "expired"), State: expired, Size: size(5), Offset: 5}, 5)

	// A session completed without a digest (created complete, or by
	// Complete) is linked once, keeping its completion time.
	done := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	created := create(t, c, catalog.Session{ID: id(t, "created-complete"), State: complete, Size: size(3), Offset: 3,
		CreatedAt: done, UpdatedAt: done, CompletedAt: &done})
	d := digest(t, "created-complete")
	if _, existed := finalize(t, c, created.ID, 3, d); existed {
		t.Errorf("Finalize on a session created complete: existed = true; want false")
	}
	got := get(t, c, created.ID)
	if got.SHA256 != d || got.BlobSHA256 != d || got.CompletedAt == nil || !got.CompletedAt.Equal(done) {
		t.Errorf("SHA256 %q, BlobSHA256 %q, CompletedAt %s; want the digest linked and CompletedAt %v", got.SHA256, got.BlobSHA256, fmtTime(got.CompletedAt), done)
	}
	final := create(t, c, catalog.Session{ID: id(t, "final"), Size: size(3), IsFinal: true, PartialIDs: []string{id(t, "p")}})
	wantErr(t, "Complete(final)", c.Complete(ctx, final.ID, 3), nil)
	if _, existed := finalize(t, c, final.ID, 3, d); !existed {
		t.Errorf("Finalize on a completed final upload with known content: existed = false; want true")
	}
	if got := refs(t, c, d); got != 2 {
		t.Errorf("Refs = %d; want 2", got)
	}

	// No bytes at all is content too.
	empty := create(t, c, catalog.Session{ID: id(t, "empty"), Size: size(0)})
	blob, _ := finalize(t, c, empty.ID, 0, emptyDigest)
	if blob.Size != 0 || blob.SHA256 != emptyDigest {
		t.Errorf("blob of an empty upload: %+v", blob)
	}
	if got := get(t, c, empty.ID); got.State != complete || got.BlobSHA256 != emptyDigest {
		t.Errorf("empty upload: State %s, BlobSHA256 %q; want complete on the empty blob", got.State, got.BlobSHA256)
	}
}

var badDigests = []string{
	"",
	"abc",
	strings.Repeat("A", 64),
	strings.Repeat("0", 63) + "g",
	strings.Repeat("0", 65),
	strings.Repeat("0", 63) + "\x00",
	strings.Repeat("é", 32),
}

func testFinalizeInvalid(t *testing.T, c catalog.Catalog) {
	ctx := t.Context()
	s := create(t, c, catalog.Session{ID: id(t, "upload"), Size: size(5), Offset: 5})
	for _, bad := range badDigests {
		_, _, err := c.Finalize(ctx, s.ID, 5, bad, "")
		wantErr(t, fmt.Sprintf("Finalize(%q)", bad), err, catalog.ErrInvalid)
	}
	_, _, err := c.Finalize(ctx, s.ID, -1, digest(t, "x"), "")
	wantErr(t, "Finalize(-1)", err, catalog.ErrInvalid)
	checkSession(t, get(t, c, s.ID), s)
}

func testCreateDeduped(t *testing.T, c catalog.Catalog) {
	ctx := t.Context()
	d := digest(t, "content")
	a := create(t, c, catalog.Session{ID: id(t, "a"), Owner: "alice", Size: size(5), Offset: 5,
		Storage: map[string]string{"Path": "/data/a"}})
	blob, _ := finalize(t, c, a.ID, 5, d)

	in := catalog.Session{ID: id(t, "copy"), Owner: "bob", Size: size(5),
		Metadata: map[string]string{"filename": "copy.bin", "sha256": d}, Storage: blob.Storage}
	wantErr(t, "CreateDeduped", c.CreateDeduped(ctx, in, d), nil)
	got := get(t, c, in.ID)
	want := in
	want.State, want.Offset, want.SHA256, want.BlobSHA256 = complete, 5, d, d
	want.CreatedAt, want.UpdatedAt, want.CompletedAt = got.CreatedAt, got.CreatedAt, &got.CreatedAt
	checkSession(t, got, want)
	if got.CreatedAt.IsZero() {
		t.Errorf("CreatedAt is zero")
	}
	blob.Refs = 2
	checkBlob(t, "blob after CreateDeduped", getBlob(t, c, d), blob)

	// Stated complete at its size is the same thing.
	wantErr(t, "CreateDeduped(complete)", c.CreateDeduped(ctx,
		catalog.Session{ID: id(t, "explicit"), State: complete, Size: size(5), Offset: 5}, d), nil)
	if got := refs(t, c, d); got != 3 {
		t.Errorf("Refs = %d; want 3", got)
	}
}

func testCreateDedupedRefused(t *testing.T, c catalog.Catalog) {
	ctx := t.Context()
	d := digest(t, "content")
	a := create(t, c, catalog.Session{ID: id(t, "a"), Size: size(5), Offset: 5})
	finalize(t, c, a.ID, 5, d)
	aDone := get(t, c, a.ID)

	tests := []struct {
		name string
		s    catalog.Session
		sha  string
		want error
	}{
		{"missing blob", catalog.Session{Size: size(5)}, digest(t, "missing"), catalog.ErrNotFound},
		{"size mismatch", catalog.Session{Size: size(6)}, d, catalog.ErrConflict},
		{"taken id", catalog.Session{ID: a.ID, Size: size(5)}, d, catalog.ErrExists},
		{"deferred size", catalog.Session{}, d, catalog.ErrInvalid},
		{"receiving", catalog.Session{State: receiving, Size: size(5)}, d, catalog.ErrInvalid},
		{"terminated", catalog.Session{State: terminated, Size: size(5), Offset: 5}, d, catalog.ErrInvalid},
		{"short offset", catalog.Session{Size: size(5), Offset: 2}, d, catalog.ErrInvalid},
		{"partial", catalog.Session{Size: size(5), IsPartial: true}, d, catalog.ErrInvalid},
		{"final", catalog.Session{Size: size(5), IsFinal: true, PartialIDs: []string{"p"}}, d, catalog.ErrInvalid},
		{"hash state", catalog.Session{Size: size(5), HashState: []byte{1}}, d, catalog.ErrInvalid},
		{"other digest field", catalog.Session{Size: size(5), SHA256: emptyDigest}, d, catalog.ErrInvalid},
		{"bad metadata", catalog.Session{Size: size(5), Metadata: map[string]string{"k": "\x00"}}, d, catalog.ErrInvalid},
		{"bad digest", catalog.Session{Size: size(5)}, strings.ToUpper(d), catalog.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.s
			if s.ID == "" {
				s.ID = id(t, "upload")
			}
			wantErr(t, "CreateDeduped", c.CreateDeduped(ctx, s, tt.sha), tt.want)
			if s.ID != a.ID {
				_, err := c.Get(ctx, s.ID)
				wantErr(t, "Get after a refused CreateDeduped", err, catalog.ErrNotFound)
			}
		})
	}
	// Nothing of it stuck: one reference, the first session as it was.
	if got := refs(t, c, d); got != 1 {
		t.Errorf("Refs = %d; want 1", got)
	}
	checkSession(t, get(t, c, a.ID), aDone)
}

// --- release ---

func testRelease(t *testing.T, c catalog.Catalog) {
	ctx := t.Context()
	d := digest(t, "content")
	storageA := map[string]string{"Path": "/data/a"}
	a := create(t, c, catalog.Session{ID: id(t, "a"), Size: size(4), Offset: 4, Storage: storageA})
	first, _ := finalize(t, c, a.ID, 4, d)
	b := create(t, c, catalog.Session{ID: id(t, "b"), Size: size(4), Offset: 4, Storage: map[string]string{"Path": "/data/b"}})
	finalize(t, c, b.ID, 4, d)
	x := catalog.Session{ID: id(t, "x"), Size: size(4)}
	wantErr(t, "CreateDeduped", c.CreateDeduped(ctx, x, d), nil)
	want := first
	want.Refs = 3
	checkBlob(t, "blob with three references", getBlob(t, c, d), want)

	bDone := get(t, c, b.ID)
	blob, last, err := c.Release(ctx, b.ID)
	wantErr(t, "Release(b)", err, nil)
	want.Refs = 2
	checkBlob(t, "blob from Release(b)", blob, want)
	if last {
		t.Errorf("Release(b): last = true; want false")
	}
	got := get(t, c, b.ID)
	wantB := bDone
	wantB.State, wantB.BlobSHA256, wantB.UpdatedAt = terminated, "", got.UpdatedAt
	checkSession(t, got, wantB) // SHA256 and CompletedAt stay
	if !got.UpdatedAt.After(bDone.UpdatedAt) {
		t.Errorf("UpdatedAt = %v; want after %v", got.UpdatedAt, bDone.UpdatedAt)
	}

	// Again: a no-op.
	blob, last, err = c.Release(ctx, b.ID)
	wantErr(t, "Release(b) again", err, nil)
	if last || blob.SHA256 != "" {
		t.Errorf("Release(b) again = %+v, %v; want a zero Blob, false", blob, last)
	}
	checkSession(t, get(t, c, b.ID), got)

	// The session whose object holds the bytes goes; the bytes stay.
	blob, last, err = c.Release(ctx, a.ID)
	wantErr(t, "Release(a)", err, nil)
	want.Refs = 1
	checkBlob(t, "blob from Release(a)", blob, want)
	if last {
		t.Errorf("Release(a): last = true; want false")
	}

	blob, last, err = c.Release(ctx, x.ID)
	wantErr(t, "Release(x)", err, nil)
	want.Refs = 0
	checkBlob(t, "blob from the last Release", blob, want)
	if !last {
		t.Errorf("last Release: last = false; want true")
	}
	_, err = c.GetBlob(ctx, d)
	wantErr(t, "GetBlob after the last Release", err, catalog.ErrNotFound)

	// The content can be stored anew, from another object.
	again := create(t, c, catalog.Session{ID: id(t, "again"), Size: size(4), Offset: 4})
	blob, existed := finalize(t, c, again.ID, 4, d)
	if existed || blob.UploadID != again.ID || blob.Refs != 1 {
		t.Errorf("Finalize after the blob went = %+v, existed %v; want a new blob from %s", blob, existed, again.ID)
	}
}

func testReleaseStates(t *testing.T, c catalog.Catalog) {
	ctx := t.Context()
	// Sessions without a blob are just terminated.
	for _, s := range []catalog.Session{
		{ID: id(t, "receiving"), Size: size(5), Offset: 2},
		{ID: id(t, "complete"), State: complete, Size: size(5), Offset: 5},
		{ID: id(t, "partial"), State: complete, Size: size(5), Offset: 5, IsPartial: true},
	} {
		s = create(t, c, s)
		blob, last, err := c.Release(ctx, s.ID)
		wantErr(t, "Release("+s.ID+")", err, nil)
		if last || blob.SHA256 != "" {
			t.Errorf("Release(%s) = %+v, %v; want a zero Blob, false", s.ID, blob, last)
		}
		got := get(t, c, s.ID)
		want := s
		want.State, want.UpdatedAt = terminated, got.UpdatedAt
		checkSession(t, got, want)
	}

	for _, st := range []catalog.State{failed, rejected, expired} {
		f := create(t, c, catalog.Session{ID: id(t, string(st)), State: st, Size: size(5), Offset: 5})
		_, _, err := c.Release(ctx, f.ID)
		wantErr(t, "Release on "+string(st), err, catalog.ErrConflict)
		checkSession(t, get(t, c, f.ID), f)
	}

	// A reference is dropped only through Release.
	d := digest(t, "content")
	s := create(t, c, catalog.Session{ID: id(t, "linked"), Size: size(5), Offset: 5})
	finalize(t, c, s.ID, 5, d)
	linked := get(t, c, s.ID)
	wantErr(t, "SetState(terminated) on a session with a blob", c.SetState(ctx, s.ID, terminated), catalog.ErrConflict)
	wantErr(t, "SetState(failed) on a session with a blob", c.SetState(ctx, s.ID, failed), catalog.ErrConflict)
	checkSession(t, get(t, c, s.ID), linked)
	if got := refs(t, c, d); got != 1 {
		t.Errorf("Refs = %d; want 1", got)
	}
}

// --- lookups ---

func testBlobNotFound(t *testing.T, c catalog.Catalog) {
	ctx := t.Context()
	missing := digest(t, "missing")
	_, err := c.GetBlob(ctx, missing)
	wantErr(t, "GetBlob", err, catalog.ErrNotFound)
	_, err = c.FindBlob(ctx, missing, "alice", true)
	wantErr(t, "FindBlob(global)", err, catalog.ErrNotFound)
	_, err = c.FindBlob(ctx, missing, "alice", false)
	wantErr(t, "FindBlob(owner)", err, catalog.ErrNotFound)
	for _, bad := range badDigests {
		_, err := c.GetBlob(ctx, bad)
		wantErr(t, fmt.Sprintf("GetBlob(%q)", bad), err, catalog.ErrInvalid)
		_, err = c.FindBlob(ctx, bad, "alice", false)
		wantErr(t, fmt.Sprintf("FindBlob(%q, owner)", bad), err, catalog.ErrInvalid)
		_, err = c.FindBlob(ctx, bad, "alice", true)
		wantErr(t, fmt.Sprintf("FindBlob(%q, global)", bad), err, catalog.ErrInvalid)
	}
}

func testFindBlob(t *testing.T, c catalog.Catalog) {
	ctx := t.Context()
	alices, bobs, anons := digest(t, "alice's"), digest(t, "bob's"), digest(t, "anonymous")
	a := create(t, c, catalog.Session{ID: id(t, "a"), Owner: "alice", Size: size(3), Offset: 3})
	finalize(t, c, a.ID, 3, alices)
	b := create(t, c, catalog.Session{ID: id(t, "b"), Owner: "bob", Size: size(4), Offset: 4})
	finalize(t, c, b.ID, 4, bobs)
	anon := create(t, c, catalog.Session{ID: id(t, "anon"), Size: size(5), Offset: 5})
	finalize(t, c, anon.ID, 5, anons)
	// bob has a session of alice's content that is not complete: it does
	// not count.
	create(t, c, catalog.Session{ID: id(t, "b-receiving"), Owner: "bob", Size: size(3), Offset: 3,
		Metadata: map[string]string{"sha256": alices}})

	check := func(sha, owner string, global, found bool) {
		t.Helper()
		what := fmt.Sprintf("FindBlob(%.8s, %q, global %v)", sha, owner, global)
		blob, err := c.FindBlob(ctx, sha, owner, global)
		switch {
		case found && err == nil:
			checkBlob(t, what, blob, getBlob(t, c, sha))
		case found:
			t.Errorf("%s = %v; want the blob", what, err)
		default:
			wantErr(t, what, err, catalog.ErrNotFound)
		}
	}
	check(alices, "alice", false, true)
	check(alices, "bob", false, false)
	check(alices, "bob", true, true)
	check(alices, "", false, false)
	check(bobs, "alice", false, false)
	check(bobs, "bob", false, true)
	check(anons, "", false, true) // "" is the anonymous owner
	check(anons, "alice", false, false)
	check(anons, "alice", true, true)
	check(alices, "ALICE", false, false)
	check(alices, "\xff", false, false)
	check(alices, "alice\x00", false, false)
	// Nor does it once expired.
	if ok, err := c.Expire(ctx, id(t, "b-receiving"), time.Now().Add(time.Hour)); err != nil || !ok {
		t.Fatalf("Expire(b-receiving) = %v, %v; want true", ok, err)
	}
	check(alices, "bob", false, false)

	// bob gets alice's content too, then lets it go.
	copyID := id(t, "b-copy")
	wantErr(t, "CreateDeduped", c.CreateDeduped(ctx, catalog.Session{ID: copyID, Owner: "bob", Size: size(3)}, alices), nil)
	check(alices, "bob", false, true)
	if _, _, err := c.Release(ctx, copyID); err != nil {
		t.Fatalf("Release = %v", err)
	}
	check(alices, "bob", false, false)
	check(alices, "alice", false, true)
	// carol gets it too, and is refused it: rejected sessions do not count.
	carolID := id(t, "c-copy")
	wantErr(t, "CreateDeduped", c.CreateDeduped(ctx, catalog.Session{ID: carolID, Owner: "carol", Size: size(3)}, alices), nil)
	check(alices, "carol", false, true)
	if _, _, err := c.Reject(ctx, carolID); err != nil {
		t.Fatalf("Reject = %v", err)
	}
	check(alices, "carol", false, false)
	check(alices, "carol", true, true)
	if _, _, err := c.Release(ctx, a.ID); err != nil {
		t.Fatalf("Release = %v", err)
	}
	check(alices, "alice", false, false)
	check(alices, "alice", true, false)
}

// --- concurrency ---

// Identical uploads completing at once store the content once, and their
// releases find exactly one last reference.
func testConcurrentFinalizeAndRelease(t *testing.T, c catalog.Catalog) {
	const n = 16
	d := digest(t, "content")
	sessions := make([]catalog.Session, n)
	for i := range sessions {
		sessions[i] = create(t, c, catalog.Session{ID: id(t, fmt.Sprint(i)), Size: size(8), Offset: 8,
			Storage: map[string]string{"Path": fmt.Sprint("/data/", i)}})
	}
	var (
		wg      sync.WaitGroup
		start   = make(chan struct{})
		blobs   = make([]catalog.Blob, n)
		existed = make([]bool, n)
		errs    = make([]error, n)
	)
	for i, s := range sessions {
		wg.Go(func() {
			<-start
			blobs[i], existed[i], errs[i] = c.Finalize(t.Context(), s.ID, 8, d, "")
		})
	}
	close(start)
	wg.Wait()
	var creators []string
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("Finalize(%d) = %v", i, errs[i])
		}
		if !existed[i] {
			creators = append(creators, sessions[i].ID)
		}
	}
	if len(creators) != 1 {
		t.Fatalf("%d finalizations created the blob (%q); want exactly 1", len(creators), creators)
	}
	blob := getBlob(t, c, d)
	if blob.Refs != n || blob.UploadID != creators[0] || blob.Storage["Path"] != get(t, c, creators[0]).Storage["Path"] {
		t.Errorf("blob = %+v; want %d references to the object of %s", blob, n, creators[0])
	}
	for i, b := range blobs {
		if b.UploadID != creators[0] || b.Refs < 1 || b.Refs > n {
			t.Errorf("Finalize(%d) returned %+v; want the blob of %s", i, b, creators[0])
		}
		if got := get(t, c, sessions[i].ID); got.BlobSHA256 != d || got.State != complete {
			t.Errorf("session %d: State %s, BlobSHA256 %q; want complete on the blob", i, got.State, got.BlobSHA256)
		}
	}

	start = make(chan struct{})
	lasts := make([]bool, n)
	for i, s := range sessions {
		wg.Go(func() {
			<-start
			blobs[i], lasts[i], errs[i] = c.Release(t.Context(), s.ID)
		})
	}
	close(start)
	wg.Wait()
	var last int
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("Release(%d) = %v", i, errs[i])
		}
		if lasts[i] {
			last++
			if blobs[i].Refs != 0 || blobs[i].SHA256 != d {
				t.Errorf("last Release returned %+v; want the blob with no references", blobs[i])
			}
		}
	}
	if last != 1 {
		t.Errorf("%d releases were the last; want exactly 1", last)
	}
	_, err := c.GetBlob(t.Context(), d)
	wantErr(t, "GetBlob after every Release", err, catalog.ErrNotFound)
}

// The release of a blob's last reference racing a finalization of the same
// content: whichever wins, the finalized session references a blob that
// exists, from an object that is not deleted.
func testReleaseRacesFinalize(t *testing.T, c catalog.Catalog) {
	for round := range 20 {
		d := digest(t, fmt.Sprint(round))
		a := create(t, c, catalog.Session{ID: id(t, fmt.Sprint(round, "a")), Size: size(2), Offset: 2})
		finalize(t, c, a.ID, 2, d)
		b := create(t, c, catalog.Session{ID: id(t, fmt.Sprint(round, "b")), Size: size(2), Offset: 2})

		var (
			wg                    sync.WaitGroup
			start                 = make(chan struct{})
			released, finalized   catalog.Blob
			last, existed         bool
			releaseErr, finishErr error
		)
		wg.Go(func() { <-start; released, last, releaseErr = c.Release(t.Context(), a.ID) })
		wg.Go(func() { <-start; finalized, existed, finishErr = c.Finalize(t.Context(), b.ID, 2, d, "") })
		close(start)
		wg.Wait()
		if releaseErr != nil || finishErr != nil {
			t.Fatalf("round %d: Release = %v, Finalize = %v", round, releaseErr, finishErr)
		}
		blob, err := c.GetBlob(t.Context(), d)
		if err != nil {
			t.Fatalf("round %d: GetBlob = %v; the finalized session points at no blob", round, err)
		}
		if got := get(t, c, b.ID); got.BlobSHA256 != d {
			t.Errorf("round %d: BlobSHA256 = %q; want %s", round, got.BlobSHA256, d)
		}
		switch {
		case last && !existed && blob.UploadID == b.ID && blob.Refs == 1 && released.UploadID == a.ID:
			// The release went first and deleted a's bytes; b's are the blob.
		case !last && existed && blob.UploadID == a.ID && blob.Refs == 1 && finalized.UploadID == a.ID:
			// The finalization went first; a's bytes stay for b.
		default:
			t.Errorf("round %d: Release last=%v, Finalize existed=%v, blob %+v; want one consistent order", round, last, existed, blob)
		}
	}
}

// The same race with a deduplicated creation: it either references the
// blob before it goes, or finds it gone (ErrNotFound) and writes nothing.
func testReleaseRacesCreateDeduped(t *testing.T, c catalog.Catalog) {
	for round := range 20 {
		d := digest(t, fmt.Sprint(round))
		a := create(t, c, catalog.Session{ID: id(t, fmt.Sprint(round, "a")), Size: size(2), Offset: 2})
		finalize(t, c, a.ID, 2, d)
		x := catalog.Session{ID: id(t, fmt.Sprint(round, "x")), Size: size(2)}

		var (
			wg                    sync.WaitGroup
			start                 = make(chan struct{})
			last                  bool
			releaseErr, createErr error
		)
		wg.Go(func() { <-start; _, last, releaseErr = c.Release(t.Context(), a.ID) })
		wg.Go(func() { <-start; createErr = c.CreateDeduped(t.Context(), x, d) })
		close(start)
		wg.Wait()
		if releaseErr != nil {
			t.Fatalf("round %d: Release = %v", round, releaseErr)
		}
		blob, blobErr := c.GetBlob(t.Context(), d)
		_, getErr := c.Get(t.Context(), x.ID)
		switch {
		case last && errors.Is(createErr, catalog.ErrNotFound) && errors.Is(blobErr, catalog.ErrNotFound) && errors.Is(getErr, catalog.ErrNotFound):
		case !last && createErr == nil && blobErr == nil && blob.Refs == 1 && getErr == nil:
		default:
			t.Errorf("round %d: Release last=%v, CreateDeduped = %v, GetBlob = %+v, %v, Get = %v; want one consistent order",
				round, last, createErr, blob, blobErr, getErr)
		}
	}
}
