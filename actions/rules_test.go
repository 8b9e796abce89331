package actions

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// TestNotInAndEqualsField: the two rules as the actions file declares
// them, checked by Validate and stated in the public declaration.
func TestNotInAndEqualsField(t *testing.T) {
	list, err := Parse("rules.yaml", []byte(`actions:
  a:
    fields:
      email:  {type: email, not_in: [Mailinator.com, " nobody@example.com "]}
      nick:   {type: text, multiple: true, not_in: [admin]}
      pw:     {type: password}
      again:  {type: password, equals_field: pw}
`))
	if err != nil {
		t.Fatal(err)
	}
	a := list[0]
	refusedEmail := []string{"Email is not accepted here: please use another"}
	for _, tc := range []struct {
		field string
		raw   map[string][]string
		want  []string
	}{
		{"email", map[string][]string{"email": {"ada@mailinator.COM"}}, refusedEmail},
		{"email", map[string][]string{"email": {"NOBODY@example.com"}}, refusedEmail},
		{"email", map[string][]string{"email": {"ada@sub.mailinator.com"}}, nil},
		{"email", map[string][]string{"email": {"mailinator.com@example.com"}}, nil},
		{"nick", map[string][]string{"nick": {"ada", " Admin "}}, []string{"Nick is not accepted here: please use another"}},
		{"nick", map[string][]string{"nick": {"admin@mailinator.com"}}, nil}, // domains count for email fields only
		{"again", map[string][]string{"pw": {" s3cret"}, "again": {" s3cret"}}, nil},
		{"again", map[string][]string{"pw": {" s3cret"}, "again": {"s3cret"}}, []string{"Again must be the same as Pw"}},
		{"again", map[string][]string{"again": {"x"}}, []string{"Again must be the same as Pw"}},
	} {
		_, errs := a.Validate(tc.raw)
		if got := errs[tc.field]; !reflect.DeepEqual([]string(got), tc.want) {
			t.Errorf("%v: errors of %s = %q, want %q", tc.raw, tc.field, got, tc.want)
		}
	}
	b, err := json.Marshal(a.Public("/actions/a", nil).Fields[0])
	if err != nil {
		t.Fatal(err)
	}
	want := `"messages":{"format":"Email must be a valid email address","not_in":"Email is not accepted here: please use another","required":"Email is required"},` +
		`"checks":[{"rule":"not_in","setting":["Mailinator.com","nobody@example.com"],"refuse":"^(?:Mailinator\\.com|nobody@example\\.com)$|@(?:Mailinator\\.com|nobody@example\\.com)$","ignoreCase":true}]}`
	if !strings.HasSuffix(string(b), want) {
		t.Errorf("public declaration of email:\n%s\nwant it to end with\n%s", b, want)
	}
}

// TestNotInAndEqualsFieldProblems: settings the parser refuses, with
// their place.
func TestNotInAndEqualsFieldProblems(t *testing.T) {
	_, err := Parse("bad.yaml", []byte(`actions:
  a:
    fields:
      n:     {type: number, not_in: ["1"]}
      t:     {type: text, not_in: ["  "]}
      s:     {type: text, not_in: admin}
      again: {type: password, equals_field: nowhere}
      self:  {type: text, equals_field: self}
`))
	if err == nil {
		t.Fatal("want problems")
	}
	for _, w := range []string{
		`field "n": not_in applies to fields of text, not number`,
		`field "t": not_in: want a list of values that are not blank`,
		`field "s": `,
		`field "again": equals_field "nowhere": want the name of another field`,
		`field "self": equals_field "self"`,
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("problem %q not reported in:\n%v", w, err)
		}
	}
}

// TestSchemaListsEveryRuleMessage: the schema's message keys are the
// rules' (a new rule in fieldRules fails here until the schema has it).
func TestSchemaListsEveryRuleMessage(t *testing.T) {
	var schema struct {
		Defs struct {
			Messages struct {
				PropertyNames struct {
					Enum []string `json:"enum"`
				} `json:"propertyNames"`
			} `json:"messages"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(Schema, &schema); err != nil {
		t.Fatal(err)
	}
	got, want := slices.Sorted(slices.Values(schema.Defs.Messages.PropertyNames.Enum)), slices.Sorted(slices.Values(messageRules))
	if !slices.Equal(got, want) {
		t.Errorf("the schema's message rules are %v, the parser's %v", got, want)
	}
}
