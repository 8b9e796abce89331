package actions

import (
	"fmt"
	"html"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// FieldRules are the rules a field declares in the actions file. Each has
// its entry in fieldRules below, which says everything about it.
type FieldRules struct {
	Required  bool
	MinLength *int
	MaxLength *int
	Pattern   *regexp.Regexp
	Min, Max  *float64
	Options   []Option
	// NotIn lists values refused whatever their case; an email field
	// also refuses an address whose domain is listed.
	NotIn []string
	// EqualsField names a field this one must repeat ("repeat your
	// password").
	EqualsField string
}

// A fieldRule is one rule of the actions file, declared once: how its
// setting is read, what the server checks, what the public declaration
// and the hosted form say of it, and the hint a browser checks it by.
// Validation, Public, the hosted form and client.js all go through
// fieldRules, so a new rule is one entry here (and its key in
// actions.schema.json, for editors).
type fieldRule struct {
	key     string // the YAML key, and the rule's name in messages
	message string // the default message; {label} and {key} fill in
	// parse reads the key's setting into the field and returns problems;
	// check finds problems between settings once all are read.
	parse func(f *Field, n *yaml.Node) []string
	check func(f *Field) []string
	// checkAction finds problems with the other fields of the action.
	checkAction func(a *Action, f *Field) []string
	// declared says whether the field uses the rule; param is the
	// setting as messages write it ({key}).
	declared func(f *Field) bool
	param    func(f *Field) string
	// numeric rules check the parsed number of number and integer
	// fields, after the format; the others check the text of a value.
	numeric bool
	ok      func(f *Field, v string, n float64, form map[string][]string) bool
	// public sets the rule's entry of the public declaration: a key of
	// PublicRules for the first rules, a PublicCheck for the others (nil
	// when the rule has no entry).
	public func(f *Field, p *PublicField)
	// attrs are the hosted form's input attributes, if any.
	attrs func(f *Field) [][2]string
}

// fieldRules are every field rule, in the order their problems are
// reported. The format of email, url, date and number fields comes from
// the type (typeFormat), between the text rules and the numeric ones.
var fieldRules = []fieldRule{
	{
		key: "required", message: "{label} is required",
		parse:    setting(func(f *Field) any { return &f.Required }),
		declared: func(f *Field) bool { return true }, // its message is always public
		public:   func(f *Field, p *PublicField) { p.Required = f.Required },
	},
	{
		key: "min_length", message: "{label} must be at least {min_length} characters",
		parse: setting(func(f *Field) any { return &f.MinLength }),
		check: func(f *Field) []string {
			if f.MinLength != nil && *f.MinLength < 0 {
				return []string{"min_length must not be negative"}
			}
			return nil
		},
		declared: func(f *Field) bool { return f.MinLength != nil },
		param:    func(f *Field) string { return strconv.Itoa(*f.MinLength) },
		ok: func(f *Field, v string, _ float64, _ map[string][]string) bool {
			return utf8.RuneCountInString(v) >= *f.MinLength
		},
		public: func(f *Field, p *PublicField) { p.MinLength = f.MinLength },
		attrs:  func(f *Field) [][2]string { return [][2]string{{"minlength", strconv.Itoa(*f.MinLength)}} },
	},
	{
		key: "max_length", message: "{label} must be at most {max_length} characters",
		parse: setting(func(f *Field) any { return &f.MaxLength }),
		check: func(f *Field) []string {
			var p []string
			if f.MaxLength != nil && *f.MaxLength <= 0 {
				p = append(p, "max_length must be positive")
			}
			if f.MinLength != nil && f.MaxLength != nil && *f.MinLength > *f.MaxLength {
				p = append(p, "min_length is over max_length")
			}
			return p
		},
		declared: func(f *Field) bool { return f.MaxLength != nil },
		param:    func(f *Field) string { return strconv.Itoa(*f.MaxLength) },
		ok: func(f *Field, v string, _ float64, _ map[string][]string) bool {
			return *f.MaxLength <= 0 || utf8.RuneCountInString(v) <= *f.MaxLength
		},
		public: func(f *Field, p *PublicField) { p.MaxLength = f.MaxLength },
		attrs:  func(f *Field) [][2]string { return [][2]string{{"maxlength", strconv.Itoa(*f.MaxLength)}} },
	},
	{
		key: "pattern", message: "{label} has the wrong format",
		parse: func(f *Field, n *yaml.Node) []string {
			var s string
			if p := decodeSetting(n, &s); p != nil || s == "" {
				return p
			}
			re, err := regexp.Compile("^(?:" + s + ")$")
			if err != nil {
				return []string{fmt.Sprintf("pattern: %v", err)}
			}
			f.Pattern = re
			return nil
		},
		declared: func(f *Field) bool { return f.Pattern != nil },
		ok:       func(f *Field, v string, _ float64, _ map[string][]string) bool { return f.Pattern.MatchString(v) },
		public:   func(f *Field, p *PublicField) { p.Pattern = f.Pattern.String() },
	},
	{
		key: "options", message: "{label} must be one of the listed choices",
		parse: parseOptions,
		check: func(f *Field) []string {
			if f.Type == "select" && len(f.Options) == 0 {
				return []string{"a select field needs options"}
			}
			return nil
		},
		declared: func(f *Field) bool { return len(f.Options) > 0 },
		ok: func(f *Field, v string, _ float64, _ map[string][]string) bool {
			return slices.ContainsFunc(f.Options, func(o Option) bool { return o.Value == v })
		},
		public: func(f *Field, p *PublicField) { p.Options = f.Options },
	},
	{
		key: "min", message: "{label} must be at least {min}", numeric: true,
		parse:    setting(func(f *Field) any { return &f.Min }),
		declared: func(f *Field) bool { return f.Min != nil },
		param:    func(f *Field) string { return fmtNum(*f.Min) },
		ok:       func(f *Field, _ string, n float64, _ map[string][]string) bool { return n >= *f.Min },
		public:   func(f *Field, p *PublicField) { p.Min = f.Min },
		attrs:    func(f *Field) [][2]string { return [][2]string{{"min", fmt.Sprint(*f.Min)}} },
	},
	{
		key: "max", message: "{label} must be at most {max}", numeric: true,
		parse: setting(func(f *Field) any { return &f.Max }),
		check: func(f *Field) []string {
			var p []string
			if f.Min != nil && f.Max != nil && *f.Min > *f.Max {
				p = append(p, "min is over max")
			}
			if (f.Min != nil || f.Max != nil) && f.Type != "number" && f.Type != "integer" {
				p = append(p, "min and max apply to number and integer fields")
			}
			return p
		},
		declared: func(f *Field) bool { return f.Max != nil },
		param:    func(f *Field) string { return fmtNum(*f.Max) },
		ok:       func(f *Field, _ string, n float64, _ map[string][]string) bool { return n <= *f.Max },
		public:   func(f *Field, p *PublicField) { p.Max = f.Max },
		attrs:    func(f *Field) [][2]string { return [][2]string{{"max", fmt.Sprint(*f.Max)}} },
	},
	{
		// not_in: a value equal to a listed one, whatever its case, is
		// refused; for an email field so is an address whose domain (after
		// the last @) is listed.
		key: "not_in", message: "{label} is not accepted here: please use another",
		parse: func(f *Field, n *yaml.Node) []string {
			if p := decodeSetting(n, &f.NotIn); p != nil {
				return p
			}
			for i, v := range f.NotIn {
				if f.NotIn[i] = strings.TrimSpace(v); f.NotIn[i] == "" {
					return []string{"not_in: want a list of values that are not blank"}
				}
			}
			return nil
		},
		check: func(f *Field) []string {
			if f.NotIn != nil && (f.Type == "boolean" || f.Type == "number" || f.Type == "integer") {
				return []string{"not_in applies to fields of text, not " + f.Type}
			}
			return nil
		},
		declared: func(f *Field) bool { return len(f.NotIn) > 0 },
		ok: func(f *Field, v string, _ float64, _ map[string][]string) bool {
			at := strings.LastIndex(v, "@")
			return !slices.ContainsFunc(f.NotIn, func(x string) bool {
				return strings.EqualFold(v, x) || (f.Type == "email" && at >= 0 && strings.EqualFold(v[at+1:], x))
			})
		},
		public: func(f *Field, p *PublicField) {
			alt := make([]string, len(f.NotIn))
			for i, x := range f.NotIn {
				alt[i] = regexp.QuoteMeta(x)
			}
			re := "^(?:" + strings.Join(alt, "|") + ")$"
			if f.Type == "email" {
				re += "|@(?:" + strings.Join(alt, "|") + ")$"
			}
			p.Checks = append(p.Checks, PublicCheck{Rule: "not_in", Setting: f.NotIn, Refuse: re, IgnoreCase: true})
		},
	},
	{
		// equals_field: the value must be the same as the named field's,
		// both trimmed as this field's type trims.
		key: "equals_field", message: "{label} must be the same as {equals_field}",
		parse: setting(func(f *Field) any { return &f.EqualsField }),
		checkAction: func(a *Action, f *Field) []string {
			if f.EqualsField != "" && (f.EqualsField == f.Name || a.Field(f.EqualsField) == nil) {
				return []string{fmt.Sprintf("equals_field %q: want the name of another field of the action", f.EqualsField)}
			}
			return nil
		},
		declared: func(f *Field) bool { return f.EqualsField != "" },
		param:    func(f *Field) string { return humanize(f.EqualsField) },
		ok: func(f *Field, v string, _ float64, form map[string][]string) bool {
			other := ""
			if o := form[f.EqualsField]; len(o) > 0 {
				other = f.trim(o[0])
			}
			return v == other
		},
		public: func(f *Field, p *PublicField) {
			p.Checks = append(p.Checks, PublicCheck{Rule: "equals_field", Setting: f.EqualsField, SameAs: f.EqualsField})
		},
	},
}

// PublicCheck is a rule of the public declaration without a key of its
// own: its name (the key of its message), its setting as declared, and
// the hint a browser checks a value by, one of two: Refuse, a JavaScript
// RegExp source (u flag, and i with IgnoreCase) the value must not match,
// or SameAs, the field whose value this one must repeat. client.js knows
// only these hints, not the rules, so a rule that fits them needs no
// change there.
type PublicCheck struct {
	Rule       string `json:"rule"`
	Setting    any    `json:"setting"`
	Refuse     string `json:"refuse,omitempty"`
	IgnoreCase bool   `json:"ignoreCase,omitempty"`
	SameAs     string `json:"sameAs,omitempty"`
}

// messageRules are the rules whose messages a field may replace.
var messageRules = func() []string {
	var keys []string
	for _, r := range fieldRules {
		keys = append(keys, r.key)
	}
	return append(keys, "format")
}()

// ruleKey says whether key is the YAML key of a field rule.
func ruleKey(key string) *fieldRule {
	for i := range fieldRules {
		if fieldRules[i].key == key {
			return &fieldRules[i]
		}
	}
	return nil
}

// setting is the parse of a rule whose setting decodes into one Go value.
func setting(to func(f *Field) any) func(*Field, *yaml.Node) []string {
	return func(f *Field, n *yaml.Node) []string { return decodeSetting(n, to(f)) }
}

// decodeSetting decodes a rule's setting, its problem said as the
// decoder says it.
func decodeSetting(n *yaml.Node, v any) []string {
	if err := n.Decode(v); err != nil {
		return []string{strings.TrimSpace(strings.TrimPrefix(strings.ReplaceAll(err.Error(), "\n ", ""), "yaml: unmarshal errors:"))}
	}
	return nil
}

// parseOptions reads a select field's choices: [a, b] or [{value: a,
// label: "A"}].
func parseOptions(f *Field, n *yaml.Node) []string {
	var raw []any
	if p := decodeSetting(n, &raw); p != nil {
		return p
	}
	for _, o := range raw {
		switch v := o.(type) {
		case map[string]any:
			val := fmt.Sprint(v["value"])
			lbl, _ := v["label"].(string)
			if lbl == "" {
				lbl = val
			}
			f.Options = append(f.Options, Option{Value: val, Label: lbl})
		default:
			f.Options = append(f.Options, Option{Value: fmt.Sprint(v), Label: fmt.Sprint(v)})
		}
	}
	return nil
}

// ruleMessage is the field's message for a rule, as Validate says it.
func (f *Field) ruleMessage(r *fieldRule) string {
	var params map[string]string
	if r.param != nil {
		params = map[string]string{r.key: r.param(f)}
	}
	return f.msg(r.key, r.message, params)
}

// checkRules checks one value against the field's rules, text rules
// (numeric false) or numeric ones; n is the parsed number.
func (f *Field) checkRules(numeric bool, v string, n float64, form map[string][]string) []string {
	var problems []string
	for i := range fieldRules {
		r := &fieldRules[i]
		if r.ok != nil && r.numeric == numeric && r.declared(f) && !r.ok(f, v, n, form) {
			problems = append(problems, f.ruleMessage(r))
		}
	}
	return problems
}

// InputAttrs are the hosted form's attributes of the field's rules, like
// ` minlength="2" maxlength="100"`, escaped for HTML.
func (f *Field) InputAttrs() string {
	var b strings.Builder
	for _, r := range fieldRules {
		if r.attrs == nil || !r.declared(f) {
			continue
		}
		for _, kv := range r.attrs(f) {
			fmt.Fprintf(&b, ` %s="%s"`, kv[0], html.EscapeString(kv[1]))
		}
	}
	return b.String()
}
