package migrate

import (
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/intake-dev/intake/migrations"
	"github.com/intake-dev/intake/pkg/catalog"
)

func files(names ...string) fstest.MapFS {
	fsys := fstest.MapFS{}
	for _, n := range names {
		fsys["m/"+n] = &fstest.MapFile{Data: []byte("-- " + n + "\nSELECT 1;\n")}
	}
	return fsys
}

func TestParse(t *testing.T) {
	t.Parallel()
	// Numeric order, not lexical: 10 must come after 9.
	var names []string
	for v := 1; v <= 10; v++ {
		names = append(names, strings.Replace("000V_step.up.sql", "000V", pad(v), 1),
			strings.Replace("000V_step.down.sql", "000V", pad(v), 1))
	}
	steps, err := Parse(files(names...), "m")
	if err != nil {
		t.Fatalf("Parse = %v", err)
	}
	if len(steps) != 10 {
		t.Fatalf("got %d steps; want 10", len(steps))
	}
	for i, s := range steps {
		if s.Version != i+1 || s.Name != "step" {
			t.Errorf("steps[%d] = %d %s; want %d step", i, s.Version, s.Name, i+1)
		}
		if !strings.Contains(s.Up, pad(s.Version)+"_step.up.sql") || !strings.Contains(s.Down, pad(s.Version)+"_step.down.sql") {
			t.Errorf("step %d has up %q, down %q; halves swapped or mixed", s.Version, s.Up, s.Down)
		}
	}
}

func pad(v int) string { return fmt.Sprintf("%04d", v) }

func TestParseRejects(t *testing.T) {
	t.Parallel()
	blank := files("0001_a.up.sql")
	blank["m/0001_a.down.sql"] = &fstest.MapFile{Data: []byte(" \n\t")}
	tests := []struct {
		name string
		fsys fstest.MapFS
		want string
	}{
		{"empty dir", fstest.MapFS{"m": {Mode: fs.ModeDir}}, "no migrations"},
		{"subdirectory", fstest.MapFS{"m/sub/0001_a.up.sql": {}}, "unexpected directory"},
		{"missing dir", fstest.MapFS{}, "error reading"},
		{"no files", fstest.MapFS{"other/x": {}}, "error reading"},
		{"bad name", files("0001_a.up.sql", "0001_a.down.sql", "readme.sql"), "not named"},
		{"uppercase name", files("0001_A.up.sql", "0001_A.down.sql"), "not named"},
		{"missing down", files("0001_a.up.sql"), "lacks"},
		{"missing up", files("0001_a.down.sql"), "lacks"},
		{"two names", files("0001_a.up.sql", "0001_b.down.sql"), "two names"},
		{"same version twice", files("0001_a.up.sql", "1_a.up.sql", "0001_a.down.sql"), "two up files"},
		{"gap", files("0001_a.up.sql", "0001_a.down.sql", "0003_c.up.sql", "0003_c.down.sql"), "gap"},
		{"starts at 2", files("0002_b.up.sql", "0002_b.down.sql"), "gap"},
		{"version zero", files("0000_z.up.sql", "0000_z.down.sql"), "bad version"},
		{"blank down", blank, "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse(tt.fsys, "m")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Parse = %v; want an error containing %q", err, tt.want)
			}
		})
	}
}

// The shipped files must parse, and both dialects must carry the same
// versions under the same names.
func TestEmbedded(t *testing.T) {
	t.Parallel()
	pg, err := Parse(migrations.FS, "postgres")
	if err != nil {
		t.Fatalf("postgres: %v", err)
	}
	lite, err := Parse(migrations.FS, "sqlite")
	if err != nil {
		t.Fatalf("sqlite: %v", err)
	}
	key := func(steps []Step) []string {
		var out []string
		for _, s := range steps {
			out = append(out, pad(s.Version)+"_"+s.Name)
		}
		return out
	}
	if !slices.Equal(key(pg), key(lite)) {
		t.Fatalf("postgres has %v; sqlite has %v", key(pg), key(lite))
	}
}

func applied(versions ...int) []catalog.Migration {
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	var out []catalog.Migration
	for _, v := range versions {
		out = append(out, catalog.Migration{Version: v, Name: "n" + pad(v), AppliedAt: &at})
	}
	return out
}

func steps(versions ...int) []Step {
	var out []Step
	for _, v := range versions {
		out = append(out, Step{Version: v, Name: "s" + pad(v), Up: "up", Down: "down"})
	}
	return out
}

func versionsOf(steps []Step) []int {
	var out []int
	for _, s := range steps {
		out = append(out, s.Version)
	}
	return out
}

func TestPending(t *testing.T) {
	t.Parallel()
	if got := versionsOf(Pending(steps(1, 2, 3), applied(1))); !slices.Equal(got, []int{2, 3}) {
		t.Errorf("Pending = %v; want [2 3]", got)
	}
	if got := Pending(steps(1, 2), applied(1, 2, 3)); len(got) != 0 {
		t.Errorf("Pending with a newer database = %v; want none", versionsOf(got))
	}
	// A hole (2 missing while 3 is applied) is filled, not skipped.
	if got := versionsOf(Pending(steps(1, 2, 3), applied(1, 3))); !slices.Equal(got, []int{2}) {
		t.Errorf("Pending = %v; want [2]", got)
	}
}

func TestRollback(t *testing.T) {
	t.Parallel()
	got, err := Rollback(steps(1, 2, 3), applied(1, 2, 3), 2)
	if err != nil || !slices.Equal(versionsOf(got), []int{3, 2}) {
		t.Errorf("Rollback(2) = %v, %v; want [3 2]", versionsOf(got), err)
	}
	got, err = Rollback(steps(1, 2, 3), applied(2, 1), 10)
	if err != nil || !slices.Equal(versionsOf(got), []int{2, 1}) {
		t.Errorf("Rollback(10) = %v, %v; want [2 1]", versionsOf(got), err)
	}
	got, err = Rollback(steps(1), nil, 1)
	if err != nil || len(got) != 0 {
		t.Errorf("Rollback of nothing = %v, %v; want none", versionsOf(got), err)
	}
	if _, err := Rollback(steps(1, 2), applied(1, 2, 3), 1); err == nil {
		t.Error("Rollback of an unknown version: got nil error")
	}
	if _, err := Rollback(steps(1), applied(1), 0); err == nil {
		t.Error("Rollback(0): got nil error")
	}
}

func TestStatus(t *testing.T) {
	t.Parallel()
	got := Status(steps(1, 2), applied(1, 7))
	if len(got) != 3 {
		t.Fatalf("Status = %+v; want 3 rows", got)
	}
	if got[0].Version != 1 || got[0].Name != "s0001" || got[0].AppliedAt == nil {
		t.Errorf("row 0 = %+v; want version 1, the binary's name, applied", got[0])
	}
	if got[1].Version != 2 || got[1].AppliedAt != nil {
		t.Errorf("row 1 = %+v; want version 2 pending", got[1])
	}
	if got[2].Version != 7 || got[2].Name != "n0007" || got[2].AppliedAt == nil {
		t.Errorf("row 2 = %+v; want unknown version 7 with its recorded name", got[2])
	}
}
