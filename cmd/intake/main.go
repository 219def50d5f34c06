// Command intake is the resumable-upload server. The command tree lives in
// pkg/cli.
package main

import (
	"context"
	"os"

	"github.com/intake-dev/intake/pkg/cli"
)

func main() {
	os.Exit(cli.Execute(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}
