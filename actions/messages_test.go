package actions_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/formq/formq/actions"
)

// TestActionMessages: an action's messages: are the default of every
// field's and upload's messages (their own win) and its answers to a
// whole post; an unknown key is a problem at its line.
func TestActionMessages(t *testing.T) {
	list, err := actions.Parse("actions.yaml", []byte(`actions:
  anmeldung:
    messages: {required: "{label} fehlt", types: "{label}: {type} geht nicht", rate_limited: "Zu viele Anfragen"}
    fields:
      name: {type: text, required: true}
      plz: {type: text, required: true, messages: {required: "Bitte die PLZ angeben"}}
    uploads:
      bild: {max_size: 1MB, required: true, types: [image/png]}
  contact:
    fields:
      name: {type: text, required: true}
`))
	if err != nil {
		t.Fatal(err)
	}
	a, plain := list[0], list[1]
	if a.Name != "anmeldung" {
		a, plain = plain, a
	}
	_, errs := a.Validate(map[string][]string{})
	if got := errs["name"]; len(got) != 1 || got[0] != "Name fehlt" {
		t.Errorf("name: %q; want the action's message", got)
	}
	if got := errs["plz"]; len(got) != 1 || got[0] != "Bitte die PLZ angeben" {
		t.Errorf("plz: %q; want the field's own message", got)
	}
	if got := a.Upload("bild").Messages; got["required"] != "{label} fehlt" || got["types"] != "{label}: {type} geht nicht" {
		t.Errorf("upload messages %v; want the action's", got)
	}
	if got := a.Say(actions.MessageRateLimited, "default"); got != "Zu viele Anfragen" {
		t.Errorf("rate_limited: %q", got)
	}
	if got := a.Say(actions.MessageCaptcha, "default"); got != "default" {
		t.Errorf("captcha without a message: %q; want the default", got)
	}
	// Another action keeps formq's words.
	if _, errs := plain.Validate(map[string][]string{}); errs["name"][0] != "Name is required" {
		t.Errorf("an action without messages: %q", errs["name"])
	}

	_, err = actions.Parse("actions.yaml", []byte(`actions:
  contact:
    fields:
      name: {type: text}
    messages:
      requird: "typo"
`))
	var fe *actions.FileError
	if !errors.As(err, &fe) || len(fe.Problems) != 1 || fe.Problems[0].Line != 5 || !strings.Contains(fe.Problems[0].Msg, `unknown key "requird"`) {
		t.Errorf("an unknown key: %v; want one problem at line 5", err)
	}
}
