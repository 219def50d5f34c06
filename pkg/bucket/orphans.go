package bucket

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/intake-dev/intake/pkg/storage"
)

// Orphans returns the bucket's orphan sweep, logging to log.
func (b *Bucket) Orphans(log *slog.Logger) storage.OrphanSweeper {
	return orphanSweep{b: b, log: cmp.Or(log, slog.Default())}
}

type orphanSweep struct {
	b   *Bucket
	log *slog.Logger
}

// keyPrefix is the prefix tusd's S3 store actually puts before every key:
// Options.Prefix with a "/" appended when it lacks one.
func (b *Bucket) keyPrefix() string {
	p := b.opts.Prefix
	if p != "" && !strings.HasSuffix(p, "/") {
		p += "/"
	}
	return p
}

// objectID returns the tusd object id of key and what the key holds
// ("" for the upload's bytes, ".info", ".part"), or ok false for a key
// that is not one tusd's S3 store writes directly under the prefix.
func (b *Bucket) objectID(key string) (id, suffix string, ok bool) {
	rest, ok := strings.CutPrefix(key, b.keyPrefix())
	if !ok {
		return "", "", false
	}
	for _, s := range []string{".info", ".part"} {
		if id, found := strings.CutSuffix(rest, s); found {
			rest, suffix = id, s
			break
		}
	}
	return rest, suffix, storage.IsStoreID(rest)
}

// SweepOrphans removes what the S3 store left of uploads no session knows,
// under the prefix only:
//
//   - multipart uploads initiated before olderThan whose upload id
//     (objectId+"+"+uploadId) is unknown are aborted;
//   - the .info and .part objects of an upload, all last modified before
//     olderThan, whose .info names an unknown upload id are deleted.
//
// An upload's own object exists only once it finished, which takes its
// session: objectIds with one are never touched (nor is their .info read,
// which would cost a GET per stored upload per pass). A .part without a
// .info cannot be told whose it is, so it is kept and logged.
func (o orphanSweep) SweepOrphans(ctx context.Context, known storage.KnownFunc, olderThan time.Time, dryRun bool) (storage.Orphans, error) {
	b, log := o.b, o.log
	// Each half is safe on its own: one failing does not stop the other.
	res, merr := b.sweepMultipart(ctx, log, known, olderThan, dryRun)
	objs, oerr := b.sweepObjects(ctx, log, known, olderThan, dryRun)
	res.Add(objs)
	return res, errors.Join(merr, oerr)
}

type multipart struct{ key, uploadID string }

func (b *Bucket) sweepMultipart(ctx context.Context, log *slog.Logger, known storage.KnownFunc, olderThan time.Time, dryRun bool) (storage.Orphans, error) {
	var res storage.Orphans
	var firstErr error
	core := minio.Core{Client: b.mc}
	pending := map[string]multipart{} // by upload id
	flush := func() error {
		if len(pending) == 0 {
			return nil
		}
		ids := make([]string, 0, len(pending))
		for id := range pending {
			ids = append(ids, id)
		}
		ok, err := known(ctx, ids)
		if err != nil {
			return fmt.Errorf("looking up upload ids: %w", err)
		}
		for _, id := range ids {
			if ok[id] {
				continue
			}
			mp := pending[id]
			if !dryRun {
				err := core.AbortMultipartUpload(ctx, b.opts.Bucket, mp.key, mp.uploadID)
				if err != nil && minio.ToErrorResponse(err).Code != "NoSuchUpload" {
					log.WarnContext(ctx, "aborting orphaned multipart upload", "key", mp.key, "error", describe(err))
					firstErr = cmp.Or(firstErr, describe(err))
					continue
				}
			}
			res.Multipart++
			res.Removed = append(res.Removed, "multipart "+mp.key+" "+mp.uploadID)
		}
		clear(pending)
		return nil
	}
	lctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the lister when we return early
	for up := range b.mc.ListIncompleteUploads(lctx, b.opts.Bucket, b.keyPrefix(), false) {
		if up.Err != nil {
			return res, fmt.Errorf("listing multipart uploads: %w", describe(up.Err))
		}
		objectID, suffix, ok := b.objectID(up.Key)
		if !ok || suffix != "" || up.UploadID == "" || up.Initiated.IsZero() || !up.Initiated.Before(olderThan) {
			continue
		}
		pending[objectID+"+"+up.UploadID] = multipart{key: up.Key, uploadID: up.UploadID}
		if len(pending) >= storage.KnownBatch {
			if err := flush(); err != nil {
				return res, err
			}
		}
	}
	if err := flush(); err != nil {
		return res, err
	}
	return res, cmp.Or(firstErr, ctx.Err())
}

// objectGroup is what the bucket holds of one tusd object id.
type objectGroup struct {
	id         string
	data, info bool
	keys       []string
	newest     time.Time
	uploadID   string // from the .info, once read
}

func (b *Bucket) sweepObjects(ctx context.Context, log *slog.Logger, known storage.KnownFunc, olderThan time.Time, dryRun bool) (storage.Orphans, error) {
	var res storage.Orphans
	var firstErr error
	var batch []*objectGroup
	var cur *objectGroup

	flush := func() error {
		var ids []string
		for _, g := range batch {
			ids = append(ids, g.uploadID)
		}
		if len(ids) == 0 {
			return nil
		}
		ok, err := known(ctx, ids)
		if err != nil {
			return fmt.Errorf("looking up upload ids: %w", err)
		}
		for _, g := range batch {
			if ok[g.uploadID] {
				continue
			}
			// Every key is under the prefix: objectID admitted it.
			for _, key := range g.keys {
				if !dryRun {
					if err := b.mc.RemoveObject(ctx, b.opts.Bucket, key, minio.RemoveObjectOptions{}); err != nil {
						log.WarnContext(ctx, "deleting orphaned object", "key", key, "error", describe(err))
						firstErr = cmp.Or(firstErr, describe(err))
						continue
					}
				}
				res.Objects++
				res.Removed = append(res.Removed, "object "+key)
			}
		}
		batch = batch[:0]
		return nil
	}
	// judge decides about a complete group: skip it, keep it (logged), or
	// queue it for the lookup.
	judge := func(g *objectGroup) error {
		if g == nil || g.data || !g.newest.Before(olderThan) {
			return nil
		}
		if !g.info {
			log.WarnContext(ctx, "keeping objects without a .info: whose they are cannot be told", "keys", g.keys)
			res.Kept++
			return nil
		}
		uploadID, err := b.readInfoID(ctx, b.keyPrefix()+g.id+".info")
		switch {
		case errors.Is(err, errGone):
			return nil // removed meanwhile (terminated, reaped)
		case err != nil:
			log.WarnContext(ctx, "keeping objects with an unreadable .info", "keys", g.keys, "error", err)
			res.Kept++
			return nil
		case !strings.HasPrefix(uploadID, g.id+"+"):
			log.WarnContext(ctx, "keeping objects whose .info names another upload", "keys", g.keys, "upload", uploadID)
			res.Kept++
			return nil
		}
		g.uploadID = uploadID
		batch = append(batch, g)
		if len(batch) >= storage.KnownBatch {
			return flush()
		}
		return nil
	}

	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// S3 lists in key order, so an id's keys (ID, ID.info, ID.part) arrive
	// together. The "/" delimiter (not recursive) keeps anything below a
	// deeper level of the prefix out of the listing.
	for obj := range b.mc.ListObjects(lctx, b.opts.Bucket, minio.ListObjectsOptions{Prefix: b.keyPrefix()}) {
		if obj.Err != nil {
			return res, fmt.Errorf("listing objects: %w", describe(obj.Err))
		}
		id, suffix, ok := b.objectID(obj.Key)
		if !ok {
			continue
		}
		if cur == nil || cur.id != id {
			if err := judge(cur); err != nil {
				return res, err
			}
			cur = &objectGroup{id: id}
		}
		cur.keys = append(cur.keys, obj.Key)
		switch suffix {
		case "":
			cur.data = true
		case ".info":
			cur.info = true
		}
		if obj.LastModified.IsZero() {
			cur.newest = time.Now() // unknown: treat as new
		} else if obj.LastModified.After(cur.newest) {
			cur.newest = obj.LastModified
		}
	}
	if err := judge(cur); err != nil {
		return res, err
	}
	if err := flush(); err != nil {
		return res, err
	}
	return res, cmp.Or(firstErr, ctx.Err())
}

var errGone = errors.New("object is gone")

// readInfoID reads the upload id from tusd's .info object (its FileInfo
// as JSON).
func (b *Bucket) readInfoID(ctx context.Context, key string) (string, error) {
	obj, err := b.mc.GetObject(ctx, b.opts.Bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return "", describe(err)
	}
	defer obj.Close()
	data, err := io.ReadAll(io.LimitReader(obj, 1<<20))
	if err != nil {
		if minio.ToErrorResponse(err).Code == "NoSuchKey" {
			return "", errGone
		}
		return "", describe(err)
	}
	var info struct{ ID string }
	if err := json.Unmarshal(data, &info); err != nil {
		return "", fmt.Errorf("decoding .info: %w", err)
	}
	return info.ID, nil
}

// RemoveTempFiles removes the part files tusd's S3 store left in dir
// (tusd-s3-tmp-*, tusd-s3-concat-tmp-*): a process that dies mid-request
// never removes them. Call it before serving, and only on a directory no
// live process uses: tusd fails a PATCH whose part file vanished.
func RemoveTempFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("reading S3 temp directory: %w", err)
	}
	var removed []string
	var firstErr error
	for _, e := range entries {
		if !e.Type().IsRegular() || !strings.HasPrefix(e.Name(), "tusd-s3-") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			firstErr = cmp.Or(firstErr, err)
			continue
		}
		removed = append(removed, path)
	}
	return removed, firstErr
}
