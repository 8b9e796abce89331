// Package spam scores a submission against its action's spam: setting:
// the bot signals the intake saw (honeypot, too fast, captcha unchecked),
// content rules over its values (links, blocked words and domains,
// scripts), recent posts (duplicate bodies, a client's rate) and a naive
// Bayes model learnt from the admins' verdicts. It keeps nothing itself:
// recent posts and the model's counts live where Memory and Model keep
// them (jobs.SpamStore, in Redis).
package spam

import (
	"context"
	"fmt"
	"math"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode"

	"github.com/formq/formq/actions"
	"github.com/formq/formq/submission"
)

// Signals are what the intake saw of a post before its values were
// checked.
type Signals struct {
	Honeypot bool // the honeypot field was filled in
	TooFast  bool // posted faster than min_fill_time, or without its stamp
	// CaptchaUnchecked: the provider could not be reached and the action
	// accepts posts then (on_error: allow).
	CaptchaUnchecked bool
}

// Input is one submission to score.
type Input struct {
	Action   string
	Values   map[string]any
	ClientIP string
	Signals
}

// Memory counts recent posts: Seen counts one more post of an action
// with this kind ("body", "client") and value within window and answers
// how many there are, this one included. Values are personal data: the
// implementation keeps only a keyed digest.
type Memory interface {
	Seen(ctx context.Context, action, kind, value string, window time.Duration) (int64, error)
}

// Model answers what the naive Bayes model has learnt: how many spam and
// ham submissions, and in how many of each every token was.
type Model interface {
	Counts(ctx context.Context, tokens []string) (Counts, error)
}

// Counts is what a Model answers for some tokens.
type Counts struct {
	SpamDocs, HamDocs int64
	// Spam and Ham hold, per token asked, the submissions of each kind
	// it was in.
	Spam, Ham []int64
}

// Checker scores submissions. A nil Memory turns off duplicates and
// rate; a nil Model turns the model off.
type Checker struct {
	Memory Memory
	Model  Model
}

// Check scores in against p. The verdict is SpamHeld at or over the
// threshold, else SpamHam; every rule that added is a reason.
func (c *Checker) Check(ctx context.Context, p *actions.SpamPolicy, in Input) (*submission.Spam, error) {
	v := &submission.Spam{Verdict: submission.SpamHam, Reasons: []submission.SpamReason{}}
	add := func(rule string, score float64, format string, args ...any) {
		if score == 0 {
			return
		}
		v.Reasons = append(v.Reasons, submission.SpamReason{Rule: rule, Score: round(score), Detail: fmt.Sprintf(format, args...)})
		v.Score += score
	}
	if in.Honeypot {
		add("honeypot", p.Honeypot, "the hidden honeypot field was filled in")
	}
	if in.TooFast {
		add("too_fast", p.TooFast, "posted faster than the form's minimum fill time, or without the form's render stamp")
	}
	if in.CaptchaUnchecked {
		add("captcha", p.Captcha, "the captcha could not be checked (provider unreachable)")
	}
	text := Text(in.Values)
	for _, r := range Content(p, text) {
		add(r.Rule, r.Score, "%s", r.Detail)
	}
	if c.Memory != nil {
		if norm := normalise(text); p.Duplicates.Score > 0 && len(norm) >= minDuplicate {
			n, err := c.Memory.Seen(ctx, in.Action, "body", norm, p.Duplicates.Window)
			if err != nil {
				return nil, err
			}
			if n > 1 {
				add("duplicate", p.Duplicates.Score, "the same text was posted %d times within %s", n, human(p.Duplicates.Window))
			}
		}
		if p.Rate.Max > 0 && p.Rate.Score > 0 && in.ClientIP != "" {
			n, err := c.Memory.Seen(ctx, in.Action, "client", in.ClientIP, p.Rate.Per)
			if err != nil {
				return nil, err
			}
			if n > int64(p.Rate.Max) {
				add("rate", p.Rate.Score, "post %d from this address within %s (more than %d)", n, human(p.Rate.Per), p.Rate.Max)
			}
		}
	}
	if c.Model != nil && p.Model.Weight > 0 {
		r, ok, err := c.model(ctx, p.Model, text)
		if err != nil {
			return nil, err
		}
		if ok {
			add(r.Rule, r.Score, "%s", r.Detail)
		}
	}
	v.Score = round(v.Score)
	if v.Score >= p.Threshold {
		v.Verdict = submission.SpamHeld
	}
	return v, nil
}

// model asks the model about the text's tokens: nothing until it learnt
// from MinExamples of each kind.
func (c *Checker) model(ctx context.Context, m actions.SpamModel, text string) (submission.SpamReason, bool, error) {
	tokens := Tokens(text)
	counts, err := c.Model.Counts(ctx, tokens)
	if err != nil {
		return submission.SpamReason{}, false, err
	}
	if counts.SpamDocs < int64(m.MinExamples) || counts.HamDocs < int64(m.MinExamples) {
		return submission.SpamReason{}, false, nil
	}
	prob, words := Classify(tokens, counts)
	score := m.Weight * (2*prob - 1)
	detail := fmt.Sprintf("the learnt model says %.0f%% spam", 100*prob)
	if len(words) > 0 {
		detail += " (" + strings.Join(words, ", ") + ")"
	}
	return submission.SpamReason{Rule: "model", Score: score, Detail: detail}, true, nil
}

// minDuplicate is the shortest text whose repeats count: a short answer
// ("yes", a name) is often the same from different people.
const minDuplicate = 20

// Content are the content rules' reasons for a text: links, blocked
// words and domains, scripts. They need nothing but the text, so the
// corpus measurement runs them as they run here.
func Content(p *actions.SpamPolicy, text string) []submission.SpamReason {
	var out []submission.SpamReason
	add := func(rule string, score float64, format string, args ...any) {
		if score > 0 {
			out = append(out, submission.SpamReason{Rule: rule, Score: score, Detail: fmt.Sprintf(format, args...)})
		}
	}
	links := linkPattern.FindAllString(text, -1)
	if n := len(links); n > p.Links.Max {
		add("links", p.Links.Score, "%d links (more than %d)", n, p.Links.Max)
	}
	if len(p.BlockedWords.Items) > 0 {
		if hit := blockedWords(p.BlockedWords.Items, text); len(hit) > 0 {
			add("blocked_words", p.BlockedWords.Score, "blocked words: %s", strings.Join(hit, ", "))
		}
	}
	if len(p.BlockedDomains.Items) > 0 {
		if hit := blockedDomains(p.BlockedDomains.Items, text); len(hit) > 0 {
			add("blocked_domains", p.BlockedDomains.Score, "blocked domains: %s", strings.Join(hit, ", "))
		}
	}
	if len(p.Scripts.Allow) > 0 {
		if share, script, ok := foreignScript(p.Scripts.Allow, text); ok {
			add("script", p.Scripts.Score, "%.0f%% of the letters are %s; the form expects %s", 100*share, script, strings.Join(p.Scripts.Allow, ", "))
		}
	}
	return out
}

// linkPattern finds links: URLs with a scheme, www. hosts and BBCode.
var linkPattern = regexp.MustCompile(`(?i)\b(?:https?://|www\.)[^\s<>"'\])]+|\[url[=\]]`)

// Text is a submission's values as one text, in field order, for the
// rules and the model.
func Text(values map[string]any) string {
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		if s := submission.CardText(values[k]); s != "" {
			b.WriteString(s)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// normalise is a text as duplicates compare it: lower case, spacing
// collapsed.
func normalise(text string) string { return strings.Join(strings.Fields(strings.ToLower(text)), " ") }

func blockedWords(list []string, text string) []string {
	lower := strings.ToLower(text)
	words := map[string]bool{}
	for _, w := range strings.FieldsFunc(lower, notWord) {
		words[w] = true
	}
	var hit []string
	for _, item := range list {
		if (strings.ContainsFunc(item, notWord) && strings.Contains(lower, item)) || words[item] {
			hit = append(hit, item)
		}
	}
	return hit
}

// hostPattern finds the hosts of links and addresses.
var hostPattern = regexp.MustCompile(`(?i)(?:https?://|www\.|@)([a-z0-9][a-z0-9.-]*\.[a-z]{2,})`)

func blockedDomains(list []string, text string) []string {
	var hit []string
	for _, m := range hostPattern.FindAllStringSubmatch(text, -1) {
		host := strings.ToLower(m[1])
		if u, err := url.Parse("http://" + host); err == nil {
			host = u.Hostname()
		}
		for _, d := range list {
			if (host == d || strings.HasSuffix(host, "."+d)) && !slices.Contains(hit, d) {
				hit = append(hit, d)
			}
		}
	}
	return hit
}

// foreignScript reports the share of letters in no allowed script and
// the most common such script, when it is most of them (of at least 10).
func foreignScript(allow []string, text string) (float64, string, bool) {
	total, foreign := 0, 0
	by := map[string]int{}
	for _, r := range text {
		if !unicode.IsLetter(r) {
			continue
		}
		total++
		allowed := false
		for _, name := range allow {
			if t, ok := unicode.Scripts[name]; ok && unicode.Is(t, r) {
				allowed = true
				break
			}
		}
		if allowed {
			continue
		}
		foreign++
		for name, t := range unicode.Scripts {
			if unicode.Is(t, r) {
				by[name]++
				break
			}
		}
	}
	if total < 10 || foreign*2 <= total {
		return 0, "", false
	}
	top, n := "", 0
	for name, c := range by {
		if c > n || (c == n && name < top) {
			top, n = name, c
		}
	}
	return float64(foreign) / float64(total), top, true
}

func notWord(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '\'' }

// human is a window as people write it: 1d, 1h, 1h30m, 10m, 30s.
func human(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

func round(f float64) float64 { return math.Round(f*100) / 100 }
