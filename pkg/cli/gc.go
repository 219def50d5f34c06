package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/intake-dev/intake/pkg/server"
)

func newGCCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "Run one reaper pass: release the storage of expired uploads",
		Long: `Run one reaper pass now: every incomplete upload without a committed
PATCH for longer than --upload-ttl has its storage released (S3: multipart
upload aborted, .info and .part objects deleted; file store: files removed)
and is marked expired, with an upload.expired event. A running server does
the same every --reap-interval. With --dry-run nothing changes; the uploads
that would expire are counted.

gc shares no upload locks with a running server (until instances lock
through PostgreSQL); it only touches uploads quiet for longer than the TTL.`,
		Args: cobra.NoArgs,
	}
	s := bindSettings(cmd)
	var dryRun bool
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "count what would expire, change nothing")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := s.load(cmd)
		if err != nil {
			return err
		}
		if cfg.UploadTTL <= 0 {
			return errors.New("--upload-ttl is 0: uploads never expire, there is nothing to collect")
		}
		log, err := s.logger(cmd.ErrOrStderr())
		if err != nil {
			return err
		}
		ctx := cmd.Context()
		cat, err := openMigrated(ctx, cfg)
		if err != nil {
			return err
		}
		defer cat.Close()
		store, err := server.OpenStorage(ctx, cfg, log, cat)
		if err != nil {
			return err
		}
		noLock := func(context.Context, string) (func(), error) { return func() {}, nil }
		res, err := store.Reap(ctx, noLock, dryRun)
		if err != nil {
			return err
		}
		verb := "expired"
		if dryRun {
			verb = "would expire"
		}
		fmt.Fprintf(cmd.OutOrStdout(), "%s %d upload(s), %d bytes released\n", verb, res.Expired, res.BytesReleased)
		return nil
	}
	return cmd
}
