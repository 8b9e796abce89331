// Command api runs formq's HTTP API: it takes form submissions, streams their files to S3 and queues their follow-up work.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/formq/formq/api"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "formq api:", err)
		os.Exit(1)
	}
}

// run serves the API, or with "bind" as its first argument prints a sealed
// token of bound arguments (see api.Bind).
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) > 1 && args[1] == "bind" {
		return api.Bind(args[2:], getenv, stdout)
	}
	return api.Main(ctx, args, getenv, stdout)
}
