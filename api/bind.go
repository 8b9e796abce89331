package api

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/formq/formq"
	"github.com/formq/formq/actions"
	"github.com/formq/formq/internal/seal"
)

// Bind is the `api bind` subcommand: it seals bound arguments for an
// action, as POST /admin/bind does, and prints the token. Values given as
// JSON (numbers, true) keep their type; others are strings.
//
//	api bind -action update-user -arg userId=42 -ttl 24h [-subject alice]
func Bind(args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("bind", flag.ContinueOnError)
	action := fs.String("action", "", "action name")
	ttl := fs.Duration("ttl", time.Hour, "how long the token is valid")
	subject := fs.String("subject", "", "only this signed-in subject may use the token")
	bound := map[string]any{}
	fs.Func("arg", "name=value, repeatable", func(s string) error {
		k, v, ok := strings.Cut(s, "=")
		if !ok || k == "" {
			return fmt.Errorf("want name=value, got %q", s)
		}
		var decoded any
		if err := json.Unmarshal([]byte(v), &decoded); err == nil {
			bound[k] = decoded
		} else {
			bound[k] = v
		}
		return nil
	})
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(stdout, "Usage: api bind -action NAME [-arg name=value]... [-ttl 1h] [-subject ID]")
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		return nil
	} else if err != nil {
		return fmt.Errorf("%w: api bind: %v", ErrUsage, err)
	}
	cfg, err := formq.LoadConfig(getenv)
	if err != nil {
		return err
	}
	list, err := actions.LoadFile(cfg.Actions)
	if err != nil {
		return err
	}
	a, ok := actions.NewRegistry(list...).Get(*action)
	if !ok {
		return fmt.Errorf("no action %q in %s", *action, cfg.Actions)
	}
	if cfg.Secret == "" {
		return fmt.Errorf("bind: FORMQ_SECRET is unset, so the API seals with a random key of its own; set FORMQ_SECRET for the API and this command, or use POST /admin/bind")
	}
	sealer, err := seal.New(cfg.Secret)
	if err != nil {
		return err
	}
	token, err := actions.Bind(sealer, a, bound, *subject, *ttl)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, token)
	return err
}
