// Package pages serves formq's hosted pages for browsers, with or
// without JavaScript: each action's form (fresh, or again with its
// errors), the success page, error pages, client.js, and the public
// schema and render stamp client.js reads.
package pages

import (
	"bytes"
	"context"
	"crypto/rand"
	"embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/formq/formq/actions"
	"github.com/formq/formq/actions/web"
	"github.com/formq/formq/submission"
	"github.com/labstack/echo/v4"
)

//go:embed templates/*.html
var templateFS embed.FS

// StatusViewer is the status of a submission as the request may see it;
// *status.Handler is the implementation.
type StatusViewer interface {
	View(c echo.Context, id string) (*submission.Status, error)
}

// RecordReader reads stored submission records: the done page of a
// submission the app refused shows its values again. *uploads.Objects is
// the implementation.
type RecordReader interface {
	Get(ctx context.Context, key string) ([]byte, error)
}

// Config is what the pages take from the actions file.
type Config struct {
	// Theme is the deployment's theme (the actions file's top-level
	// theme:); each action's own keys apply over it.
	Theme *actions.Theme
	// Now is the clock of render stamps; time.Now when nil.
	Now func() time.Time
}

// Deps are the parts the pages call.
type Deps struct {
	Actions *actions.Registry
	// Site makes links and form actions; root-relative when nil.
	Site *web.Site
	// Sealer seals render stamps; nil leaves them out.
	Sealer actions.Sealer
	// Gate tells the schema's reader whether its origin may post.
	Gate *web.Gate
	// Status shows a submission's status on the done page; nil answers
	// 404 there.
	Status StatusViewer
	// Records reads the values of a refused submission for its done page;
	// nil shows the form without them.
	Records RecordReader
	Log     *slog.Logger
}

// Pages renders formq's HTML: hosted forms (fresh or re-rendered with
// errors), success pages and error pages, for browsers without JavaScript.
type Pages struct {
	cfg     Config
	actions *actions.Registry
	site    *web.Site
	sealer  actions.Sealer
	gate    *web.Gate
	status  StatusViewer
	records RecordReader
	log     *slog.Logger
	base    *template.Template
	custom  map[string]*template.Template // per-action form templates
}

var _ web.ErrorPage = (*Pages)(nil)

// New parses the built-in templates and each action's own form template
// (its template: file).
func New(cfg Config, d Deps) (*Pages, error) {
	if d.Actions == nil {
		d.Actions = actions.NewRegistry()
	}
	if d.Site == nil {
		d.Site = web.NewSite(web.SiteConfig{})
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Gate == nil {
		d.Gate = web.NewGate(web.GateConfig{}, nil, nil, nil, d.Log)
	}
	funcs := template.FuncMap{
		"join":  strings.Join,
		"add1":  func(i int) int { return i + 1 },
		"size":  actions.FormatSize,
		"human": actions.HumanSize,
		"inputType": func(f *actions.Field) string {
			switch f.Type {
			case "email", "url", "number", "date", "password", "hidden":
				return f.Type
			case "integer":
				return "number"
			}
			return "text"
		},
		"autocomplete":  autocomplete,
		"ruleAttrs":     func(f *actions.Field) template.HTMLAttr { return template.HTMLAttr(f.InputAttrs()) },
		"captchaWidget": func(c *actions.Captcha) actions.CaptchaWidget { return c.Kind().Widget() },
		"altchaScript":  func() string { return d.Site.URL(actions.AltchaScriptPath) },
		"fieldCtx": func(d *FormData, f *actions.Field, errs []string) map[string]any {
			return map[string]any{"Form": d, "Field": f, "Errors": errs}
		},
	}
	t, err := template.New("formq").Funcs(funcs).ParseFS(templateFS, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("parse templates: %w", err)
	}
	p := &Pages{cfg: cfg, actions: d.Actions, site: d.Site, sealer: d.Sealer, gate: d.Gate, status: d.Status, records: d.Records, log: d.Log,
		base: t, custom: map[string]*template.Template{}}
	for _, name := range d.Actions.Names() {
		a, _ := d.Actions.Get(name)
		if a.Template == "" {
			continue
		}
		text, err := os.ReadFile(a.Template)
		if err != nil {
			return nil, fmt.Errorf("action %q: %w", a.Name, err)
		}
		if err := p.setFormTemplate(a.Name, string(text)); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// theme is the theme of an action's pages.
func (p *Pages) theme(a *actions.Action) *actions.Theme {
	return p.cfg.Theme.Merge(a.Theme)
}

// script is client.js's URL for formq's own pages.
func (p *Pages) script() string { return ScriptURL(p.site.URL("")) }

// setFormTemplate replaces the hosted form of one action with a template
// that defines "form" and receives *FormData.
func (p *Pages) setFormTemplate(action, text string) error {
	t, err := template.Must(p.base.Clone()).Parse(text)
	if err != nil {
		return fmt.Errorf("form template of %s: %w", action, err)
	}
	p.custom[action] = t
	return nil
}

// FormData is what a form template receives.
type FormData struct {
	Action         *actions.Action
	ActionURL      string
	IdempotencyKey string
	Bound          string
	// Rendered is the sealed render time (_rendered) of an action with
	// min_fill_time; the form fills it in.
	Rendered string
	Theme    *actions.Theme
	Script   string // client.js's URL
	// Failed is what a failed submit brings back to the form; empty on a
	// fresh form. Templates read its fields as the form's own.
	Failed
}

// Failed is what a failed submit brings back to its form.
type Failed struct {
	Values  map[string][]string
	Errors  actions.FieldErrors
	Message string
	// Kept are files of the failed submit kept as staged uploads, by field.
	Kept map[string][]web.KeptFile
	// Redirect is the _redirect the form came with, carried on.
	Redirect string
	// Back is the page the sender came from, when known.
	Back string
}

// HasRequired reports whether the form shows a required field, for the
// legend that explains the asterisk.
func (d *FormData) HasRequired() bool {
	for _, f := range d.Action.Fields {
		if f.Required && f.Type != "hidden" {
			return true
		}
	}
	for _, u := range d.Action.Uploads {
		if u.Required {
			return true
		}
	}
	return false
}

// FieldError is one field's messages, for the error summary.
type FieldError struct {
	Field    string
	Messages []string
}

// ErrorList lists the errors in the order the form shows its fields, so
// the summary reads top to bottom like the form; errors of names the form
// does not show come last.
func (d *FormData) ErrorList() []FieldError {
	var out []FieldError
	seen := map[string]bool{}
	add := func(name string) {
		if msgs, ok := d.Errors[name]; ok && !seen[name] {
			seen[name] = true
			out = append(out, FieldError{Field: name, Messages: msgs})
		}
	}
	if d.Action != nil {
		for _, f := range d.Action.Fields {
			add(f.Name)
		}
		for _, u := range d.Action.Uploads {
			add(u.Name)
		}
	}
	rest := make([]string, 0, len(d.Errors))
	for name := range d.Errors {
		rest = append(rest, name)
	}
	slices.Sort(rest)
	for _, name := range rest {
		add(name)
	}
	return out
}

// W is the hosted form's word for key, in the action's lang.
func (d *FormData) W(key string) string { return word(d.Action.Lang, key) }

// HTMLLang is the page's lang attribute: the action's lang, else en.
func (d *FormData) HTMLLang() string { return htmlLang(d.Action.Lang) }

// Limits writes an upload's limits in the action's lang.
func (d *FormData) Limits(u *actions.Upload) string { return limits(d.Action.Lang, u) }

// Summary is the message over the form's errors: formq's own in the
// action's lang, or the one the failure brought (the action's messages,
// an app's refusal).
func (d *FormData) Summary() string {
	if d.Message == words["en"]["summary"] {
		return d.W("summary")
	}
	return d.Message
}

// Value is the first kept value of a field, for value attributes.
func (d *FormData) Value(name string) string {
	if v := d.Values[name]; len(v) > 0 {
		return v[0]
	}
	if f := d.Action.Field(name); f != nil && len(d.Errors) == 0 {
		return f.Default
	}
	return ""
}

// Selected reports whether a select option was chosen.
func (d *FormData) Selected(name, option string) bool {
	if v, ok := d.Values[name]; ok {
		return slices.Contains(v, option)
	}
	if f := d.Action.Field(name); f != nil {
		return f.Default == option
	}
	return false
}

// Checked reports whether a boolean field is on.
func (d *FormData) Checked(name string) bool {
	v := d.Value(name)
	b, _ := strconv.ParseBool(v)
	return b || v == "on" || v == "yes"
}

// renderForm writes a form page with the status.
func (p *Pages) renderForm(c echo.Context, status int, d *FormData) error {
	t := p.base
	if ct, ok := p.custom[d.Action.Name]; ok {
		t = ct
	}
	if d.Rendered == "" {
		d.Rendered = p.renderStamp(d.Action)
	}
	if d.Theme == nil {
		d.Theme = p.theme(d.Action)
	}
	if d.Script == "" {
		d.Script = p.script()
	}
	pol := policyFor(d.Theme, d.Redirect, d.Action.Redirect)
	if d.Action.Captcha != nil {
		// The provider's widget: its script, frame, calls and styles.
		src := d.Action.Captcha.Kind().Widget().Sources
		pol.script, pol.frame, pol.connect = src, src, src
		pol.style = append(pol.style, src...)
	}
	return render(c, t, "form", status, d, pol)
}

type pageData struct {
	Title, Message, Detail, Link, LinkText string
	Alert                                  bool
	// StatusURL and StatusText show a submission's live status; Reload
	// lists the statuses client.js shows the page again for, when the
	// submission reaches one of them after the page was shown.
	StatusURL, StatusText, Reload string
	// Refresh shows the page again every few seconds in browsers without
	// JavaScript, while the submission is not done.
	Refresh bool
	Theme   *actions.Theme
	Script  string
	// Lang is the action's lang:, for the page's own words.
	Lang string
}

// W is the page's word for key, in its lang.
func (d pageData) W(key string) string { return word(d.Lang, key) }

// HTMLLang is the page's lang attribute.
func (d pageData) HTMLLang() string { return htmlLang(d.Lang) }

// renderDone writes the default success page of an action, with the
// submission's status (kept live by client.js) and the action's message,
// filled in with the steps' data once it is completed. client.js shows the
// page again when the app refuses the submission (the page is then its
// form with the errors), and when it completes if the message needs the
// data. It links back to the page the form was posted from (back), else
// to the hosted form.
func (p *Pages) renderDone(c echo.Context, a *actions.Action, st *submission.Status, back string) error {
	msg, reload := a.Message, submission.StatusRejected
	switch {
	case st.Status == submission.StatusCompleted && st.Message != "":
		msg = st.Message
	case actions.UsesStepData(msg):
		msg, reload = "", reload+" "+submission.StatusCompleted
	}
	if msg == "" {
		msg = word(a.Lang, "thanks")
	}
	d := pageData{Title: a.Title, Message: msg, Link: p.site.URL("/forms/" + a.Name), LinkText: word(a.Lang, "another"), Lang: a.Lang,
		StatusURL: st.StatusURL, StatusText: statusText(a.Lang, st.Status), Reload: reload, Theme: p.theme(a), Script: p.script(),
		Refresh: st.Status == submission.StatusQueued || st.Status == submission.StatusProcessing}
	if st.ID != "" {
		d.Detail = word(a.Lang, "reference") + " " + st.ID
	}
	if back != "" {
		d.Link, d.LinkText = back, word(a.Lang, "back")
	}
	return render(c, p.base, "page", http.StatusOK, d, policyFor(d.Theme))
}

// Error writes the HTML answer to a failure: the re-rendered form for a
// validation failure of a known action, a small page otherwise.
func (p *Pages) Error(c echo.Context, e *web.Error) error {
	if e.Code == web.ErrValidation.Code && e.Action != nil {
		return p.renderForm(c, e.Status, &FormData{
			Action: e.Action, ActionURL: p.site.URL("/actions/" + e.Action.Name),
			IdempotencyKey: newIdempotencyKey(),
			Failed: Failed{Values: echoStrings(e.Values), Errors: e.Fields, Message: e.Message,
				Kept: e.Kept, Redirect: e.Redirect, Back: e.Back},
		})
	}
	d := pageData{Title: fmt.Sprintf("%d %s", e.Status, http.StatusText(e.Status)), Message: e.Message, Alert: true, Script: p.script()}
	if len(e.Fields) > 0 {
		var parts []string
		for f, msgs := range e.Fields {
			parts = append(parts, f+": "+strings.Join(msgs, " "))
		}
		slices.Sort(parts)
		d.Detail = strings.Join(parts, "; ")
	}
	if ref := c.Request().Referer(); ref != "" && strings.HasPrefix(ref, "/") {
		d.Link, d.LinkText = ref, "Back"
	}
	if e.Action != nil {
		d.Theme, d.Lang = p.theme(e.Action), e.Action.Lang
	} else {
		d.Theme = p.cfg.Theme
	}
	return render(c, p.base, "page", e.Status, d, policyFor(d.Theme))
}

// policy is what a page's Content-Security-Policy lets in beyond 'self':
// the theme's logo and stylesheet, the origins its form may go on to (the
// form-action directive also covers a post's redirects), a captcha's
// widget.
type policy struct {
	img, style, form, script, frame, connect []string
}

func policyFor(theme *actions.Theme, targets ...string) policy {
	var p policy
	if theme != nil {
		p.img, p.style = originsOf(theme.Logo), originsOf(theme.Stylesheet)
	}
	p.form = originsOf(targets...)
	return p
}

func (p policy) String() string {
	s := "default-src 'self'; script-src 'self'" + join(p.script) + "; connect-src 'self'" + join(p.connect) +
		"; img-src 'self' data:" + join(p.img) + "; style-src 'self' 'unsafe-inline'" + join(p.style) +
		"; form-action 'self'" + join(p.form) + "; frame-ancestors 'none'"
	if len(p.frame) > 0 {
		s += "; frame-src" + join(p.frame)
	}
	return s
}

// Plain writes a page of formq's own (the admin's inbox) with the
// strictest policy: nothing but formq's origin.
func Plain(c echo.Context, t *template.Template, name string, status int, data any) error {
	return render(c, t, name, status, data, policy{})
}

// render writes a page with its Content-Security-Policy.
func render(c echo.Context, t *template.Template, name string, status int, data any, pol policy) error {
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, name, data); err != nil {
		return fmt.Errorf("render %s: %w", name, err)
	}
	h := c.Response().Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", pol.String())
	return c.HTMLBlob(status, buf.Bytes())
}

// originsOf lists the origins of absolute http(s) URLs.
func originsOf(urls ...string) []string {
	var out []string
	for _, s := range urls {
		if !strings.HasPrefix(s, "http://") && !strings.HasPrefix(s, "https://") {
			continue
		}
		if u, err := url.Parse(s); err == nil && u.Host != "" && !slices.Contains(out, u.Scheme+"://"+u.Host) {
			out = append(out, u.Scheme+"://"+u.Host)
		}
	}
	return out
}

func join(origins []string) string {
	if len(origins) == 0 {
		return ""
	}
	return " " + strings.Join(origins, " ")
}

// echoStrings turns echoed values back into form values for templates.
func echoStrings(values map[string]any) map[string][]string {
	out := make(map[string][]string, len(values))
	for k, v := range values {
		switch t := v.(type) {
		case string:
			out[k] = []string{t}
		case []string:
			out[k] = t
		default:
			out[k] = []string{fmt.Sprint(t)}
		}
	}
	return out
}

// autocomplete guesses the autocomplete hint of a field from its
// declaration or its name.
func autocomplete(f *actions.Field) string {
	if f.Autocomplete != "" {
		return f.Autocomplete
	}
	switch f.Type {
	case "email":
		return "email"
	case "url":
		return "url"
	case "password":
		return "new-password"
	}
	switch strings.ToLower(f.Name) {
	case "name", "full_name", "fullname":
		return "name"
	case "first_name", "given_name":
		return "given-name"
	case "last_name", "family_name":
		return "family-name"
	case "phone", "tel", "telephone":
		return "tel"
	case "organization", "company":
		return "organization"
	}
	return "off"
}

// newIdempotencyKey makes the fresh key a hosted form embeds.
func newIdempotencyKey() string {
	b := make([]byte, 18)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
