package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/intake-dev/intake/pkg/catalog"
	"github.com/intake-dev/intake/pkg/server"
	"github.com/intake-dev/intake/pkg/storage"
)

func newVerifyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "verify [--all | ID...]",
		Short: "Re-read stored bytes and check them against the recorded SHA-256",
		Long: `Re-read the stored bytes of complete uploads and check them against the
SHA-256 digests recorded when they completed. With --all every stored blob is
checked once; with IDs, the blobs of those uploads. Exits non-zero and names
every upload whose bytes changed, went missing or cannot be read.`,
	}
	s := bindSettings(cmd)
	var all bool
	cmd.Flags().BoolVar(&all, "all", false, "check every stored blob")
	cmd.RunE = func(cmd *cobra.Command, ids []string) error {
		if all == (len(ids) > 0) {
			return errors.New("give either --all or upload IDs")
		}
		cfg, err := s.load(cmd)
		if err != nil {
			return err
		}
		ctx := cmd.Context()
		cat, store, closeStore, err := s.openStorage(cmd, cfg)
		if err != nil {
			return err
		}
		defer closeStore()
		v := &verifier{out: cmd.OutOrStdout(), cat: cat, store: store, seen: map[string]bool{}}
		if all {
			err = v.all(ctx)
		} else {
			err = v.ids(ctx, ids)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(v.out, "%d blob(s) checked, %d bad\n", v.checked, v.bad)
		if v.bad > 0 {
			return fmt.Errorf("%d blob(s) do not match their recorded digest", v.bad)
		}
		return nil
	}
	return cmd
}

type verifier struct {
	out          io.Writer
	cat          server.Catalog
	store        *storage.Store
	seen         map[string]bool
	checked, bad int
}

func (v *verifier) ids(ctx context.Context, ids []string) error {
	for _, id := range ids {
		sess, err := v.cat.Get(ctx, id)
		if errors.Is(err, catalog.ErrNotFound) {
			fmt.Fprintf(v.out, "MISSING  %s: no such upload\n", id)
			v.bad++
			continue
		}
		if err != nil {
			return err
		}
		if sess.State != catalog.StateComplete || sess.BlobSHA256 == "" {
			fmt.Fprintf(v.out, "SKIP     %s: %s, no recorded digest\n", id, sess.State)
			continue
		}
		v.blob(ctx, sess.BlobSHA256, id)
	}
	return nil
}

// all walks the complete sessions newest first and checks each blob once.
func (v *verifier) all(ctx context.Context) error {
	opts := catalog.ListOptions{State: catalog.StateComplete, Limit: 500}
	for {
		page, err := v.cat.List(ctx, opts)
		if err != nil {
			return err
		}
		for _, sess := range page {
			if sess.BlobSHA256 != "" {
				v.blob(ctx, sess.BlobSHA256, sess.ID)
			}
		}
		if len(page) < opts.Limit {
			return nil
		}
		last := page[len(page)-1]
		opts.Before, opts.BeforeID = last.CreatedAt, last.ID
	}
}

func (v *verifier) blob(ctx context.Context, sum, via string) {
	if v.seen[sum] {
		return
	}
	v.seen[sum] = true
	v.checked++
	blob, err := v.cat.GetBlob(ctx, sum)
	if err != nil {
		fmt.Fprintf(v.out, "MISSING  %s (upload %s): no blob record: %v\n", sum, via, err)
		v.bad++
		return
	}
	start := time.Now()
	got, n, err := v.store.VerifyBlob(ctx, blob)
	switch {
	case err != nil:
		fmt.Fprintf(v.out, "UNREADABLE %s (upload %s): %v\n", sum, via, err)
		v.bad++
	case n != blob.Size:
		fmt.Fprintf(v.out, "MISMATCH %s (upload %s): %d bytes stored, %d recorded\n", sum, via, n, blob.Size)
		v.bad++
	case got != sum:
		fmt.Fprintf(v.out, "MISMATCH %s (upload %s): stored bytes hash to %s\n", sum, via, got)
		v.bad++
	default:
		fmt.Fprintf(v.out, "ok       %s %d bytes (%s)\n", sum, n, time.Since(start).Round(time.Millisecond))
	}
}
