package submit

import (
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/formq/formq/submission"
)

// replacerExpand is how placeholders were filled before expand scanned
// the template itself: a strings.Replacer of every placeholder.
func replacerExpand(tmpl string, sub *submission.Submission, escape func(string) string) string {
	pairs := []string{"{id}", escape(sub.ID), "{action}", escape(sub.Action)}
	for k, v := range sub.Values {
		if s, ok := v.(string); ok {
			pairs = append(pairs, "{"+k+"}", escape(s))
		} else if _, isList := v.([]string); !isList {
			pairs = append(pairs, "{"+k+"}", escape(fmt.Sprint(v)))
		}
	}
	return strings.NewReplacer(pairs...).Replace(tmpl)
}

// expand fills placeholders exactly as a strings.Replacer of them did.
func TestExpandMatchesReplacer(t *testing.T) {
	sub := &submission.Submission{ID: "01ID", Action: "sign-up", Values: map[string]any{
		"slug": "a b/c", "id": "not the id", "n": 42, "tags": []string{"x"}, "a{b": "brace", "ok": true, "empty": "",
	}}
	for _, tmpl := range []string{
		"", "/plain", "/users/{id}", "/{action}/{slug}?id={id}#{n}", "{id}{id}", "/{tags}/{nope}/{slug}",
		"{", "}", "{slug", "slug}", "{{slug}}", "{a{b}", "/x/{ok}/{empty}/", "{}", "/{sl{ug}/{slug}", "{{id}",
	} {
		for name, esc := range map[string]func(string) string{"path": url.PathEscape, "query": url.QueryEscape, "same": func(s string) string { return s }} {
			if got, want := expand(tmpl, sub, esc), replacerExpand(tmpl, sub, esc); got != want {
				t.Errorf("expand(%q) with %s escaping = %q, want %q", tmpl, name, got, want)
			}
		}
	}
}
