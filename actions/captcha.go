package actions

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Captcha providers an action may declare.
const (
	CaptchaTurnstile = "turnstile"
	CaptchaHCaptcha  = "hcaptcha"
	CaptchaReCaptcha = "recaptcha"
)

// CaptchaProviders lists the providers the actions file accepts.
var CaptchaProviders = []string{CaptchaTurnstile, CaptchaHCaptcha, CaptchaReCaptcha}

// Captcha is an action's challenge: the widget its hosted form shows and
// the provider's siteverify endpoint that checks the answer before
// anything of the submission is kept.
type Captcha struct {
	Provider  string // turnstile, hcaptcha or recaptcha
	SecretEnv string // environment variable holding the secret key
	SiteKey   string // the public key the widget shows
	VerifyURL string // siteverify endpoint; the provider's own when empty
	// AllowOnError accepts submissions while the provider cannot be
	// reached (on_error: allow); by default they are refused with 503.
	AllowOnError bool
}

// ResponseField is the form field the provider's widget fills in.
func (c *Captcha) ResponseField() string {
	switch c.Provider {
	case CaptchaHCaptcha:
		return "h-captcha-response"
	case CaptchaReCaptcha:
		return "g-recaptcha-response"
	}
	return "cf-turnstile-response"
}

// DefaultVerifyURL is the provider's documented siteverify endpoint.
func (c *Captcha) DefaultVerifyURL() string {
	switch c.Provider {
	case CaptchaHCaptcha:
		return "https://api.hcaptcha.com/siteverify"
	case CaptchaReCaptcha:
		return "https://www.google.com/recaptcha/api/siteverify"
	}
	return "https://challenges.cloudflare.com/turnstile/v0/siteverify"
}

// Endpoint is where answers are verified.
func (c *Captcha) Endpoint() string {
	if c.VerifyURL != "" {
		return c.VerifyURL
	}
	return c.DefaultVerifyURL()
}

type rawCaptcha struct {
	Provider  string `yaml:"provider"`
	SecretEnv string `yaml:"secret_env"`
	SiteKey   string `yaml:"site_key"`
	VerifyURL string `yaml:"verify_url"`
	OnError   string `yaml:"on_error"`
}

func parseCaptcha(rc *rawCaptcha) (*Captcha, []string) {
	var msgs []string
	c := &Captcha{Provider: rc.Provider, SecretEnv: rc.SecretEnv, SiteKey: rc.SiteKey, VerifyURL: rc.VerifyURL}
	if !slices.Contains(CaptchaProviders, c.Provider) {
		msgs = append(msgs, fmt.Sprintf("captcha provider %q: want one of %s", c.Provider, strings.Join(CaptchaProviders, ", ")))
	}
	if !envPattern.MatchString(c.SecretEnv) {
		msgs = append(msgs, "captcha secret_env: want the name of the environment variable holding the secret key")
	}
	if strings.TrimSpace(c.SiteKey) == "" {
		msgs = append(msgs, "captcha site_key: want the provider's site key for the widget")
	}
	if c.VerifyURL != "" && !strings.HasPrefix(c.VerifyURL, "https://") && !strings.HasPrefix(c.VerifyURL, "http://") {
		msgs = append(msgs, fmt.Sprintf("captcha verify_url %q: want an http(s) URL", c.VerifyURL))
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

// parseMinFillTime reads min_fill_time, like 3s.
func parseMinFillTime(s string) (time.Duration, string) {
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 || d > time.Hour {
		return 0, fmt.Sprintf("min_fill_time %q: want a duration like 3s, at most 1h", s)
	}
	return d, ""
}

var envPattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
