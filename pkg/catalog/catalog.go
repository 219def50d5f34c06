package catalog

import (
	"context"
	"errors"
	"time"
)

// State is where an upload session is in its life.
type State string

const (
	// StateReceiving: created, bytes may still arrive.
	StateReceiving State = "receiving"
	// StateComplete: every declared byte is stored and the upload is final.
	StateComplete State = "complete"
	// StateTerminated: deleted by the client (tus termination).
	StateTerminated State = "terminated"
	// StateFailed: the server gave up on the upload (e.g. a digest mismatch).
	StateFailed State = "failed"
	// StateExpired: abandoned while receiving (no change for the upload
	// TTL); its bytes are the caller's to release (the catalog never holds
	// them). Only Expire moves a session here, and nothing moves it on.
	StateExpired State = "expired"
	// StateRejected: every byte arrived, but policy refused the upload
	// after the last one (e.g. its sniffed type is not allowed); its bytes
	// are released. Only Reject moves a session here, and nothing moves it
	// on.
	StateRejected State = "rejected"
)

// Valid reports whether s is one of the known states.
func (s State) Valid() bool {
	switch s {
	case StateReceiving, StateComplete, StateTerminated, StateFailed, StateRejected, StateExpired:
		return true
	}
	return false
}

var (
	// ErrNotFound is returned when no session has the requested id, by
	// the blob methods when no blob (in scope) has the requested digest,
	// and by the outbox methods when no event has the requested id.
	ErrNotFound = errors.New("upload session not found")
	// ErrExists is returned by Create and CreateDeduped when the id is taken.
	ErrExists = errors.New("upload session already exists")
	// ErrConflict is returned when a change does not fit the session's
	// current state: an offset that goes backwards or past the size, a length
	// declared twice, a transition out of a terminal state, a delivery
	// outcome recorded for an event already delivered.
	ErrConflict = errors.New("upload session state conflict")
	// ErrInvalid is returned when an argument can never be accepted, whatever
	// the stored state: a session that breaks its own invariants, a negative
	// offset or length, a target state SetState does not handle, metadata
	// that is not valid UTF-8 text, a digest that is not 64 lowercase hex
	// digits, a malformed media type. Callers should map it to a client
	// error.
	ErrInvalid = errors.New("invalid upload session")
)

// Session is one upload as the catalog records it.
type Session struct {
	ID    string
	Owner string // "" for anonymous uploads
	// Size is the declared total length; nil while the length is deferred.
	Size *int64
	// Offset is the number of bytes durably committed to the store.
	Offset int64
	// State defaults to StateReceiving when Create is given "".
	State State
	// Metadata is the tus Upload-Metadata, decoded. Keys and values must be
	// valid UTF-8 without NUL bytes (ErrInvalid otherwise), because both
	// catalogs store it as JSON text. Get and List return a non-nil map,
	// empty when the session has no metadata.
	Metadata map[string]string

	IsPartial  bool
	IsFinal    bool
	PartialIDs []string // for a final upload: the partial uploads, in order

	// Storage says where the bytes are, as the store describes it (for
	// example {"Type": "filestore", "Path": "..."}). Same rules and same
	// non-nil guarantee as Metadata.
	Storage map[string]string

	// HashState is the marshalled crypto/sha256 state after the first
	// HashOffset bytes of the upload (encoding.BinaryMarshaler), so a
	// resumed upload continues its digest without re-reading. Nil when no
	// resumable state exists, and HashOffset is then 0. Written only by
	// CommitOffset: SetOffset and Complete leave both alone, so a state is
	// usable exactly when HashOffset equals the offset the caller resumes
	// from (an offset repaired from the store with SetOffset runs ahead of
	// it). List leaves HashState nil (HashOffset is set); Get returns it.
	HashState  []byte
	HashOffset int64
	// SHA256 is the lowercase hex digest of the complete upload; "" until
	// Finalize or CreateDeduped. Release and Reject keep it.
	SHA256 string
	// ContentType is the media type sniffed from the stored bytes at
	// finalization, "" until Finalize records it. Finalize and
	// CreateDeduped fill it in from the blob when the session has none;
	// Create refuses it.
	ContentType string
	// BlobSHA256 names the blob holding this session's bytes: equal to
	// SHA256 while the session is complete and references the blob, ""
	// otherwise (partial uploads, sessions completed by Complete, sessions
	// released or rejected). A session never points at a blob that does
	// not exist.
	BlobSHA256 string

	// Timestamps are kept with microsecond precision and returned in UTC.
	// UpdatedAt changes on every call that changes the session, never moves
	// backwards, and strictly increases with each change; calls that succeed
	// as no-ops leave it alone.
	CreatedAt   time.Time
	UpdatedAt   time.Time
	CompletedAt *time.Time // set when State becomes complete, then kept
}

// SizeDeferred reports whether the client has not declared the length yet.
func (s Session) SizeDeferred() bool { return s.Size == nil }

// Blob is one stored content, shared by every complete session with its
// digest (store once). Its bytes are the object of the upload that first
// completed with that content.
type Blob struct {
	SHA256 string // lowercase hex, the key
	Size   int64
	// UploadID is the upload whose stored object holds the bytes; Storage
	// describes that object (as Session.Storage does).
	UploadID string
	Storage  map[string]string
	// ContentType is the sniffed media type, "" until known (see
	// Finalize).
	ContentType string
	// Refs counts the complete sessions that reference the blob. A blob
	// row exists only while it is referenced: Release and Reject delete it
	// with the last reference.
	Refs      int64
	CreatedAt time.Time
}

// Event types written to the outbox.
const (
	EventCreated    = "upload.created"
	EventCompleted  = "upload.completed"
	EventFailed     = "upload.failed"
	EventRejected   = "upload.rejected"
	EventTerminated = "upload.terminated"
	EventExpired    = "upload.expired"
)

// Event is one row of the transactional outbox: written in the same
// transaction as the state change it reports, delivered later (at least
// once) by the webhook dispatcher.
type Event struct {
	// ID is 128 random bits in lowercase hex (32 digits): receivers use it
	// as the idempotency key.
	ID       string
	Type     string
	UploadID string
	// OccurredAt is the transition's time: the session's UpdatedAt after
	// the change, so a session's events sort in the order they happened
	// even within one clock tick.
	OccurredAt time.Time
	// Payload is the JSON encoding of a Snapshot of the session (and its
	// blob) taken in the event's transaction, after the change. It is
	// returned byte for byte as written.
	Payload []byte
	// Delivery bookkeeping. Attempts counts failed attempts as MarkFailed
	// records them. NextAttemptAt starts at OccurredAt: a new event is due
	// at once (unless the session was created with a time in the future).
	Attempts      int
	NextAttemptAt time.Time
	LastError     string
	DeliveredAt   *time.Time
	// DeadAt is set when delivery was given up (dead-lettered). An event
	// is never both delivered and dead.
	DeadAt *time.Time
}

// Snapshot is what Event.Payload holds: the session as the transition left
// it. Times are RFC 3339 in UTC; Size and CompletedAt are null while
// unknown, SHA256 and ContentType "" while unknown; Metadata and Storage
// are objects, never null. BlobStorage is the blob's Storage while the
// session references a blob, null otherwise (so after Release or Reject).
type Snapshot struct {
	ID          string            `json:"id"`
	Owner       string            `json:"owner"`
	Size        *int64            `json:"size"`
	Offset      int64             `json:"offset"`
	State       State             `json:"state"`
	SHA256      string            `json:"sha256"`
	ContentType string            `json:"content_type"`
	Metadata    map[string]string `json:"metadata"`
	Storage     map[string]string `json:"storage"`
	BlobStorage map[string]string `json:"blob_storage"`
	CreatedAt   time.Time         `json:"created_at"`
	CompletedAt *time.Time        `json:"completed_at"`
}

// EventFilter narrows ListEvents. Failed and Pending exclude each other.
type EventFilter struct {
	// Failed lists only dead-lettered events.
	Failed bool
	// Pending lists only events not yet delivered nor dead.
	Pending bool
	// Limit caps the number of events; 0 means 100, a negative limit is
	// ErrInvalid.
	Limit int
}

// ListOptions narrows List. Zero values mean "no filter".
type ListOptions struct {
	Owner string
	State State
	// Limit caps the number of rows; 0 means the implementation's default
	// (100). Results are ordered newest first (created_at desc, id desc).
	Limit int
	// Before, when set, returns only sessions created strictly before it
	// (keyset pagination on created_at, at microsecond precision).
	Before time.Time
	// BeforeID makes the cursor exact when several sessions share a creation
	// time: with it, List returns the sessions that sort after (Before,
	// BeforeID) in the list order, that is created before Before, or created
	// at Before with an id less than BeforeID. To page, pass the CreatedAt
	// and ID of the last session of the previous page. Setting BeforeID
	// without Before is ErrInvalid.
	BeforeID string
}

// Catalog stores upload sessions. Implementations must be safe for
// concurrent use by many goroutines and, for PostgreSQL, many processes.
type Catalog interface {
	// Create inserts a new session. CreatedAt is set by the catalog when
	// zero, UpdatedAt defaults to CreatedAt, and CompletedAt to UpdatedAt for
	// a session created complete. Returns ErrExists if the id is taken and
	// ErrInvalid if the session breaks Session.Validate or sets HashState,
	// HashOffset, SHA256, BlobSHA256 or ContentType, which only
	// CommitOffset, Finalize and CreateDeduped write: a plain Create never
	// links a blob.
	Create(ctx context.Context, s Session) error
	// Get returns the session with the id, or ErrNotFound.
	Get(ctx context.Context, id string) (Session, error)
	// SetOffset records that offset bytes are committed. The offset never
	// moves backwards and never past a declared size (ErrConflict); setting
	// the current value again is a no-op success. Only a receiving session
	// accepts it (ErrConflict otherwise, even for the current value). A
	// negative offset is ErrInvalid.
	SetOffset(ctx context.Context, id string, offset int64) error
	// DeclareLength fixes the size of a deferred-length session. ErrConflict
	// if the size is already set to a different value or is below the
	// committed offset, or if the session is no longer receiving; declaring
	// the same size again is a no-op success. A negative size is ErrInvalid.
	DeclareLength(ctx context.Context, id string, size int64) error
	// Complete moves a receiving session to StateComplete with the given
	// final offset (which must equal its size) and sets CompletedAt.
	// Completing an already complete session with its final offset is a
	// no-op success (so finalization can be retried); a different offset, a
	// deferred size or any other terminal state is ErrConflict.
	Complete(ctx context.Context, id string, offset int64) error
	// SetState moves a session to a terminal state other than complete
	// (terminated, failed). Receiving and complete sessions may be
	// terminated; only receiving ones may fail; leaving terminated, failed,
	// rejected or expired is ErrConflict. Moving a session to the state it
	// is already in is a no-op success. Any other target state (rejected
	// and expired included: see Reject and Expire) is ErrInvalid. A
	// complete session that references a blob is ErrConflict here: only
	// Release may terminate it, so that its reference is dropped and
	// counted.
	SetState(ctx context.Context, id string, state State) error
	// List returns sessions matching opts, newest first, without HashState
	// (nil; use Get to resume). Options that make no sense (a negative
	// limit, an unknown state) are ErrInvalid.
	List(ctx context.Context, opts ListOptions) ([]Session, error)

	// CommitOffset records, in one write, that offset bytes are committed
	// and that hashState is the digest state after exactly those bytes
	// (HashOffset = offset). A nil or empty hashState clears the state
	// (HashOffset = 0): the digest must then be computed by reading the
	// object back. Offset rules are SetOffset's, except that the current
	// offset with a different state (or after SetOffset moved the offset
	// past the state) replaces the state; the current offset with the
	// stored state is a no-op success.
	CommitOffset(ctx context.Context, id string, offset int64, hashState []byte) error
	// Finalize completes a session whose digest is sha256 (lowercase hex,
	// ErrInvalid otherwise) and links it to the blob for that digest in one
	// transaction. size is the final offset and must equal the session's
	// declared size (a deferred size is ErrConflict). An existing blob
	// gains a reference (existed=true: the caller deletes its own copy of
	// the bytes); otherwise a blob is created from this session's own
	// object (UploadID = id, Storage = the session's Storage) with one
	// reference. Concurrent finalizations of the same content create one
	// blob, and a Finalize racing the Release of a blob's last reference
	// either references the blob before it goes or creates it anew. An
	// existing blob of another size is ErrConflict and changes nothing.
	//
	// The session must be receiving, or complete without a digest (created
	// complete or completed by Complete), and not a partial upload, whose
	// bytes belong to a final upload (ErrConflict). Finalizing a session
	// that is already complete with the same digest and size returns its
	// blob and whether the blob is another upload's object, changing
	// nothing but the content type (idempotent, for retries after a
	// crash); another digest or size, or a terminated, failed, rejected or
	// expired session, is ErrConflict.
	//
	// contentType is the media type sniffed from the stored bytes, or ""
	// when none is known. It must be "type/subtype" with optional
	// parameters, printable ASCII, at most 255 bytes (ErrInvalid
	// otherwise). It replaces the session's type (if it differs) before
	// the session is linked, in the same transaction, so that the
	// upload.completed event carries it. On a session already finalized
	// with this digest it replaces the type of the session (if it differs)
	// and of its blob, writing no event.
	//
	// Session and blob share what either knows of the content type: a new
	// blob takes the session's, an existing blob without one takes it too,
	// and a session without one takes the blob's.
	Finalize(ctx context.Context, id string, size int64, sha256, contentType string) (blob Blob, existed bool, err error)
	// CreateDeduped inserts s already complete (Offset = *s.Size, SHA256
	// and BlobSHA256 = sha256) referencing the existing blob sha256, whose
	// size must equal *s.Size, adding a reference — in one transaction.
	// s follows Create's rules, and must have a declared size, a State of
	// "" or complete, an Offset of 0 or *s.Size, no digest fields and not
	// be partial or final (ErrInvalid otherwise). ErrNotFound when no such
	// blob exists (anymore); ErrConflict on a size mismatch; ErrExists for
	// a taken id. Nothing is written on error. The session takes the
	// blob's ContentType.
	CreateDeduped(ctx context.Context, s Session, sha256 string) error
	// Release terminates a session and drops its blob reference in one
	// transaction, with SetState(terminated)'s rules otherwise (receiving
	// and complete sessions may be released, failed, rejected and expired
	// ones are ErrConflict).
	// The session keeps SHA256 and loses BlobSHA256. It returns the blob as
	// it is after the release: when the session held the last reference
	// the blob row is deleted and returned with Refs 0 and last=true, and
	// the caller deletes the blob's bytes (the object of Blob.UploadID,
	// which is not necessarily this session's). Otherwise the bytes stay,
	// even when they are this session's own object. A session without a
	// blob is just terminated (zero Blob, false): its own object, if any,
	// is the caller's to delete. Releasing an already terminated session is
	// a no-op success (zero Blob, false).
	Release(ctx context.Context, id string) (blob Blob, last bool, err error)
	// GetBlob returns the blob with the digest, or ErrNotFound. A digest
	// that is not 64 lowercase hex digits is ErrInvalid.
	GetBlob(ctx context.Context, sha256 string) (Blob, error)
	// Reject moves a receiving or complete session to StateRejected
	// (refused by policy once its bytes are in), dropping a complete
	// session's blob reference like Release (last=true: the blob row is
	// gone and the caller deletes the bytes), and writes an upload.rejected
	// event in the same transaction. A session without a blob returns a
	// zero Blob and false: its own object is the caller's to delete. The
	// session keeps its offset, SHA256, CompletedAt and ContentType and
	// loses BlobSHA256. Rejecting a rejected session is a no-op success
	// (zero Blob, false); terminated, failed and expired sessions are
	// ErrConflict.
	// A rejected session is final: no other call changes its state.
	Reject(ctx context.Context, id string) (blob Blob, last bool, err error)

	// Outbox. Transitions write their events in their own transaction:
	// Create → upload.created; Finalize (the call that links the session
	// to a blob) and CreateDeduped → upload.completed; SetState(failed) →
	// upload.failed; SetState(terminated) and Release → upload.terminated;
	// Reject → upload.rejected; Expire → upload.expired. Complete writes
	// none: a session it completes reports upload.completed when Finalize
	// links it. No-op and refused calls write nothing.
	//
	// OccurredAt comes from the catalog's clock (see Event), while the
	// outbox methods take the dispatcher's clock as an argument: instances
	// sharing a database should keep their clocks in sync.

	// ClaimEvents returns up to limit events due at now (not delivered, not
	// dead, NextAttemptAt <= now), oldest first (OccurredAt, ID), and leases
	// them: their NextAttemptAt moves to now+lease, as returned, so no other
	// dispatcher claims them meanwhile (SKIP LOCKED on PostgreSQL) nor
	// until the lease runs out (when the claimer crashed). Attempts is left
	// alone. limit and lease must be positive (ErrInvalid).
	ClaimEvents(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]Event, error)
	// MarkDelivered records a successful delivery at at. A dead event that
	// turns out delivered (its claimer's lease ran out meanwhile) stops
	// being dead. Marking a delivered event again is a no-op success that
	// keeps the first time.
	MarkDelivered(ctx context.Context, id string, at time.Time) error
	// MarkFailed records a failed attempt: attempts so far (negative is
	// ErrInvalid), when to try next, the error; dead dead-letters the event
	// (no more attempts; DeadAt from the catalog's clock). Without dead, an
	// event already dead stays dead: only RetryEvent revives it. lastErr is
	// stored as valid UTF-8 without NUL bytes, cut to 1 KiB. A delivered
	// event is ErrConflict and stays as it is.
	MarkFailed(ctx context.Context, id string, attempts int, next time.Time, lastErr string, dead bool) error
	// ListEvents lists events newest first (OccurredAt, ID descending),
	// narrowed by f; Failed and Pending together, or a negative Limit, are
	// ErrInvalid.
	ListEvents(ctx context.Context, f EventFilter) ([]Event, error)
	// RetryEvent makes a dead-lettered event due at now again, clearing its
	// dead mark (not its attempts). ErrNotFound for an unknown id;
	// ErrConflict for a delivered event, and for a pending one — it may be
	// in a dispatcher's hands right now, and making it due again could
	// deliver it twice at once.
	RetryEvent(ctx context.Context, id string, now time.Time) error

	// Expiry. The catalog never sees a PATCH in flight (the offset is
	// committed once the store has the bytes), so a sweep must hold the
	// upload's lock around Expire and the release of the bytes; Expire's
	// own condition only settles a race with a change already committed.

	// ListExpired returns up to limit sessions still receiving whose last
	// change (UpdatedAt) is strictly before cutoff, at microsecond
	// precision, least recently changed first (UpdatedAt, then ID), without
	// HashState (as List). limit must be positive (ErrInvalid).
	ListExpired(ctx context.Context, cutoff time.Time, limit int) ([]Session, error)
	// Expire moves a receiving session whose UpdatedAt is still strictly
	// before cutoff (as ListExpired) to StateExpired and writes its
	// upload.expired event, in one transaction; the condition is checked in
	// the statement that makes the change. It reports false, without error,
	// when the condition no longer holds: the session is no longer
	// receiving (expired already included), or a change since the listing
	// moved UpdatedAt to cutoff or later (a PATCH won the race); then
	// nothing changes. The session keeps everything else (offset, digest
	// state, storage). ErrNotFound for an unknown id.
	Expire(ctx context.Context, id string, cutoff time.Time) (bool, error)
	// Known returns which of ids have a session, of any state: the map holds
	// true for each such id and nothing for the others (so a lookup of an
	// unknown id reads false). Ids compare exactly; an id no session can
	// have (see Create) is simply not known. No ids give an empty map. Any
	// number of ids may be asked: large sets are looked up in batches, which
	// is safe because sessions are never deleted, so an id once known stays
	// known.
	Known(ctx context.Context, ids []string) (map[string]bool, error)
	// PurgeEvents deletes the events delivered strictly before cutoff (at
	// microsecond precision) and returns how many; pending and dead events
	// are never deleted. It may work in several transactions, so that a
	// large purge never holds up other writes for long; on error the count
	// is of the events already deleted. A purged event is gone: the outbox
	// methods then answer ErrNotFound for its id, as for any unknown one.
	PurgeEvents(ctx context.Context, cutoff time.Time) (int64, error)

	// OwnerUsage returns the bytes charged to owner's quota: the size of
	// each complete session (every session, even when its content is stored
	// once), the declared size of each receiving session (its committed
	// offset while the length is deferred), nothing for terminated, failed,
	// rejected and expired ones.
	OwnerUsage(ctx context.Context, owner string) (int64, error)

	// FindBlob returns the blob with the digest if owner may know of it:
	// with global, any blob; otherwise only one referenced by a complete
	// session of owner (released sessions no longer count). ErrNotFound
	// otherwise; ErrInvalid for a malformed digest. Owners compare exactly
	// as everywhere in the catalog: "" is the anonymous owner and finds
	// what anonymous sessions reference, so a caller for whom anonymous
	// clients are strangers to each other must not ask with "".
	FindBlob(ctx context.Context, sha256, owner string, global bool) (Blob, error)
	// Ping checks that the database answers.
	Ping(ctx context.Context) error
	// Close releases the connections. Calling it again is harmless.
	Close() error
}
