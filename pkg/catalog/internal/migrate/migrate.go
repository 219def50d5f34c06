// Package migrate reads the embedded migration files into an ordered plan
// and answers the questions both catalogs' runners ask of it: what is
// pending, what a rollback of n steps undoes, what the status is. Running
// SQL, locking and bookkeeping stay with each catalog, since they differ by
// dialect; this package never touches a database.
package migrate

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/intake-dev/intake/pkg/catalog"
)

// Step is one migration version with the SQL to apply and undo it.
type Step struct {
	Version int
	Name    string
	Up      string
	Down    string
}

// Migration returns the step as a catalog.Migration that is not applied.
func (s Step) Migration() catalog.Migration {
	return catalog.Migration{Version: s.Version, Name: s.Name}
}

var fileName = regexp.MustCompile(`^([0-9]+)_([a-z0-9_]+)\.(up|down)\.sql$`)

// Parse reads dir in fsys. Every file must be named NNNN_name.up.sql or
// NNNN_name.down.sql; each version needs both halves under one name, neither
// blank, and versions must run 1, 2, 3... without a gap, so that a file lost
// in a merge is an error rather than a silently skipped schema change.
func Parse(fsys fs.FS, dir string) ([]Step, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("error reading migrations: %w", err)
	}
	byVersion := map[int]*Step{}
	for _, e := range entries {
		if e.IsDir() {
			return nil, fmt.Errorf("unexpected directory %s in migrations", e.Name())
		}
		m := fileName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("migration file %s is not named NNNN_name.up.sql or NNNN_name.down.sql", e.Name())
		}
		version, err := strconv.Atoi(m[1])
		if err != nil || version < 1 {
			return nil, fmt.Errorf("migration file %s has a bad version", e.Name())
		}
		b, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("error reading migration: %w", err)
		}
		sql := string(b)
		if strings.TrimSpace(sql) == "" {
			return nil, fmt.Errorf("migration file %s is empty", e.Name())
		}
		s := byVersion[version]
		if s == nil {
			s = &Step{Version: version, Name: m[2]}
			byVersion[version] = s
		}
		if s.Name != m[2] {
			return nil, fmt.Errorf("migration %d has two names, %s and %s", version, s.Name, m[2])
		}
		half := &s.Up
		if m[3] == "down" {
			half = &s.Down
		}
		if *half != "" {
			// Only reachable through differently padded versions (1_x, 0001_x).
			return nil, fmt.Errorf("migration %d has two %s files", version, m[3])
		}
		*half = sql
	}
	if len(byVersion) == 0 {
		return nil, fmt.Errorf("no migrations in %s", dir)
	}
	steps := make([]Step, 0, len(byVersion))
	for _, s := range byVersion {
		if s.Up == "" || s.Down == "" {
			return nil, fmt.Errorf("migration %04d_%s lacks its up or down file", s.Version, s.Name)
		}
		steps = append(steps, *s)
	}
	slices.SortFunc(steps, func(a, b Step) int { return cmp.Compare(a.Version, b.Version) })
	for i, s := range steps {
		if s.Version != i+1 {
			return nil, fmt.Errorf("migration versions have a gap: found %d where %d belongs", s.Version, i+1)
		}
	}
	return steps, nil
}

// Pending returns the steps not in applied, in version order.
func Pending(steps []Step, applied []catalog.Migration) []Step {
	done := versions(applied)
	var out []Step
	for _, s := range steps {
		if !done[s.Version] {
			out = append(out, s)
		}
	}
	return out
}

// Rollback returns the steps that undo the n most recently applied
// migrations (by version), newest first. It fails if one of them is not
// among steps: a newer binary applied it, and only that binary can undo it.
func Rollback(steps []Step, applied []catalog.Migration, n int) ([]Step, error) {
	if n < 1 {
		return nil, errors.New("steps to roll back must be positive")
	}
	latest := slices.Clone(applied)
	slices.SortFunc(latest, func(a, b catalog.Migration) int { return cmp.Compare(b.Version, a.Version) })
	latest = latest[:min(n, len(latest))]
	out := make([]Step, 0, len(latest))
	for _, m := range latest {
		i := slices.IndexFunc(steps, func(s Step) bool { return s.Version == m.Version })
		if i < 0 {
			return nil, fmt.Errorf("cannot roll back migration %d (%s): this binary does not know it", m.Version, m.Name)
		}
		out = append(out, steps[i])
	}
	return out, nil
}

// Status merges the known steps with the applied rows, in version order.
// Applied rows of unknown versions are kept, with their recorded names.
func Status(steps []Step, applied []catalog.Migration) []catalog.Migration {
	byVersion := map[int]catalog.Migration{}
	for _, s := range steps {
		byVersion[s.Version] = s.Migration()
	}
	for _, m := range applied {
		if known, ok := byVersion[m.Version]; ok {
			known.AppliedAt = m.AppliedAt
			m = known
		}
		byVersion[m.Version] = m
	}
	out := make([]catalog.Migration, 0, len(byVersion))
	for _, m := range byVersion {
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b catalog.Migration) int { return cmp.Compare(a.Version, b.Version) })
	return out
}

func versions(ms []catalog.Migration) map[int]bool {
	out := make(map[int]bool, len(ms))
	for _, m := range ms {
		out[m.Version] = true
	}
	return out
}
