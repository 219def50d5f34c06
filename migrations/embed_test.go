package migrations

import (
	"io/fs"
	"slices"
	"strings"
	"testing"
)

// The catalogs parse these files properly (pkg/catalog/internal/migrate);
// this only guards what the embed pattern and the two dialects must share.
func TestDialectsHaveTheSameFiles(t *testing.T) {
	t.Parallel()
	names := func(dir string) []string {
		entries, err := fs.ReadDir(FS, dir)
		if err != nil {
			t.Fatalf("reading %s: %v", dir, err)
		}
		var out []string
		for _, e := range entries {
			out = append(out, e.Name())
		}
		return out
	}
	pg, lite := names("postgres"), names("sqlite")
	if len(pg) == 0 {
		t.Fatal("no postgres migrations embedded")
	}
	if !slices.Equal(pg, lite) {
		t.Fatalf("postgres files %v; sqlite files %v; want the same", pg, lite)
	}
	for _, name := range pg {
		for _, dir := range []string{"postgres", "sqlite"} {
			b, err := fs.ReadFile(FS, dir+"/"+name)
			if err != nil {
				t.Fatal(err)
			}
			upper := strings.ToUpper(string(b))
			for _, word := range []string{"BEGIN;", "COMMIT;", "ROLLBACK;"} {
				if strings.Contains(upper, word) {
					t.Errorf("%s/%s contains %s; the runner owns transactions", dir, name, word)
				}
			}
		}
	}
}
