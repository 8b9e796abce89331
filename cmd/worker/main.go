// Command worker runs formq's worker: it runs the follow-up steps of accepted submissions and publishes revalidation events.
//
//	worker
//	worker --help | --version
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/formq/formq"
	"github.com/formq/formq/internal/buildinfo"
	"github.com/formq/formq/worker"
)

const usage = `Usage:
  worker             run the follow-up steps of accepted submissions and
                     publish their revalidation events
  worker --help      print this help and every setting
  worker --version   print the version, commit and Go version
`

// errUsage marks a command line the worker does not accept.
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args, os.Getenv, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "formq worker:", err)
		if errors.Is(err, errUsage) {
			fmt.Fprint(os.Stderr, usage+"Run 'worker --help' for every setting.\n")
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// run works until ctx ends, or answers --help and --version. A command
// line it does not accept is an error matching errUsage.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) > 1 {
		switch args[1] {
		case "-h", "-help", "--help", "help":
			if _, err := io.WriteString(stdout, usage+"\n"); err != nil {
				return err
			}
			return formq.PrintSettings(stdout)
		case "-version", "--version", "version":
			_, err := fmt.Fprintln(stdout, "formq worker", buildinfo.Get())
			return err
		default:
			return fmt.Errorf("%w: unknown argument %q", errUsage, args[1])
		}
	}
	return worker.Main(ctx, args, getenv, stdout)
}
