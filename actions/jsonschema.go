package actions

import (
	"fmt"
	"math"
	"strings"
	"unicode"
)

// JSONSchemaDialect is the JSON Schema draft that JSONSchema writes.
const JSONSchemaDialect = "https://json-schema.org/draft/2020-12/schema"

// A value the server would trim differs from the value it keeps, so the
// schema takes values already trimmed: neither their first nor their last
// character is white space as Go's strings.TrimSpace sees it (JavaScript's
// \s and U+0085, which Go trims and \s lacks).
const (
	trimmed = `^[^\s\u0085]([\s\S]*[^\s\u0085])?$`
	// emailPattern is an address as the server reads one: a dot-atom, @,
	// a dot-atom with a dot (quoted local parts and non-ASCII addresses,
	// which the server also takes, are left out).
	emailPattern = `^` + atom + `(\.` + atom + `)*@` + atom + `(\.` + atom + `)+$`
	atom         = "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
	// urlPattern is an http or https URL with a plain host name and
	// well-formed escapes: every URL it takes, the server takes too.
	urlPattern = `^[Hh][Tt][Tt][Pp][Ss]?://[A-Za-z0-9.-]+(:[0-9]{1,5})?([/?#]([^\x00-\x20\x7f%]|%[0-9A-Fa-f]{2})*)?$`
	// maxSafeInteger bounds integer fields: beyond it JavaScript numbers
	// lose whole values (and int64 ends a little further).
	maxSafeInteger = 1<<53 - 1
)

// JSONSchema describes the action's values as a JSON Schema (draft
// 2020-12) that ajv, JSON-Schema form libraries and code generators take:
// an object with one property per declared field, in the form the server
// keeps an accepted value (Validate's result, also the data of the
// webhook the app receives): strings trimmed (but for textarea and
// password), numbers and integers as JSON numbers, booleans, lists for
// multiple fields; empty optional values left out. Every object it accepts,
// sent as a form, the server accepts and keeps unchanged. What JSON Schema
// cannot say is in the descriptions: files, which are sent as files or
// upload references, rules added from Go, and patterns that only Go's
// regular expressions can read. id is the schema's $id (its URL), or "".
func (a *Action) JSONSchema(id string) map[string]any {
	props := map[string]any{}
	var required []string
	notes := []string{
		"The values of a submission to formq's action " + a.Name + " as the server keeps them: strings without surrounding white space (but for textarea and password fields), empty optional values left out.",
	}
	for _, f := range a.Fields {
		s, note := f.jsonSchema()
		props[f.Name] = s
		if note != "" {
			notes = append(notes, note)
		}
		if f.Required {
			required = append(required, f.Name)
		}
		if len(f.Rules) > 0 {
			notes = append(notes, f.Name+": also checked by rules added from Go, which this schema does not hold.")
		}
	}
	if len(a.Uploads) > 0 {
		var names []string
		for _, u := range a.Uploads {
			names = append(names, u.Name)
		}
		notes = append(notes, "Files ("+strings.Join(names, ", ")+") are sent as files or upload references beside these values, not in them.")
	}
	if a.Check != nil {
		notes = append(notes, "The action also checks values across fields or against the app's data after these rules.")
	}
	s := map[string]any{
		"$schema":              JSONSchemaDialect,
		"title":                a.Title,
		"description":          strings.Join(notes, " "),
		"type":                 "object",
		"properties":           props,
		"additionalProperties": false,
	}
	if a.Title == "" {
		s["title"] = a.Name
	}
	if id != "" {
		s["$id"] = id
	}
	if len(required) > 0 {
		s["required"] = required
	}
	return s
}

// jsonSchema is one field's value schema and what it cannot say, if
// anything. Its rules come from fieldRules, as the public declaration
// states them; the type gives the rest.
func (f *Field) jsonSchema() (map[string]any, string) {
	label := f.Label
	if label == "" {
		label = f.Name
	}
	var p PublicField
	for i := range fieldRules {
		if r := &fieldRules[i]; r.public != nil && r.declared(f) {
			r.public(f, &p)
		}
	}
	var notes []string
	switch f.Type {
	case "boolean":
		s := map[string]any{"title": label, "type": "boolean"}
		if f.Required {
			s["const"] = true // a required box must be ticked
		}
		return s, ""
	case "number", "integer":
		if f.Multiple {
			// The server keeps each of many numbers as the text sent.
			num := `^[+-]?[0-9]{1,18}$`
			if f.Type == "number" {
				num = `^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]{1,3})?$`
			}
			if p.Min != nil || p.Max != nil {
				notes = append(notes, f.Name+": each number is also held to the field's min and max, which this schema, holding them as text, does not.")
			}
			return f.many(map[string]any{"type": "string", "pattern": num}, label), strings.Join(notes, " ")
		}
		s := map[string]any{"title": label, "type": f.Type}
		lo, hi := math.Inf(-1), math.Inf(1)
		if f.Type == "integer" {
			lo, hi = -maxSafeInteger, maxSafeInteger
		}
		if p.Min != nil && *p.Min > lo {
			lo = *p.Min
		}
		if p.Max != nil && *p.Max < hi {
			hi = *p.Max
		}
		if !math.IsInf(lo, 0) {
			s["minimum"] = lo
		}
		if !math.IsInf(hi, 0) {
			s["maximum"] = hi
		}
		return f.many(s, label), ""
	}
	s := map[string]any{"type": "string", "minLength": 1}
	var all []any
	if f.Type != "textarea" && f.Type != "password" {
		all = append(all, map[string]any{"pattern": trimmed})
	}
	if p.MinLength != nil && *p.MinLength > 1 {
		s["minLength"] = *p.MinLength
	}
	if p.MaxLength != nil && *p.MaxLength > 0 {
		s["maxLength"] = *p.MaxLength
	}
	if p.Pattern != "" {
		if re, ok := ecmaPattern(p.Pattern); ok {
			all = append(all, map[string]any{"pattern": re})
		} else {
			notes = append(notes, fmt.Sprintf("%s: the server also matches the pattern %s, written for Go's regular expressions, which this schema does not hold.", f.Name, p.Pattern))
		}
	}
	if len(p.Options) > 0 {
		values := make([]any, 0, len(p.Options))
		for _, o := range p.Options {
			values = append(values, o.Value)
		}
		s["enum"] = values
	}
	for _, c := range p.Checks {
		switch {
		case c.Refuse != "":
			re := c.Refuse
			if c.IgnoreCase {
				re = foldCase(re)
			}
			all = append(all, map[string]any{"not": map[string]any{"pattern": re}})
		case c.SameAs != "":
			notes = append(notes, fmt.Sprintf("%s: must be the same as %s (%s), which JSON Schema cannot say.", f.Name, c.SameAs, c.Rule))
		default:
			notes = append(notes, fmt.Sprintf("%s: also checked by the rule %s, which this schema does not hold.", f.Name, c.Rule))
		}
	}
	switch f.Type {
	case "email":
		all = append(all, map[string]any{"pattern": emailPattern})
	case "url":
		all = append(all, map[string]any{"pattern": urlPattern})
	case "date":
		s["format"] = "date"
		all = append(all, map[string]any{"pattern": `^[0-9]{4}-[0-9]{2}-[0-9]{2}$`})
	}
	if f.Type == "password" {
		s["writeOnly"] = true
	}
	if len(all) == 1 {
		for k, v := range all[0].(map[string]any) {
			s[k] = v
		}
	} else if len(all) > 1 {
		s["allOf"] = all
	}
	s["title"] = label
	return f.many(s, label), strings.Join(notes, " ")
}

// foldCase writes a regular expression's letters outside escapes and
// classes as classes of every case Go's strings.EqualFold takes as the
// same letter, so that JSON Schema, which has no flags, matches whatever
// the case. A source with classes of its own is left as it is (the
// Refuse hints hold quoted values only).
func foldCase(re string) string {
	var b strings.Builder
	escaped := false
	for _, r := range re {
		if escaped || r == '\\' {
			escaped = !escaped && r == '\\'
			b.WriteRune(r)
			continue
		}
		if r == '[' {
			return re
		}
		orbit := []rune{r}
		for o := unicode.SimpleFold(r); o != r; o = unicode.SimpleFold(o) {
			orbit = append(orbit, o)
		}
		if len(orbit) == 1 {
			b.WriteRune(r)
			continue
		}
		b.WriteString("[" + string(orbit) + "]")
	}
	return b.String()
}

// many wraps a value's schema in a list for a multiple field: at least one
// value when required.
func (f *Field) many(s map[string]any, label string) map[string]any {
	if !f.Multiple {
		return s
	}
	delete(s, "title")
	out := map[string]any{"title": label, "type": "array", "items": s}
	if f.Required {
		out["minItems"] = 1
	}
	return out
}

// ecmaPattern is a Go regular expression as one that JSON Schema's
// ECMA-262 dialect reads the same way, or false when it uses syntax the
// two read differently (flags, Unicode and POSIX classes, \Q..\E, white
// space classes, word boundaries, \A and \z).
func ecmaPattern(p string) (string, bool) {
	if strings.Contains(strings.ReplaceAll(p, `(?:`, ``), `(?`) {
		return "", false
	}
	for _, bad := range []string{`\p`, `\P`, `[[:`, `\Q`, `\s`, `\S`, `\b`, `\B`, `\C`, `\x{`, `\A`, `\z`} {
		if strings.Contains(p, bad) {
			return "", false
		}
	}
	return p, p != ""
}
