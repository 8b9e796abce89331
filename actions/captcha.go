package actions

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// Captcha providers an action may declare.
const (
	CaptchaTurnstile = "turnstile"
	CaptchaHCaptcha  = "hcaptcha"
	CaptchaReCaptcha = "recaptcha"
	// CaptchaAltcha is ALTCHA's proof of work, issued and checked by
	// formq itself: no third party sees the visitor.
	CaptchaAltcha = "altcha"
)

// AltchaScriptPath is where formq serves the ALTCHA widget's loader, a
// module a page of its own can load too; the widget's files are beside it.
const AltchaScriptPath = "/altcha/formq-altcha.js"

// ALTCHA defaults: a challenge's numbers to search, about a second of a
// browser's work, and how long a challenge may be solved and sent.
const (
	DefaultAltchaMaxNumber = 50_000
	DefaultAltchaExpires   = 10 * time.Minute
)

// CaptchaProvider is everything formq knows of one captcha service: the
// field its widget fills in, its siteverify endpoint, what a hosted form
// loads for its widget. Adding a provider is adding one value to
// captchaProviders.
type CaptchaProvider interface {
	// Name is the provider's name in the actions file.
	Name() string
	// ResponseField is the form field the provider's widget fills in.
	ResponseField() string
	// VerifyURL is the provider's documented siteverify endpoint.
	VerifyURL() string
	// Widget is what a hosted form loads for the provider's widget.
	Widget() CaptchaWidget
	// VerifyForm adds what the provider wants beyond secret, response
	// and remoteip to a siteverify request.
	VerifyForm(form url.Values, siteKey string)
}

// CaptchaWidget is what a hosted form loads for a provider's widget: the
// script, the class of the element it fills, and the origins its
// documented Content-Security-Policy needs.
type CaptchaWidget struct {
	Script, Class string
	Sources       []string
}

// siteverify is a provider answering the common siteverify protocol (a
// form-encoded POST of secret, response and remoteip).
type siteverify struct {
	name, field, verifyURL string
	widget                 CaptchaWidget
	// sendSiteKey asks for the site key in the request (hCaptcha checks
	// the answer was made for it).
	sendSiteKey bool
}

func (p siteverify) Name() string          { return p.name }
func (p siteverify) ResponseField() string { return p.field }
func (p siteverify) VerifyURL() string     { return p.verifyURL }
func (p siteverify) Widget() CaptchaWidget { return p.widget }

func (p siteverify) VerifyForm(form url.Values, siteKey string) {
	if p.sendSiteKey {
		form.Set("sitekey", siteKey)
	}
}

// The providers formq knows.
var (
	Turnstile CaptchaProvider = siteverify{name: CaptchaTurnstile, field: "cf-turnstile-response",
		verifyURL: "https://challenges.cloudflare.com/turnstile/v0/siteverify",
		widget: CaptchaWidget{Script: "https://challenges.cloudflare.com/turnstile/v0/api.js", Class: "cf-turnstile",
			Sources: []string{"https://challenges.cloudflare.com"}}}
	HCaptcha CaptchaProvider = siteverify{name: CaptchaHCaptcha, field: "h-captcha-response",
		verifyURL: "https://api.hcaptcha.com/siteverify", sendSiteKey: true,
		widget: CaptchaWidget{Script: "https://js.hcaptcha.com/1/api.js", Class: "h-captcha",
			Sources: []string{"https://hcaptcha.com", "https://*.hcaptcha.com"}}}
	ReCaptcha CaptchaProvider = siteverify{name: CaptchaReCaptcha, field: "g-recaptcha-response",
		verifyURL: "https://www.google.com/recaptcha/api/siteverify",
		widget: CaptchaWidget{Script: "https://www.google.com/recaptcha/api.js", Class: "g-recaptcha",
			Sources: []string{"https://www.google.com/recaptcha/", "https://www.gstatic.com/recaptcha/", "https://recaptcha.google.com/recaptcha/"}}}
)

// Altcha is ALTCHA: formq issues its challenges and checks the widget's
// solutions itself, so it has no siteverify endpoint.
var Altcha CaptchaProvider = siteverify{name: CaptchaAltcha, field: "altcha",
	widget: CaptchaWidget{Script: AltchaScriptPath, Class: "altcha"}}

// captchaProviders is every provider by name.
var captchaProviders = map[string]CaptchaProvider{
	CaptchaTurnstile: Turnstile,
	CaptchaHCaptcha:  HCaptcha,
	CaptchaReCaptcha: ReCaptcha,
	CaptchaAltcha:    Altcha,
}

// CaptchaProviders lists the providers the actions file accepts.
var CaptchaProviders = []string{CaptchaTurnstile, CaptchaHCaptcha, CaptchaReCaptcha, CaptchaAltcha}

// CaptchaProviderOf is the provider of a name; Turnstile, the default,
// for a name formq does not know (the actions file refuses those).
func CaptchaProviderOf(name string) CaptchaProvider {
	if p, ok := captchaProviders[name]; ok {
		return p
	}
	return Turnstile
}

// Captcha is an action's challenge: the widget its hosted form shows and
// the provider's siteverify endpoint that checks the answer before
// anything of the submission is kept.
type Captcha struct {
	Provider  string // turnstile, hcaptcha, recaptcha or altcha
	SecretEnv string // environment variable holding the secret key (altcha: the HMAC key)
	SiteKey   string // the public key the widget shows
	VerifyURL string // siteverify endpoint; the provider's own when empty
	// AllowOnError accepts submissions while the provider cannot be
	// reached (on_error: allow); by default they are refused with 503.
	AllowOnError bool
	// Action is the widget's action (Turnstile's data-action, reCAPTCHA
	// v3's action); when set, an answer made for another is refused.
	Action string
	// MinScore is the lowest reCAPTCHA v3 score accepted (0 to 1); an
	// answer without a score (v2) is not held to it.
	MinScore float64
	// MaxNumber (ALTCHA) is the difficulty: the secret number of a
	// challenge is drawn below it, and a solver tries half of them on
	// average.
	MaxNumber int64
	// Expires (ALTCHA) is how long a challenge may be solved and sent.
	Expires time.Duration
}

// IsAltcha reports whether formq itself issues and checks the challenges.
func (c *Captcha) IsAltcha() bool { return c.Provider == CaptchaAltcha }

// DefaultMinScore is reCAPTCHA v3's lowest accepted score when min_score
// is not set: Google's own suggested threshold.
const DefaultMinScore = 0.5

// Kind is the captcha's provider.
func (c *Captcha) Kind() CaptchaProvider { return CaptchaProviderOf(c.Provider) }

// ResponseField is the form field the provider's widget fills in.
func (c *Captcha) ResponseField() string { return c.Kind().ResponseField() }

// DefaultVerifyURL is the provider's documented siteverify endpoint.
func (c *Captcha) DefaultVerifyURL() string { return c.Kind().VerifyURL() }

// Endpoint is where answers are verified.
func (c *Captcha) Endpoint() string {
	if c.VerifyURL != "" {
		return c.VerifyURL
	}
	return c.DefaultVerifyURL()
}

type rawCaptcha struct {
	Provider  string   `yaml:"provider"`
	SecretEnv string   `yaml:"secret_env"`
	SiteKey   string   `yaml:"site_key"`
	VerifyURL string   `yaml:"verify_url"`
	OnError   string   `yaml:"on_error"`
	Action    string   `yaml:"action"`
	MinScore  *float64 `yaml:"min_score"`
	MaxNumber *int64   `yaml:"max_number"`
	Expires   string   `yaml:"expires"`
}

// captchaAction is what Turnstile takes as an action: up to 32 letters,
// digits, _ and -.
var captchaAction = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

func parseCaptcha(rc *rawCaptcha) (*Captcha, []string) {
	var msgs []string
	c := &Captcha{Provider: rc.Provider, SecretEnv: rc.SecretEnv, SiteKey: rc.SiteKey, VerifyURL: rc.VerifyURL}
	if _, ok := captchaProviders[c.Provider]; !ok {
		msgs = append(msgs, fmt.Sprintf("captcha provider %q: want one of %s", c.Provider, strings.Join(CaptchaProviders, ", ")))
	}
	if !envPattern.MatchString(c.SecretEnv) {
		msgs = append(msgs, "captcha secret_env: want the name of the environment variable holding the secret key")
	}
	if c.Provider == CaptchaAltcha {
		msgs = append(msgs, parseAltcha(rc, c)...)
	} else if strings.TrimSpace(c.SiteKey) == "" {
		msgs = append(msgs, "captcha site_key: want the provider's site key for the widget")
	}
	if c.Provider != CaptchaAltcha && (rc.MaxNumber != nil || rc.Expires != "") {
		msgs = append(msgs, "captcha max_number and expires: only for provider altcha, whose challenges formq issues")
	}
	if c.VerifyURL != "" && !strings.HasPrefix(c.VerifyURL, "https://") && !strings.HasPrefix(c.VerifyURL, "http://") {
		msgs = append(msgs, fmt.Sprintf("captcha verify_url %q: want an http(s) URL", c.VerifyURL))
	}
	if rc.Action != "" {
		switch {
		case c.Provider == CaptchaHCaptcha:
			msgs = append(msgs, "captcha action: hCaptcha answers carry no action; leave it out")
		case !captchaAction.MatchString(rc.Action):
			msgs = append(msgs, fmt.Sprintf("captcha action %q: want up to 32 letters, digits, _ and -", rc.Action))
		}
		c.Action = rc.Action
	}
	c.MinScore = DefaultMinScore
	if rc.MinScore != nil {
		switch {
		case c.Provider != CaptchaReCaptcha:
			msgs = append(msgs, "captcha min_score: only reCAPTCHA v3 answers carry a score")
		case *rc.MinScore < 0 || *rc.MinScore > 1:
			msgs = append(msgs, fmt.Sprintf("captcha min_score %v: want a score from 0 to 1", *rc.MinScore))
		}
		c.MinScore = *rc.MinScore
	}
	switch rc.OnError {
	case "", "block":
	case "allow":
		c.AllowOnError = true
	default:
		msgs = append(msgs, fmt.Sprintf("captcha on_error %q: want block or allow", rc.OnError))
	}
	return c, msgs
}

// parseAltcha reads ALTCHA's settings: no site key or verify_url (formq
// is the server), a difficulty and a challenge lifetime.
func parseAltcha(rc *rawCaptcha, c *Captcha) []string {
	var msgs []string
	if rc.SiteKey != "" || rc.VerifyURL != "" {
		msgs = append(msgs, "captcha site_key and verify_url: not for altcha, whose challenges formq issues and checks itself")
	}
	c.MaxNumber, c.Expires = DefaultAltchaMaxNumber, DefaultAltchaExpires
	if rc.MaxNumber != nil {
		if *rc.MaxNumber < 1000 || *rc.MaxNumber > 100_000_000 {
			msgs = append(msgs, fmt.Sprintf("captcha max_number %d: want 1000 to 100000000", *rc.MaxNumber))
		}
		c.MaxNumber = *rc.MaxNumber
	}
	if rc.Expires != "" {
		d, err := time.ParseDuration(rc.Expires)
		if err != nil || d < time.Second || d > 24*time.Hour {
			msgs = append(msgs, fmt.Sprintf("captcha expires %q: want a duration like 10m, from 1s to 24h", rc.Expires))
		}
		c.Expires = d
	}
	return msgs
}

// parseMinFillTime reads min_fill_time, like 3s.
func parseMinFillTime(s string) (time.Duration, string) {
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 || d > time.Hour {
		return 0, fmt.Sprintf("min_fill_time %q: want a duration like 3s, at most 1h", s)
	}
	return d, ""
}

var envPattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
