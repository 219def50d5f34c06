// Package rule holds what the PostgreSQL and SQLite catalogs must decide the
// same way: argument checks, the defaults Create fills in, the shape of a
// session read back, and the verdict on a change that a conditional UPDATE
// did not apply. It never touches a database.
//
// Both catalogs change a row with one conditional UPDATE whose WHERE clause
// admits exactly the changes allowed here. That keeps the hot path (one
// SetOffset per PATCH) to a single statement. Only when the UPDATE matches no
// row do they read the row and ask this package why, to tell a no-op from a
// conflict from a missing session.
package rule

import (
	"context"
	"errors"
	"fmt"
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
	case cur.State == catalog.StateComplete && to == catalog.StateTerminated:
		return true, nil
	}
	return false, conflict("session is %s and cannot become %s", cur.State, to)
}

// Timestamp is how both catalogs keep a time: microseconds, UTC.
func Timestamp(t time.Time) time.Time { return t.Truncate(time.Microsecond).UTC() }

// Create fills in the defaults of a session about to be created and
// validates it. Times left zero stay zero, for the catalog to set from its
// own clock.
func Create(s catalog.Session) (catalog.Session, error) {
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

// StorableID reports whether a session could have id: Create refuses ids
// that are empty, not UTF-8 or contain NUL (Session.Validate), so for any
// other id every lookup is simply ErrNotFound — never a driver error about
// encoding, which a client could trigger with a crafted URL.
func StorableID(id string) bool {
	return id != "" && utf8.ValidString(id) && !strings.ContainsRune(id, 0)
}
