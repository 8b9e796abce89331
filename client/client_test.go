package client_test

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/formq/formq/client"
)

// TestShippedLanguages: formq.js asks for formq-i18n-{lang}.js only for the
// languages the API serves, and each holds every key of formq.js's English
// words.
func TestShippedLanguages(t *testing.T) {
	m := regexp.MustCompile(`const LANGS = \[([^\]]*)\];`).FindSubmatch(client.Script)
	if m == nil {
		t.Fatal("formq.js has no LANGS")
	}
	var listed []string
	for _, l := range strings.Split(string(m[1]), ",") {
		listed = append(listed, strings.Trim(strings.TrimSpace(l), `"`))
	}
	var served []string
	for l := range client.Languages {
		served = append(served, l)
	}
	slices.Sort(listed)
	slices.Sort(served)
	if !slices.Equal(listed, served) {
		t.Errorf("formq.js lists %v, the API serves %v", listed, served)
	}
	keys := func(src []byte, from string) []string {
		body := string(src)[strings.Index(string(src), from):]
		body = body[:strings.Index(body, "\n};")]
		var k []string
		for _, m := range regexp.MustCompile(`(?m)^  (\w+): "`).FindAllStringSubmatch(body, -1) {
			k = append(k, m[1])
		}
		slices.Sort(k)
		return k
	}
	en := keys(client.Script, "const EN = {")
	if len(en) < 15 {
		t.Fatalf("formq.js's EN has %d keys", len(en))
	}
	for l, a := range client.Languages {
		if got := keys(a.Body, "export default {"); !slices.Equal(got, en) {
			t.Errorf("formq-i18n-%s.js has keys %v, formq.js's EN %v", l, got, en)
		}
	}
}
