// Package rule holds what the PostgreSQL and SQLite catalogs must decide the
// same way: argument checks, the defaults Create fills in, the shape of a
// session read back, the verdict on a change, and the outbox events with
// their payloads. It never touches a database.
//
// Changes that write no event (offsets, lengths, Complete) are one
// conditional UPDATE whose WHERE clause admits exactly the changes allowed
// here. That keeps the hot path (one CommitOffset per PATCH) to a single
// statement. Only when the UPDATE matches no row do the catalogs read the
// row and ask this package why, to tell a no-op from a conflict from a
// missing session. Transitions that write an event run in a transaction
// instead: they read the row (locking it), ask this package, then write the
// change and its event. Expire is the exception: its condition (receiving,
// idle since before the cutoff) is the WHERE of its UPDATE, in the
// transaction that writes its event, and when no row changes there is
// nothing to judge: the session is missing or lost the race.
package rule

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/intake-dev/intake/pkg/catalog"
)

// DefaultListLimit is the List limit when ListOptions.Limit is 0.
const DefaultListLimit = 100

// Current is the part of a stored session that decides whether a change
// applies.
type Current struct {
	State  catalog.State
	Offset int64
	Size   *int64

	HashState   []byte
	HashOffset  int64
	SHA256      string
	Blob        string // BlobSHA256
	IsPartial   bool
	ContentType string
}

// A Check says whether a change to cur should be written (true, nil), is a
// no-op success (false, nil) or is refused (false, err).
type Check func(cur Current) (bool, error)

// Apply runs a conditional update and, when it changed no row, reads the
// current row and lets check decide. update reports whether a row changed;
// current returns the driver's no-rows error for a missing session, which
// the caller maps. Because every stored field only moves one way (offset up,
// size from unset to set, state out of receiving), a change refused once
// stays refused, so a check that wants to apply means the SQL and the rule
// disagree; Apply retries a few times and then gives up with an error.
func Apply(ctx context.Context, update func(context.Context) (bool, error), current func(context.Context) (Current, error), check Check) error {
	for range 3 {
		changed, err := update(ctx)
		if err != nil || changed {
			return err
		}
		cur, err := current(ctx)
		if err != nil {
			return err
		}
		apply, err := check(cur)
		if !apply {
			return err
		}
	}
	return errors.New("conditional update keeps missing a change the rules allow")
}

func conflict(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{catalog.ErrConflict}, args...)...)
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{catalog.ErrInvalid}, args...)...)
}

// OffsetArg checks an offset given to SetOffset or Complete.
func OffsetArg(offset int64) error {
	if offset < 0 {
		return invalid("negative offset %d", offset)
	}
	return nil
}

// LengthArg checks a size given to DeclareLength.
func LengthArg(size int64) error {
	if size < 0 {
		return invalid("negative size %d", size)
	}
	return nil
}

// DigestArg checks a SHA-256 digest: 64 lowercase hex digits. The digest
// is not quoted back: it may be anything a client sent.
func DigestArg(sha string) error {
	if !validDigest(sha) {
		return invalid("sha256 digest must be 64 lowercase hex digits")
	}
	return nil
}

func validDigest(sha string) bool {
	if len(sha) != 64 {
		return false
	}
	for i := range len(sha) {
		if c := sha[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// HashState is what CommitOffset stores for state at offset: nil (with
// hash offset 0) for no state, so that an empty slice and nil read back
// the same.
func HashState(offset int64, state []byte) ([]byte, int64) {
	if len(state) == 0 {
		return nil, 0
	}
	return state, offset
}

// StateArg checks a target state given to SetState.
func StateArg(to catalog.State) error {
	if to != catalog.StateTerminated && to != catalog.StateFailed {
		return invalid("SetState cannot move a session to %q", to)
	}
	return nil
}

// ListLimit checks opts and returns the row limit to use.
func ListLimit(opts catalog.ListOptions) (int, error) {
	if opts.Limit < 0 {
		return 0, invalid("negative list limit %d", opts.Limit)
	}
	if opts.State != "" && !opts.State.Valid() {
		return 0, invalid("unknown state %q", opts.State)
	}
	if opts.BeforeID != "" && opts.Before.IsZero() {
		return 0, invalid("list cursor id without a time")
	}
	if opts.Limit == 0 {
		return DefaultListLimit, nil
	}
	return opts.Limit, nil
}

// SetOffset judges SetOffset(offset) against cur.
func SetOffset(cur Current, offset int64) (bool, error) {
	switch {
	case cur.State != catalog.StateReceiving:
		return false, conflict("session is %s", cur.State)
	case offset == cur.Offset:
		return false, nil
	case offset < cur.Offset:
		return false, conflict("offset %d is behind committed offset %d", offset, cur.Offset)
	case cur.Size != nil && offset > *cur.Size:
		return false, conflict("offset %d is past size %d", offset, *cur.Size)
	}
	return true, nil
}

// CommitOffset judges CommitOffset(offset, state) against cur; state and
// hashOffset come from HashState.
func CommitOffset(cur Current, offset int64, state []byte, hashOffset int64) (bool, error) {
	switch {
	case cur.State != catalog.StateReceiving:
		return false, conflict("session is %s", cur.State)
	case offset < cur.Offset:
		return false, conflict("offset %d is behind committed offset %d", offset, cur.Offset)
	case offset == cur.Offset:
		return !bytes.Equal(cur.HashState, state) || cur.HashOffset != hashOffset, nil
	case cur.Size != nil && offset > *cur.Size:
		return false, conflict("offset %d is past size %d", offset, *cur.Size)
	}
	return true, nil
}

// DeclareLength judges DeclareLength(size) against cur.
func DeclareLength(cur Current, size int64) (bool, error) {
	switch {
	case cur.Size != nil && *cur.Size == size:
		return false, nil
	case cur.Size != nil:
		return false, conflict("size is already %d", *cur.Size)
	case cur.State != catalog.StateReceiving:
		return false, conflict("session is %s", cur.State)
	case size < cur.Offset:
		return false, conflict("size %d is below committed offset %d", size, cur.Offset)
	}
	return true, nil
}

// Complete judges Complete(offset) against cur.
func Complete(cur Current, offset int64) (bool, error) {
	switch {
	case cur.State == catalog.StateComplete && offset == cur.Offset:
		return false, nil
	case cur.State == catalog.StateComplete:
		return false, conflict("session is complete at offset %d", cur.Offset)
	case cur.State != catalog.StateReceiving:
		return false, conflict("session is %s", cur.State)
	case cur.Size == nil:
		return false, conflict("size is deferred")
	case offset != *cur.Size:
		return false, conflict("final offset %d is not the size %d", offset, *cur.Size)
	case offset < cur.Offset:
		return false, conflict("offset %d is behind committed offset %d", offset, cur.Offset)
	}
	return true, nil
}

// SetState judges SetState(to) against cur; to must have passed StateArg.
func SetState(cur Current, to catalog.State) (bool, error) {
	switch {
	case cur.State == to:
		return false, nil
	case cur.State == catalog.StateReceiving:
		return true, nil
	case cur.State == catalog.StateComplete && to == catalog.StateTerminated && cur.Blob != "":
		return false, conflict("session references a blob: release it instead")
	case cur.State == catalog.StateComplete && to == catalog.StateTerminated:
		return true, nil
	}
	return false, conflict("session is %s and cannot become %s", cur.State, to)
}

// Finalize judges Finalize(size, sha) against cur: true links the session
// to a blob; false without an error means it is complete with this digest
// already, and the caller returns its blob.
func Finalize(cur Current, size int64, sha string) (bool, error) {
	switch {
	case cur.State == catalog.StateComplete && cur.SHA256 == sha && cur.Offset == size:
		return false, nil
	case cur.State == catalog.StateComplete && cur.SHA256 != "":
		return false, conflict("session is complete with another digest or size")
	case cur.IsPartial:
		return false, conflict("a partial upload is not linked to a blob")
	case cur.State == catalog.StateComplete:
		// Completed without a digest: link it now, at its final offset.
		if size != cur.Offset {
			return false, conflict("session is complete at offset %d", cur.Offset)
		}
		return true, nil
	}
	if _, err := Complete(cur, size); err != nil {
		return false, err
	}
	return true, nil
}

// LetGo judges Release (to terminated) or Reject (to rejected) against
// cur: receiving and complete sessions may go, blob or not (for Release,
// SetState(terminated)'s rules); one already in state to is a no-op.
func LetGo(cur Current, to catalog.State) (bool, error) {
	switch cur.State {
	case to:
		return false, nil
	case catalog.StateReceiving, catalog.StateComplete:
		return true, nil
	}
	return false, conflict("session is %s and cannot become %s", cur.State, to)
}

// ExpiredLimit checks the limit given to ListExpired.
func ExpiredLimit(limit int) error {
	if limit < 1 {
		return invalid("expired list limit must be positive, got %d", limit)
	}
	return nil
}

// KnownBatch is how many ids Known looks up per statement: few enough for
// any driver's parameter limit, enough that a sweep of a large bucket
// costs few round trips.
const KnownBatch = 1000

// KnownBatches returns the ids Known must look up, in batches of at most
// KnownBatch: each id once, without those no session can have (see
// StorableID), which are simply not known.
func KnownBatches(ids []string) [][]string {
	seen := make(map[string]bool, len(ids))
	var batches [][]string
	var batch []string
	for _, id := range ids {
		if seen[id] || !StorableID(id) {
			continue
		}
		seen[id] = true
		batch = append(batch, id)
		if len(batch) == KnownBatch {
			batches, batch = append(batches, batch), nil
		}
	}
	if len(batch) > 0 {
		batches = append(batches, batch)
	}
	return batches
}

// PurgeBatch is how many events PurgeEvents deletes per transaction, so
// that a large purge never holds the write lock (SQLite's only one) for
// long.
const PurgeBatch = 1000

// MaxContentType is the longest media type Finalize accepts, in bytes.
const MaxContentType = 255

// ContentTypeArg checks a media type given to Finalize: "type/subtype"
// with optional parameters (RFC 2045 tokens), printable ASCII, at most
// MaxContentType bytes. What a sniffing library reports, such as
// "text/plain; charset=utf-8", passes; it is stored as given.
func ContentTypeArg(ct string) error {
	if len(ct) == 0 || len(ct) > MaxContentType {
		return invalid("media type must be 1 to %d bytes", MaxContentType)
	}
	for i := range len(ct) {
		if c := ct[i]; c < 0x20 || c > 0x7e {
			return invalid("media type must be printable ASCII")
		}
	}
	if ct != strings.TrimSpace(ct) {
		return invalid("media type %q has surrounding spaces", ct)
	}
	// ParseMediaType also takes a bare token (Content-Disposition's
	// form); a media type needs its slash.
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || strings.Count(mt, "/") != 1 {
		return invalid("%q is not a media type (type/subtype)", ct)
	}
	return nil
}

// ContentType judges recording the media type ct (given to Finalize) on
// cur, for the session's own row (its blob is the caller's to update):
// receiving and complete sessions take it, replacing any type they have;
// the type they already have is a no-op.
func ContentType(cur Current, ct string) (bool, error) {
	switch {
	case cur.State != catalog.StateReceiving && cur.State != catalog.StateComplete:
		return false, conflict("session is %s", cur.State)
	case cur.ContentType == ct:
		return false, nil
	}
	return true, nil
}

// Timestamp is how both catalogs keep a time: microseconds, UTC.
func Timestamp(t time.Time) time.Time { return t.Truncate(time.Microsecond).UTC() }

// Create fills in the defaults of a session about to be created and
// validates it. Times left zero stay zero, for the catalog to set from its
// own clock.
func Create(s catalog.Session) (catalog.Session, error) {
	if s.HashState != nil || s.HashOffset != 0 || s.SHA256 != "" || s.BlobSHA256 != "" {
		return catalog.Session{}, invalid("digest fields are written by CommitOffset, Finalize and CreateDeduped, not Create")
	}
	if s.ContentType != "" {
		return catalog.Session{}, invalid("the content type is written by Finalize and CreateDeduped, not Create")
	}
	return defaults(s)
}

// CreateDeduped is Create for a session created complete on the blob sha:
// it checks what CreateDeduped documents and fills in the completion.
func CreateDeduped(s catalog.Session, sha string) (catalog.Session, error) {
	if err := DigestArg(sha); err != nil {
		return catalog.Session{}, err
	}
	switch {
	case s.Size == nil:
		return catalog.Session{}, invalid("deduplicated session needs a declared size")
	case s.State != "" && s.State != catalog.StateComplete:
		return catalog.Session{}, invalid("deduplicated session cannot be %s", s.State)
	case s.Offset != 0 && s.Offset != *s.Size:
		return catalog.Session{}, invalid("deduplicated session has offset %d, not its size %d", s.Offset, *s.Size)
	case s.IsPartial || s.IsFinal:
		return catalog.Session{}, invalid("deduplicated session cannot be partial or final")
	}
	s.State, s.Offset = catalog.StateComplete, *s.Size
	s, err := Create(s)
	if err != nil {
		return catalog.Session{}, err
	}
	s.SHA256, s.BlobSHA256 = sha, sha
	return s, nil
}

func defaults(s catalog.Session) (catalog.Session, error) {
	if s.State == "" {
		s.State = catalog.StateReceiving
	}
	if err := s.Validate(); err != nil {
		return catalog.Session{}, err
	}
	if s.Metadata == nil {
		s.Metadata = map[string]string{}
	}
	if s.Storage == nil {
		s.Storage = map[string]string{}
	}
	if s.PartialIDs == nil {
		s.PartialIDs = []string{}
	}
	if !s.CreatedAt.IsZero() {
		s.CreatedAt = Timestamp(s.CreatedAt)
	}
	if !s.UpdatedAt.IsZero() {
		s.UpdatedAt = Timestamp(s.UpdatedAt)
	}
	if s.CompletedAt != nil {
		t := Timestamp(*s.CompletedAt)
		s.CompletedAt = &t
	}
	return s, nil
}

// Loaded gives a session read from a database the shape callers are
// promised: non-nil maps, nil PartialIDs when there are none, UTC times.
func Loaded(s *catalog.Session) {
	if s.Metadata == nil {
		s.Metadata = map[string]string{}
	}
	if s.Storage == nil {
		s.Storage = map[string]string{}
	}
	if len(s.PartialIDs) == 0 {
		s.PartialIDs = nil
	}
	s.CreatedAt = s.CreatedAt.UTC()
	s.UpdatedAt = s.UpdatedAt.UTC()
	if s.CompletedAt != nil {
		t := s.CompletedAt.UTC()
		s.CompletedAt = &t
	}
}

// LoadedBlob gives a blob read from a database the shape callers are
// promised, as Loaded does for sessions.
func LoadedBlob(b *catalog.Blob) {
	if b.Storage == nil {
		b.Storage = map[string]string{}
	}
	b.CreatedAt = b.CreatedAt.UTC()
}

// StorableID reports whether a session could have id: Create refuses ids
// that are empty, not UTF-8 or contain NUL (Session.Validate), so for any
// other id every lookup is simply ErrNotFound — never a driver error about
// encoding, which a client could trigger with a crafted URL.
func StorableID(id string) bool {
	return id != "" && Storable(id)
}

// Storable reports whether a text column could hold v (owners, ids): the
// same reasoning as StorableID, for values that may be empty.
func Storable(v string) bool {
	return utf8.ValidString(v) && !strings.ContainsRune(v, 0)
}

// StateEvent is the event SetState(to) writes; to must have passed
// StateArg.
func StateEvent(to catalog.State) string {
	if to == catalog.StateFailed {
		return catalog.EventFailed
	}
	return catalog.EventTerminated
}

// NewEvent returns the event of type typ for a transition that left the
// session as s (read back in the transition's transaction). blobStorage is
// the Storage of the blob s references, nil when it references none.
func NewEvent(typ string, s catalog.Session, blobStorage map[string]string) (catalog.Event, error) {
	if (s.BlobSHA256 != "") != (blobStorage != nil) {
		return catalog.Event{}, fmt.Errorf("snapshot of session %s: blob storage does not match its blob reference", s.ID)
	}
	payload, err := json.Marshal(catalog.Snapshot{
		ID:          s.ID,
		Owner:       s.Owner,
		Size:        s.Size,
		Offset:      s.Offset,
		State:       s.State,
		SHA256:      s.SHA256,
		ContentType: s.ContentType,
		Metadata:    s.Metadata,
		Storage:     s.Storage,
		BlobStorage: blobStorage,
		CreatedAt:   s.CreatedAt,
		CompletedAt: s.CompletedAt,
	})
	if err != nil {
		return catalog.Event{}, fmt.Errorf("error encoding event payload: %w", err)
	}
	return catalog.Event{
		ID:            EventID(),
		Type:          typ,
		UploadID:      s.ID,
		OccurredAt:    s.UpdatedAt,
		Payload:       payload,
		NextAttemptAt: s.UpdatedAt,
	}, nil
}

// EventID returns 128 random bits in lowercase hex.
func EventID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand documents it)
	return hex.EncodeToString(b[:])
}

// Claim checks ClaimEvents' arguments and returns the lease's end.
func Claim(now time.Time, limit int, lease time.Duration) (time.Time, error) {
	if limit < 1 {
		return time.Time{}, invalid("claim limit must be positive, got %d", limit)
	}
	if lease <= 0 {
		return time.Time{}, invalid("claim lease must be positive, got %v", lease)
	}
	return Timestamp(now.Add(lease)), nil
}

// DefaultEventLimit is the ListEvents limit when EventFilter.Limit is 0.
const DefaultEventLimit = 100

// EventLimit checks f and returns the row limit to use.
func EventLimit(f catalog.EventFilter) (int, error) {
	switch {
	case f.Limit < 0:
		return 0, invalid("negative event limit %d", f.Limit)
	case f.Failed && f.Pending:
		return 0, invalid("an event cannot be both failed and pending")
	case f.Limit == 0:
		return DefaultEventLimit, nil
	}
	return f.Limit, nil
}

// AttemptsArg checks the attempt count given to MarkFailed.
func AttemptsArg(n int) error {
	if n < 0 {
		return invalid("negative attempt count %d", n)
	}
	return nil
}

// MaxLastError is how many bytes of a delivery error MarkFailed keeps.
const MaxLastError = 1024

// LastError is what MarkFailed stores of a delivery error, which may quote
// anything a receiver answered: valid UTF-8 without NUL bytes (text
// columns refuse them), at most MaxLastError bytes, cut on a rune boundary.
func LastError(msg string) string {
	msg = strings.ToValidUTF8(msg, "\uFFFD")
	msg = strings.ReplaceAll(msg, "\x00", "\uFFFD")
	if len(msg) <= MaxLastError {
		return msg
	}
	cut := MaxLastError
	for cut > 0 && !utf8.RuneStart(msg[cut]) {
		cut--
	}
	return msg[:cut]
}

// EventFound judges an outbox change that matched no row it may change:
// exists says whether the event exists at all (then it is delivered, or,
// for RetryEvent, not dead-lettered), deliveredOK whether the change
// succeeds on a delivered event (MarkDelivered, whose repeat is a no-op).
func EventFound(exists, deliveredOK bool) error {
	switch {
	case !exists:
		return catalog.ErrNotFound
	case deliveredOK:
		return nil
	}
	return conflict("event already delivered, or (for a retry) not dead-lettered")
}

// LoadedEvent gives an event read from a database the shape callers are
// promised: UTC times.
func LoadedEvent(e *catalog.Event) {
	e.OccurredAt = e.OccurredAt.UTC()
	e.NextAttemptAt = e.NextAttemptAt.UTC()
	for _, t := range []**time.Time{&e.DeliveredAt, &e.DeadAt} {
		if *t != nil {
			u := (*t).UTC()
			*t = &u
		}
	}
}

// SortClaimed puts claimed events in claim order (OccurredAt, ID): an
// UPDATE ... RETURNING does not keep its subquery's order.
func SortClaimed(events []catalog.Event) {
	slices.SortFunc(events, func(a, b catalog.Event) int {
		if c := a.OccurredAt.Compare(b.OccurredAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
}
