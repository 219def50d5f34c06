package catalogtest

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/intake-dev/intake/pkg/catalog"
)

// The outbox is global to a catalog, so every subtest here has a catalog
// to itself: it sees exactly the events it causes, and claims no other
// subtest's.

// allEvents returns every event, oldest first (OccurredAt, ID).
func allEvents(t *testing.T, c catalog.Catalog) []catalog.Event {
	t.Helper()
	events, err := c.ListEvents(t.Context(), catalog.EventFilter{Limit: 1 << 20})
	if err != nil {
		t.Fatalf("ListEvents = %v", err)
	}
	slices.Reverse(events)
	return events
}

func listEvents(t *testing.T, c catalog.Catalog, f catalog.EventFilter) []catalog.Event {
	t.Helper()
	events, err := c.ListEvents(t.Context(), f)
	if err != nil {
		t.Fatalf("ListEvents(%+v) = %v", f, err)
	}
	return events
}

func eventIDs(events []catalog.Event) []string {
	out := make([]string, 0, len(events))
	for _, e := range events {
		out = append(out, e.ID)
	}
	return out
}

// event returns the event with the id, as ListEvents has it.
func event(t *testing.T, c catalog.Catalog, eventID string) catalog.Event {
	t.Helper()
	for _, e := range allEvents(t, c) {
		if e.ID == eventID {
			return e
		}
	}
	t.Fatalf("no event %s", eventID)
	return catalog.Event{}
}

func claim(t *testing.T, c catalog.Catalog, now time.Time, limit int, lease time.Duration) []catalog.Event {
	t.Helper()
	events, err := c.ClaimEvents(t.Context(), now, limit, lease)
	if err != nil {
		t.Fatalf("ClaimEvents(%v, %d, %v) = %v", now, limit, lease, err)
	}
	return events
}

// inOrder sorts events by (OccurredAt, ID), the claim order.
func inOrder(events []catalog.Event) []catalog.Event {
	out := slices.Clone(events)
	slices.SortFunc(out, func(a, b catalog.Event) int {
		if c := a.OccurredAt.Compare(b.OccurredAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

var eventID = regexp.MustCompile(`^[0-9a-f]{32}$`)

var snapshotKeys = []string{"id", "owner", "size", "offset", "state", "sha256", "content_type",
	"metadata", "storage", "blob_storage", "created_at", "completed_at"}

// checkNewEvent checks an event just written by a transition that left the
// session as s: its fields, its bookkeeping untouched, and its payload a
// snapshot of s (with the blob's storage when s references one).
func checkNewEvent(t *testing.T, c catalog.Catalog, e catalog.Event, typ string, s catalog.Session) {
	t.Helper()
	var d []string
	add := func(field string, g, w any) { d = append(d, fmt.Sprintf("%s: got %v; want %v", field, g, w)) }
	if !eventID.MatchString(e.ID) {
		add("ID", e.ID, "32 lowercase hex digits")
	}
	if e.Type != typ {
		add("Type", e.Type, typ)
	}
	if e.UploadID != s.ID {
		add("UploadID", e.UploadID, s.ID)
	}
	// The transition's time is the session's UpdatedAt after it.
	if !e.OccurredAt.Equal(s.UpdatedAt) || e.OccurredAt.Location() != time.UTC {
		add("OccurredAt", e.OccurredAt, s.UpdatedAt)
	}
	if !e.NextAttemptAt.Equal(e.OccurredAt) {
		add("NextAttemptAt", e.NextAttemptAt, e.OccurredAt)
	}
	if e.Attempts != 0 || e.LastError != "" || e.DeliveredAt != nil || e.DeadAt != nil {
		add("bookkeeping", fmt.Sprintf("%d %q %s %s", e.Attempts, e.LastError, fmtTime(e.DeliveredAt), fmtTime(e.DeadAt)), "none yet")
	}

	var keys map[string]json.RawMessage
	if err := json.Unmarshal(e.Payload, &keys); err != nil {
		t.Fatalf("event %s: payload %s is not a JSON object: %v", e.ID, e.Payload, err)
	}
	var got []string
	for k := range keys {
		got = append(got, k)
	}
	slices.Sort(got)
	wantKeys := slices.Sorted(slices.Values(snapshotKeys))
	if !slices.Equal(got, wantKeys) {
		add("payload keys", got, wantKeys)
	}
	for _, k := range []string{"metadata", "storage"} {
		if !strings.HasPrefix(string(keys[k]), "{") {
			add("payload "+k, string(keys[k]), "an object")
		}
	}
	var snap catalog.Snapshot
	if err := json.Unmarshal(e.Payload, &snap); err != nil {
		t.Fatalf("event %s: payload %s does not decode as a Snapshot: %v", e.ID, e.Payload, err)
	}
	var blobStorage map[string]string
	if s.BlobSHA256 != "" {
		blobStorage = getBlob(t, c, s.BlobSHA256).Storage
	}
	want := catalog.Snapshot{
		ID: s.ID, Owner: s.Owner, Size: s.Size, Offset: s.Offset, State: s.State, SHA256: s.SHA256,
		ContentType: s.ContentType, Metadata: s.Metadata, Storage: s.Storage, BlobStorage: blobStorage,
		CreatedAt: s.CreatedAt, CompletedAt: s.CompletedAt,
	}
	if snap.ID != want.ID || snap.Owner != want.Owner || fmtSize(snap.Size) != fmtSize(want.Size) ||
		snap.Offset != want.Offset || snap.State != want.State || snap.SHA256 != want.SHA256 ||
		snap.ContentType != want.ContentType || !mapsEqual(snap.Metadata, want.Metadata) ||
		!mapsEqual(snap.Storage, want.Storage) || (snap.BlobStorage == nil) != (want.BlobStorage == nil) ||
		!mapsEqual(snap.BlobStorage, want.BlobStorage) || !snap.CreatedAt.Equal(want.CreatedAt) ||
		fmtTime(snap.CompletedAt) != fmtTime(want.CompletedAt) {
		add("payload", fmt.Sprintf("%+v", snap), fmt.Sprintf("%+v", want))
	}
	if len(d) > 0 {
		t.Errorf("event %s (%s of %s):\n\t%s", e.ID, typ, s.ID, strings.Join(d, "\n\t"))
	}
}

// testTransitionEvents walks sessions through every transition, one call at
// a time, and checks after each that exactly the documented event was
// written (or none), with a payload matching the session it left.
func testTransitionEvents(t *testing.T, c catalog.Catalog) {
	ctx := t.Context()
	d, other := digest(t, "content"), digest(t, "other")
	storage := map[string]string{"Type": "filestore", "Path": "/data/a"}
	idle := micro(time.Now().Add(-48 * time.Hour))
	steps := []struct {
		name    string
		do      func() error
		want    error
		typ     string // "" for no event
		session string // the session the event is about
	}{
		{"Create", func() error {
			return c.Create(ctx, catalog.Session{ID: "a", Owner: "alice", Size: size(4),
				Metadata: map[string]string{"filename": "résumé.pdf"}, Storage: storage})
		}, nil, catalog.EventCreated, "a"},
		{"Create with a taken id", func() error { return c.Create(ctx, catalog.Session{ID: "a"}) }, catalog.ErrExists, "", ""},
		{"Create invalid", func() error { return c.Create(ctx, catalog.Session{ID: "bad", Offset: -1}) }, catalog.ErrInvalid, "", ""},
		{"CommitOffset", func() error { return c.CommitOffset(ctx, "a", 2, []byte{1}) }, nil, "", ""},
		{"SetOffset", func() error { return c.SetOffset(ctx, "a", 4) }, nil, "", ""},
		{"Finalize", func() error { _, _, err := c.Finalize(ctx, "a", 4, d, "application/pdf"); return err }, nil, catalog.EventCompleted, "a"},
		{"Finalize again", func() error { _, _, err := c.Finalize(ctx, "a", 4, d, ""); return err }, nil, "", ""},
		{"Finalize again with another type", func() error { _, _, err := c.Finalize(ctx, "a", 4, d, "text/plain"); return err }, nil, "", ""},

		{"Create deferred", func() error { return c.Create(ctx, catalog.Session{ID: "b", Storage: map[string]string{"Path": "/b"}}) }, nil, catalog.EventCreated, "b"},
		{"DeclareLength", func() error { return c.DeclareLength(ctx, "b", 4) }, nil, "", ""},
		{"Complete", func() error { return c.Complete(ctx, "b", 4) }, nil, "", ""},
		{"Finalize completed", func() error { _, _, err := c.Finalize(ctx, "b", 4, d, ""); return err }, nil, catalog.EventCompleted, "b"},

		{"CreateDeduped", func() error { return c.CreateDeduped(ctx, catalog.Session{ID: "x", Owner: "xavier", Size: size(4)}, d) }, nil, catalog.EventCompleted, "x"},
		{"CreateDeduped on no blob", func() error { return c.CreateDeduped(ctx, catalog.Session{ID: "y", Size: size(4)}, other) }, catalog.ErrNotFound, "", ""},
		{"CreateDeduped of another size", func() error { return c.CreateDeduped(ctx, catalog.Session{ID: "y", Size: size(5)}, d) }, catalog.ErrConflict, "", ""},

		{"Create six", func() error { return c.Create(ctx, catalog.Session{ID: "six", Size: size(6), Offset: 6}) }, nil, catalog.EventCreated, "six"},
		{"Finalize onto a blob of another size", func() error { _, _, err := c.Finalize(ctx, "six", 6, d, ""); return err }, catalog.ErrConflict, "", ""},
		{"SetState(failed)", func() error { return c.SetState(ctx, "six", failed) }, nil, catalog.EventFailed, "six"},
		{"SetState(failed) again", func() error { return c.SetState(ctx, "six", failed) }, nil, "", ""},
		{"SetState(terminated) on failed", func() error { return c.SetState(ctx, "six", terminated) }, catalog.ErrConflict, "", ""},

		{"Create r", func() error { return c.Create(ctx, catalog.Session{ID: "r", Size: size(3)}) }, nil, catalog.EventCreated, "r"},
		{"SetState(terminated)", func() error { return c.SetState(ctx, "r", terminated) }, nil, catalog.EventTerminated, "r"},
		{"SetState(terminated) again", func() error { return c.SetState(ctx, "r", terminated) }, nil, "", ""},
		{"Release terminated", func() error { _, _, err := c.Release(ctx, "r"); return err }, nil, "", ""},

		{"Create complete", func() error {
			return c.Create(ctx, catalog.Session{ID: "cc", State: complete, Size: size(1), Offset: 1})
		}, nil, catalog.EventCreated, "cc"},
		{"SetState(terminated) on complete", func() error { return c.SetState(ctx, "cc", terminated) }, nil, catalog.EventTerminated, "cc"},

		{"SetState(terminated) with a blob", func() error { return c.SetState(ctx, "b", terminated) }, catalog.ErrConflict, "", ""},
		{"SetState(failed) on complete", func() error { return c.SetState(ctx, "b", failed) }, catalog.ErrConflict, "", ""},
		{"Release", func() error { _, _, err := c.Release(ctx, "b"); return err }, nil, catalog.EventTerminated, "b"},
		{"Release again", func() error { _, _, err := c.Release(ctx, "b"); return err }, nil, "", ""},

		{"Reject", func() error { _, _, err := c.Reject(ctx, "a"); return err }, nil, catalog.EventRejected, "a"},
		{"Reject again", func() error { _, _, err := c.Reject(ctx, "a"); return err }, nil, "", ""},
		{"Release rejected", func() error { _, _, err := c.Release(ctx, "a"); return err }, catalog.ErrConflict, "", ""},
		{"Reject the last reference", func() error { _, _, err := c.Reject(ctx, "x"); return err }, nil, catalog.EventRejected, "x"},

		{"Create q", func() error { return c.Create(ctx, catalog.Session{ID: "q", Size: size(2), Offset: 2}) }, nil, catalog.EventCreated, "q"},
		{"Reject receiving", func() error { _, _, err := c.Reject(ctx, "q"); return err }, nil, catalog.EventRejected, "q"},
		{"Reject failed", func() error { _, _, err := c.Reject(ctx, "six"); return err }, catalog.ErrConflict, "", ""},

		{"Create idle", func() error {
			return c.Create(ctx, catalog.Session{ID: "e", Size: size(5), CreatedAt: idle, UpdatedAt: idle})
		}, nil, catalog.EventCreated, "e"},
		{"Expire", func() error { return expire(ctx, c, "e", true) }, nil, catalog.EventExpired, "e"},
		{"Expire again", func() error { return expire(ctx, c, "e", false) }, nil, "", ""},
		{"Expire terminated", func() error { return expire(ctx, c, "cc", false) }, nil, "", ""},
		{"SetState(terminated) on expired", func() error { return c.SetState(ctx, "e", terminated) }, catalog.ErrConflict, "", ""},
		{"Release expired", func() error { _, _, err := c.Release(ctx, "e"); return err }, catalog.ErrConflict, "", ""},
		{"Reject expired", func() error { _, _, err := c.Reject(ctx, "e"); return err }, catalog.ErrConflict, "", ""},
	}
	count := 0
	for _, st := range steps {
		wantErr(t, st.name, st.do(), st.want)
		events := allEvents(t, c)
		if st.typ == "" {
			if len(events) != count {
				t.Fatalf("%s: %d events; want %d, none new", st.name, len(events), count)
			}
			continue
		}
		if len(events) != count+1 {
			t.Fatalf("%s: %d events; want %d, exactly one new", st.name, len(events), count+1)
		}
		count++
		var newest catalog.Event
		for _, e := range events {
			if e.UploadID == st.session && (newest.ID == "" || e.OccurredAt.After(newest.OccurredAt)) {
				newest = e
			}
		}
		checkNewEvent(t, c, newest, st.typ, get(t, c, st.session))
	}

	// Each session's events, in claim order, are its transitions in the
	// order they happened, however fast they came.
	want := map[string][]string{
		"a":   {catalog.EventCreated, catalog.EventCompleted, catalog.EventRejected},
		"b":   {catalog.EventCreated, catalog.EventCompleted, catalog.EventTerminated},
		"x":   {catalog.EventCompleted, catalog.EventRejected},
		"six": {catalog.EventCreated, catalog.EventFailed},
		"r":   {catalog.EventCreated, catalog.EventTerminated},
		"cc":  {catalog.EventCreated, catalog.EventTerminated},
		"q":   {catalog.EventCreated, catalog.EventRejected},
		"e":   {catalog.EventCreated, catalog.EventExpired},
	}
	got := map[string][]string{}
	for _, e := range claim(t, c, time.Now().Add(time.Hour), 1000, time.Minute) {
		got[e.UploadID] = append(got[e.UploadID], e.Type)
	}
	for upload, types := range want {
		if !slices.Equal(got[upload], types) {
			t.Errorf("events of %s in claim order: %q; want %q", upload, got[upload], types)
		}
	}
}

func testClaimEvents(t *testing.T, c catalog.Catalog) {
	ctx := t.Context()
	// OccurredAt is the session's UpdatedAt, so sessions created at chosen
	// times give events at those times, ties included.
	base := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(sec int) time.Time { return base.Add(time.Duration(sec) * time.Second) }
	for i, sec := range []int{3, 1, 2, 1, 1, 0} {
		create(t, c, catalog.Session{ID: fmt.Sprint("s", i), CreatedAt: at(sec), UpdatedAt: at(sec)})
	}
	create(t, c, catalog.Session{ID: "late", CreatedAt: at(100), UpdatedAt: at(100)})
	all := inOrder(allEvents(t, c))
	if len(all) != 7 || all[6].UploadID != "late" {
		t.Fatalf("events = %d, last of %s; want 7, the last of late", len(all), all[len(all)-1].UploadID)
	}
	due := all[:6]

	for _, bad := range []struct {
		limit int
		lease time.Duration
	}{{0, time.Minute}, {-1, time.Minute}, {1, 0}, {1, -time.Second}} {
		_, err := c.ClaimEvents(ctx, at(10), bad.limit, bad.lease)
		wantErr(t, fmt.Sprintf("ClaimEvents(limit %d, lease %v)", bad.limit, bad.lease), err, catalog.ErrInvalid)
	}

	checkClaim := func(what string, got, want []catalog.Event, leasedUntil time.Time) {
		t.Helper()
		if !slices.Equal(eventIDs(got), eventIDs(want)) {
			t.Fatalf("%s: claimed %q; want %q", what, eventIDs(got), eventIDs(want))
		}
		for i, e := range got {
			if !e.NextAttemptAt.Equal(leasedUntil) {
				t.Errorf("%s: event %d NextAttemptAt = %v; want the lease's end %v", what, i, e.NextAttemptAt, leasedUntil)
			}
			if !e.OccurredAt.Equal(want[i].OccurredAt) || e.UploadID != want[i].UploadID || string(e.Payload) != string(want[i].Payload) {
				t.Errorf("%s: event %d is %s of %s at %v, payload %s; want %s of %s at %v, payload %s", what, i,
					e.Type, e.UploadID, e.OccurredAt, e.Payload, want[i].Type, want[i].UploadID, want[i].OccurredAt, want[i].Payload)
			}
			// Claimed as stored, but leased: attempts and errors untouched.
			stored := event(t, c, e.ID)
			if !stored.NextAttemptAt.Equal(leasedUntil) || stored.Attempts != e.Attempts || stored.LastError != e.LastError {
				t.Errorf("%s: stored %+v; want NextAttemptAt %v, as claimed otherwise (%+v)", what, stored, leasedUntil, e)
			}
		}
	}
	now := at(10)
	checkClaim("first claim, limit 4", claim(t, c, now, 4, time.Minute), due[:4], now.Add(time.Minute))
	checkClaim("second claim", claim(t, c, now, 10, time.Minute), due[4:], now.Add(time.Minute))
	checkClaim("while leased", claim(t, c, now.Add(59*time.Second), 10, time.Minute), nil, time.Time{})
	// The lease ends at now+1m: due again then, the claimer presumed dead.
	later := now.Add(time.Minute)
	checkClaim("when the lease ends", claim(t, c, later, 10, time.Hour), due, later.Add(time.Hour))
	// A time below a microsecond past the lease counts as the lease's end.
	checkClaim("event due later", claim(t, c, at(100).Add(500*time.Nanosecond), 10, time.Hour), all[6:], at(100).Add(time.Hour))

	// Delivered and dead events are never claimed again; a failed one is
	// due when MarkFailed says.
	far := at(10000)
	wantErr(t, "MarkDelivered", c.MarkDelivered(ctx, due[0].ID, at(101)), nil)
	wantErr(t, "MarkFailed(dead)", c.MarkFailed(ctx, due[1].ID, 3, at(101), "gone", true), nil)
	wantErr(t, "MarkFailed", c.MarkFailed(ctx, due[2].ID, 1, far.Add(time.Hour), "503", false), nil)
	rest := append(slices.Clone(due[3:]), all[6])
	checkClaim("after marks", claim(t, c, far, 10, time.Minute), rest, far.Add(time.Minute))
	checkClaim("when the retry is due", claim(t, c, far.Add(time.Hour), 10, time.Minute),
		append([]catalog.Event{due[2]}, rest...), far.Add(time.Hour+time.Minute))
	if got := event(t, c, due[2].ID); got.Attempts != 1 {
		t.Errorf("Attempts after a claim = %d; want 1, as MarkFailed left it", got.Attempts)
	}
	checkClaim("nothing left due", claim(t, c, far.Add(time.Hour), 10, time.Minute), nil, time.Time{})
}

// Dispatchers claiming at once never get the same event, and between them
// get every event.
func testClaimEventsConcurrent(t *testing.T, c catalog.Catalog) {
	const (
		events  = 150
		workers = 8
	)
	for i := range events {
		create(t, c, catalog.Session{ID: fmt.Sprintf("u%03d", i)})
	}
	now := time.Now().Add(time.Hour)
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		claimed = map[string]int{}
		start   = make(chan struct{})
	)
	for w := range workers {
		wg.Go(func() {
			<-start
			for {
				got, err := c.ClaimEvents(t.Context(), now, 1+w%3, time.Hour)
				if err != nil {
					t.Errorf("worker %d: ClaimEvents = %v", w, err)
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, e := range got {
					claimed[e.ID]++
				}
				mu.Unlock()
			}
		})
	}
	close(start)
	wg.Wait()
	// A worker gives up when it sees nothing it can take, which may be
	// while another holds the last rows: these must be claimed by then.
	for _, e := range claim(t, c, now, events, time.Hour) {
		claimed[e.ID]++
	}
	for id, n := range claimed {
		if n != 1 {
			t.Errorf("event %s claimed %d times; want once", id, n)
		}
	}
	if len(claimed) != events {
		t.Errorf("%d events claimed; want all %d", len(claimed), events)
	}
}

func testEventDelivery(t *testing.T, c catalog.Catalog) {
	ctx := t.Context()
	base := time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)
	at := func(sec int) time.Time { return base.Add(time.Duration(sec) * time.Second) }
	for i, name := range []string{"a", "b", "c"} {
		create(t, c, catalog.Session{ID: name, CreatedAt: at(i + 1), UpdatedAt: at(i + 1)})
	}
	events := allEvents(t, c)
	a, b, e := events[0], events[1], events[2]
	check := func(what string, f catalog.EventFilter, want ...catalog.Event) {
		t.Helper()
		if got := listEvents(t, c, f); !slices.Equal(eventIDs(got), eventIDs(want)) {
			t.Errorf("%s: ListEvents(%+v) = %q; want %q", what, f, eventIDs(got), eventIDs(want))
		}
	}
	check("new", catalog.EventFilter{}, e, b, a)
	check("new", catalog.EventFilter{Pending: true}, e, b, a)
	check("new", catalog.EventFilter{Failed: true})

	// A failed attempt: counted, rescheduled, still pending.
	wantErr(t, "MarkFailed(a)", c.MarkFailed(ctx, a.ID, 1, at(3600).Add(1500*time.Nanosecond), "connection refused", false), nil)
	got := event(t, c, a.ID)
	if got.Attempts != 1 || !got.NextAttemptAt.Equal(at(3600).Add(time.Microsecond)) || got.LastError != "connection refused" || got.DeadAt != nil || got.DeliveredAt != nil {
		t.Errorf("after MarkFailed: %+v; want 1 attempt, next at %v, the error, alive", got, at(3600).Add(time.Microsecond))
	}

	// Dead-lettered, with an error no text column would take as it is.
	long := "HTTP 500: \xff\x00" + strings.Repeat("é", 2000)
	wantErr(t, "MarkFailed(b, dead)", c.MarkFailed(ctx, b.ID, 3, at(7200), long, true), nil)
	dead := event(t, c, b.ID)
	if dead.DeadAt == nil || dead.Attempts != 3 || dead.DeliveredAt != nil {
		t.Errorf("after MarkFailed(dead): %+v; want dead after 3 attempts", dead)
	}
	if msg := dead.LastError; !utf8.ValidString(msg) || strings.ContainsRune(msg, 0) || len(msg) > 1024 || !strings.HasPrefix(msg, "HTTP 500: ") {
		t.Errorf("LastError = %q (%d bytes); want valid UTF-8 without NUL, at most 1 KiB, starting as given", msg, len(msg))
	}
	check("dead", catalog.EventFilter{Failed: true}, b)
	check("dead", catalog.EventFilter{Pending: true}, e, a)
	check("dead", catalog.EventFilter{}, e, b, a)
	// Not dead again: it stays dead, only the count moves.
	wantErr(t, "MarkFailed(b) without dead", c.MarkFailed(ctx, b.ID, 4, at(9000), "late", false), nil)
	if got := event(t, c, b.ID); got.DeadAt == nil || !got.DeadAt.Equal(*dead.DeadAt) || got.Attempts != 4 {
		t.Errorf("after a late MarkFailed: %+v; want still dead since %v, 4 attempts", got, fmtTime(dead.DeadAt))
	}

	// Delivered: once, at the first time given.
	deliveredAt := at(60).Add(1500 * time.Nanosecond)
	wantErr(t, "MarkDelivered(c)", c.MarkDelivered(ctx, e.ID, deliveredAt), nil)
	wantErr(t, "MarkDelivered(c) again", c.MarkDelivered(ctx, e.ID, at(120)), nil)
	delivered := event(t, c, e.ID)
	if delivered.DeliveredAt == nil || !delivered.DeliveredAt.Equal(micro(deliveredAt)) || delivered.DeliveredAt.Location() != time.UTC {
		t.Errorf("DeliveredAt = %s; want %v", fmtTime(delivered.DeliveredAt), micro(deliveredAt))
	}
	check("delivered", catalog.EventFilter{Pending: true}, a)
	check("delivered", catalog.EventFilter{Failed: true}, b)
	wantErr(t, "MarkFailed on delivered", c.MarkFailed(ctx, e.ID, 9, at(0), "x", true), catalog.ErrConflict)
	wantErr(t, "RetryEvent on delivered", c.RetryEvent(ctx, e.ID, at(0)), catalog.ErrConflict)
	if got := event(t, c, e.ID); got.DeadAt != nil || got.Attempts != 0 || !got.DeliveredAt.Equal(*delivered.DeliveredAt) {
		t.Errorf("delivered event changed: %+v", got)
	}

	// Retried: alive and due at once, its history kept.
	retryAt := at(10000)
	wantErr(t, "RetryEvent(b)", c.RetryEvent(ctx, b.ID, retryAt), nil)
	got = event(t, c, b.ID)
	if got.DeadAt != nil || !got.NextAttemptAt.Equal(retryAt) || got.Attempts != 4 || got.LastError != "late" {
		t.Errorf("after RetryEvent: %+v; want alive, due at %v, 4 attempts and the last error kept", got, retryAt)
	}
	check("retried", catalog.EventFilter{Failed: true})
	check("retried", catalog.EventFilter{Pending: true}, b, a)
	// A pending event may be in a dispatcher's hands: retrying it could
	// deliver it twice at once, so it is refused.
	wantErr(t, "RetryEvent(a)", c.RetryEvent(ctx, a.ID, retryAt), catalog.ErrConflict)
	claimAt := retryAt
	if next := event(t, c, a.ID).NextAttemptAt; next.After(claimAt) {
		claimAt = next
	}
	claimed := claim(t, c, claimAt, 10, time.Minute)
	if !slices.Equal(eventIDs(claimed), []string{a.ID, b.ID}) {
		t.Errorf("claimed after retries: %q; want %q", eventIDs(claimed), []string{a.ID, b.ID})
	}

	// A dead event turns out delivered: it is no longer dead.
	wantErr(t, "MarkFailed(a, dead)", c.MarkFailed(ctx, a.ID, 5, retryAt, "gave up", true), nil)
	wantErr(t, "MarkDelivered(a)", c.MarkDelivered(ctx, a.ID, retryAt), nil)
	if got := event(t, c, a.ID); got.DeadAt != nil || got.DeliveredAt == nil {
		t.Errorf("dead event delivered: %+v; want delivered, not dead", got)
	}
	check("late delivery", catalog.EventFilter{Failed: true})
	check("late delivery", catalog.EventFilter{Pending: true}, b)

	wantErr(t, "MarkFailed(-1)", c.MarkFailed(ctx, b.ID, -1, retryAt, "x", false), catalog.ErrInvalid)
	if got := event(t, c, b.ID); got.Attempts != 4 {
		t.Errorf("Attempts after a refused MarkFailed = %d; want 4", got.Attempts)
	}
}

func testListEvents(t *testing.T, c catalog.Catalog) {
	ctx := t.Context()
	base := time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)
	// Ties on OccurredAt break on the id, descending.
	for i := range 101 {
		at := base.Add(time.Duration(i/4) * time.Second)
		create(t, c, catalog.Session{ID: fmt.Sprintf("u%03d", i), CreatedAt: at, UpdatedAt: at})
	}
	all := listEvents(t, c, catalog.EventFilter{Limit: 101})
	if len(all) != 101 {
		t.Fatalf("ListEvents(Limit 101) = %d events; want 101", len(all))
	}
	for i := 1; i < len(all); i++ {
		a, b := all[i-1], all[i]
		if a.OccurredAt.Before(b.OccurredAt) || a.OccurredAt.Equal(b.OccurredAt) && a.ID <= b.ID {
			t.Fatalf("ListEvents order broken at %d: %s@%v then %s@%v", i, a.ID, a.OccurredAt, b.ID, b.OccurredAt)
		}
	}
	if got := listEvents(t, c, catalog.EventFilter{}); len(got) != 100 || !slices.Equal(eventIDs(got), eventIDs(all[:100])) {
		t.Errorf("ListEvents with the default limit = %d events; want the newest 100", len(got))
	}
	if got := listEvents(t, c, catalog.EventFilter{Limit: 3, Pending: true}); !slices.Equal(eventIDs(got), eventIDs(all[:3])) {
		t.Errorf("ListEvents(Pending, Limit 3) = %q; want %q", eventIDs(got), eventIDs(all[:3]))
	}
	for _, f := range []catalog.EventFilter{{Limit: -1}, {Failed: true, Pending: true}} {
		_, err := c.ListEvents(ctx, f)
		wantErr(t, fmt.Sprintf("ListEvents(%+v)", f), err, catalog.ErrInvalid)
	}
}

// Atomic checks, on a catalog of its own (empty, migrated), that a
// transition whose event cannot be written changes nothing: the event and
// the change commit together or not at all. breakOutbox must make every
// later write of an event fail (a trigger refusing inserts, say); how is
// the backend's business, hence the hook.
func Atomic(t *testing.T, c catalog.Catalog, breakOutbox func(t *testing.T)) {
	ctx := t.Context()
	d, d2 := digest(t, "content"), digest(t, "other")
	for _, s := range []catalog.Session{
		{ID: "receiving", Size: size(4), Offset: 4},
		{ID: "a", Size: size(4), Offset: 4},
		{ID: "b", Size: size(4), Offset: 4},
	} {
		create(t, c, s)
	}
	finalize(t, c, "a", 4, d)
	finalize(t, c, "b", 4, d2)
	before := map[string]catalog.Session{}
	for _, id := range []string{"receiving", "a", "b"} {
		before[id] = get(t, c, id)
	}
	blobs := map[string]catalog.Blob{d: getBlob(t, c, d), d2: getBlob(t, c, d2)}
	events := len(allEvents(t, c))

	breakOutbox(t)
	fails := func(what string, err error) {
		t.Helper()
		if err == nil {
			t.Errorf("%s with a broken outbox = nil; want an error", what)
		}
	}
	fails("Create", c.Create(ctx, catalog.Session{ID: "new"}))
	fails("CreateDeduped", c.CreateDeduped(ctx, catalog.Session{ID: "copy", Size: size(4)}, d))
	_, _, err := c.Finalize(ctx, "receiving", 4, digest(t, "third"), "text/plain")
	fails("Finalize", err)
	fails("SetState(failed)", c.SetState(ctx, "receiving", failed))
	fails("SetState(terminated)", c.SetState(ctx, "receiving", terminated))
	_, _, err = c.Reject(ctx, "receiving")
	fails("Reject(receiving)", err)
	_, _, err = c.Release(ctx, "a") // a's blob's last reference
	fails("Release", err)
	_, _, err = c.Reject(ctx, "b")
	fails("Reject", err)
	_, err = c.Expire(ctx, "receiving", time.Now().Add(time.Hour))
	fails("Expire", err)

	for _, id := range []string{"new", "copy"} {
		_, err := c.Get(ctx, id)
		wantErr(t, "Get("+id+") after a failed creation", err, catalog.ErrNotFound)
	}
	for id, s := range before {
		checkSession(t, get(t, c, id), s)
	}
	for sha, b := range blobs {
		checkBlob(t, "blob after failed transitions", getBlob(t, c, sha), b)
	}
	_, err = c.GetBlob(ctx, digest(t, "third"))
	wantErr(t, "GetBlob of the failed Finalize's content", err, catalog.ErrNotFound)
	if got := len(allEvents(t, c)); got != events {
		t.Errorf("%d events; want %d, as before", got, events)
	}
	// What writes no event still works: only the outbox is broken.
	_, _, err = c.Finalize(ctx, "a", 4, d, "text/plain")
	wantErr(t, "Finalize again with a type and a broken outbox", err, nil)
	if got := get(t, c, "a"); got.ContentType != "text/plain" {
		t.Errorf("a after Finalize again with a type: ContentType %q; want text/plain", got.ContentType)
	}
}
