package actions

// Previews: who sent a submission and what it says, at a glance, from
// the fields its action declares.

import (
	"slices"
	"strings"
)

// Preview is who sent a submission and what it says, for the inbox list:
// Who from the name-like and email fields, What from the first text field
// left.
type Preview struct {
	Who  string `json:"who,omitempty"`
	What string `json:"what,omitempty"`
}

// previewWhatMax is the most characters of What.
const previewWhatMax = 140

// PreviewOf makes the preview of a card (a submission's shown values)
// from its action's declared fields: Who is the first name-like field
// (its name or label says name) with the first email field in angle
// brackets, What the first textarea, else the first other text field.
// With the action unknown (no longer declared), values are taken in name
// order.
func PreviewOf(a *Action, values map[string]string) Preview {
	var name, email, what, other string
	if a != nil {
		for _, f := range a.Fields {
			v := strings.TrimSpace(values[f.Name])
			if v == "" || f.Sensitive() {
				continue
			}
			switch {
			case f.Type == "email" && email == "":
				email = v
			case (f.Type == "text" || f.Type == "") && nameLike(f) && name == "":
				name = v
			case f.Type == "textarea" && what == "":
				what = v
			case (f.Type == "text" || f.Type == "url" || f.Type == "select") && other == "":
				other = v
			}
		}
	}
	if what == "" {
		what = other
	}
	p := Preview{What: clip(strings.Join(strings.Fields(what), " "), previewWhatMax)}
	switch {
	case name != "" && email != "":
		p.Who = name + " <" + email + ">"
	case name != "":
		p.Who = name
	default:
		p.Who = email
	}
	if p.Who == "" && p.What == "" && len(values) > 0 {
		// No declared field to go by: the first values, by name.
		var parts []string
		for _, k := range sortedKeys(values) {
			parts = append(parts, values[k])
		}
		p.What = clip(strings.Join(strings.Fields(strings.Join(parts, " · ")), " "), previewWhatMax)
	}
	return p
}

// nameLike says whether a field holds a person's name by its name or
// label: name, first_name, full name, Nom, Vorname...
func nameLike(f *Field) bool {
	for _, s := range []string{f.Name, f.Label} {
		s = strings.ToLower(s)
		if strings.Contains(s, "name") || strings.Contains(s, "nom") {
			return !strings.Contains(s, "company") && !strings.Contains(s, "user")
		}
	}
	return false
}

// clip cuts s to at most n characters, with an ellipsis.
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return strings.TrimSpace(string(r[:n-1])) + "…"
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
