// Command api runs formq's HTTP API: it takes form submissions, streams their files to S3 and queues their follow-up work.
//
//	api [serve]                 serve the API (the default)
//	api bind -action NAME ...   print a sealed token of bound arguments
//	api check FILE              check an actions file
//	api schema FILE [ACTION]    print an action's values as a JSON Schema
//	api types FILE              print TypeScript of the actions and their answers
//	api --help | --version
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/formq/formq"
	"github.com/formq/formq/api"
	"github.com/formq/formq/internal/buildinfo"
)

const usage = `Usage:
  api [serve]        serve formq's HTTP API (the default)
  api bind -action NAME [-arg name=value]... [-ttl 1h] [-subject ID]
                     print a sealed token binding arguments to an action
                     (api bind -h lists its flags)
  api check FILE     check an actions file and its steps' settings: print every
                     problem with its file:line and exit 1, or a summary
  api schema FILE [ACTION]
                     print the JSON Schema (draft 2020-12) of an action's values,
                     as served at /actions/ACTION/schema.json; without ACTION,
                     every action's by name
  api types FILE     print TypeScript of the file's actions: each one's values,
                     field names, webhook body and the answers your app may give,
                     and formq's answers (status, accepted, validation failed)
  api --help         print this help and every setting
  api --version      print the version, commit and Go version
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args, os.Getenv, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "formq api:", err)
		if errors.Is(err, api.ErrUsage) {
			fmt.Fprint(os.Stderr, usage+"Run 'api --help' for every setting.\n")
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// run serves the API, or runs the subcommand its first argument names. A
// command line it does not accept is an error matching api.ErrUsage.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	command, rest := "serve", []string(nil)
	if len(args) > 1 {
		command, rest = args[1], args[2:]
	}
	switch command {
	case "-h", "-help", "--help", "help":
		if _, err := io.WriteString(stdout, usage+"\n"); err != nil {
			return err
		}
		return formq.PrintSettings(stdout)
	case "-version", "--version", "version":
		_, err := fmt.Fprintln(stdout, "formq api", buildinfo.Get())
		return err
	case "serve":
		if len(rest) > 0 {
			return fmt.Errorf("%w: api serve takes no arguments, got %q", api.ErrUsage, rest)
		}
		return api.Main(ctx, args, getenv, stdout)
	case "bind":
		return api.Bind(rest, getenv, stdout)
	case "check":
		if len(rest) == 1 && (rest[0] == "-h" || rest[0] == "-help" || rest[0] == "--help") {
			_, err := io.WriteString(stdout, "Usage: api check FILE\n\nChecks an actions file and its steps' settings as the API and the worker load it,\nand the step secrets and mail server the worker needs from the environment;\nprints every problem with its file:line and exits 1, or a summary and exits 0.\n")
			return err
		}
		if len(rest) != 1 || strings.HasPrefix(rest[0], "-") {
			return fmt.Errorf("%w: api check takes one actions file, got %q", api.ErrUsage, rest)
		}
		return api.CheckFile(rest[0], getenv, stdout)
	case "schema":
		if len(rest) < 1 || len(rest) > 2 || strings.HasPrefix(rest[0], "-") {
			return fmt.Errorf("%w: api schema takes an actions file and optionally an action name, got %q", api.ErrUsage, rest)
		}
		action := ""
		if len(rest) == 2 {
			action = rest[1]
		}
		return api.SchemaFile(rest[0], action, stdout)
	case "types":
		if len(rest) != 1 || strings.HasPrefix(rest[0], "-") {
			return fmt.Errorf("%w: api types takes one actions file, got %q", api.ErrUsage, rest)
		}
		return api.TypesFile(rest[0], stdout)
	default:
		return fmt.Errorf("%w: unknown subcommand or flag %q", api.ErrUsage, command)
	}
}
