package actions

import (
	"strings"
	"testing"
	"time"
)

// TestSpamPolicy reads spam: settings: {} takes every default, keys
// override them, and bad values are problems naming the key.
func TestSpamPolicy(t *testing.T) {
	parse := func(spam string) (*Action, error) {
		acts, err := Parse("t.yaml", []byte("actions:\n  a:\n    spam: "+spam+"\n"))
		if err != nil {
			return nil, err
		}
		return acts[0], nil
	}
	a, err := parse("{}")
	if err != nil {
		t.Fatal(err)
	}
	if p := a.Spam; p == nil || p.Threshold != 5 || p.Drop || p.KeepFor != 30*24*time.Hour || p.Honeypot != 10 || p.Links.Max != 2 || p.Model.Weight != 6 {
		t.Errorf("spam: {} = %+v", a.Spam)
	}
	a, err = parse("{threshold: 3, on_spam: drop, keep_for: 7d, scripts: {allow: [Cyrillic]}, rate: {max: 2, per: 10m}, model: {weight: 0}}")
	if err != nil {
		t.Fatal(err)
	}
	if p := a.Spam; p.Threshold != 3 || !p.Drop || p.KeepFor != 7*24*time.Hour || p.Scripts.Allow[0] != "Cyrillic" || p.Rate.Max != 2 || p.Rate.Per != 10*time.Minute || p.Model.Weight != 0 {
		t.Errorf("settings not read: %+v", a.Spam)
	}
	if a, err := parse("{threshold: 1}"); err != nil || a.Honeypot == "" {
		t.Errorf("a spam: setting changed the honeypot field: %v", err)
	}
	for spam, want := range map[string]string{
		"{threshold: -1}":                   "spam threshold -1",
		"{on_spam: quarantine}":             `spam on_spam "quarantine"`,
		"{keep_for: soon}":                  `spam keep_for "soon"`,
		"{scripts: {allow: [Klingon]}}":     `spam scripts allow "Klingon"`,
		"{rate: {max: 0}}":                  "spam rate max 0",
		"{blocked_words: {score: 2000}}":    "spam blocked_words score 2000",
		"{model: {min_examples: 0}}":        "spam model min_examples 0",
		"{duplicates: {window: yesterday}}": `spam duplicates window "yesterday"`,
	} {
		if _, err := parse(spam); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("spam: %s: %v; want a problem with %q", spam, err, want)
		}
	}
}
