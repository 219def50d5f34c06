package catalogtest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/intake-dev/intake/pkg/catalog"
)

// Expiry sweeps read the whole catalog (ListExpired, PurgeEvents) or count
// events, so most of these subtests have a catalog to themselves. Idle
// sessions are created with times hours in the past and expired with a
// cutoff between those times and now, far from any clock skew between the
// test and a database server.

// expire calls Expire with a cutoff an hour from now, which any session
// still receiving is idle before, and checks its verdict.
func expire(ctx context.Context, c catalog.Catalog, id string, want bool) error {
	got, err := c.Expire(ctx, id, time.Now().Add(time.Hour))
	if err == nil && got != want {
		return fmt.Errorf("Expire(%s) = %v; want %v", id, got, want)
	}
	return err
}

func listExpired(t *testing.T, c catalog.Catalog, cutoff time.Time, limit int) []catalog.Session {
	t.Helper()
	ss, err := c.ListExpired(t.Context(), cutoff, limit)
	if err != nil {
		t.Fatalf("ListExpired(%v, %d) = %v", cutoff, limit, err)
	}
	return ss
}

func testListExpired(t *testing.T, c catalog.Catalog) {
	ctx := t.Context()
	base := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	at := func(sec int) time.Time { return base.Add(time.Duration(sec) * time.Second) }
	// Created in the opposite order to their last change: the list goes
	// by UpdatedAt, not CreatedAt, and breaks ties on the id.
	fixtures := []catalog.Session{
		{ID: "b", Size: size(9), Offset: 2, CreatedAt: at(-30), UpdatedAt: at(1)},
		{ID: "a", Owner: "alice", Size: size(9), CreatedAt: at(-20), UpdatedAt: at(1),
			Metadata: map[string]string{"filename": "ä.txt"}, Storage: map[string]string{"Path": "/a"}},
		{ID: "c", Offset: 5, CreatedAt: at(-10), UpdatedAt: at(0)}, // deferred length
		{ID: "edge", CreatedAt: at(-5), UpdatedAt: at(10)},
		{ID: "touched", CreatedAt: at(-40), UpdatedAt: at(2)},
		{ID: "complete", State: complete, Size: size(1), Offset: 1, CreatedAt: at(-1), UpdatedAt: at(0)},
		{ID: "terminated", State: terminated, CreatedAt: at(-1), UpdatedAt: at(0)},
		{ID: "failed", State: failed, CreatedAt: at(-1), UpdatedAt: at(0)},
		{ID: "rejected", State: rejected, CreatedAt: at(-1), UpdatedAt: at(0)},
		{ID: "expired", State: expired, CreatedAt: at(-1), UpdatedAt: at(0)},
		{ID: "recent"},
	}
	for _, s := range fixtures {
		create(t, c, s)
	}
	// A change is activity: it takes the session out of past sweeps.
	wantErr(t, "DeclareLength(touched)", c.DeclareLength(ctx, "touched", 9), nil)
	// ListExpired, like List, leaves the digest state out.
	wantErr(t, "CommitOffset(recent)", c.CommitOffset(ctx, "recent", 3, []byte("state")), nil)
	stored := map[string]catalog.Session{}
	for _, s := range fixtures {
		stored[s.ID] = get(t, c, s.ID)
	}

	zone := time.FixedZone("x", 5*3600)
	tests := []struct {
		name   string
		cutoff time.Time
		limit  int
		want   []string
	}{
		{"idle", at(10), 100, []string{"c", "a", "b"}},
		{"limit", at(10), 2, []string{"c", "a"}},
		{"limit 1", at(10), 1, []string{"c"}},
		{"cutoff is strict", at(1), 100, []string{"c"}},
		{"cutoff below a microsecond", at(1).Add(500 * time.Nanosecond), 100, []string{"c"}},
		{"cutoff a microsecond later", at(1).Add(time.Microsecond), 100, []string{"c", "a", "b"}},
		{"cutoff in another zone", at(1).Add(time.Microsecond).In(zone), 100, []string{"c", "a", "b"}},
		{"cutoff before all", at(0), 100, nil},
		{"cutoff at the edge", at(10).Add(time.Microsecond), 100, []string{"c", "a", "b", "edge"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := listExpired(t, c, tt.cutoff, tt.limit)
			if !slices.Equal(ids(got), tt.want) && !(len(got) == 0 && len(tt.want) == 0) {
				t.Fatalf("ListExpired(%v, %d) = %q; want %q", tt.cutoff, tt.limit, ids(got), tt.want)
			}
			for _, s := range got {
				checkSession(t, s, stored[s.ID])
			}
		})
	}

	// Every receiving session qualifies for a cutoff in the future, in the
	// order of their last change.
	var receivingIDs []string
	for id, s := range stored {
		if s.State == receiving {
			receivingIDs = append(receivingIDs, id)
		}
	}
	slices.SortFunc(receivingIDs, func(x, y string) int {
		if c := stored[x].UpdatedAt.Compare(stored[y].UpdatedAt); c != 0 {
			return c
		}
		return strings.Compare(x, y)
	})
	all := listExpired(t, c, time.Now().Add(time.Hour), 100)
	if !slices.Equal(ids(all), receivingIDs) {
		t.Errorf("ListExpired(in an hour) = %q; want %q", ids(all), receivingIDs)
	}
	for _, s := range all {
		want := stored[s.ID]
		want.HashState = nil
		checkSession(t, s, want)
	}
	if r := stored["recent"]; r.HashState == nil || r.HashOffset != 3 {
		t.Errorf("recent: HashState %x, HashOffset %d; want a state at 3", r.HashState, r.HashOffset)
	}

	for _, limit := range []int{0, -1} {
		_, err := c.ListExpired(ctx, at(10), limit)
		wantErr(t, fmt.Sprintf("ListExpired(limit %d)", limit), err, catalog.ErrInvalid)
	}
}

// testExpire expires idle sessions, checks the change and its event, and
// that nothing moves an expired session on.
func testExpire(t *testing.T, c catalog.Catalog) {
	ctx := t.Context()
	idle := micro(time.Now().Add(-2 * time.Hour))
	cutoff := time.Now().Add(-time.Hour)
	s := create(t, c, catalog.Session{ID: "idle", Owner: "alice", Size: size(10), Offset: 4,
		Metadata: map[string]string{"filename": "big.iso"}, Storage: map[string]string{"Type": "s3store", "Key": "idle"},
		CreatedAt: idle.Add(-time.Hour), UpdatedAt: idle})
	d := create(t, c, catalog.Session{ID: "deferred", Owner: "alice", Offset: 3, CreatedAt: idle, UpdatedAt: idle})
	usage := func(want int64) {
		t.Helper()
		if got, err := c.OwnerUsage(ctx, "alice"); err != nil || got != want {
			t.Errorf("OwnerUsage(alice) = %d, %v; want %d", got, err, want)
		}
	}
	usage(13)
	events := len(allEvents(t, c))

	ok, err := c.Expire(ctx, s.ID, cutoff)
	if err != nil || !ok {
		t.Fatalf("Expire(idle) = %v, %v; want true", ok, err)
	}
	got := get(t, c, s.ID)
	want := s
	want.State, want.UpdatedAt = expired, got.UpdatedAt
	checkSession(t, got, want) // offset, storage, metadata stay
	if !got.UpdatedAt.After(s.UpdatedAt) {
		t.Errorf("UpdatedAt = %v; want after %v", got.UpdatedAt, s.UpdatedAt)
	}
	all := allEvents(t, c)
	if len(all) != events+1 {
		t.Fatalf("%d events after Expire; want %d, exactly one new", len(all), events+1)
	}
	checkNewEvent(t, c, all[len(all)-1], catalog.EventExpired, got)
	events++

	// Expiring again changes nothing, whatever the cutoff.
	for _, cut := range []time.Time{cutoff, time.Now().Add(time.Hour)} {
		ok, err := c.Expire(ctx, s.ID, cut)
		if err != nil || ok {
			t.Errorf("Expire(idle) again = %v, %v; want false, nil", ok, err)
		}
	}
	checkSession(t, get(t, c, s.ID), got)
	if list := listExpired(t, c, time.Now().Add(time.Hour), 10); !slices.Equal(ids(list), []string{d.ID}) {
		t.Errorf("ListExpired after Expire = %q; want [%s]", ids(list), d.ID)
	}
	if ok, err := c.Expire(ctx, d.ID, cutoff); err != nil || !ok {
		t.Fatalf("Expire(deferred) = %v, %v; want true", ok, err)
	}
	usage(0)
	events++

	// Expired is final: every change is refused, like one to a terminated
	// session, and writes nothing.
	dig := digest(t, "content")
	for _, id := range []string{s.ID, d.ID} {
		before := get(t, c, id)
		refused := func(what string, err error) {
			t.Helper()
			wantErr(t, what+" on expired "+id, err, catalog.ErrConflict)
		}
		refused("SetState(terminated)", c.SetState(ctx, id, terminated))
		refused("SetState(failed)", c.SetState(ctx, id, failed))
		_, _, err := c.Release(ctx, id)
		refused("Release", err)
		_, _, err = c.Reject(ctx, id)
		refused("Reject", err)
		_, _, err = c.Finalize(ctx, id, 10, dig, "")
		refused("Finalize", err)
		refused("Complete", c.Complete(ctx, id, 10))
		refused("SetOffset(current)", c.SetOffset(ctx, id, before.Offset))
		refused("SetOffset(higher)", c.SetOffset(ctx, id, before.Offset+1))
		refused("CommitOffset(current)", c.CommitOffset(ctx, id, before.Offset, []byte{1}))
		refused("CommitOffset(higher)", c.CommitOffset(ctx, id, before.Offset+1, []byte{1}))
		_, _, err = c.Finalize(ctx, id, 10, dig, "text/plain")
		refused("Finalize with a type", err)
		refused("DeclareLength(other)", c.DeclareLength(ctx, id, 11))
		checkSession(t, get(t, c, id), before)
	}
	wantErr(t, "SetState(expired)", c.SetState(ctx, s.ID, expired), catalog.ErrInvalid)
	_, err = c.GetBlob(ctx, dig)
	wantErr(t, "GetBlob after Finalize on expired", err, catalog.ErrNotFound)
	if got := len(allEvents(t, c)); got != events {
		t.Errorf("%d events after refused changes; want %d", got, events)
	}
}

// testExpireStates checks that Expire changes only a receiving session
// idle since strictly before the cutoff.
func testExpireStates(t *testing.T, c catalog.Catalog) {
	ctx := t.Context()
	old := micro(time.Now().Add(-2 * time.Hour))
	cutoff := time.Now().Add(-time.Hour)
	kept := func(s catalog.Session, cutoff time.Time) {
		t.Helper()
		ok, err := c.Expire(ctx, s.ID, cutoff)
		if err != nil || ok {
			t.Errorf("Expire(%s, %v) = %v, %v; want false, nil", s.ID, cutoff, ok, err)
		}
		checkSession(t, get(t, c, s.ID), s)
	}
	for _, st := range []catalog.State{complete, terminated, failed, rejected, expired} {
		kept(create(t, c, catalog.Session{ID: id(t, string(st)), State: st, Size: size(5), Offset: 5,
			CreatedAt: old, UpdatedAt: old}), cutoff)
	}
	// Completed uploads are never touched by expiry, blob or not.
	linked := create(t, c, catalog.Session{ID: id(t, "linked"), Size: size(3), Offset: 3})
	d := digest(t, "content")
	finalize(t, c, linked.ID, 3, d)
	kept(get(t, c, linked.ID), time.Now().Add(time.Hour))
	if got := refs(t, c, d); got != 1 {
		t.Errorf("Refs = %d; want 1", got)
	}
	kept(create(t, c, catalog.Session{ID: id(t, "recent"), Size: size(5)}), cutoff)

	// Idle since strictly before the cutoff, at microsecond precision.
	edge := create(t, c, catalog.Session{ID: id(t, "edge"), Size: size(5), CreatedAt: old, UpdatedAt: old})
	kept(edge, old)
	kept(edge, old.Add(500*time.Nanosecond))
	if ok, err := c.Expire(ctx, edge.ID, old.Add(time.Microsecond)); err != nil || !ok {
		t.Errorf("Expire(edge) a microsecond after its last change = %v, %v; want true", ok, err)
	}
	if got := get(t, c, edge.ID); got.State != expired {
		t.Errorf("edge: State %s; want expired", got.State)
	}
}

// testExpireLosesToCommitOffset is the sweep's race: a PATCH commits
// after the session was listed, before Expire. Expire must see the change
// and leave the session alone.
func testExpireLosesToCommitOffset(t *testing.T, c catalog.Catalog) {
	ctx := t.Context()
	idle := micro(time.Now().Add(-2 * time.Hour))
	cutoff := time.Now().Add(-time.Hour)
	s := create(t, c, catalog.Session{ID: "upload", Size: size(10), CreatedAt: idle, UpdatedAt: idle})
	if list := listExpired(t, c, cutoff, 10); !slices.Equal(ids(list), []string{s.ID}) {
		t.Fatalf("ListExpired = %q; want [%s]", ids(list), s.ID)
	}
	wantErr(t, "CommitOffset", c.CommitOffset(ctx, s.ID, 4, hashState(t, "0123")), nil)
	patched := get(t, c, s.ID)
	events := len(allEvents(t, c))

	ok, err := c.Expire(ctx, s.ID, cutoff)
	if err != nil || ok {
		t.Fatalf("Expire after a PATCH = %v, %v; want false, nil", ok, err)
	}
	checkSession(t, get(t, c, s.ID), patched)
	if got := len(allEvents(t, c)); got != events {
		t.Errorf("%d events; want %d, none new", got, events)
	}
	if list := listExpired(t, c, cutoff, 10); len(list) != 0 {
		t.Errorf("ListExpired after a PATCH = %q; want none", ids(list))
	}
	wantErr(t, "CommitOffset after the lost Expire", c.CommitOffset(ctx, s.ID, 10, hashState(t, "0123456789")), nil)
}

// testExpireRacesCommitOffset runs the two at once: exactly one wins,
// and the session is as the winner left it.
func testExpireRacesCommitOffset(t *testing.T, c catalog.Catalog) {
	ctx := t.Context()
	idle := micro(time.Now().Add(-2 * time.Hour))
	cutoff := time.Now().Add(-time.Hour)
	state := hashState(t, "012345")
	for i := range 20 {
		s := create(t, c, catalog.Session{ID: id(t, fmt.Sprint(i)), Size: size(10), Offset: 2, CreatedAt: idle, UpdatedAt: idle})
		var (
			wg                   sync.WaitGroup
			ok                   bool
			expireErr, commitErr error
		)
		wg.Go(func() { ok, expireErr = c.Expire(ctx, s.ID, cutoff) })
		wg.Go(func() { commitErr = c.CommitOffset(ctx, s.ID, 6, state) })
		wg.Wait()

		got := get(t, c, s.ID)
		switch {
		case expireErr == nil && ok && errors.Is(commitErr, catalog.ErrConflict) &&
			got.State == expired && got.Offset == 2 && got.HashState == nil:
		case expireErr == nil && !ok && commitErr == nil &&
			got.State == receiving && got.Offset == 6 && string(got.HashState) == string(state):
		default:
			t.Errorf("round %d: Expire = %v, %v, CommitOffset = %v, final %s at %d; want exactly one winner",
				i, ok, expireErr, commitErr, got.State, got.Offset)
		}
	}
}

func testKnown(t *testing.T, c catalog.Catalog) {
	ctx := t.Context()
	for _, in := range [][]string{nil, {}} {
		got, err := c.Known(ctx, in)
		if err != nil || got == nil || len(got) != 0 {
			t.Errorf("Known(%#v) = %v, %v; want an empty map", in, got, err)
		}
	}

	a := create(t, c, catalog.Session{ID: id(t, "a")})
	b := create(t, c, catalog.Session{ID: id(t, "b"), State: terminated})
	e := create(t, c, catalog.Session{ID: id(t, "e"), State: expired})
	check := func(what string, in []string, want ...string) {
		t.Helper()
		got, err := c.Known(ctx, in)
		if err != nil {
			t.Fatalf("Known(%s) = %v", what, err)
		}
		var gotIDs []string
		for id, known := range got {
			if !known {
				t.Errorf("Known(%s) holds %q as false; want only known ids", what, id)
			}
			gotIDs = append(gotIDs, id)
		}
		slices.Sort(gotIDs)
		slices.Sort(want)
		if !slices.Equal(gotIDs, want) {
			t.Errorf("Known(%s) = %q; want %q", what, gotIDs, want)
		}
	}
	// Any state; repeats; ids compared exactly; ids no session can have
	// are simply not known.
	check("mixed", []string{a.ID, id(t, "missing"), b.ID, a.ID, e.ID, strings.ToUpper(a.ID), "", "x\x00", "\xff"},
		a.ID, b.ID, e.ID)
	check("none known", []string{id(t, "missing"), "\xff"})

	// Many ids at once, the known ones spread out.
	var many, known []string
	for i := range 2500 {
		many = append(many, id(t, fmt.Sprint("n", i)))
	}
	for _, i := range []int{0, 999, 1000, 1001, 2047, 2499} {
		create(t, c, catalog.Session{ID: many[i]})
		known = append(known, many[i])
	}
	check("2500 ids", many, known...)
}

func testOwnerUsage(t *testing.T, c catalog.Catalog) {
	ctx := t.Context()
	owner := id(t, "owner")
	usage := func(what string, owner string, want int64) {
		t.Helper()
		if got, err := c.OwnerUsage(ctx, owner); err != nil || got != want {
			t.Errorf("OwnerUsage(%q) %s = %d, %v; want %d", owner, what, got, err, want)
		}
	}
	usage("with no sessions", owner, 0)
	for _, s := range []catalog.Session{
		{ID: id(t, "receiving"), Size: size(10), Offset: 3}, // its declared size
		{ID: id(t, "deferred"), Offset: 7},                  // its offset
		{ID: id(t, "complete"), State: complete, Size: size(5), Offset: 5},
		{ID: id(t, "linked"), Size: size(4), Offset: 4},
		{ID: id(t, "terminated"), State: terminated, Size: size(100), Offset: 100},
		{ID: id(t, "failed"), State: failed, Size: size(100), Offset: 100},
		{ID: id(t, "rejected"), State: rejected, Size: size(100), Offset: 100},
		{ID: id(t, "expired"), State: expired, Size: size(100), Offset: 100},
		{ID: id(t, "to-expire"), Size: size(50), Offset: 50},
		{ID: id(t, "to-release"), Size: size(60)},
	} {
		s.Owner = owner
		create(t, c, s)
	}
	finalize(t, c, id(t, "linked"), 4, digest(t, "linked"))
	create(t, c, catalog.Session{ID: id(t, "others"), Owner: id(t, "other"), Size: size(1000)})
	usage("before", owner, 10+7+5+4+50+60)

	if err := expire(ctx, c, id(t, "to-expire"), true); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Release(ctx, id(t, "to-release")); err != nil {
		t.Fatalf("Release = %v", err)
	}
	usage("after expiry and release", owner, 10+7+5+4)
	usage("of another owner", id(t, "other"), 1000)
	usage("of an owner no session can have", "\xff", 0)
}

func testPurgeEvents(t *testing.T, c catalog.Catalog) {
	ctx := t.Context()
	base := time.Date(2024, 7, 1, 0, 0, 0, 0, time.UTC)
	at := func(sec int) time.Time { return base.Add(time.Duration(sec) * time.Second) }
	uploads := []string{"d1", "d2", "d3", "dead", "pending", "retrying"}
	for _, u := range uploads {
		create(t, c, catalog.Session{ID: u})
	}
	ev := map[string]string{} // upload -> its one event
	for _, e := range allEvents(t, c) {
		ev[e.UploadID] = e.ID
	}
	wantErr(t, "MarkDelivered(d1)", c.MarkDelivered(ctx, ev["d1"], at(1)), nil)
	wantErr(t, "MarkDelivered(d2)", c.MarkDelivered(ctx, ev["d2"], at(2)), nil)
	// Dead first, then delivered after all: delivered like any other.
	wantErr(t, "MarkFailed(d3, dead)", c.MarkFailed(ctx, ev["d3"], 3, at(0), "gave up", true), nil)
	wantErr(t, "MarkDelivered(d3)", c.MarkDelivered(ctx, ev["d3"], at(3)), nil)
	wantErr(t, "MarkFailed(dead)", c.MarkFailed(ctx, ev["dead"], 5, at(0), "gone", true), nil)
	wantErr(t, "MarkFailed(retrying)", c.MarkFailed(ctx, ev["retrying"], 1, at(0), "later", false), nil)

	purge := func(cutoff time.Time, want int64) {
		t.Helper()
		if n, err := c.PurgeEvents(ctx, cutoff); err != nil || n != want {
			t.Errorf("PurgeEvents(%v) = %d, %v; want %d", cutoff, n, err, want)
		}
	}
	left := func(want ...string) {
		t.Helper()
		var got []string
		for _, e := range allEvents(t, c) {
			got = append(got, e.UploadID)
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("events left of %q; want %q", got, want)
		}
	}
	far := time.Now().AddDate(100, 0, 0)

	purge(at(1), 0) // delivered at the cutoff: strictly before only
	purge(at(2), 1)
	left("d2", "d3", "dead", "pending", "retrying")
	purge(at(3).Add(500*time.Nanosecond), 1) // microsecond precision: d3 stays
	left("d3", "dead", "pending", "retrying")
	purge(far, 1)
	left("dead", "pending", "retrying") // never pending nor dead ones
	purge(far, 0)

	// A purged event is unknown to the outbox.
	for _, u := range []string{"d1", "d2", "d3"} {
		wantErr(t, "MarkDelivered(purged "+u+")", c.MarkDelivered(ctx, ev[u], at(9)), catalog.ErrNotFound)
		wantErr(t, "MarkFailed(purged "+u+")", c.MarkFailed(ctx, ev[u], 1, at(9), "x", false), catalog.ErrNotFound)
		wantErr(t, "RetryEvent(purged "+u+")", c.RetryEvent(ctx, ev[u], at(9)), catalog.ErrNotFound)
	}
	var claimed []string
	for _, e := range claim(t, c, far, 10, time.Minute) {
		claimed = append(claimed, e.UploadID)
	}
	slices.Sort(claimed)
	if !slices.Equal(claimed, []string{"pending", "retrying"}) {
		t.Errorf("claimed after purges: events of %q; want those of [pending retrying]", claimed)
	}
	// The rest goes once delivered.
	wantErr(t, "MarkDelivered(pending)", c.MarkDelivered(ctx, ev["pending"], at(4)), nil)
	purge(far, 1)
	left("dead", "retrying")
}
