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
    rate_limit: 5/1h
    steps:
      - email: {to: "{email}", subject: "Thanks, we got it", limit: 2/1h}
      - email: {to: ["team@example.com", "{email}"], subject: "Copy", limit: 2/1h}
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

// TestAutoresponderIsNoMailRelay: a visitor chooses an autoresponder's
// recipient and part of its text, so an email step mailing the
// submitter's field needs a limit, and its action a guard against
// scripts (captcha, rate_limit or min_fill_time); without them the file
// does not load, saying why. The mailed field refuses address literals
// and non-public domains.
func TestAutoresponderIsNoMailRelay(t *testing.T) {
	doc := func(action, step string) string {
		return "actions:\n  contact:\n    fields:\n      email: {type: email, required: true}\n" + action +
			"    steps:\n      - email: {to: \"{email}\", subject: \"Thanks {email}\"" + step + "}\n"
	}
	for name, tc := range map[string]struct{ doc, want string }{
		"no limit, no guard": {doc("", ""), "add limit:"},
		"no guard":           {doc("", ", limit: 2/1h"), "needs captcha:, rate_limit: or min_fill_time:"},
		"no limit":           {doc("    rate_limit: 5/1h\n", ""), "add limit:"},
	} {
		_, err := Parse(name+".yaml", []byte(tc.doc))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: want a load error with %q, got %v", name, tc.want, err)
		}
	}
	for _, guard := range []string{"    rate_limit: 5/1h\n", "    min_fill_time: 3s\n"} {
		if _, err := Parse("ok.yaml", []byte(doc(guard, ", limit: 2/1h"))); err != nil {
			t.Errorf("guarded by %q: %v", guard, err)
		}
	}
	list, err := Parse("ok.yaml", []byte(doc("    rate_limit: 5/1h\n", ", limit: 2/1h")))
	if err != nil {
		t.Fatal(err)
	}
	f := list[0].Field("email")
	for addr, ok := range map[string]bool{"ada@example.com": true, "ada@mail.example.co.uk": true,
		"x@[10.0.0.5]": false, "x@[169.254.169.254]": false, "x@[IPv6:::1]": false, "x@localhost": false,
		"x@db.internal": false, "x@printer.local": false, "x@10.0.0.5": false, "x@corp.lan": false} {
		_, problems := f.validateOne(addr, nil)
		if (len(problems) == 0) != ok {
			t.Errorf("%s: problems %v, want accepted %v", addr, problems, ok)
		}
	}
	// Address literals are no person's address in any email field.
	plain, _ := Parse("plain.yaml", []byte("actions:\n  a:\n    fields:\n      email: {type: email}\n"))
	if _, problems := plain[0].Field("email").validateOne("x@[10.0.0.5]", nil); len(problems) == 0 {
		t.Error("an address literal is accepted")
	}
}
