package cli

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/intake-dev/intake/pkg/server"
)

func newServeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the upload server",
		Long: `Run the upload server.

With no flags at all it runs the embedded default: tus at
http://127.0.0.1:8080/files/, sessions in ./data/intake.db (SQLite), bytes
under ./data/uploads. Set --database-url postgres://... to keep sessions in
PostgreSQL.

SIGINT or SIGTERM shuts down gracefully: no new connections, each in-flight
PATCH stores and records what has arrived, then the database closes. A second
signal exits at once.`,
		Args: cobra.NoArgs,
	}
	s := bindSettings(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := s.load(cmd)
		if err != nil {
			return err
		}
		log, err := s.logger(cmd.ErrOrStderr())
		if err != nil {
			return err
		}
		ctx, stop := shutdownContext(cmd.Context(), func() {
			log.Error("second signal: exiting without waiting")
			os.Exit(1)
		})
		defer stop()

		log.Info("starting intake", "version", Version(), "config", cfg.Redacted())
		srv, err := server.New(ctx, cfg, log)
		if err != nil {
			return err
		}
		defer srv.Close()
		ln, err := net.Listen("tcp", cfg.Listen)
		if err != nil {
			return fmt.Errorf("listening on %s: %w", cfg.Listen, err)
		}
		err = srv.Serve(ctx, ln)
		log.Info("intake stopped")
		return err
	}
	return cmd
}

// shutdownContext is cancelled by the first SIGINT or SIGTERM; a second one
// calls hardExit.
func shutdownContext(parent context.Context, hardExit func()) (context.Context, func()) {
	ctx, cancel := context.WithCancel(parent)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case <-sigs:
			cancel()
		case <-done:
			return
		}
		select {
		case <-sigs:
			hardExit()
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(sigs)
		close(done)
		cancel()
	}
}
