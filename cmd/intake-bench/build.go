package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// tusdVersion is the reference: the tusd release intake embeds (go.mod).
const tusdVersion = "v2.10.1"

// ensureTusd returns the reference tusd binary in dir, building it there
// on first use: a scratch module of its own (never the repository's code)
// that requires tusd at tusdVersion from the module proxy, with a tools.go
// so that go mod tidy keeps the requirement. `go install pkg@version` is
// not used because it needs the proxy's version list, which is not always
// served. The binary is written under a temporary name and renamed last,
// so an interrupted build never leaves one that counts as cached.
func ensureTusd(ctx context.Context, dir string, log func(string, ...any)) (string, error) {
	bin := filepath.Join(dir, "tusd")
	if fi, err := os.Stat(bin); err == nil && fi.Mode().IsRegular() {
		return bin, nil
	}
	log("building the reference tusd %s in %s (once; cached afterwards)", tusdVersion, dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	// Leftovers of an interrupted build would make go mod init refuse.
	for _, f := range []string{"go.mod", "go.sum", "tools.go", "tusd.tmp"} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
	}
	tools := "//go:build tools\n\n// Package tools pins the reference tusd for intake-bench.\npackage tools\n\nimport _ \"github.com/tus/tusd/v2/cmd/tusd\"\n"
	if err := os.WriteFile(filepath.Join(dir, "tools.go"), []byte(tools), 0o644); err != nil {
		return "", err
	}
	steps := [][]string{
		{"mod", "init", "scratch"},
		{"get", "github.com/tus/tusd/v2@" + tusdVersion},
		{"mod", "tidy"},
		{"build", "-o", "tusd.tmp", "github.com/tus/tusd/v2/cmd/tusd"},
	}
	for _, args := range steps {
		if err := goCmd(ctx, dir, args...); err != nil {
			return "", fmt.Errorf("building tusd %s: %w", tusdVersion, err)
		}
	}
	if err := os.Rename(filepath.Join(dir, "tusd.tmp"), bin); err != nil {
		return "", err
	}
	return bin, nil
}

// buildIntake builds ./cmd/intake of the module at root into dir with a
// plain go build, as tusd is built (no -trimpath, no stripping, no
// version stamp), so that the two binaries differ only in their code.
func buildIntake(ctx context.Context, root, dir string) (string, error) {
	bin := filepath.Join(dir, "intake")
	if err := goCmd(ctx, root, "build", "-o", bin, "./cmd/intake"); err != nil {
		return "", fmt.Errorf("building intake: %w", err)
	}
	return bin, nil
}

// goCmd runs the go command in dir. GOWORK=off keeps a workspace file of
// the developer's from pulling the scratch module into something else.
func goCmd(ctx context.Context, dir string, args ...string) error {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out.String())
	}
	return nil
}
