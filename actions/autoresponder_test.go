package actions

import (
	"strings"
	"testing"
)

// TestAutoresponderOnlyToEmailFields: an email step may mail the
// submitter ("{field}") only through a field declared type: email; any
// other field, or a missing one, stops the actions file at load.
func TestAutoresponderOnlyToEmailFields(t *testing.T) {
	ok := `actions:
  contact:
    fields:
      email: {type: email, required: true}
    steps:
      - email: {to: "{email}", subject: "Thanks, we got it"}
      - email: {to: ["team@example.com", "{email}"], subject: "Copy"}
`
	list, err := Parse("ok.yaml", []byte(ok))
	if err != nil || len(list) != 1 {
		t.Fatalf("an autoresponder to an email field is refused: %v", err)
	}
	for name, tc := range map[string]struct{ doc, want string }{
		"text field": {`actions:
  contact:
    fields:
      email: {type: text}
    steps:
      - email: {to: "{email}", subject: Hi}
`, `names field email of type text`},
		"no such field": {`actions:
  contact:
    fields:
      email: {type: email}
    steps:
      - email: {to: ["a@example.com", "{mail}"], subject: Hi}
`, `names no field`},
	} {
		_, err := Parse(name+".yaml", []byte(tc.doc))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: want a load error with %q, got %v", name, tc.want, err)
		}
	}
}
