package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/intake-dev/intake/pkg/server"
)

func newGCCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "Run one reaper pass and orphan sweep: release the storage of expired uploads and of uploads no session knows",
		Long: `Run one reaper pass now: every incomplete upload without a committed
PATCH for longer than --upload-ttl has its storage released (S3: multipart
upload aborted, .info and .part objects deleted; file store: files removed)
and is marked expired, with an upload.expired event. A running server does
the same every --reap-interval.

Then it sweeps for orphans: storage older than --upload-ttl that no session
knows, left by a crash between creating an upload and recording it. S3:
multipart uploads under --s3-prefix are aborted and their .info and .part
objects deleted (an upload's finished object is never touched); file
store: the upload's files are removed. Each removal is printed. Anything
whose owner cannot be told is kept and logged.

With --dry-run nothing changes; the uploads that would expire are counted
and the orphans that would be removed printed.

With a PostgreSQL catalog gc takes each upload's lock as the servers do
and passes over any upload a server is using. With the embedded SQLite
catalog the server's locks are in its memory; gc only touches uploads
quiet for longer than the TTL, and re-checks each before releasing it.`,
		Args: cobra.NoArgs,
	}
	s := bindSettings(cmd)
	var dryRun bool
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "show what would expire and which orphans would go, change nothing")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := s.load(cmd)
		if err != nil {
			return err
		}
		if cfg.UploadTTL <= 0 {
			return errors.New("--upload-ttl is 0: uploads never expire, there is nothing to collect")
		}
		ctx := cmd.Context()
		cat, store, closeStore, err := s.openStorage(cmd, cfg)
		if err != nil {
			return err
		}
		defer closeStore()
		log, err := s.logger(cmd.ErrOrStderr())
		if err != nil {
			return err
		}
		lock, closeLock, err := server.BackgroundLocker(ctx, cat, log)
		if err != nil {
			return err
		}
		defer closeLock()
		res, err := store.Reap(ctx, lock, dryRun)
		if err != nil {
			return err
		}
		verb := "expired"
		if dryRun {
			verb = "would expire"
		}
		out := cmd.OutOrStdout()
		fmt.Fprintf(out, "%s %d upload(s), %d bytes released\n", verb, res.Expired, res.BytesReleased)
		orphans, err := store.SweepOrphans(ctx, dryRun)
		verb = "removed"
		if dryRun {
			verb = "would remove"
		}
		for _, what := range orphans.Removed {
			fmt.Fprintf(out, "%s orphan %s\n", verb, what)
		}
		fmt.Fprintf(out, "%s %d orphaned multipart upload(s), %d object(s), %d file(s); %d kept, owner unclear (logged)\n",
			verb, orphans.Multipart, orphans.Objects, orphans.Files, orphans.Kept)
		return err
	}
	return cmd
}
