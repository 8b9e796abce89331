package actions_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/formq/formq/actions"
	"github.com/formq/formq/jobs/step/builtin"
)

// linesFile has one problem per line marked in the comments: a step
// missing a setting, a step of an unknown type, an unknown key and a bad
// queue of an action, a field (block style) and an upload with a bad
// rule.
const linesFile = `actions:
  sign-up:
    title: Sign up
    fields:
      name:
        type: text
        min_length: -1
      email: {type: email}
    uploads:
      avatar: {max_size: huge}
    queue: fastest
    redirct: /done
    steps:
      - thumbnail: {field: avatar, sizes: [64]}
      - webhook: {url: "https://hooks.example.com/x"}
      - fax: {to: "+15550100"}
`

// TestProblemsPointAtTheirKey holds each problem of an actions file to the
// line of the key it is about: a step's own line (not its action's), a
// field's or an upload's name, the offending key of the action.
func TestProblemsPointAtTheirKey(t *testing.T) {
	_, err := actions.ParseWith("actions.yaml", []byte(linesFile), actions.ParseOptions{Steps: builtin.Checks(nil).Checks()})
	var fe *actions.FileError
	if !errors.As(err, &fe) {
		t.Fatalf("want a FileError, got %v", err)
	}
	want := map[string]int{ // a word of the problem: its line
		"min_length":   5,  // the field's name, not its first setting
		"max_size":     10, // the upload's name
		"queue":        11,
		"redirct":      12,
		"secret_env":   15, // the webhook step's line
		"unknown step": 16,
	}
	for word, line := range want {
		found := false
		for _, p := range fe.Problems {
			if strings.Contains(p.Msg, word) {
				found = true
				if p.Line != line {
					t.Errorf("problem %q is at line %d, want %d", p.String(), p.Line, line)
				}
			}
		}
		if !found {
			t.Errorf("no problem mentions %q; problems: %v", word, fe.Problems)
		}
	}
}
