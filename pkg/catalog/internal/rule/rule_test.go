package rule

import (
	"context"
	"errors"
	"testing"

	"github.com/intake-dev/intake/pkg/catalog"
)

// The catalogs' SQL must agree with these tables; the conformance suite
// checks the catalogs, these check the verdicts on their own.

type verdict int

const (
	noop verdict = iota
	apply
	refuse
)

func (v verdict) String() string { return [...]string{"no-op", "apply", "refuse"}[v] }

func judge(t *testing.T, apply_ bool, err error) verdict {
	t.Helper()
	switch {
	case err != nil && apply_:
		t.Fatalf("check returned apply with error %v", err)
	case err != nil:
		if !errors.Is(err, catalog.ErrConflict) {
			t.Fatalf("got error %v; want ErrConflict", err)
		}
		return refuse
	case apply_:
		return apply
	}
	return noop
}

func size(n int64) *int64 { return &n }

var (
	receiving  = catalog.StateReceiving
	complete   = catalog.StateComplete
	terminated = catalog.StateTerminated
	failed     = catalog.StateFailed
)

func TestSetOffset(t *testing.T) {
	t.Parallel()
	tests := []struct {
		cur    Current
		offset int64
		want   verdict
	}{
		{Current{receiving, 10, size(100)}, 11, apply},
		{Current{receiving, 10, size(100)}, 100, apply},
		{Current{receiving, 10, size(100)}, 10, noop},
		{Current{receiving, 10, size(100)}, 9, refuse},
		{Current{receiving, 10, size(100)}, 101, refuse},
		{Current{receiving, 10, nil}, 1 << 50, apply},
		{Current{complete, 100, size(100)}, 100, refuse},
		{Current{terminated, 10, size(100)}, 10, refuse},
		{Current{failed, 10, size(100)}, 20, refuse},
	}
	for _, tt := range tests {
		ok, err := SetOffset(tt.cur, tt.offset)
		if got := judge(t, ok, err); got != tt.want {
			t.Errorf("SetOffset(%+v, %d) = %v; want %v", tt.cur, tt.offset, got, tt.want)
		}
	}
}

func TestDeclareLength(t *testing.T) {
	t.Parallel()
	tests := []struct {
		cur  Current
		size int64
		want verdict
	}{
		{Current{receiving, 10, nil}, 10, apply},
		{Current{receiving, 10, nil}, 11, apply},
		{Current{receiving, 10, nil}, 9, refuse},
		{Current{receiving, 10, size(20)}, 20, noop},
		{Current{receiving, 10, size(20)}, 21, refuse},
		{Current{complete, 20, size(20)}, 20, noop},
		{Current{terminated, 0, nil}, 5, refuse},
		{Current{failed, 0, nil}, 5, refuse},
	}
	for _, tt := range tests {
		ok, err := DeclareLength(tt.cur, tt.size)
		if got := judge(t, ok, err); got != tt.want {
			t.Errorf("DeclareLength(%+v, %d) = %v; want %v", tt.cur, tt.size, got, tt.want)
		}
	}
}

func TestComplete(t *testing.T) {
	t.Parallel()
	tests := []struct {
		cur    Current
		offset int64
		want   verdict
	}{
		{Current{receiving, 10, size(20)}, 20, apply},
		{Current{receiving, 0, size(0)}, 0, apply},
		{Current{receiving, 10, size(20)}, 19, refuse},
		{Current{receiving, 10, nil}, 10, refuse},
		{Current{complete, 20, size(20)}, 20, noop},
		{Current{complete, 20, size(20)}, 19, refuse},
		{Current{terminated, 20, size(20)}, 20, refuse},
		{Current{failed, 20, size(20)}, 20, refuse},
	}
	for _, tt := range tests {
		ok, err := Complete(tt.cur, tt.offset)
		if got := judge(t, ok, err); got != tt.want {
			t.Errorf("Complete(%+v, %d) = %v; want %v", tt.cur, tt.offset, got, tt.want)
		}
	}
}

func TestSetState(t *testing.T) {
	t.Parallel()
	tests := []struct {
		from, to catalog.State
		want     verdict
	}{
		{receiving, terminated, apply},
		{receiving, failed, apply},
		{complete, terminated, apply},
		{complete, failed, refuse},
		{terminated, terminated, noop},
		{terminated, failed, refuse},
		{failed, failed, noop},
		{failed, terminated, refuse},
	}
	for _, tt := range tests {
		if err := StateArg(tt.to); err != nil {
			t.Fatalf("StateArg(%s) = %v", tt.to, err)
		}
		ok, err := SetState(Current{State: tt.from}, tt.to)
		if got := judge(t, ok, err); got != tt.want {
			t.Errorf("SetState(%s -> %s) = %v; want %v", tt.from, tt.to, got, tt.want)
		}
	}
	for _, to := range []catalog.State{receiving, complete, "", "bogus"} {
		if err := StateArg(to); !errors.Is(err, catalog.ErrInvalid) {
			t.Errorf("StateArg(%q) = %v; want ErrInvalid", to, err)
		}
	}
}

func TestApply(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	errDB := errors.New("db down")
	cur := func(context.Context) (Current, error) { return Current{State: receiving}, nil }
	changed := func(context.Context) (bool, error) { return true, nil }
	missed := func(context.Context) (bool, error) { return false, nil }

	if err := Apply(ctx, changed, nil, nil); err != nil {
		t.Errorf("changed row: got %v; want nil", err)
	}
	if err := Apply(ctx, func(context.Context) (bool, error) { return false, errDB }, cur, nil); !errors.Is(err, errDB) {
		t.Errorf("update error: got %v; want %v", err, errDB)
	}
	if err := Apply(ctx, missed, func(context.Context) (Current, error) { return Current{}, errDB }, nil); !errors.Is(err, errDB) {
		t.Errorf("read error: got %v; want %v", err, errDB)
	}
	noopCheck := func(Current) (bool, error) { return false, nil }
	if err := Apply(ctx, missed, cur, noopCheck); err != nil {
		t.Errorf("no-op: got %v; want nil", err)
	}
	updates := 0
	disagree := func(context.Context) (bool, error) { updates++; return false, nil }
	if err := Apply(ctx, disagree, cur, func(Current) (bool, error) { return true, nil }); err == nil {
		t.Errorf("SQL and rule disagree: got nil error; want one")
	}
	if updates != 3 {
		t.Errorf("updates tried = %d; want 3", updates)
	}
}

func TestListLimit(t *testing.T) {
	t.Parallel()
	if n, err := ListLimit(catalog.ListOptions{}); err != nil || n != DefaultListLimit {
		t.Errorf("ListLimit(zero) = %d, %v; want %d, nil", n, err, DefaultListLimit)
	}
	if n, err := ListLimit(catalog.ListOptions{Limit: 7}); err != nil || n != 7 {
		t.Errorf("ListLimit(7) = %d, %v; want 7, nil", n, err)
	}
	for _, opts := range []catalog.ListOptions{{Limit: -1}, {State: "bogus"}, {BeforeID: "x"}} {
		if _, err := ListLimit(opts); !errors.Is(err, catalog.ErrInvalid) {
			t.Errorf("ListLimit(%+v) = %v; want ErrInvalid", opts, err)
		}
	}
}
