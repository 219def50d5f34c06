// Package testenv holds what every test harness of intake needs to know
// about where it runs: the module root, and whether this is CI, where a test
// that would skip for a missing dependency (PostgreSQL, versitygw, Node.js)
// must fail instead.
package testenv

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
)

// CI reports whether the environment variable CI is true.
func CI() bool {
	ci, _ := strconv.ParseBool(os.Getenv("CI"))
	return ci
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
