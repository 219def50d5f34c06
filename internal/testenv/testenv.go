// Package testenv holds what every test harness of intake needs to know
// about where it runs: the module root, and whether this is CI, where a test
// that would skip for a missing dependency (PostgreSQL, versitygw, Node.js)
// must fail instead (Unavailable).
package testenv

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// CI reports whether the environment variable CI is true.
func CI() bool {
	ci, _ := strconv.ParseBool(os.Getenv("CI"))
	return ci
}

// Unavailable ends t for want of a dependency, err saying what is missing:
// it skips t, or fails it when CI is true, where a skip would hide the gap.
// harness starts both messages (the helper package's name), kind names the
// tests in the failure ("a skipped <kind> test counts as a failure"), and
// hint says how to get the dependency.
func Unavailable(t testing.TB, err error, harness, kind, hint string) {
	t.Helper()
	unavailable(t, CI(), err, harness, kind, hint)
}

func unavailable(t testing.TB, ci bool, err error, harness, kind, hint string) {
	t.Helper()
	if ci {
		t.Fatalf("%s: %v and CI=true, where a skipped %s test counts as a failure (%s)", harness, err, kind, hint)
		return
	}
	t.Skipf("%s: skipping, %v (%s)", harness, err, hint)
}

// ModuleRoot returns the nearest directory at or above the working
// directory (the package's, under go test) that holds go.mod.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod in the working directory or above it")
		}
		dir = parent
	}
}
