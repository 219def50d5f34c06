package main_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tus/tusd/v2/pkg/filestore"
	"github.com/tus/tusd/v2/pkg/handler"

	"github.com/intake-dev/intake/pkg/client"
)

// TestGCRemovesOrphans: files an upload left without a session (created
// behind intake's back, as a crash before the session row would leave
// them), older than --upload-ttl: `intake gc --dry-run` names them and
// changes neither the files nor the catalog; `intake gc` removes them and
// nothing else, and the server serves the known uploads afterwards.
func TestGCRemovesOrphans(t *testing.T) {
	if testing.Short() {
		t.Skip("process end-to-end test")
	}
	t.Parallel()
	dataDir := t.TempDir()
	args := []string{"--data-dir", dataDir}
	addr := freePort(t)
	p := start(t, addr, args...)
	ctx := context.Background()
	c := &client.Client{Endpoint: p.base + "/files/"}
	done, err := c.Upload(ctx, bytes.NewReader([]byte("complete")), 8, 0, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	partial, _, err := c.Create(ctx, client.Upload{Size: 100}, bytes.NewReader([]byte("part")), 4)
	if err != nil {
		t.Fatal(err)
	}
	p.terminate()

	uploads := filepath.Join(dataDir, "uploads")
	up, err := filestore.New(uploads).NewUpload(ctx, handler.FileInfo{Size: 100})
	if err != nil {
		t.Fatal(err)
	}
	info, _ := up.GetInfo(ctx)
	orphan := filepath.Join(uploads, info.ID)
	// Every file is two days old, the known uploads' too: age alone never
	// condemns a file.
	old := time.Now().Add(-48 * time.Hour)
	entries, err := os.ReadDir(uploads)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if err := os.Chtimes(filepath.Join(uploads, e.Name()), old, old); err != nil {
			t.Fatal(err)
		}
	}

	snapshot := func() string {
		t.Helper()
		var b strings.Builder
		entries, err := os.ReadDir(uploads)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			st, err := e.Info()
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "%s %d %s\n", e.Name(), st.Size(), st.ModTime())
		}
		b.Write(cli(t, append([]string{"uploads", "ls", "--json"}, args...)...))
		return b.String()
	}
	before := snapshot()

	out := string(cli(t, append([]string{"gc", "--dry-run"}, args...)...))
	for _, want := range []string{
		"would expire 0 upload(s)",
		"would remove orphan file " + orphan + "\n",
		"would remove orphan file " + orphan + ".info\n",
		"would remove 0 orphaned multipart upload(s), 0 object(s), 2 file(s)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("gc --dry-run output lacks %q:\n%s", want, out)
		}
	}
	if after := snapshot(); after != before {
		t.Fatalf("gc --dry-run changed something:\nbefore:\n%s\nafter:\n%s", before, after)
	}

	out = string(cli(t, append([]string{"gc"}, args...)...))
	if !strings.Contains(out, "removed orphan file "+orphan+"\n") || !strings.Contains(out, "2 file(s)") {
		t.Errorf("gc output does not name the orphan's removal:\n%s", out)
	}
	for _, f := range []string{orphan, orphan + ".info"} {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("%s after gc: %v; want removed", f, err)
		}
	}
	for _, id := range []string{path.Base(done), path.Base(partial)} {
		for _, f := range []string{id, id + ".info"} {
			if _, err := os.Stat(filepath.Join(uploads, f)); err != nil {
				t.Errorf("known upload's %s after gc: %v", f, err)
			}
		}
	}

	p = start(t, addr, args...)
	if got := download(t, done); string(got) != "complete" {
		t.Fatalf("complete upload after gc = %q", got)
	}
	if info, err := c.Head(ctx, partial); err != nil || info.Offset != 4 {
		t.Fatalf("HEAD of the partial upload after gc = %+v, %v; want offset 4", info, err)
	}
	p.terminate()
}
