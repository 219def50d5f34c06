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
)

// Valid reports whether s is one of the known states.
func (s State) Valid() bool {
	switch s {
	case StateReceiving, StateComplete, StateTerminated, StateFailed:
		return true
	}
	return false
}

// Terminal reports whether no byte can be added to a session in state s.
func (s State) Terminal() bool { return s != StateReceiving }

var (
	// ErrNotFound is returned when no session has the requested id.
	ErrNotFound = errors.New("upload session not found")
	// ErrExists is returned by Create when the id is taken.
	ErrExists = errors.New("upload session already exists")
	// ErrConflict is returned when a change does not fit the session's
	// current state: an offset that goes backwards or past the size, a length
	// declared twice, a transition out of a terminal state.
	ErrConflict = errors.New("upload session state conflict")
	// ErrInvalid is returned when an argument can never be accepted, whatever
	// the stored state: a session that breaks its own invariants, a negative
	// offset or length, a target state SetState does not handle, metadata
	// that is not valid UTF-8 text. Callers should map it to a client error.
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

	// Timestamps are kept with microsecond precision and returned in UTC.
	// UpdatedAt changes on every call that changes the session, never moves
	// backwards, and strictly increases with each change; calls that succeed
	// as no-ops leave it alone.
	CreatedAt   time.Time
	UpdatedAt   time.Time
	CompletedAt *time.Time // set when State becomes complete
}

// SizeDeferred reports whether the client has not declared the length yet.
func (s Session) SizeDeferred() bool { return s.Size == nil }

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
	// ErrInvalid if the session breaks Session.Validate.
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
	// terminated; only receiving ones may fail; leaving terminated or failed
	// is ErrConflict. Moving a session to the state it is already in is a
	// no-op success. Any other target state is ErrInvalid.
	SetState(ctx context.Context, id string, state State) error
	// List returns sessions matching opts, newest first. Options that make
	// no sense (a negative limit, an unknown state) are ErrInvalid.
	List(ctx context.Context, opts ListOptions) ([]Session, error)
	// Ping checks that the database answers.
	Ping(ctx context.Context) error
	// Close releases the connections. Calling it again is harmless.
	Close() error
}
