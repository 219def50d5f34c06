// Package cli is intake's command tree. Commands parse settings through
// pkg/config (flag > INTAKE_* env > config file > default) and hand off to
// the packages that do the work; no command holds upload logic.
package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/intake-dev/intake/pkg/config"
	"github.com/intake-dev/intake/pkg/logging"
)

// version is stamped at build time:
// -ldflags "-X github.com/intake-dev/intake/pkg/cli.version=v1.2.3".
var version = ""

// Version returns the build's version.
func Version() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// NewRoot returns the intake command tree.
func NewRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "intake",
		Short: "A resumable-upload (tus 1.0) server",
		Long: `intake receives large files over the tus 1.0 resumable-upload protocol,
stores them on local disk, and keeps every upload session in SQLite (the
embedded default) or PostgreSQL.

Every setting can be given as a flag (--max-size), an environment variable
(INTAKE_MAX_SIZE) or a key in a YAML file named by --config; a flag beats the
environment, which beats the file, which beats the default.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       Version(),
	}
	root.AddCommand(newServeCmd(), newMigrateCmd(), newUploadsCmd(), newEventsCmd(), newVerifyCmd(), newGCCmd(), newVersionCmd())
	return root
}

// Execute runs the command tree and returns the process exit code.
func Execute(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := NewRoot()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(stderr, "intake:", err)
		return 1
	}
	return 0
}

// settings binds a Config to a command's flags and resolves it before the
// command runs.
type settings struct {
	cfg config.Config
}

func bindSettings(cmd *cobra.Command) *settings {
	s := &settings{cfg: config.Default()}
	s.cfg.RegisterFlags(cmd.Flags())
	return s
}

// load resolves env and file values into the flags and validates the result.
func (s *settings) load(cmd *cobra.Command) (config.Config, error) {
	if err := s.cfg.Resolve(cmd.Flags(), os.Getenv); err != nil {
		return config.Config{}, err
	}
	if err := s.cfg.Validate(); err != nil {
		return config.Config{}, err
	}
	return s.cfg, nil
}

func (s *settings) logger(w io.Writer) (*slog.Logger, error) {
	return logging.New(w, s.cfg.LogFormat, s.cfg.LogLevel)
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), "intake", Version())
		},
	}
}
