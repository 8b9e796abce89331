// Package actions is formq's action model: the declarations read from the
// actions file (fields, uploads, steps, security options), validation of a
// submission against them with ozzo-validation, the response protocol for
// scripts (JSON) and for browsers without JavaScript (303 and re-rendered
// forms), and the echo handlers that tie it to uploads and the queue.
package actions

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/formq/formq/submission"
	validation "github.com/go-ozzo/ozzo-validation/v4"
)

// Action is one declared server action: what a form may post to it and
// what happens after it is accepted. Its options come grouped by concern;
// the groups are embedded, so a.MaxBody or a.Steps read as before.
type Action struct {
	Name    string
	Title   string
	Fields  []*Field  // in declaration order
	Uploads []*Upload // in declaration order
	// Check runs after the declared rules pass, for validation across
	// fields or against your own data; set it from Go when embedding.
	Check func(ctx context.Context, values map[string]any) FieldErrors
	Protection
	Delivery
	Response
}

// Protection is what an action asks of a post before taking it: its
// size, where and who it may come from, and the checks against bots and
// repeats.
type Protection struct {
	MaxBody   int64 // bytes of the whole request
	Origins   []string
	Auth      string // "", "required" or "optional"
	RateLimit *RateLimit
	Honeypot  string   // field name of the honeypot; "" when off
	Bound     []string // argument names that must come sealed in _bound
	// StrictOrigin refuses posts with neither Sec-Fetch-Site nor Origin.
	StrictOrigin bool
	// Captcha is the challenge a post must pass; nil when off.
	Captcha *Captcha
	// MinFillTime is the least time between a hosted form's render and
	// its post; a faster post is treated like a filled honeypot. 0: off.
	MinFillTime time.Duration
	// Idempotency is the window in which a repeated key returns the
	// first answer.
	Idempotency time.Duration
	// Spam scores every submission and holds or drops spam; nil keeps
	// the outright refusals of the honeypot and min_fill_time.
	Spam *SpamPolicy
}

// Delivery is what happens to an accepted submission: its queue, the
// steps the worker runs, the pages revalidated and how long it is kept.
type Delivery struct {
	Queue      string // critical, default or low
	Steps      []submission.Step
	Revalidate submission.Revalidate
	// Retention is how long stored submissions are kept before the
	// janitor erases them; 0: FORMQ_RETENTION decides.
	Retention time.Duration
	// Digest is the daily digest email of the action's submissions; nil
	// when off.
	Digest *Digest
}

// Response is what the sender sees: the success message or redirect,
// where a failed browser post goes back to, and the hosted form's look.
type Response struct {
	Redirect string // where browsers go on success; {id} and {field} expand
	Message  string // shown on success
	// ErrorRedirect is where browsers go back to when validation fails:
	// a 303 with formq_state added, instead of the hosted re-render.
	ErrorRedirect string
	// Template is the path of a custom hosted-form template, if any.
	Template string
	// Theme is the action's own theme keys; the deployment's apply under it.
	Theme *Theme
	// Wait is how long the API holds a submission's answer for its
	// steps to finish (completed with their data, or rejected); 0
	// answers at once.
	Wait time.Duration
	// Lang is the language of the hosted form and pages (lang:), one of
	// Languages with any region; empty: English.
	Lang string
	// Messages are the action's own words for formq's messages, by rule
	// or answer (messages:); its fields and uploads have them already.
	Messages map[string]string
}

// Field is one declared form value. Its rules and its hosted-form hints
// are embedded groups, so f.MinLength or f.Placeholder read as before.
type Field struct {
	Name     string
	Type     string // text, textarea, email, url, number, integer, boolean, date, select, hidden, password
	Label    string
	Multiple bool
	FieldRules
	InputHints
	Messages map[string]string // rule name to message
	// Personal marks a value that identifies a person: submissions can
	// be found and erased by it.
	Personal bool
	// Recipient marks an email field an autoresponder mails: its
	// address must be at a public domain (see publicMailDomain).
	Recipient bool
	// Rules are extra ozzo-validation rules from Go code, applied to the
	// normalised value after the declared ones.
	Rules []validation.Rule
}

// InputHints shape the hosted form's input of a field and are served in
// the public declaration for other front ends; they check nothing.
type InputHints struct {
	Placeholder  string `json:"placeholder,omitempty"`
	Help         string `json:"help,omitempty"`
	Autocomplete string `json:"autocomplete,omitempty"`
	Default      string `json:"default,omitempty"`
}

// Option is one choice of a select field.
type Option struct {
	Value string `json:"value" yaml:"value"`
	Label string `json:"label" yaml:"label"`
}

// Upload is one declared file field.
type Upload struct {
	Name     string
	Label    string
	Required bool
	MaxSize  int64    // bytes of one file
	MaxFiles int      // files in the field
	Types    []string // allowed sniffed content types; patterns like image/* allowed
	Messages map[string]string
	// Resumable lets clients send the field's files over tus at
	// /uploads/tus/ and attach the reference it answers.
	Resumable bool
}

// RateLimit allows Limit submissions per Period per client.
type RateLimit struct {
	Limit  int
	Period time.Duration
}

// Sensitive reports whether the field's value must never be echoed,
// logged or stored in the submission record.
func (f *Field) Sensitive() bool { return f.Type == "password" }

// Field returns the declared field with the name, or nil.
func (a *Action) Field(name string) *Field {
	for _, f := range a.Fields {
		if f.Name == name {
			return f
		}
	}
	return nil
}

// Upload returns the declared upload field with the name, or nil.
func (a *Action) Upload(name string) *Upload {
	for _, u := range a.Uploads {
		if u.Name == name {
			return u
		}
	}
	return nil
}

// Registry holds the declared actions by name. It is built at start and
// read-only afterwards, so handlers share it without locks.
type Registry struct {
	actions map[string]*Action
}

// NewRegistry builds a registry from declared actions.
func NewRegistry(list ...*Action) *Registry {
	r := &Registry{actions: make(map[string]*Action, len(list))}
	for _, a := range list {
		r.actions[a.Name] = a
	}
	return r
}

// Add registers an action declared in Go, for people embedding formq. It
// refuses a name already taken.
func (r *Registry) Add(a *Action) error {
	if !namePattern.MatchString(a.Name) {
		return fmt.Errorf("action name %q: want letters, digits, - or _, starting with a letter", a.Name)
	}
	if _, ok := r.actions[a.Name]; ok {
		return fmt.Errorf("action %q is already declared", a.Name)
	}
	if a.Queue == "" {
		a.Queue = submission.DefaultQueue
	}
	if a.Title == "" {
		a.Title = humanize(a.Name)
	}
	for _, f := range a.Fields {
		if f.Label == "" {
			f.Label = humanize(f.Name)
		}
		if f.Type == "" {
			f.Type = "text"
		}
	}
	for _, u := range a.Uploads {
		if u.Label == "" {
			u.Label = humanize(u.Name)
		}
		if u.MaxFiles <= 0 {
			u.MaxFiles = 1
		}
	}
	if a.MaxBody <= 0 {
		a.MaxBody = DefaultMaxBodyFor(a.Uploads)
	}
	r.actions[a.Name] = a
	return nil
}

// Get returns the action with the name.
func (r *Registry) Get(name string) (*Action, bool) {
	a, ok := r.actions[name]
	return a, ok
}

// Names lists the actions, sorted.
func (r *Registry) Names() []string {
	names := make([]string, 0, len(r.actions))
	for n := range r.actions {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// humanize turns a field name like "first_name" into "First name".
func humanize(name string) string {
	s := strings.NewReplacer("_", " ", "-", " ").Replace(name)
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// PersonalFields lists the fields declared personal, by action, for the
// submissions index.
func PersonalFields(list []*Action) map[string][]string {
	return fieldsWhere(list, func(f *Field) bool { return f.Personal })
}

// HiddenFields lists the sensitive fields (passwords) of each action, by
// action name: the inbox's cards, previews and search leave them out.
func HiddenFields(list []*Action) map[string][]string {
	return fieldsWhere(list, (*Field).Sensitive)
}

func fieldsWhere(list []*Action, pick func(*Field) bool) map[string][]string {
	out := map[string][]string{}
	for _, a := range list {
		for _, f := range a.Fields {
			if pick(f) {
				out[a.Name] = append(out[a.Name], f.Name)
			}
		}
	}
	return out
}
