package handler

// Captcha verification and the time-to-submit check: both act on a
// reserved field as soon as it is read, so a bot's post stops before its
// files are stored.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/formq/formq/actions"
	"github.com/formq/formq/submission"
	"github.com/redis/go-redis/v9"
)

// FieldRendered carries the sealed time a hosted form was rendered, for
// actions with min_fill_time.
const FieldRendered = "_rendered"

// CaptchaErrorKey is the form-level key of captcha errors in errors.
const CaptchaErrorKey = "_captcha"

// renderedTTL is how long a render stamp proves anything; an older
// stamp is authentic but old, so it counts as slow enough.
const renderedTTL = 24 * time.Hour

// Captcha failures: the answer was refused (the sender's problem), or
// the provider could not give one (ours, or the provider's).
var (
	ErrCaptchaFailed      = errors.New("captcha: answer refused")
	ErrCaptchaUnreachable = errors.New("captcha: provider unreachable")
)

// CaptchaVerifier checks captcha answers with each action's provider
// (siteverify: a form-encoded POST of secret, response and remoteip,
// answered with JSON {"success": bool, "error-codes": [...]}).
type CaptchaVerifier struct {
	// Client calls the providers; a client with a 10s timeout when nil.
	Client *http.Client
	// Replays, when set, refuses an answer accepted once already, even
	// if the provider would accept it again.
	Replays ReplayGuard
	secrets map[string]string // by action name
}

// CaptchaAnswerTTL is how long a provider's answer is valid (Turnstile,
// hCaptcha and reCAPTCHA all say 300 s): an accepted answer is kept in
// the replay cache that long.
const CaptchaAnswerTTL = 300 * time.Second

// ReplayGuard claims a key once: the first claim within ttl answers true,
// every later one false.
type ReplayGuard interface {
	Claim(ctx context.Context, key string, ttl time.Duration) (bool, error)
}

// RedisReplays is the ReplayGuard on Redis: SET NX with an expiry.
type RedisReplays struct{ rdb redis.UniversalClient }

// NewRedisReplays builds the replay cache on a Redis client.
func NewRedisReplays(rdb redis.UniversalClient) *RedisReplays { return &RedisReplays{rdb: rdb} }

// Claim implements ReplayGuard.
func (r *RedisReplays) Claim(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	ok, err := r.rdb.SetNX(ctx, key, 1, ttl).Result()
	if err != nil {
		return false, fmt.Errorf("captcha replay cache: %w", err)
	}
	return ok, nil
}

// claimAnswer records an accepted answer; one seen before is refused
// like a duplicate the provider reported.
func (v *CaptchaVerifier) claimAnswer(ctx context.Context, c *actions.Captcha, response string) error {
	if v.Replays == nil {
		return nil
	}
	sum := sha256.Sum256([]byte(string(c.Provider) + "\x00" + response))
	ok, err := v.Replays.Claim(ctx, submission.CaptchaKey(hex.EncodeToString(sum[:])), CaptchaAnswerTTL)
	switch {
	case err != nil:
		return fmt.Errorf("%w: %v", ErrCaptchaUnreachable, err)
	case !ok:
		return &captchaError{msg: "The challenge expired or was already used; complete it again.", code: "replayed (formq)"}
	}
	return nil
}

// NewCaptchaVerifier reads the secret of every action with a captcha
// from getenv; an action whose secret_env is empty stops the API at start.
func NewCaptchaVerifier(reg *actions.Registry, getenv func(string) string) (*CaptchaVerifier, error) {
	v := &CaptchaVerifier{secrets: map[string]string{}}
	for _, name := range reg.Names() {
		a, _ := reg.Get(name)
		if a.Captcha == nil {
			continue
		}
		secret := strings.TrimSpace(getenv(a.Captcha.SecretEnv))
		if secret == "" {
			return nil, fmt.Errorf("action %q has a %s captcha but %s is not set: set it to the provider's secret key", name, a.Captcha.Provider, a.Captcha.SecretEnv)
		}
		v.secrets[name] = secret
	}
	return v, nil
}

// siteverifyAnswer is the part of every provider's answer formq reads.
type siteverifyAnswer struct {
	Success    bool     `json:"success"`
	ErrorCodes []string `json:"error-codes"`
}

// Error codes that mean the secret or the provider is at fault, not the
// sender: they follow on_error like an unreachable provider.
var captchaServerCodes = []string{"missing-input-secret", "invalid-input-secret", "sitekey-secret-mismatch", "internal-error", "invalid-keys"}

// Verify checks one answer of a's captcha for the client at remoteIP. It
// returns nil, an error matching ErrCaptchaFailed with a message for the
// sender, or one matching ErrCaptchaUnreachable.
func (v *CaptchaVerifier) Verify(ctx context.Context, a *actions.Action, response, remoteIP string) error {
	c := a.Captcha
	response = strings.TrimSpace(response)
	if response == "" {
		return &captchaError{msg: "Complete the challenge to show you are not a robot.", code: "missing-input-response"}
	}
	if len(response) > 4096 {
		return &captchaError{msg: "The challenge answer is not valid; complete it again.", code: "invalid-input-response"}
	}
	form := url.Values{"secret": {v.secrets[a.Name]}, "response": {response}}
	if remoteIP != "" {
		form.Set("remoteip", remoteIP)
	}
	if c.Provider == actions.CaptchaHCaptcha {
		// hCaptcha checks the answer was made for this site key.
		form.Set("sitekey", c.SiteKey)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.Endpoint(), strings.NewReader(form.Encode()))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrCaptchaUnreachable, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	client := v.Client
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrCaptchaUnreachable, c.Provider, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%w: %s answered %d", ErrCaptchaUnreachable, c.Provider, resp.StatusCode)
	}
	var ans siteverifyAnswer
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&ans); err != nil {
		return fmt.Errorf("%w: %s answered no JSON: %v", ErrCaptchaUnreachable, c.Provider, err)
	}
	if ans.Success {
		return v.claimAnswer(ctx, c, response)
	}
	for _, code := range ans.ErrorCodes {
		if slices.Contains(captchaServerCodes, code) {
			return fmt.Errorf("%w: %s: %s", ErrCaptchaUnreachable, c.Provider, strings.Join(ans.ErrorCodes, ", "))
		}
	}
	e := &captchaError{msg: "The challenge was not passed; try again.", code: strings.Join(ans.ErrorCodes, ", ")}
	for _, code := range ans.ErrorCodes {
		switch code {
		case "timeout-or-duplicate", "already-seen-response", "expired-input-response":
			e.msg = "The challenge expired or was already used; complete it again."
		case "missing-input-response":
			e.msg = "Complete the challenge to show you are not a robot."
		}
	}
	return e
}

// captchaError is a refused answer: the message for the sender and the
// provider's codes for the log.
type captchaError struct{ msg, code string }

func (e *captchaError) Error() string        { return "captcha refused: " + e.code }
func (e *captchaError) Is(target error) bool { return target == ErrCaptchaFailed }

// captcha verifies the captcha answer of the submission once: a refused
// answer is a validation failure under errors._captcha; an unreachable
// provider is 503 unless the action says on_error: allow.
func (s *intake) captcha(ctx context.Context, response string) error {
	if s.captchaDone {
		return nil
	}
	s.captchaDone = true
	a := s.a
	if s.spam {
		// A bot's post already looks accepted; asking the provider adds nothing.
		return nil
	}
	if s.h.Captchas == nil {
		return ErrInternal.With(fmt.Errorf("action %s has a captcha but the handler has no CaptchaVerifier", a.Name))
	}
	err := s.h.Captchas.Verify(ctx, a, response, s.sub.ClientIP)
	var ce *captchaError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ce):
		s.h.Metrics.ObserveRejection(a.Name, RejectCaptcha)
		s.h.Log.InfoContext(ctx, "captcha refused", "action", a.Name, "codes", ce.code)
		return ErrValidation.withForm(a, actions.FieldErrors{CaptchaErrorKey: {ce.msg}}, echoValues(a, s.form.values))
	case a.Captcha.AllowOnError:
		s.h.Log.WarnContext(ctx, "captcha provider unreachable; accepting without a check (on_error: allow)", "action", a.Name, "err", err)
		return nil
	default:
		return ErrUnavailable.With(err, "The spam check is briefly unavailable; nothing was saved. Try again shortly.")
	}
}

// renderStamp is what a hosted form of an action with min_fill_time
// carries in _rendered: its render time, sealed.
func (h *Handler) renderStamp(a *actions.Action) string {
	if a.MinFillTime <= 0 || h.Sealer == nil {
		return ""
	}
	tok, err := h.sealRendered(a)
	if err != nil {
		h.Log.Error("could not seal a render time", "action", a.Name, "err", err)
		return ""
	}
	return tok
}

// sealRendered seals the present time as a render stamp of a.
func (h *Handler) sealRendered(a *actions.Action) (string, error) {
	return h.Sealer.Seal(renderedPurpose(a.Name), h.now().UnixMilli(), renderedTTL)
}

func renderedPurpose(action string) string { return "rendered:" + action }

// rendered checks a _rendered stamp: missing, forged or too recent means
// the post is treated like a filled honeypot.
func (s *intake) rendered(value string) {
	if s.renderedSeen || s.a.MinFillTime <= 0 {
		return
	}
	s.renderedSeen = true
	var at int64
	err := s.h.Sealer.Open(renderedPurpose(s.a.Name), strings.TrimSpace(value), &at)
	switch {
	case errors.Is(err, actions.ErrTokenExpired):
		// Authentic, and older than any fill time.
	case err != nil, s.h.now().Sub(time.UnixMilli(at)) < s.a.MinFillTime:
		s.tooFast()
	}
}

// tooFast marks the post as a bot's: it looks accepted, nothing is kept.
func (s *intake) tooFast() {
	if !s.spam {
		s.spam, s.spamReason = true, RejectTooFast
	}
}

// captchaField is the response field of the action's captcha, or "".
func captchaField(a *actions.Action) string {
	if a.Captcha == nil {
		return ""
	}
	return a.Captcha.ResponseField()
}

// captchaWidget is what a hosted form loads for a provider's widget: the
// script, the class of the element it fills, and the origins its
// documented Content-Security-Policy needs.
type captchaWidget struct {
	Script, Class string
	Sources       []string
}

var captchaWidgets = map[string]captchaWidget{
	actions.CaptchaTurnstile: {Script: "https://challenges.cloudflare.com/turnstile/v0/api.js", Class: "cf-turnstile",
		Sources: []string{"https://challenges.cloudflare.com"}},
	actions.CaptchaHCaptcha: {Script: "https://js.hcaptcha.com/1/api.js", Class: "h-captcha",
		Sources: []string{"https://hcaptcha.com", "https://*.hcaptcha.com"}},
	actions.CaptchaReCaptcha: {Script: "https://www.google.com/recaptcha/api.js", Class: "g-recaptcha",
		Sources: []string{"https://www.google.com/recaptcha/", "https://www.gstatic.com/recaptcha/", "https://recaptcha.google.com/recaptcha/"}},
}

// widgetOf is the widget of an action's captcha, for templates.
func widgetOf(c *actions.Captcha) captchaWidget { return captchaWidgets[c.Provider] }
