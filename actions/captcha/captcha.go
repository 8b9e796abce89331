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
	// hosts are the hostnames an action's answers may be solved on, by
	// action name: its origins' and the deployment's. None: unchecked.
	hosts map[string][]string
	// actions are the actions whose ALTCHA challenges Challenge issues.
	actions *actions.Registry
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
	return v.claim(ctx, c, response, AnswerTTL)
}

// claim records an answer as spent for ttl, under a digest of it.
func (v *Verifier) claim(ctx context.Context, c *actions.Captcha, response string, ttl time.Duration) error {
	if v.replays == nil {
		return nil
	}
	sum := sha256.Sum256([]byte(string(c.Provider) + "\x00" + response))
	ok, err := v.replays.Claim(ctx, submission.CaptchaKey(hex.EncodeToString(sum[:])), ttl)
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
	// Origins are the deployment's allowed origins (the public URL's
	// among them): with an action's own origins, the pages whose
	// hostnames its answers may name.
	Origins []string
}

// New reads the secret of every action with a captcha from cfg.Getenv;
// an action whose secret_env is empty stops the API at start. replays,
// when not nil, refuses an answer accepted once already, even if the
// provider would accept it again.
func New(cfg Config, reg *actions.Registry, replays ReplayGuard) (*Verifier, error) {
	v := &Verifier{client: cfg.Client, replays: replays, secrets: map[string]string{}, sealer: cfg.Sealer, uses: cfg.Uses, hosts: map[string][]string{}, actions: reg}
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
		if a.Captcha.IsAltcha() && len(secret) < 32 {
			return nil, fmt.Errorf("action %q has an altcha captcha but %s is shorter than 32 characters: set it to a long random string, the key formq signs its challenges with", name, a.Captcha.SecretEnv)
		}
		v.secrets[name] = secret
		v.hosts[name] = hostnames(append(slices.Clone(cfg.Origins), a.Origins...))
	}
	return v, nil
}

// siteverifyAnswer is the part of every provider's answer formq reads.
type siteverifyAnswer struct {
	Success    bool     `json:"success"`
	ErrorCodes []string `json:"error-codes"`
	// Hostname is the site the widget was solved on (all three).
	Hostname string `json:"hostname"`
	// Action is the widget's action (Turnstile, reCAPTCHA v3).
	Action string `json:"action"`
	// Score is reCAPTCHA v3's: 1.0 very likely a person, 0.0 a bot.
	Score *float64 `json:"score"`
}

// hostnames are the hosts of origins, lower-cased, without ports.
func hostnames(origins []string) []string {
	var out []string
	for _, o := range origins {
		if u, err := url.Parse(strings.TrimSpace(o)); err == nil && u.Hostname() != "" {
			h := strings.ToLower(u.Hostname())
			if !slices.Contains(out, h) {
				out = append(out, h)
			}
		}
	}
	return out
}

// check holds a passed answer to the action's hostnames, its action and
// reCAPTCHA v3's minimum score: a token solved on another site, made for
// another form, or scored as a bot is refused like a failed one.
func (v *Verifier) check(a *actions.Action, ans siteverifyAnswer) error {
	c := a.Captcha
	if hosts := v.hosts[a.Name]; len(hosts) > 0 && !slices.Contains(hosts, strings.ToLower(ans.Hostname)) {
		return &Refusal{Message: "The challenge was solved on another site; complete it again here.", Codes: "hostname-mismatch (formq): " + ans.Hostname}
	}
	if c.Action != "" && ans.Action != c.Action {
		return &Refusal{Message: "The challenge was made for another form; complete it again.", Codes: "action-mismatch (formq): " + ans.Action}
	}
	if c.Provider == actions.CaptchaReCaptcha && ans.Score != nil && *ans.Score < c.MinScore {
		return &Refusal{Message: "The check could not tell you from a robot; try again.", Codes: fmt.Sprintf("score-too-low (formq): %.2f < %.2f", *ans.Score, c.MinScore)}
	}
	return nil
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
	if c.IsAltcha() {
		return v.verifyAltcha(ctx, a, response, time.Now())
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
		if err := v.check(a, ans); err != nil {
			return err
		}
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
