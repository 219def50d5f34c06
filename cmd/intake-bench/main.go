package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	os.Exit(execute(os.Args))
}

func execute(args []string) int {
	o, err := parseFlags(args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "intake-bench:", err)
		return 2
	}
	// The first ctrl-C cancels the run, which stops the servers; a second
	// one kills the harness (and, through Pdeathsig, the servers).
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() { <-ctx.Done(); stop() }()
	if _, err := run(ctx, o, args, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "intake-bench:", err)
		return 1
	}
	return 0
}
