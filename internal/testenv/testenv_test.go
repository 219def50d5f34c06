package testenv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestModuleRoot(t *testing.T) {
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("ModuleRoot() = %s, which has no go.mod", root)
	}
	if _, err := os.Stat(filepath.Join(root, "internal", "testenv", "testenv.go")); err != nil {
		t.Fatalf("ModuleRoot() = %s; want the module holding this package", root)
	}
}

func TestCI(t *testing.T) {
	for v, want := range map[string]bool{"true": true, "1": true, "false": false, "": false, "yes": false} {
		t.Setenv("CI", v)
		if got := CI(); got != want {
			t.Errorf("CI=%q: CI() = %v; want %v", v, got, want)
		}
	}
}

// fakeTB records how unavailable ends a test; the embedded interface
// supplies testing.TB's unexported method.
type fakeTB struct {
	testing.TB
	skipped, failed bool
	msg             string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Skipf(format string, args ...any) {
	f.skipped, f.msg = true, fmt.Sprintf(format, args...)
}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed, f.msg = true, fmt.Sprintf(format, args...)
}

func TestUnavailable(t *testing.T) {
	t.Parallel()
	missing := errors.New("versitygw not found")
	for _, ci := range []bool{false, true} {
		var f fakeTB
		unavailable(&f, ci, missing, "s3test", "S3", "run `make tools`")
		if f.failed != ci || f.skipped == ci {
			t.Errorf("CI=%v: failed=%v skipped=%v; want failed=%v skipped=%v", ci, f.failed, f.skipped, ci, !ci)
		}
		if !strings.HasPrefix(f.msg, "s3test: ") || !strings.Contains(f.msg, missing.Error()) || !strings.Contains(f.msg, "(run `make tools`)") {
			t.Errorf("CI=%v: message %q; want it to start with the harness and give the error and the hint", ci, f.msg)
		}
	}
}
