package catalog

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Validate reports, wrapped in ErrInvalid, the first way s breaks the
// invariants every catalog enforces. Create calls it after filling in
// defaults, so an empty State is accepted there but not here.
func (s Session) Validate() error {
	if s.ID == "" {
		return invalid("empty id")
	}
	if err := text("id", s.ID); err != nil {
		return err
	}
	if err := text("owner", s.Owner); err != nil {
		return err
	}
	if !s.State.Valid() {
		return invalid("unknown state %q", s.State)
	}
	if s.Offset < 0 {
		return invalid("negative offset %d", s.Offset)
	}
	if s.Size != nil {
		if *s.Size < 0 {
			return invalid("negative size %d", *s.Size)
		}
		if s.Offset > *s.Size {
			return invalid("offset %d past size %d", s.Offset, *s.Size)
		}
	}
	if s.State == StateComplete && (s.Size == nil || s.Offset != *s.Size) {
		return invalid("complete session must have offset equal to a declared size")
	}
	if s.IsPartial && s.IsFinal {
		return invalid("session cannot be both partial and final")
	}
	if s.IsFinal && len(s.PartialIDs) == 0 {
		return invalid("final session without partial ids")
	}
	if !s.IsFinal && len(s.PartialIDs) > 0 {
		return invalid("partial ids on a session that is not final")
	}
	for i, id := range s.PartialIDs {
		if id == "" {
			return invalid("empty partial id at index %d", i)
		}
		if err := text("partial id", id); err != nil {
			return err
		}
	}
	if err := textMap("metadata", s.Metadata); err != nil {
		return err
	}
	if err := textMap("storage", s.Storage); err != nil {
		return err
	}
	if !s.CreatedAt.IsZero() && !s.UpdatedAt.IsZero() && s.UpdatedAt.Before(s.CreatedAt) {
		return invalid("updated_at before created_at")
	}
	return nil
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
}

// text rejects what JSON text columns cannot hold faithfully: Go's encoder
// replaces invalid UTF-8 silently, and PostgreSQL refuses \u0000 in jsonb.
func text(what, v string) error {
	if !utf8.ValidString(v) {
		return invalid("%s is not valid UTF-8", what)
	}
	if strings.IndexByte(v, 0) >= 0 {
		return invalid("%s contains a NUL byte", what)
	}
	return nil
}

func textMap(what string, m map[string]string) error {
	for k, v := range m {
		if err := text(what+" key", k); err != nil {
			return err
		}
		// The key is valid text by now, so it is safe to quote.
		if err := text(fmt.Sprintf("%s value for key %q", what, k), v); err != nil {
			return err
		}
	}
	return nil
}
