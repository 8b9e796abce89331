package spam

// The model: a naive Bayes over the tokens of a submission's text, each
// counted once per submission (in how many spam and ham submissions a
// token was), learnt from what admins release, confirm and mark.

import (
	"math"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"
)

// MaxTokens is the most distinct tokens of one submission the model
// looks at (the first ones): a long body costs no more than this.
const MaxTokens = 400

// Tokens are the distinct tokens of a text, in order of appearance:
// words of 2 to 30 characters in lower case, and "host:" with the host
// of every link and address.
func Tokens(text string) []string {
	seen := map[string]bool{}
	var out []string
	add := func(t string) {
		if len(out) < MaxTokens && !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	lower := strings.ToLower(text)
	for _, m := range hostPattern.FindAllStringSubmatch(lower, -1) {
		add("host:" + strings.TrimSuffix(m[1], "."))
	}
	for _, w := range strings.FieldsFunc(lower, notWord) {
		w = strings.Trim(w, "'")
		if n := utf8.RuneCountInString(w); n >= 2 && n <= 30 && !allDigits.MatchString(w) {
			add(w)
		}
	}
	return out
}

var allDigits = regexp.MustCompile(`^[0-9]+$`)

// Classify is the model's probability that a text with these tokens is
// spam, given counts for them, and the few tokens that weighed most
// towards the answer. Each token's likelihood is smoothed (one extra
// submission of each kind), so a token never seen says nothing.
func Classify(tokens []string, c Counts) (float64, []string) {
	if c.SpamDocs == 0 || c.HamDocs == 0 {
		return 0.5, nil
	}
	logOdds := math.Log(float64(c.SpamDocs) / float64(c.HamDocs))
	type weight struct {
		token string
		w     float64
	}
	ws := make([]weight, 0, len(tokens))
	for i, t := range tokens {
		s, h := float64(at(c.Spam, i)), float64(at(c.Ham, i))
		if s == 0 && h == 0 {
			continue
		}
		ps := (s + 1) / (float64(c.SpamDocs) + 2)
		ph := (h + 1) / (float64(c.HamDocs) + 2)
		w := math.Log(ps / ph)
		logOdds += w
		ws = append(ws, weight{t, w})
	}
	p := 1 / (1 + math.Exp(-logOdds))
	sort.SliceStable(ws, func(i, j int) bool {
		if p >= 0.5 {
			return ws[i].w > ws[j].w
		}
		return ws[i].w < ws[j].w
	})
	var top []string
	for _, w := range ws {
		if len(top) == 3 || (p >= 0.5) != (w.w > 0) {
			break
		}
		top = append(top, strings.TrimPrefix(w.token, "host:"))
	}
	return p, top
}

func at(s []int64, i int) int64 {
	if i < len(s) {
		return s[i]
	}
	return 0
}
