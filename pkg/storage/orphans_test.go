package storage_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tus/tusd/v2/pkg/filestore"
	"github.com/tus/tusd/v2/pkg/handler"

	"github.com/intake-dev/intake/pkg/storage"
)

// TestFileOrphans: files a crash left without a session (tusd's own file
// store, used behind intake's back) go once older than the TTL; the files
// of known uploads (incomplete, complete, and a blob holder whose session
// was terminated while another still references the blob) stay, and so do
// an unknown upload that looks finished, files of another shape and a
// fresh readiness probe. A dry run changes nothing.
func TestFileOrphans(t *testing.T) {
	t.Parallel()
	for _, c := range catalogs {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			clk := &clock{t: time.Now()}
			dir := t.TempDir()
			reg := prometheus.NewRegistry()
			cat := c.open(t)
			log := slog.New(slog.NewTextHandler(t.Output(), nil))
			store := storage.New(filestore.New(dir), cat, storage.Options{
				TTL: time.Hour, Now: clk.now, Logger: log, Metrics: storage.NewMetrics(reg),
				Orphans: storage.FileOrphans{Dir: dir, Logger: log},
			})
			b := &bundle{store: store, backend: filestore.New(dir), catalog: cat, dir: dir, reg: reg}

			up, partial := b.create(t, ctx, handler.FileInfo{Size: 100})
			if _, err := up.WriteChunk(ctx, 0, bytes.NewReader(make([]byte, 10))); err != nil {
				t.Fatal(err)
			}
			content := []byte("the same content, stored once")
			complete := func() string {
				up, id := b.create(t, ctx, handler.FileInfo{Size: int64(len(content))})
				if _, err := up.WriteChunk(ctx, 0, bytes.NewReader(content)); err != nil {
					t.Fatal(err)
				}
				if err := b.get(t, ctx, id).FinishUpload(ctx); err != nil {
					t.Fatal(err)
				}
				return id
			}
			holder, referrer := complete(), complete()
			sum := sha256.Sum256(content)
			if blob, err := cat.GetBlob(ctx, hex.EncodeToString(sum[:])); err != nil || blob.UploadID != holder {
				t.Fatalf("blob = %+v, %v; want held by %s", blob, err, holder)
			}
			if err := store.AsTerminatableUpload(b.get(t, ctx, holder)).Terminate(ctx); err != nil {
				t.Fatal(err)
			}

			// Behind intake's back: an upload created with no session (the
			// crash before the session row), one with some bytes, one that
			// looks finished, a bare empty data file, a foreign file and a
			// probe left by a dead process.
			tusd := filestore.New(dir)
			behind := func(size int64, data []byte) string {
				up, err := tusd.NewUpload(ctx, handler.FileInfo{Size: size})
				if err != nil {
					t.Fatal(err)
				}
				info, _ := up.GetInfo(ctx)
				if len(data) > 0 {
					if _, err := up.WriteChunk(ctx, 0, bytes.NewReader(data)); err != nil {
						t.Fatal(err)
					}
				}
				return info.ID
			}
			orphan := behind(50, nil)
			orphanBytes := behind(50, make([]byte, 20))
			finished := behind(5, []byte("12345"))
			bare := strings.Repeat("ab", 16)
			for name, data := range map[string]string{bare: "", "notes.txt": "an operator's", ".readyz-123": ""} {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			before := b.files(t)

			res, err := store.SweepOrphans(ctx, false)
			if err != nil || res.Files != 0 || res.Kept != 0 {
				t.Fatalf("sweep within the TTL: %+v, %v; want nothing touched", res, err)
			}

			clk.add(2 * time.Hour)
			res, err = store.SweepOrphans(ctx, true)
			if err != nil || res.Files != 6 || res.Kept != 1 {
				t.Fatalf("dry run: %+v, %v; want 6 files (two orphans' pairs, a bare file, the probe), 1 kept", res, err)
			}
			if got := b.files(t); !slices.Equal(got, before) {
				t.Fatalf("dry run changed the directory: %v; want %v", got, before)
			}
			if got := orphansRemoved(t, reg, "file"); got != 0 {
				t.Fatalf("dry run counted %v removed files", got)
			}

			res, err = store.SweepOrphans(ctx, false)
			if err != nil || res.Files != 6 || res.Kept != 1 || len(res.Removed) != 6 {
				t.Fatalf("sweep: %+v, %v; want 6 files removed, 1 kept", res, err)
			}
			var want []string
			for _, id := range []string{partial, holder, finished} {
				want = append(want, id, id+".info")
			}
			want = append(want, "notes.txt")
			slices.Sort(want)
			if got := b.files(t); !slices.Equal(got, want) {
				t.Fatalf("left: %v; want %v (gone: %s, %s, %s)", got, want, orphan, orphanBytes, bare)
			}
			if got := orphansRemoved(t, reg, "file"); got != 6 {
				t.Fatalf("intake_orphans_removed_total{kind=file} = %v; want 6", got)
			}
			// The blob still serves from the terminated holder's file.
			r, err := b.get(t, ctx, referrer).GetReader(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			var got bytes.Buffer
			if _, err := got.ReadFrom(r); err != nil || !bytes.Equal(got.Bytes(), content) {
				t.Fatalf("referrer's content = %q, %v; want %q", got.Bytes(), err, content)
			}
		})
	}
}

// TestFileOrphansCatalogDown: when the catalog cannot say which uploads
// it knows, nothing is removed.
func TestFileOrphansCatalogDown(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	up, err := filestore.New(dir).NewUpload(t.Context(), handler.FileInfo{Size: 5})
	if err != nil {
		t.Fatal(err)
	}
	info, _ := up.GetInfo(t.Context())
	down := func(context.Context, []string) (map[string]bool, error) { return nil, errCatalogDown }
	res, err := storage.FileOrphans{Dir: dir}.SweepOrphans(t.Context(), down, time.Now().Add(time.Hour), false)
	if err == nil || res.Files != 0 {
		t.Fatalf("sweep with the catalog down: %+v, %v; want an error and nothing removed", res, err)
	}
	for _, name := range []string{info.ID, info.ID + ".info"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("%s: %v; want kept", name, err)
		}
	}
}

// orphansRemoved reads intake_orphans_removed_total{kind} from reg.
func orphansRemoved(t *testing.T, reg *prometheus.Registry, kind string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "intake_orphans_removed_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "kind" && l.GetValue() == kind {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no intake_orphans_removed_total{kind=%q}", kind)
	return 0
}
