package api

import (
	"errors"
	"fmt"
	"io"

	"github.com/formq/formq/actions"
	"github.com/formq/formq/jobs/step/builtin"
)

// ErrUsage marks a command line the api command's subcommands do not
// accept (an unknown flag, missing arguments); the command prints its
// usage on stderr and exits 2.
var ErrUsage = errors.New("usage")

// ErrCheckFailed is matched by CheckFile's error when the actions file has
// problems; they have been printed, one a line.
var ErrCheckFailed = errors.New("actions file has problems")

// CheckFile is the `api check FILE` subcommand: it reads an actions file as
// the API and the worker do, every built-in step's settings checked, and
// prints each problem with its file:line (the error then matches
// ErrCheckFailed), or one line summing up what the file declares.
//
// It also checks what the worker checks of its environment at start,
// read through getenv: every webhook step's secret_env holds a signing
// secret, and email steps and digests have a mail server (FORMQ_SMTP_URL,
// or the development mailer under FORMQ_ENV=development). Run where the
// worker runs, "ok" means both processes start with this file.
func CheckFile(path string, getenv func(string) string, stdout io.Writer) error {
	steps := builtin.Checks(getenv)
	mailer := getenv("FORMQ_SMTP_URL") != "" || getenv("FORMQ_ENV") == "development"
	if !mailer {
		// The worker will have no mailer: its email steps stop it at start.
		steps.Register(builtin.Email, builtin.NeedsMailer(steps[builtin.Email]))
	}
	decl, err := actions.Load(path, actions.ParseOptions{Steps: steps.Checks()})
	var fe *actions.FileError
	if errors.As(err, &fe) {
		for _, p := range fe.Problems {
			if _, err := fmt.Fprintln(stdout, p); err != nil {
				return err
			}
		}
		return checkError{path, len(fe.Problems)}
	}
	if err != nil {
		return err
	}
	if !mailer {
		// The worker will have no mailer: a digest stops it at start.
		problems := 0
		for _, a := range decl.Actions {
			if a.Digest == nil {
				continue
			}
			problems++
			p := actions.Problem{File: path, Action: a.Name, Msg: "digest: needs a mail server: set FORMQ_SMTP_URL (the worker does not start without one)"}
			if _, err := fmt.Fprintln(stdout, p); err != nil {
				return err
			}
		}
		if problems > 0 {
			return checkError{path, problems}
		}
	}
	declared := 0
	for _, a := range decl.Actions {
		declared += len(a.Steps)
	}
	_, err = fmt.Fprintf(stdout, "%s: %s, %s, %s: ok\n", path,
		plural(len(decl.Actions), "action"), plural(len(decl.Profiles), "upload profile"), plural(declared, "step"))
	return err
}

// checkError reads "FILE: 3 problems" and matches ErrCheckFailed.
type checkError struct {
	path     string
	problems int
}

func (e checkError) Error() string        { return e.path + ": " + plural(e.problems, "problem") }
func (e checkError) Is(target error) bool { return target == ErrCheckFailed }

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
