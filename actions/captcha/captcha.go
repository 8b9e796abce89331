// Package captcha checks the answers of captcha widgets with their
// provider's siteverify endpoint, once each.
package captcha

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
)

// ErrorKey is the form-level key of captcha errors in errors.
const ErrorKey = "_captcha"

// Captcha failures: the answer was refused (the sender's problem), the
// provider could not give one (an outage: on_error decides), or the
// provider refused the check itself with a 4xx (never let through).
var (
	ErrFailed          = errors.New("captcha: answer refused")
	ErrUnreachable     = errors.New("captcha: provider unreachable")
	ErrProviderRefused = errors.New("captcha: provider refused the check")
)

// Verifier checks captcha answers with each action's provider
// (siteverify: a form-encoded POST of secret, response and remoteip,
// answered with JSON {"success": bool, "error-codes": [...]}).
type Verifier struct {
	client  *http.Client
	replays ReplayGuard
	secrets map[string]string // by action name
	sealer  actions.Sealer
	uses    UseCounter
}

// AnswerTTL is how long a provider's answer is valid (Turnstile,
// hCaptcha and reCAPTCHA all say 300 s): an accepted answer is kept in
// the replay cache that long.
const AnswerTTL = 300 * time.Second

// ReplayGuard claims a key once: the first claim within ttl answers true,
// every later one false.
type ReplayGuard interface {
	Claim(ctx context.Context, key string, ttl time.Duration) (bool, error)
}

// claimAnswer records an accepted answer; one seen before is refused
// like a duplicate the provider reported.
func (v *Verifier) claimAnswer(ctx context.Context, c *actions.Captcha, response string) error {
	if v.replays == nil {
		return nil
	}
	sum := sha256.Sum256([]byte(string(c.Provider) + "\x00" + response))
	ok, err := v.replays.Claim(ctx, submission.CaptchaKey(hex.EncodeToString(sum[:])), AnswerTTL)
	switch {
	case err != nil:
		return fmt.Errorf("%w: %v", ErrUnreachable, err)
	case !ok:
		return &Refusal{Message: "The challenge expired or was already used; complete it again.", Codes: "replayed (formq)"}
	}
	return nil
}

// Config builds a Verifier.
type Config struct {
	// Client calls the providers; a client with a 10s timeout when nil.
	Client *http.Client
	// Getenv reads the secret of every action with a captcha (its
	// secret_env).
	Getenv func(string) string
	// Sealer seals upload grants and Uses counts their uses; without
	// both, AdmitUpload refuses every pre-upload request of a captcha
	// action.
	Sealer actions.Sealer
	Uses   UseCounter
}

// New reads the secret of every action with a captcha from cfg.Getenv;
// an action whose secret_env is empty stops the API at start. replays,
// when not nil, refuses an answer accepted once already, even if the
// provider would accept it again.
func New(cfg Config, reg *actions.Registry, replays ReplayGuard) (*Verifier, error) {
	v := &Verifier{client: cfg.Client, replays: replays, secrets: map[string]string{}, sealer: cfg.Sealer, uses: cfg.Uses}
	getenv := cfg.Getenv
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
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
var serverCodes = []string{"missing-input-secret", "invalid-input-secret", "sitekey-secret-mismatch", "internal-error", "invalid-keys"}

// Verify checks one answer of a's captcha for the client at remoteIP. It
// returns nil, an error matching ErrFailed with a message for the
// sender, or one matching ErrUnreachable.
func (v *Verifier) Verify(ctx context.Context, a *actions.Action, response, remoteIP string) error {
	c := a.Captcha
	response = strings.TrimSpace(response)
	if response == "" {
		return &Refusal{Message: "Complete the challenge to show you are not a robot.", Codes: "missing-input-response"}
	}
	if strings.HasPrefix(response, GrantPrefix) {
		// The answer was spent on the post's uploads; its grant buys
		// the post, once.
		return v.useGrant(ctx, a, response, "post", 1)
	}
	if len(response) > 4096 {
		return &Refusal{Message: "The challenge answer is not valid; complete it again.", Codes: "invalid-input-response"}
	}
	form := url.Values{"secret": {v.secrets[a.Name]}, "response": {response}}
	if remoteIP != "" {
		form.Set("remoteip", remoteIP)
	}
	c.Kind().VerifyForm(form, c.SiteKey)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.Endpoint(), strings.NewReader(form.Encode()))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnreachable, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	client := v.client
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrUnreachable, c.Provider, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusRequestTimeout:
		// The provider is there and refused the check itself (a wrong
		// URL or secret, or a request it will not take): that is no
		// outage, so on_error: allow does not let the post through.
		return fmt.Errorf("%w: %s answered %d", ErrProviderRefused, c.Provider, resp.StatusCode)
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("%w: %s answered %d", ErrUnreachable, c.Provider, resp.StatusCode)
	}
	var ans siteverifyAnswer
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&ans); err != nil {
		return fmt.Errorf("%w: %s answered no JSON: %v", ErrUnreachable, c.Provider, err)
	}
	if ans.Success {
		return v.claimAnswer(ctx, c, response)
	}
	for _, code := range ans.ErrorCodes {
		if slices.Contains(serverCodes, code) {
			return fmt.Errorf("%w: %s: %s", ErrUnreachable, c.Provider, strings.Join(ans.ErrorCodes, ", "))
		}
	}
	e := &Refusal{Message: "The challenge was not passed; try again.", Codes: strings.Join(ans.ErrorCodes, ", ")}
	for _, code := range ans.ErrorCodes {
		switch code {
		case "timeout-or-duplicate", "already-seen-response", "expired-input-response":
			e.Message = "The challenge expired or was already used; complete it again."
		case "missing-input-response":
			e.Message = "Complete the challenge to show you are not a robot."
		}
	}
	return e
}

// Refusal is a refused answer: the message for the sender and the
// provider's codes for the log. It matches ErrFailed.
type Refusal struct{ Message, Codes string }

func (e *Refusal) Error() string { return "captcha refused: " + e.Codes }

// Is makes errors.Is(err, ErrFailed) match every refusal.
func (e *Refusal) Is(target error) bool { return target == ErrFailed }
