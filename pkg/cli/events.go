package cli

import (
	"errors"
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/intake-dev/intake/pkg/catalog"
)

func newEventsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "events",
		Short: "Inspect and retry webhook events (the outbox)",
	}
	cmd.AddCommand(newEventsLsCmd(), newEventsRetryCmd())
	return cmd
}

// EventView is the JSON form of an outbox event in `intake events ls`.
type EventView struct {
	ID            string     `json:"id"`
	Type          string     `json:"type"`
	UploadID      string     `json:"upload_id"`
	OccurredAt    time.Time  `json:"occurred_at"`
	Status        string     `json:"status"` // pending, delivered or dead
	Attempts      int        `json:"attempts"`
	NextAttemptAt *time.Time `json:"next_attempt_at"` // pending events only
	LastError     string     `json:"last_error,omitempty"`
	DeliveredAt   *time.Time `json:"delivered_at"`
	DeadAt        *time.Time `json:"dead_at"`
}

func newEventView(ev catalog.Event) EventView {
	v := EventView{
		ID: ev.ID, Type: ev.Type, UploadID: ev.UploadID, OccurredAt: ev.OccurredAt.UTC(),
		Attempts: ev.Attempts, LastError: ev.LastError, DeliveredAt: ev.DeliveredAt, DeadAt: ev.DeadAt,
	}
	switch {
	case ev.DeliveredAt != nil:
		v.Status = "delivered"
	case ev.DeadAt != nil:
		v.Status = "dead"
	default:
		v.Status = "pending"
		next := ev.NextAttemptAt.UTC()
		v.NextAttemptAt = &next
	}
	return v
}

func newEventsLsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List webhook events, newest first",
		Long: `List webhook events, newest first: every event by default, only the
dead-lettered ones (given up on after --webhook-max-age) with --failed, only
those still to deliver with --pending.`,
		Args: cobra.NoArgs,
	}
	s := bindSettings(cmd)
	var (
		asJSON bool
		f      catalog.EventFilter
	)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	cmd.Flags().BoolVar(&f.Failed, "failed", false, "only dead-lettered events")
	cmd.Flags().BoolVar(&f.Pending, "pending", false, "only events not yet delivered nor dead-lettered")
	cmd.Flags().IntVar(&f.Limit, "limit", 100, "at most this many events")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := s.load(cmd)
		if err != nil {
			return err
		}
		if f.Failed && f.Pending {
			return errors.New("--failed and --pending exclude each other: give one")
		}
		if f.Limit < 1 {
			return errors.New("--limit must be at least 1")
		}
		ctx := cmd.Context()
		cat, err := openMigrated(ctx, cfg)
		if err != nil {
			return err
		}
		defer cat.Close()
		list, err := cat.ListEvents(ctx, f)
		if err != nil {
			return err
		}
		views := make([]EventView, len(list))
		for i, ev := range list {
			views[i] = newEventView(ev)
		}
		if asJSON {
			return printJSON(cmd.OutOrStdout(), views)
		}
		tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tTYPE\tUPLOAD\tOCCURRED\tSTATUS\tATTEMPTS\tLAST ERROR")
		for _, v := range views {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", v.ID, v.Type, v.UploadID,
				v.OccurredAt.Format(time.RFC3339), v.Status, v.Attempts, cellText(v.LastError))
		}
		return tw.Flush()
	}
	return cmd
}

func newEventsRetryCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "retry ID",
		Short: "Make a dead-lettered (or pending) webhook event due now",
		Long: `Make a dead-lettered or pending webhook event due now: a running intake
serve sends it within a second or so. An event older than --webhook-max-age
gets one attempt; if that fails too, it is dead-lettered again.`,
		Args: cobra.ExactArgs(1),
	}
	s := bindSettings(cmd)
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
		id := args[0]
		switch err := cat.RetryEvent(ctx, id, time.Now()); {
		case errors.Is(err, catalog.ErrNotFound):
			return fmt.Errorf("no event with id %s", strconv.Quote(id))
		case errors.Is(err, catalog.ErrConflict):
			return fmt.Errorf("event %s was already delivered", strconv.Quote(id))
		case err != nil:
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "event %s is due again\n", id)
		return nil
	}
	return cmd
}
