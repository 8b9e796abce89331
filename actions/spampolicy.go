package actions

// The spam: setting of an action: how its submissions are scored, the
// threshold that makes one spam, and what happens to spam.

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/formq/formq/internal/period"
)

// Spam defaults.
const (
	DefaultSpamThreshold = 5
	DefaultSpamKeepFor   = 30 * 24 * time.Hour
)

// SpamPolicy is an action's spam: setting. Without one an action keeps
// today's refusals (a filled honeypot or a too-fast post looks accepted
// and nothing is kept); with one, those signals add to a score with the
// content rules and the model, and a submission at or over Threshold is
// spam: held in the Spam folder, or dropped.
type SpamPolicy struct {
	Threshold float64
	// Drop discards spam like a filled honeypot; otherwise it is kept in
	// the Spam folder for KeepFor.
	Drop    bool
	KeepFor time.Duration
	// Honeypot, TooFast and Captcha are what a filled honeypot, a post
	// faster than min_fill_time, and a captcha left unchecked (provider
	// unreachable, on_error: allow) add.
	Honeypot, TooFast, Captcha float64
	Links                      SpamLinks
	BlockedWords               SpamList
	BlockedDomains             SpamList
	Scripts                    SpamScripts
	Duplicates                 SpamWindow
	Rate                       SpamRate
	Model                      SpamModel
}

// SpamLinks scores a submission with more than Max links.
type SpamLinks struct {
	Max   int
	Score float64
}

// SpamList scores a submission whose text holds any of Items (words, or
// link and address domains); off when empty.
type SpamList struct {
	Items []string
	Score float64
}

// SpamScripts scores a submission whose letters are mostly in scripts
// other than Allow (unicode script names such as Latin, Cyrillic); off
// when empty.
type SpamScripts struct {
	Allow []string
	Score float64
}

// SpamWindow scores a body seen before within Window.
type SpamWindow struct {
	Window time.Duration
	Score  float64
}

// SpamRate scores a client's post beyond Max within Per; off when Max is 0.
type SpamRate struct {
	Max   int
	Per   time.Duration
	Score float64
}

// SpamModel is the naive Bayes model's part: its probability of spam,
// from -Weight (surely not spam) to +Weight (surely spam), once it has
// learnt from MinExamples submissions of each kind. Weight 0 turns it off.
type SpamModel struct {
	Weight      float64
	MinExamples int
}

type rawSpam struct {
	Threshold      *float64        `yaml:"threshold"`
	OnSpam         string          `yaml:"on_spam"`
	KeepFor        string          `yaml:"keep_for"`
	Scores         rawSpamScores   `yaml:"scores"`
	Links          *rawSpamLinks   `yaml:"links"`
	BlockedWords   *rawSpamList    `yaml:"blocked_words"`
	BlockedDomains *rawSpamList    `yaml:"blocked_domains"`
	Scripts        *rawSpamScripts `yaml:"scripts"`
	Duplicates     *rawSpamWindow  `yaml:"duplicates"`
	Rate           *rawSpamRate    `yaml:"rate"`
	Model          *rawSpamModel   `yaml:"model"`
}

type rawSpamScores struct {
	Honeypot *float64 `yaml:"honeypot"`
	TooFast  *float64 `yaml:"too_fast"`
	Captcha  *float64 `yaml:"captcha"`
}

type rawSpamLinks struct {
	Max   *int     `yaml:"max"`
	Score *float64 `yaml:"score"`
}

type rawSpamList struct {
	List  []string `yaml:"list"`
	Score *float64 `yaml:"score"`
}

type rawSpamScripts struct {
	Allow []string `yaml:"allow"`
	Score *float64 `yaml:"score"`
}

type rawSpamWindow struct {
	Window string   `yaml:"window"`
	Score  *float64 `yaml:"score"`
}

type rawSpamRate struct {
	Max   int      `yaml:"max"`
	Per   string   `yaml:"per"`
	Score *float64 `yaml:"score"`
}

type rawSpamModel struct {
	Weight      *float64 `yaml:"weight"`
	MinExamples *int     `yaml:"min_examples"`
}

// DefaultSpamPolicy is spam: {} — every default.
func DefaultSpamPolicy() *SpamPolicy {
	return &SpamPolicy{
		Threshold: DefaultSpamThreshold, KeepFor: DefaultSpamKeepFor,
		Honeypot: 10, TooFast: 10, Captcha: 3,
		Links:        SpamLinks{Max: 2, Score: 3},
		BlockedWords: SpamList{Score: 5}, BlockedDomains: SpamList{Score: 5},
		Scripts:    SpamScripts{Score: 3},
		Duplicates: SpamWindow{Window: 24 * time.Hour, Score: 3},
		Rate:       SpamRate{Per: time.Hour, Score: 3},
		Model:      SpamModel{Weight: 6, MinExamples: 20},
	}
}

// parseSpam reads spam:, every default filled in.
func parseSpam(r *rawSpam) (*SpamPolicy, []string) {
	p := DefaultSpamPolicy()
	var msgs []string
	bad := func(format string, args ...any) { msgs = append(msgs, fmt.Sprintf("spam "+format, args...)) }
	score := func(dst *float64, v *float64, what string) {
		if v == nil {
			return
		}
		if *v < 0 || *v > 1000 {
			bad("%s %v: want a score from 0 to 1000", what, *v)
		}
		*dst = *v
	}
	duration := func(dst *time.Duration, s, what string) {
		if s == "" {
			return
		}
		d, err := period.Parse(s)
		if err != nil {
			bad("%s %q: %v", what, s, err)
		}
		*dst = d
	}
	if r.Threshold != nil {
		if *r.Threshold <= 0 {
			bad("threshold %v: want a score over 0", *r.Threshold)
		}
		p.Threshold = *r.Threshold
	}
	switch r.OnSpam {
	case "", "keep":
	case "drop":
		p.Drop = true
	default:
		bad("on_spam %q: want keep or drop", r.OnSpam)
	}
	duration(&p.KeepFor, r.KeepFor, "keep_for")
	score(&p.Honeypot, r.Scores.Honeypot, "scores.honeypot")
	score(&p.TooFast, r.Scores.TooFast, "scores.too_fast")
	score(&p.Captcha, r.Scores.Captcha, "scores.captcha")
	if l := r.Links; l != nil {
		if l.Max != nil {
			if *l.Max < 0 {
				bad("links max %d: want 0 or more", *l.Max)
			}
			p.Links.Max = *l.Max
		}
		score(&p.Links.Score, l.Score, "links score")
	}
	for _, item := range []struct {
		raw  *rawSpamList
		dst  *SpamList
		name string
	}{{r.BlockedWords, &p.BlockedWords, "blocked_words"}, {r.BlockedDomains, &p.BlockedDomains, "blocked_domains"}} {
		if item.raw == nil {
			continue
		}
		for _, w := range item.raw.List {
			if w = strings.ToLower(strings.TrimSpace(w)); w != "" {
				item.dst.Items = append(item.dst.Items, w)
			}
		}
		score(&item.dst.Score, item.raw.Score, item.name+" score")
	}
	if s := r.Scripts; s != nil {
		for _, name := range s.Allow {
			if _, ok := unicode.Scripts[name]; !ok {
				bad("scripts allow %q: want a Unicode script name such as Latin, Cyrillic, Greek, Han, Arabic", name)
			}
		}
		p.Scripts.Allow = slices.Clone(s.Allow)
		score(&p.Scripts.Score, s.Score, "scripts score")
	}
	if d := r.Duplicates; d != nil {
		duration(&p.Duplicates.Window, d.Window, "duplicates window")
		score(&p.Duplicates.Score, d.Score, "duplicates score")
	}
	if rt := r.Rate; rt != nil {
		if rt.Max < 1 {
			bad("rate max %d: want 1 or more posts", rt.Max)
		}
		p.Rate.Max = rt.Max
		duration(&p.Rate.Per, rt.Per, "rate per")
		score(&p.Rate.Score, rt.Score, "rate score")
	}
	if m := r.Model; m != nil {
		score(&p.Model.Weight, m.Weight, "model weight")
		if m.MinExamples != nil {
			if *m.MinExamples < 1 {
				bad("model min_examples %d: want 1 or more", *m.MinExamples)
			}
			p.Model.MinExamples = *m.MinExamples
		}
	}
	return p, msgs
}
