package catalog_test

import (
	"errors"
	"testing"
	"time"

	"github.com/intake-dev/intake/pkg/catalog"
)

func TestSessionValidate(t *testing.T) {
	t.Parallel()

	size := func(n int64) *int64 { return &n }
	now := time.Now()
	ok := catalog.Session{ID: "a", State: catalog.StateReceiving}

	tests := []struct {
		name  string
		edit  func(s *catalog.Session)
		valid bool
	}{
		{"minimal", func(*catalog.Session) {}, true},
		{"deferred size with offset", func(s *catalog.Session) { s.Offset = 7 }, true},
		{"zero size", func(s *catalog.Session) { s.Size = size(0) }, true},
		{"complete", func(s *catalog.Session) { s.State, s.Size, s.Offset = catalog.StateComplete, size(3), 3 }, true},
		{"rejected", func(s *catalog.Session) { s.State = catalog.StateRejected }, true},
		{"final with partials", func(s *catalog.Session) { s.IsFinal, s.PartialIDs = true, []string{"p1", "p2"} }, true},
		{"unicode metadata", func(s *catalog.Session) { s.Metadata = map[string]string{"名前": "résumé 📄"} }, true},
		{"equal timestamps", func(s *catalog.Session) { s.CreatedAt, s.UpdatedAt = now, now }, true},

		{"empty id", func(s *catalog.Session) { s.ID = "" }, false},
		{"nul in id", func(s *catalog.Session) { s.ID = "a\x00b" }, false},
		{"invalid utf8 owner", func(s *catalog.Session) { s.Owner = "\xff" }, false},
		{"empty state", func(s *catalog.Session) { s.State = "" }, false},
		{"unknown state", func(s *catalog.Session) { s.State = "paused" }, false},
		{"negative offset", func(s *catalog.Session) { s.Offset = -1 }, false},
		{"negative size", func(s *catalog.Session) { s.Size = size(-1) }, false},
		{"offset past size", func(s *catalog.Session) { s.Size, s.Offset = size(3), 4 }, false},
		{"complete deferred", func(s *catalog.Session) { s.State = catalog.StateComplete }, false},
		{"complete short", func(s *catalog.Session) { s.State, s.Size, s.Offset = catalog.StateComplete, size(3), 2 }, false},
		{"partial and final", func(s *catalog.Session) { s.IsPartial, s.IsFinal, s.PartialIDs = true, true, []string{"p"} }, false},
		{"final without partials", func(s *catalog.Session) { s.IsFinal = true }, false},
		{"partials without final", func(s *catalog.Session) { s.PartialIDs = []string{"p"} }, false},
		{"empty partial id", func(s *catalog.Session) { s.IsFinal, s.PartialIDs = true, []string{""} }, false},
		{"metadata value invalid utf8", func(s *catalog.Session) { s.Metadata = map[string]string{"k": "\xc3\x28"} }, false},
		{"metadata value nul", func(s *catalog.Session) { s.Metadata = map[string]string{"k": "a\x00"} }, false},
		{"metadata key invalid utf8", func(s *catalog.Session) { s.Metadata = map[string]string{"\xff": "v"} }, false},
		{"storage value nul", func(s *catalog.Session) { s.Storage = map[string]string{"Path": "\x00"} }, false},
		{"updated before created", func(s *catalog.Session) { s.CreatedAt, s.UpdatedAt = now, now.Add(-time.Second) }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := ok
			tt.edit(&s)
			err := s.Validate()
			if tt.valid && err != nil {
				t.Fatalf("Validate() = %v; want nil", err)
			}
			if !tt.valid && !errors.Is(err, catalog.ErrInvalid) {
				t.Fatalf("Validate() = %v; want ErrInvalid", err)
			}
		})
	}
}
