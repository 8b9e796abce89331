package actions

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/mail"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	validation "github.com/go-ozzo/ozzo-validation/v4"
	"golang.org/x/net/publicsuffix"
)

// Rules whose messages an upload may replace.
var uploadMessageRules = []string{"required", "max_size", "max_files", "types"}

// FieldErrors maps a field name to its problems, in the contract's shape.
type FieldErrors map[string][]string

// Add records a problem of a field.
func (e FieldErrors) Add(field, msg string) { e[field] = append(e[field], msg) }

// message returns the field's custom message for a rule, or def, with
// {label} and the rule's parameters filled in.
func message(custom map[string]string, rule, def, label string, params map[string]string) string {
	m := def
	if c, ok := custom[rule]; ok && c != "" {
		m = c
	}
	m = strings.ReplaceAll(m, "{label}", label)
	for k, v := range params {
		m = strings.ReplaceAll(m, "{"+k+"}", v)
	}
	return m
}

// Validate checks raw form values against the action's fields, reporting
// every problem at once, and returns the normalised values: trimmed
// strings, float64 for numbers, int64 for integers, bool, dates as
// YYYY-MM-DD, []string for multiple fields. Undeclared names are ignored.
func (a *Action) Validate(raw map[string][]string) (map[string]any, FieldErrors) {
	values := make(map[string]any, len(a.Fields))
	errs := FieldErrors{}
	for _, f := range a.Fields {
		v, problems := f.validate(raw[f.Name], raw)
		if len(problems) == 0 && v != nil && len(f.Rules) > 0 {
			if err := validation.Validate(v, f.Rules...); err != nil {
				problems = append(problems, err.Error())
			}
		}
		for _, p := range problems {
			errs.Add(f.Name, p)
		}
		if len(problems) == 0 && v != nil {
			values[f.Name] = v
		}
	}
	return values, errs
}

func (f *Field) msg(rule, def string, params map[string]string) string {
	return message(f.Messages, rule, def, f.Label, params)
}

// trim is how the field's values are read: without surrounding spaces,
// but for textarea and password fields, kept as typed.
func (f *Field) trim(v string) string {
	if f.Type == "textarea" || f.Type == "password" {
		return v
	}
	return strings.TrimSpace(v)
}

// validate checks one field's raw values and normalises them; form is
// the whole post, for rules that compare fields.
func (f *Field) validate(raw []string, form map[string][]string) (any, []string) {
	for i := range raw {
		raw[i] = f.trim(raw[i])
	}
	var nonEmpty []string
	for _, v := range raw {
		if v != "" {
			nonEmpty = append(nonEmpty, v)
		}
	}
	if f.Type == "boolean" {
		return f.validateBool(nonEmpty)
	}
	if f.Multiple {
		if len(nonEmpty) == 0 {
			if f.Required {
				return nil, []string{f.msg("required", "{label} is required", nil)}
			}
			return []string{}, nil
		}
		var problems []string
		out := make([]string, 0, len(nonEmpty))
		for _, v := range nonEmpty {
			n, p := f.validateOne(v, form)
			problems = append(problems, p...)
			if s, ok := n.(string); ok {
				out = append(out, s)
			} else {
				out = append(out, v)
			}
		}
		return out, dedupe(problems)
	}
	if len(nonEmpty) > 1 {
		return nil, []string{fmt.Sprintf("%s was sent more than once", f.Label)}
	}
	v := ""
	if len(nonEmpty) == 1 {
		v = nonEmpty[0]
	}
	if v == "" {
		if err := validation.Validate(v, validation.Required.Error(f.msg("required", "{label} is required", nil))); f.Required && err != nil {
			return nil, []string{err.Error()}
		}
		return nil, nil
	}
	return f.validateOne(v, form)
}

func (f *Field) validateBool(vals []string) (any, []string) {
	if len(vals) == 0 {
		if f.Required {
			return nil, []string{f.msg("required", "{label} is required", nil)}
		}
		return false, nil
	}
	b, err := strconv.ParseBool(strings.ToLower(vals[0]))
	if strings.EqualFold(vals[0], "on") || strings.EqualFold(vals[0], "yes") {
		b, err = true, nil
	}
	if err != nil {
		return nil, []string{f.msg("format", "{label} must be yes or no", nil)}
	}
	if f.Required && !b {
		return nil, []string{f.msg("required", "{label} is required", nil)}
	}
	return b, nil
}

// publicMailDomain reports whether an address's domain may be mailed: a
// name under a top-level domain of the public DNS root (not localhost,
// .local, .internal, a bare IP or a private name).
func publicMailDomain(domain string) bool {
	domain = strings.TrimSuffix(strings.ToLower(domain), ".")
	if net.ParseIP(domain) != nil || !strings.Contains(domain, ".") {
		return false
	}
	tld := domain[strings.LastIndex(domain, ".")+1:]
	if _, err := strconv.Atoi(tld); err == nil {
		return false
	}
	_, icann := publicsuffix.PublicSuffix(tld)
	return icann
}

// validateOne checks one non-empty value against the declared rules
// (fieldRules) and the type's format, and returns its normalised form.
func (f *Field) validateOne(v string, form map[string][]string) (any, []string) {
	if !utf8.ValidString(v) {
		return nil, []string{f.msg("format", "{label} must be valid text", nil)}
	}
	problems := f.checkRules(false, v, 0, form)
	switch f.Type {
	case "email":
		a, err := mail.ParseAddress(v)
		domain := v[strings.LastIndex(v, "@")+1:]
		switch {
		case err != nil || a.Address != v || !strings.Contains(domain, ".") || strings.HasPrefix(domain, "["):
			// An address literal (x@[10.0.0.5]) names a mail server
			// by its IP: never a person's address.
			problems = append(problems, f.msg("format", "{label} must be a valid email address", nil))
		case f.Recipient && !publicMailDomain(domain):
			problems = append(problems, f.msg("format", "{label} must be an address at a public domain", nil))
		}
	case "url":
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			problems = append(problems, f.msg("format", "{label} must be a valid http or https URL", nil))
		}
	case "date":
		if _, err := time.Parse(time.DateOnly, v); err != nil {
			problems = append(problems, f.msg("format", "{label} must be a date (YYYY-MM-DD)", nil))
		}
	}
	switch f.Type {
	case "number", "integer":
		return f.validateNumber(v, problems)
	}
	return v, problems
}

func (f *Field) validateNumber(v string, problems []string) (any, []string) {
	var n float64
	var err error
	if f.Type == "integer" {
		var i int64
		i, err = strconv.ParseInt(v, 10, 64)
		n = float64(i)
	} else {
		n, err = strconv.ParseFloat(v, 64)
		if math.IsNaN(n) || math.IsInf(n, 0) {
			err = errors.New("not finite")
		}
	}
	if err != nil {
		what := "a number"
		if f.Type == "integer" {
			what = "a whole number"
		}
		return nil, append(problems, f.msg("format", "{label} must be "+what, nil))
	}
	problems = append(problems, f.checkRules(true, v, n, nil)...)
	if f.Type == "integer" {
		return int64(n), problems
	}
	return n, problems
}

func fmtNum(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func dedupe(list []string) []string {
	seen := map[string]bool{}
	out := list[:0]
	for _, s := range list {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// FormatSize writes a byte count the way limits are declared: 5MB, 512KB.
func FormatSize(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%dGB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dMB", n>>20)
	case n >= 1<<20:
		return fmt.Sprintf("%.1fMB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%dKB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// Upload messages, used while files stream.
func (u *Upload) msg(rule, def string, params map[string]string) string {
	return message(u.Messages, rule, def, u.Label, params)
}

// TooLargeMessage is the field error for a file over max_size.
func (u *Upload) TooLargeMessage() string {
	return u.msg("max_size", "File too large (max {max_size})", map[string]string{"max_size": FormatSize(u.MaxSize)})
}

// humanType names a file's sniffed type for people, and for the
// developer reading along: "HTML (text/html)".
func humanType(sniffed string) string {
	if name := HumanTypes([]string{sniffed}); name != sniffed {
		return name + " (" + sniffed + ")"
	}
	return sniffed
}

// TypeMessage is the field error for a file of a type not allowed.
func (u *Upload) TypeMessage(sniffed string) string {
	return u.msg("types", "File type {type} not allowed (allowed: {types})", map[string]string{"type": humanType(sniffed), "types": HumanTypes(u.Types)})
}

// TooManyMessage is the field error for more files than max_files.
func (u *Upload) TooManyMessage() string {
	return u.msg("max_files", "Too many files (max {max_files})", map[string]string{"max_files": strconv.Itoa(u.MaxFiles)})
}

// RequiredMessage is the field error for a missing required file.
func (u *Upload) RequiredMessage() string {
	return u.msg("required", "{label} is required", nil)
}
