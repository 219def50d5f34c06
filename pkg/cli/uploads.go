package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/intake-dev/intake/pkg/catalog"
	"github.com/intake-dev/intake/pkg/config"
	"github.com/intake-dev/intake/pkg/server"
	"github.com/intake-dev/intake/pkg/storage"
)

func newUploadsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "uploads",
		Short: "Inspect upload sessions in the catalog",
	}
	cmd.AddCommand(newUploadsLsCmd(), newUploadsShowCmd())
	return cmd
}

func newUploadsLsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "ls", Short: "List upload sessions, newest first", Args: cobra.NoArgs}
	s := bindSettings(cmd)
	var (
		asJSON bool
		opts   catalog.ListOptions
		state  string
	)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	cmd.Flags().StringVar(&opts.Owner, "owner", "", "only this owner's uploads")
	cmd.Flags().StringVar(&state, "state", "", "only uploads in this state (receiving, complete, terminated, failed)")
	cmd.Flags().IntVar(&opts.Limit, "limit", 100, "at most this many uploads")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := s.load(cmd)
		if err != nil {
			return err
		}
		if state != "" {
			opts.State = catalog.State(state)
			if !opts.State.Valid() {
				return fmt.Errorf("--state %q is not a state: use receiving, complete, terminated or failed", state)
			}
		}
		if opts.Limit < 1 {
			return errors.New("--limit must be at least 1")
		}
		ctx := cmd.Context()
		cat, err := openMigrated(ctx, cfg)
		if err != nil {
			return err
		}
		defer cat.Close()
		list, err := cat.List(ctx, opts)
		if err != nil {
			return err
		}
		views := make([]server.UploadView, len(list))
		for i, sess := range list {
			views[i] = server.NewUploadView(sess, cfg.BasePath)
		}
		if asJSON {
			return printJSON(cmd.OutOrStdout(), views)
		}
		tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSTATE\tOFFSET\tSIZE\tCREATED\tFILENAME")
		for _, v := range views {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", v.ID, v.State, v.Offset, sizeText(v.Size),
				v.CreatedAt.UTC().Format(time.RFC3339), cellText(v.Metadata["filename"]))
		}
		return tw.Flush()
	}
	return cmd
}

func newUploadsShowCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "show ID", Short: "Show one upload session", Args: cobra.ExactArgs(1)}
	s := bindSettings(cmd)
	var asJSON bool
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		cfg, err := s.load(cmd)
		if err != nil {
			return err
		}
		ctx := cmd.Context()
		cat, err := openMigrated(ctx, cfg)
		if err != nil {
			return err
		}
		defer cat.Close()
		sess, err := cat.Get(ctx, args[0])
		if errors.Is(err, catalog.ErrNotFound) {
			return fmt.Errorf("no upload with id %q", args[0])
		}
		if err != nil {
			return err
		}
		v := server.NewUploadView(sess, cfg.BasePath)
		if asJSON {
			return printJSON(cmd.OutOrStdout(), v)
		}
		tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
		row := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k, v) }
		row("id", v.ID)
		row("owner", sess.Owner)
		row("state", string(v.State))
		row("offset", strconv.FormatInt(v.Offset, 10))
		row("size", sizeText(v.Size))
		row("url", v.URL)
		if v.IsPartial {
			row("concat", "partial")
		}
		if v.IsFinal {
			row("concat", fmt.Sprintf("final of %v", v.PartialIDs))
		}
		row("created", v.CreatedAt.UTC().Format(time.RFC3339Nano))
		row("updated", v.UpdatedAt.UTC().Format(time.RFC3339Nano))
		if v.CompletedAt != nil {
			row("completed", v.CompletedAt.UTC().Format(time.RFC3339Nano))
		}
		for _, k := range slices.Sorted(maps.Keys(v.Metadata)) {
			row("metadata."+k, strconv.Quote(v.Metadata[k]))
		}
		return tw.Flush()
	}
	return cmd
}

// cellText renders client-supplied text for a table cell: as is when every
// rune is printable, else quoted, so that a newline, tab or escape sequence
// in a filename can neither forge a row nor reach the operator's terminal.
func cellText(s string) string {
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return strconv.Quote(s)
		}
	}
	return s
}

// openMigrated opens the catalog and refuses one whose schema is behind
// this binary, with the command that fixes it rather than a SQL error.
func openMigrated(ctx context.Context, cfg config.Config) (server.Catalog, error) {
	cat, err := server.OpenCatalog(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := server.CheckSchema(ctx, cat); err != nil {
		cat.Close()
		return nil, err
	}
	return cat, nil
}

// openStorage opens the migrated catalog and the store over it, for the
// commands that read stored bytes (verify, gc); close releases both.
func (s *settings) openStorage(cmd *cobra.Command, cfg config.Config) (cat server.Catalog, store *storage.Store, close func(), err error) {
	log, err := s.logger(cmd.ErrOrStderr())
	if err != nil {
		return nil, nil, nil, err
	}
	cat, err = openMigrated(cmd.Context(), cfg)
	if err != nil {
		return nil, nil, nil, err
	}
	store, err = server.OpenStorage(cmd.Context(), cfg, log, cat)
	if err != nil {
		cat.Close()
		return nil, nil, nil, err
	}
	return cat, store, func() { cat.Close() }, nil
}

func sizeText(size *int64) string {
	if size == nil {
		return "deferred"
	}
	return strconv.FormatInt(*size, 10)
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
