package actions

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// Theme changes the look of hosted forms without a template: an accent
// colour, a logo above the title and an extra stylesheet loaded after the
// built-in one. The actions file sets it for every action (top-level
// theme:) and per action; an action's keys win.
type Theme struct {
	Accent     string `yaml:"accent" json:"accent,omitempty"`
	Logo       string `yaml:"logo" json:"logo,omitempty"`
	Stylesheet string `yaml:"stylesheet" json:"stylesheet,omitempty"`
}

// accentPattern keeps the accent a plain colour: #rgb, #rrggbb(aa) or a
// CSS colour name, so it cannot break out of the style it is put in.
var accentPattern = regexp.MustCompile(`^(#[0-9A-Fa-f]{3,8}|[a-z]{3,20})$`)

// problems lists what is wrong with a theme.
func (t *Theme) problems() []string {
	if t == nil {
		return nil
	}
	var out []string
	if t.Accent != "" && !accentPattern.MatchString(t.Accent) {
		out = append(out, fmt.Sprintf("theme accent %q: want a colour like #0b57d0 or teal", t.Accent))
	}
	for key, v := range map[string]string{"logo": t.Logo, "stylesheet": t.Stylesheet} {
		if v != "" && !LinkTarget(v) {
			out = append(out, fmt.Sprintf("theme %s %q: want an http(s) URL or a path starting with /", key, v))
		}
	}
	return out
}

// Merge returns the theme with over's keys replacing t's; nil when both
// are empty.
func (t *Theme) Merge(over *Theme) *Theme {
	var m Theme
	for _, s := range []*Theme{t, over} {
		if s == nil {
			continue
		}
		if s.Accent != "" {
			m.Accent = s.Accent
		}
		if s.Logo != "" {
			m.Logo = s.Logo
		}
		if s.Stylesheet != "" {
			m.Stylesheet = s.Stylesheet
		}
	}
	if m == (Theme{}) {
		return nil
	}
	return &m
}

// LinkTarget reports whether s is an absolute http(s) URL with a host or
// a root-relative path (not //host, which browsers read as a host).
func LinkTarget(s string) bool {
	if strings.HasPrefix(s, "/") {
		return !strings.HasPrefix(s, "//") && !strings.HasPrefix(s, "/\\")
	}
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// PlaceholderInHost reports whether a redirect template has a placeholder
// before its path (in the scheme or host), where an expanded value could
// send people to another site.
func PlaceholderInHost(tmpl string) bool { return placeholderBeforePath(tmpl) }
