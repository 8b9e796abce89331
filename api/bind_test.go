package api_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/formq/formq/actions"
	"github.com/formq/formq/api"
	"github.com/formq/formq/internal/seal"
)

func TestBindCommand(t *testing.T) {
	const secret = "bind-command-secret-of-32-characters-at-least"
	env := map[string]string{"FORMQ_S3_BUCKET": "b", "FORMQ_SECRET": secret, "FORMQ_ACTIONS": "../actions/testdata/actions.yaml"}
	getenv := func(k string) string { return env[k] }

	var out bytes.Buffer
	if err := api.Bind([]string{"-action", "update-user", "-arg", "userId=42", "-ttl", "2h", "-subject", "alice"}, getenv, &out); err != nil {
		t.Fatal(err)
	}
	s, _ := seal.New(secret)
	var b actions.BoundArgs
	if err := s.Open("bound:update-user", strings.TrimSpace(out.String()), &b); err != nil {
		t.Fatalf("printed token does not open: %v (%q)", err, out.String())
	}
	if b.Action != "update-user" || b.Args["userId"] != float64(42) || b.Subject != "alice" {
		t.Fatalf("token carries %+v", b)
	}

	for name, args := range map[string][]string{
		"unknown action":     {"-action", "nope", "-arg", "userId=1"},
		"undeclared arg":     {"-action", "update-user", "-arg", "userId=1", "-arg", "role=admin"},
		"missing arg":        {"-action", "update-user"},
		"action has no args": {"-action", "create-user", "-arg", "x=1"},
	} {
		t.Run(name, func(t *testing.T) {
			if err := api.Bind(args, getenv, &bytes.Buffer{}); err == nil {
				t.Fatal("want an error")
			}
		})
	}
}
