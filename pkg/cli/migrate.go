package cli

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/intake-dev/intake/pkg/server"
)

func newMigrateCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Manage the catalog's database schema",
		Long: `Manage the catalog's database schema (SQLite or PostgreSQL, as
--database-url selects). "intake serve" applies pending migrations itself
unless --migrate=false.`,
	}
	cmd.AddCommand(
		migrateSub("up", "Apply every pending migration", false),
		migrateSub("down", "Revert the most recent migrations (--steps, default 1)", true),
		migrateSub("status", "List migrations and whether each is applied", false),
	)
	return cmd
}

func migrateSub(name, short string, withSteps bool) *cobra.Command {
	cmd := &cobra.Command{Use: name, Short: short, Args: cobra.NoArgs}
	s := bindSettings(cmd)
	steps := 1
	if withSteps {
		cmd.Flags().IntVar(&steps, "steps", 1, "how many migrations to revert")
	}
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := s.load(cmd)
		if err != nil {
			return err
		}
		ctx := cmd.Context()
		cat, err := server.OpenCatalog(ctx, cfg)
		if err != nil {
			return err
		}
		defer cat.Close()
		out := cmd.OutOrStdout()
		switch name {
		case "up":
			applied, err := cat.MigrateUp(ctx)
			if err != nil {
				return err
			}
			if len(applied) == 0 {
				fmt.Fprintln(out, "schema is up to date")
			}
			for _, m := range applied {
				fmt.Fprintf(out, "applied %04d %s\n", m.Version, m.Name)
			}
		case "down":
			if steps < 1 {
				return fmt.Errorf("--steps must be at least 1")
			}
			reverted, err := cat.MigrateDown(ctx, steps)
			if err != nil {
				return err
			}
			if len(reverted) == 0 {
				fmt.Fprintln(out, "nothing to revert")
			}
			for _, m := range reverted {
				fmt.Fprintf(out, "reverted %04d %s\n", m.Version, m.Name)
			}
		case "status":
			list, err := cat.MigrationStatus(ctx)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "VERSION\tNAME\tAPPLIED")
			for _, m := range list {
				applied := "pending"
				if m.AppliedAt != nil {
					applied = m.AppliedAt.UTC().Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%04d\t%s\t%s\n", m.Version, m.Name, applied)
			}
			return tw.Flush()
		}
		return nil
	}
	return cmd
}
