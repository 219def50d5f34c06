package storage

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Orphans are what an orphan sweep removed, or with a dry run would
// remove: storage no session knows, left by a crash between the backend
// creating an upload and the catalog recording it.
type Orphans struct {
	Multipart int // S3 multipart uploads aborted
	Objects   int // S3 objects deleted
	Files     int // file store files removed
	// Kept counts old storage of no known upload left in place because
	// whose it is, or whether it holds a finished upload, could not be
	// told; each is logged.
	Kept int
	// Removed names each removal: "multipart KEY UPLOADID", "object KEY",
	// "file PATH".
	Removed []string
}

// Add adds o2's counts and removals to o.
func (o *Orphans) Add(o2 Orphans) {
	o.Multipart += o2.Multipart
	o.Objects += o2.Objects
	o.Files += o2.Files
	o.Kept += o2.Kept
	o.Removed = append(o.Removed, o2.Removed...)
}

// KnownFunc reports which of ids have a session, of any state
// (catalog.Catalog.Known). Sessions are never deleted, so an id known once
// stays known: a batch answered is never stale in the unsafe direction.
type KnownFunc func(ctx context.Context, ids []string) (map[string]bool, error)

// OrphanSweeper is a backend that can find and remove the storage of
// uploads no session knows.
type OrphanSweeper interface {
	// SweepOrphans removes storage last changed before olderThan whose
	// upload id known does not report. It must never remove what belongs
	// to a known upload or holds a blob's bytes, and keeps (and logs)
	// anything it cannot tell. With dryRun it only reports.
	SweepOrphans(ctx context.Context, known KnownFunc, olderThan time.Time, dryRun bool) (Orphans, error)
}

// KnownBatch is how many ids a sweeper asks known about at once.
const KnownBatch = 1000

// IsStoreID reports whether s has the form of the ids tusd's stores give
// uploads (128 random bits in lowercase hex). Sweeps touch nothing else, so
// that files and keys intake did not write survive, even with an empty S3
// prefix.
func IsStoreID(s string) bool { return isLowerHex(s, 32) }

// isLowerHex reports whether s is exactly n lowercase hex digits.
func isLowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for _, c := range []byte(s) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// SweepOrphans runs the backend's orphan sweep (Options.Orphans) over
// storage older than the TTL: an upload's session is written right after
// the backend creates it, so anything that old without one never got one.
// Without a TTL or a sweeper it does nothing.
func (s *Store) SweepOrphans(ctx context.Context, dryRun bool) (Orphans, error) {
	if s.opts.TTL <= 0 || s.opts.Orphans == nil {
		return Orphans{}, nil
	}
	res, err := s.opts.Orphans.SweepOrphans(ctx, s.sessions.Known, s.now().Add(-s.opts.TTL), dryRun)
	if !dryRun {
		m := s.opts.Metrics
		m.OrphansRemoved("multipart", res.Multipart)
		m.OrphansRemoved("object", res.Objects)
		m.OrphansRemoved("file", res.Files)
	}
	if err != nil {
		return res, fmt.Errorf("sweeping orphaned storage: %w", err)
	}
	return res, nil
}

// FileOrphans sweeps a file store directory: tusd keeps upload ID as the
// files ID (the bytes) and ID.info (its FileInfo as JSON).
type FileOrphans struct {
	Dir    string
	Logger *slog.Logger // defaults to slog.Default()
}

var _ OrphanSweeper = FileOrphans{}

// readyzPrefix names the probe files of the server's readiness check,
// removed at once unless the process died in between.
const readyzPrefix = ".readyz-"

// fileGroup is one upload's files.
type fileGroup struct {
	data, info         bool
	dataSize           int64
	newest             time.Time
	dataPath, infoPath string
}

// SweepOrphans removes the files of each upload no session knows whose
// files all changed last before olderThan, and stale readiness probes. An
// unknown upload whose bytes look finished (its .info declares a size its
// file holds) is kept and logged: no crash before the session row can
// leave one, so it is something else (a catalog restored from an older
// backup) and its bytes are not ours to drop. So is a non-empty file
// without a readable .info.
func (f FileOrphans) SweepOrphans(ctx context.Context, known KnownFunc, olderThan time.Time, dryRun bool) (Orphans, error) {
	var res Orphans
	log := f.Logger
	if log == nil {
		log = slog.Default()
	}
	entries, err := os.ReadDir(f.Dir)
	if err != nil {
		return res, fmt.Errorf("reading uploads directory: %w", err)
	}
	groups := map[string]*fileGroup{}
	var firstErr error
	remove := func(path string) {
		if !dryRun {
			if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				log.WarnContext(ctx, "removing orphaned file", "path", path, "error", err)
				firstErr = cmp.Or(firstErr, err)
				return
			}
		}
		res.Files++
		res.Removed = append(res.Removed, "file "+path)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		name := e.Name()
		st, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		path := filepath.Join(f.Dir, name)
		if strings.HasPrefix(name, readyzPrefix) {
			if st.ModTime().Before(olderThan) {
				remove(path)
			}
			continue
		}
		id, isInfo := strings.CutSuffix(name, ".info")
		if !IsStoreID(id) {
			continue
		}
		g := groups[id]
		if g == nil {
			g = &fileGroup{}
			groups[id] = g
		}
		if isInfo {
			g.info, g.infoPath = true, path
		} else {
			g.data, g.dataPath, g.dataSize = true, path, st.Size()
		}
		if st.ModTime().After(g.newest) {
			g.newest = st.ModTime()
		}
	}

	var ids []string
	for id, g := range groups {
		if g.newest.Before(olderThan) {
			ids = append(ids, id)
		}
	}
	for start := 0; start < len(ids); start += KnownBatch {
		batch := ids[start:min(start+KnownBatch, len(ids))]
		ok, err := known(ctx, batch)
		if err != nil {
			return res, fmt.Errorf("looking up upload ids: %w", err)
		}
		for _, id := range batch {
			if ok[id] {
				continue
			}
			g := groups[id]
			if why := g.keep(); why != "" {
				log.WarnContext(ctx, "keeping files of an unknown upload", "id", id, "reason", why)
				res.Kept++
				continue
			}
			if g.data {
				remove(g.dataPath)
			}
			if g.info {
				remove(g.infoPath)
			}
		}
		if err := ctx.Err(); err != nil {
			return res, err
		}
	}
	return res, firstErr
}

// keep says why an unknown upload's files must stay, or "".
func (g *fileGroup) keep() string {
	if !g.data || g.dataSize == 0 {
		return "" // no bytes at all
	}
	if !g.info {
		return "bytes without a .info"
	}
	b, err := os.ReadFile(g.infoPath)
	if err != nil {
		return "unreadable .info"
	}
	var info struct {
		Size           int64
		SizeIsDeferred bool
	}
	if err := json.Unmarshal(b, &info); err != nil {
		return "unreadable .info"
	}
	if !info.SizeIsDeferred && info.Size > 0 && g.dataSize == info.Size {
		return "finished upload"
	}
	return ""
}
