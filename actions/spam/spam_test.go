package spam_test

import (
	"context"
	"strings"
	"testing"

	"github.com/formq/formq/actions"
	"github.com/formq/formq/actions/spam"
	"github.com/formq/formq/submission"
)

func policy() *actions.SpamPolicy {
	p := actions.DefaultSpamPolicy()
	p.BlockedWords.Items = []string{"casino", "cheap pills"}
	p.BlockedDomains.Items = []string{"spam.example"}
	p.Scripts.Allow = []string{"Latin"}
	return p
}

// TestContentRules: each content rule fires on what it looks for, says
// why, and stays quiet on an ordinary message.
func TestContentRules(t *testing.T) {
	p := policy()
	cases := []struct {
		name, text, want string
	}{
		{"ordinary", "Hello, could you call me back about the quote? See https://example.com", ""},
		{"links", "see http://a.example http://b.example www.c.example", "links: 3 links (more than 2)"},
		{"bbcode", "[url=http://x.example]x[/url] [url]y[/url] z", "links: 3 links (more than 2)"},
		{"blocked word", "Best CASINO in town", "blocked_words: blocked words: casino"},
		{"blocked word inside another", "occasional casinos", ""},
		{"blocked phrase", "buy cheap pills now", "blocked_words: blocked words: cheap pills"},
		{"blocked domain", "write to me at sales@mail.spam.example", "blocked_domains: blocked domains: spam.example"},
		{"unblocked domain", "write to me at sales@notspam.example", ""},
		{"script", "Привет, как дела? Напишите мне", "script: 100% of the letters are Cyrillic; the form expects Latin"},
		{"a few foreign letters", "Hello Zoë, greetings from Москва to everyone here", ""},
	}
	for _, tc := range cases {
		var got []string
		for _, r := range spam.Content(p, tc.text) {
			got = append(got, r.Rule+": "+r.Detail)
		}
		if strings.Join(got, "; ") != tc.want {
			t.Errorf("%s: %q; want %q", tc.name, got, tc.want)
		}
	}
}

// TestCheckAddsSignalsToTheScore: the intake's signals and the content
// rules add up; the verdict is spam at the threshold.
func TestCheckAddsSignalsToTheScore(t *testing.T) {
	c := &spam.Checker{}
	p := policy()
	v, err := c.Check(context.Background(), p, spam.Input{Action: "a", Values: map[string]any{"m": "hi there"}})
	if err != nil || v.Verdict != submission.SpamHam || v.Score != 0 || len(v.Reasons) != 0 {
		t.Fatalf("a plain message: %+v %v", v, err)
	}
	v, _ = c.Check(context.Background(), p, spam.Input{Action: "a", Values: map[string]any{"m": "casino"}})
	if v.Verdict != submission.SpamHeld || v.Score != 5 {
		t.Errorf("a blocked word alone reaches the threshold of 5: %+v", v)
	}
	v, _ = c.Check(context.Background(), p, spam.Input{Action: "a", Values: map[string]any{"m": "hi"}, Signals: spam.Signals{CaptchaUnchecked: true}})
	if v.Verdict != submission.SpamHam || v.Score != 3 || v.Reasons[0].Rule != "captcha" {
		t.Errorf("an unchecked captcha alone: %+v", v)
	}
	v, _ = c.Check(context.Background(), p, spam.Input{Action: "a", Values: map[string]any{"m": "hi"}, Signals: spam.Signals{Honeypot: true, TooFast: true}})
	if v.Verdict != submission.SpamHeld || v.Score != 20 || len(v.Reasons) != 2 {
		t.Errorf("honeypot and too fast: %+v", v)
	}
}

// TestClassify: tokens seen in spam push the probability up, tokens seen
// in ham push it down, unseen tokens say nothing; the strongest tokens
// of the answer are named.
func TestClassify(t *testing.T) {
	toks := spam.Tokens("Cheap VIAGRA at http://pills.example, cheap!")
	if strings.Join(toks, " ") != "host:pills.example cheap viagra at http pills example" {
		t.Fatalf("tokens: %q", toks)
	}
	c := spam.Counts{SpamDocs: 10, HamDocs: 10, Spam: []int64{5, 9, 8, 5, 5, 5, 5}, Ham: []int64{0, 0, 0, 5, 5, 0, 5}}
	p, words := spam.Classify(toks, c)
	if p < 0.99 || strings.Join(words, ",") != "cheap,viagra,pills.example" {
		t.Errorf("spammy tokens: p=%v words=%v", p, words)
	}
	c = spam.Counts{SpamDocs: 10, HamDocs: 10, Spam: []int64{0, 0, 0, 0, 0, 0, 0}, Ham: []int64{3, 4, 0, 0, 0, 0, 0}}
	if p, words := spam.Classify(toks, c); p > 0.1 || strings.Join(words, ",") != "cheap,pills.example" {
		t.Errorf("hammy tokens: p=%v words=%v", p, words)
	}
	if p, _ := spam.Classify([]string{"unseen"}, spam.Counts{SpamDocs: 5, HamDocs: 5, Spam: []int64{0}, Ham: []int64{0}}); p != 0.5 {
		t.Errorf("an unseen token: p=%v; want 0.5", p)
	}
}
