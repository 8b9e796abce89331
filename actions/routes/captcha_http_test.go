package routes_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/formq/formq/api"
	"github.com/formq/formq/internal/testenv"
	"github.com/formq/formq/internal/teststack"
)

// siteverify is a local verification server that follows one provider's
// documented siteverify shape: a form-encoded POST with secret, response
// and remoteip (and sitekey for hCaptcha), answered with JSON
// {"success": bool, "error-codes": [...]}. Tokens named ok-* pass once,
// expired-* are expired, anything else is invalid; a request of another
// shape answers bad-request, so a wrong request fails the test's posts.
type siteverify struct {
	provider, secret, sitekey string
	srv                       *httptest.Server
	mu                        sync.Mutex
	seen                      map[string]bool
	calls                     []url.Values
	// lax passes ok-* tokens every time, like a provider that does not
	// report duplicates.
	lax bool
	// fields replaces fields of a passed token's answer (hostname,
	// action, score), by token.
	fields map[string]map[string]any
}

func newSiteverify(t *testing.T, provider string) *siteverify {
	t.Helper()
	sv := &siteverify{provider: provider, secret: provider + "-secret-0x4AAA", sitekey: provider + "-sitekey", seen: map[string]bool{}}
	sv.srv = httptest.NewServer(http.HandlerFunc(sv.serve))
	t.Cleanup(sv.srv.Close)
	return sv
}

func (sv *siteverify) serve(w http.ResponseWriter, r *http.Request) {
	answer := func(ok bool, codes ...string) {
		w.Header().Set("Content-Type", "application/json")
		if codes == nil {
			codes = []string{}
		}
		body := map[string]any{"success": ok, "error-codes": codes}
		if ok {
			body["challenge_ts"] = time.Now().UTC().Format(time.RFC3339)
			body["hostname"] = "127.0.0.1"
			for k, v := range sv.fields[r.PostForm.Get("response")] {
				body[k] = v
			}
		}
		_ = json.NewEncoder(w).Encode(body)
	}
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
		answer(false, "bad-request")
		return
	}
	if err := r.ParseForm(); err != nil {
		answer(false, "bad-request")
		return
	}
	sv.mu.Lock()
	defer sv.mu.Unlock()
	sv.calls = append(sv.calls, r.PostForm)
	f := r.PostForm
	switch {
	case f.Get("secret") == "":
		answer(false, "missing-input-secret")
		return
	case f.Get("secret") != sv.secret:
		answer(false, "invalid-input-secret")
		return
	case f.Get("response") == "":
		answer(false, "missing-input-response")
		return
	case f.Get("remoteip") != "127.0.0.1":
		answer(false, "invalid-input-response")
		return
	case sv.provider == "hcaptcha" && f.Get("sitekey") != sv.sitekey:
		answer(false, "sitekey-secret-mismatch")
		return
	}
	tok := f.Get("response")
	reused := "timeout-or-duplicate" // Turnstile and reCAPTCHA
	expired := "timeout-or-duplicate"
	if sv.provider == "hcaptcha" {
		reused, expired = "already-seen-response", "expired-input-response"
	}
	switch {
	case strings.HasPrefix(tok, "ok-") && sv.seen[tok] && !sv.lax:
		answer(false, reused)
	case strings.HasPrefix(tok, "ok-"):
		sv.seen[tok] = true
		answer(true)
	case strings.HasPrefix(tok, "expired-"):
		answer(false, expired)
	default:
		answer(false, "invalid-input-response")
	}
}

func (sv *siteverify) callCount() int {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	return len(sv.calls)
}

// closedURL is an address that drops every connection unanswered, like a
// provider that cannot be reached. It holds its port for the test, so no
// other process's server can take it and answer in its place.
func closedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return "http://" + l.Addr().String() + "/siteverify"
}

// startWithActions runs the stack with an actions file of its own.
func startWithActions(t *testing.T, yaml string, env map[string]string) *teststack.Stack {
	t.Helper()
	path := filepath.Join(t.TempDir(), "actions.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	all := map[string]string{"FORMQ_ACTIONS": path, "FORMQ_ADMIN_TOKEN": adminToken}
	for k, v := range env {
		all[k] = v
	}
	return teststack.Start(t, all)
}

// countKeys counts Redis keys matching a pattern.
// submissionTasks matches the asynq task of every accepted submission in
// any queue (the task id is the submission id): what acceptance writes.
const submissionTasks = "asynq:{*}:t:*"

func countKeys(t *testing.T, st *teststack.Stack, pattern string) int {
	t.Helper()
	keys, err := st.RDB.Keys(context.Background(), pattern).Result()
	if err != nil {
		t.Fatal(err)
	}
	return len(keys)
}

func captchaActions(provider, verifyURL, downURL string) string {
	return fmt.Sprintf(`actions:
  contact:
    fields:
      email: {type: email, required: true}
    captcha: {provider: %[1]s, secret_env: CAPTCHA_SECRET, site_key: %[1]s-sitekey, verify_url: "%[2]s"}
  contact-down:
    fields:
      email: {type: email, required: true}
    captcha: {provider: %[1]s, secret_env: CAPTCHA_SECRET, site_key: %[1]s-sitekey, verify_url: "%[3]s"}
  contact-down-allow:
    fields:
      email: {type: email, required: true}
    captcha: {provider: %[1]s, secret_env: CAPTCHA_SECRET, site_key: %[1]s-sitekey, verify_url: "%[3]s", on_error: allow}
`, provider, verifyURL, downURL)
}

// TestCaptchaLocalSiteverifyEachProvider runs pass, fail, missing,
// reuse, expiry and an unreachable provider (on_error block and allow)
// for each provider's field name and siteverify shape, over real HTTP on
// real Redis and S3; nothing of a refused post is kept.
func TestCaptchaLocalSiteverifyEachProvider(t *testing.T) {
	for _, tc := range []struct{ provider, field, widget, script, source string }{
		{"turnstile", "cf-turnstile-response", `class="cf-turnstile"`, "https://challenges.cloudflare.com/turnstile/v0/api.js", "https://challenges.cloudflare.com"},
		{"hcaptcha", "h-captcha-response", `class="h-captcha"`, "https://js.hcaptcha.com/1/api.js", "https://*.hcaptcha.com"},
		{"recaptcha", "g-recaptcha-response", `class="g-recaptcha"`, "https://www.google.com/recaptcha/api.js", "https://www.google.com/recaptcha/"},
	} {
		t.Run(tc.provider, func(t *testing.T) {
			sv := newSiteverify(t, tc.provider)
			st := startWithActions(t, captchaActions(tc.provider, sv.srv.URL+"/siteverify", closedURL(t)), map[string]string{"CAPTCHA_SECRET": sv.secret})
			post := func(action, token string) (*http.Response, errorBody) {
				t.Helper()
				form := url.Values{"email": {"a@example.com"}}
				if token != "" {
					form.Set(tc.field, token)
				}
				resp, raw := send(t, st, action, form, nil)
				var e errorBody
				_ = json.Unmarshal(raw, &e)
				return resp, e
			}
			refused := func(name, token, want string) {
				t.Helper()
				resp, e := post("contact", token)
				if resp.StatusCode != http.StatusUnprocessableEntity || e.Error.Code != "validation_failed" {
					t.Fatalf("%s: got %d %s, want 422 validation_failed", name, resp.StatusCode, e.Error.Code)
				}
				if msgs := e.Errors["_captcha"]; len(msgs) != 1 || !strings.Contains(msgs[0], want) {
					t.Errorf("%s: errors._captcha = %v, want a message with %q", name, e.Errors["_captcha"], want)
				}
				if e.Values["email"] != "a@example.com" {
					t.Errorf("%s: values not echoed: %v", name, e.Values)
				}
			}

			refused("missing", "", "Complete the challenge")
			if n := sv.callCount(); n != 0 {
				t.Errorf("a post without an answer called siteverify %d times", n)
			}
			refused("failed", "bot-guess", "not passed")
			refused("expired", "expired-1", "expired or was already used")
			if n := countKeys(t, st, submissionTasks); n != 0 {
				t.Fatalf("refused posts left %d submissions", n)
			}

			resp, raw := send(t, st, "contact", url.Values{"email": {"a@example.com"}, tc.field: {"ok-1"}}, nil)
			if resp.StatusCode != http.StatusAccepted {
				t.Fatalf("a passed challenge: %d %s", resp.StatusCode, raw)
			}
			if n := countKeys(t, st, submissionTasks); n != 1 {
				t.Fatalf("after one accepted post: %d submissions", n)
			}
			refused("reused", "ok-1", "expired or was already used")
			if n := countKeys(t, st, submissionTasks); n != 1 {
				t.Fatalf("a reused answer was kept: %d submissions", n)
			}

			// The siteverify request had the documented shape.
			sv.mu.Lock()
			first := sv.calls[0]
			sv.mu.Unlock()
			if first.Get("secret") != sv.secret || first.Get("remoteip") != "127.0.0.1" || first.Get("response") != "bot-guess" {
				t.Errorf("siteverify got %v", first)
			}

			// Provider unreachable: block (503) by default, accept with on_error: allow.
			resp, e := post("contact-down", "ok-2")
			if resp.StatusCode != http.StatusServiceUnavailable || e.Error.Code != "unavailable" || resp.Header.Get("Retry-After") == "" {
				t.Errorf("unreachable, block: %d %s", resp.StatusCode, e.Error.Code)
			}
			if n := countKeys(t, st, submissionTasks); n != 1 {
				t.Fatalf("a blocked post was kept: %d submissions", n)
			}
			resp, _ = post("contact-down-allow", "ok-3")
			if resp.StatusCode != http.StatusAccepted {
				t.Errorf("unreachable, allow: %d", resp.StatusCode)
			}

			// The hosted form shows the widget and lets its script in.
			page, err := http.Get(st.APIURL + "/forms/contact")
			if err != nil {
				t.Fatal(err)
			}
			html := readAll(t, page)
			if !strings.Contains(html, tc.widget) || !strings.Contains(html, `data-sitekey="`+tc.provider+`-sitekey"`) || !strings.Contains(html, `<script src="`+tc.script+`"`) {
				t.Errorf("the hosted form has no %s widget:\n%s", tc.provider, html)
			}
			csp := page.Header.Get("Content-Security-Policy")
			if !cspAllows(csp, "script-src", tc.source) || !cspAllows(csp, "frame-src", tc.source) {
				t.Errorf("CSP does not let the widget in: %s", csp)
			}
		})
	}
}

// TestCaptchaSecretMissingStopsTheAPI: an action whose secret_env is not
// set stops the API at start, naming the variable.
func TestCaptchaSecretMissingStopsTheAPI(t *testing.T) {
	path := filepath.Join(t.TempDir(), "actions.yaml")
	if err := os.WriteFile(path, []byte(captchaActions("turnstile", "http://127.0.0.1:9/", "http://127.0.0.1:9/")), 0o600); err != nil {
		t.Fatal(err)
	}
	r, s3 := testenv.StartRedis(t), testenv.StartS3(t)
	env := map[string]string{
		"FORMQ_ENV": "development", "FORMQ_ADDR": "127.0.0.1:0", "FORMQ_REDIS_URL": r.URL(),
		"FORMQ_S3_CREATE_BUCKET": "true", "FORMQ_ACTIONS": path,
	}
	for k, v := range s3.Env() {
		env[k] = v
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := api.Main(ctx, []string{"api"}, func(k string) string { return env[k] }, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "CAPTCHA_SECRET") {
		t.Fatalf("want a start error naming CAPTCHA_SECRET, got %v", err)
	}
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// cspAllows reports whether a policy's directive lists a source.
func cspAllows(policy, directive, source string) bool {
	for _, d := range strings.Split(policy, ";") {
		fields := strings.Fields(d)
		if len(fields) > 0 && fields[0] == directive && slices.Contains(fields[1:], source) {
			return true
		}
	}
	return false
}

// TestCaptchaTurnstileLocalSiteverifyMultipartStoresNoFile: in a
// multipart post the answer is checked as soon as it is read, so a refused
// one stops the post before its file reaches S3; a passed one keeps it.
func TestCaptchaTurnstileLocalSiteverifyMultipartStoresNoFile(t *testing.T) {
	sv := newSiteverify(t, "turnstile")
	st := startWithActions(t, fmt.Sprintf(`actions:
  apply:
    fields:
      email: {type: email, required: true}
    uploads:
      cv: {max_size: 1MB}
    captcha: {provider: turnstile, secret_env: CAPTCHA_SECRET, site_key: turnstile-sitekey, verify_url: "%s"}
`, sv.srv.URL), map[string]string{"CAPTCHA_SECRET": sv.secret})
	file := []byte(strings.Repeat("%PDF-1.4 not really\n", 100))
	post := func(token string) *http.Response {
		body, ct := teststack.MultipartBody(t, map[string]string{"email": "a@example.com", "cf-turnstile-response": token}, map[string][]byte{"cv": file})
		resp, _ := teststack.Post(t, st.APIURL+"/actions/apply", body, ct, map[string]string{"Accept": "application/json"})
		return resp
	}
	if resp := post("bot-guess"); resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("refused answer: %d", resp.StatusCode)
	}
	keys, err := st.Store.List(context.Background(), "uploads/")
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 0 {
		t.Fatalf("a refused post left files: %v", keys)
	}
	if resp := post("ok-1"); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("passed answer: %d", resp.StatusCode)
	}
	if keys, _ = st.Store.List(context.Background(), "uploads/apply/"); len(keys) != 1 {
		t.Fatalf("an accepted post's file: %v", keys)
	}
}

// TestCaptchaLocalSiteverifyRefusesAReplayedAnswer: against a local
// siteverify that accepts an answer every time it is asked, formq's own
// replay cache refuses an answer accepted once (422 errors._captcha, no
// submission kept) for the answer's lifetime; another answer passes; the
// cache holds a digest, not the answer.
func TestCaptchaLocalSiteverifyRefusesAReplayedAnswer(t *testing.T) {
	sv := newSiteverify(t, "turnstile")
	sv.lax = true
	st := startWithActions(t, captchaActions("turnstile", sv.srv.URL+"/siteverify", closedURL(t)), map[string]string{"CAPTCHA_SECRET": sv.secret})
	post := func(token string) (*http.Response, errorBody) {
		t.Helper()
		resp, raw := send(t, st, "contact", url.Values{"email": {"a@example.com"}, "cf-turnstile-response": {token}}, nil)
		var e errorBody
		_ = json.Unmarshal(raw, &e)
		return resp, e
	}
	if resp, e := post("ok-replayed"); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("the first post: %d %+v", resp.StatusCode, e)
	}
	for i := range 3 {
		resp, e := post("ok-replayed")
		if resp.StatusCode != http.StatusUnprocessableEntity || e.Error.Code != "validation_failed" ||
			len(e.Errors["_captcha"]) != 1 || !strings.Contains(e.Errors["_captcha"][0], "already used") {
			t.Fatalf("replay %d: %d %+v", i+1, resp.StatusCode, e)
		}
	}
	if n := sv.callCount(); n != 4 {
		t.Errorf("siteverify was asked %d times, want 4 (it accepted every replay)", n)
	}
	if n := countKeys(t, st, submissionTasks); n != 1 {
		t.Fatalf("replays were kept: %d submissions", n)
	}
	if resp, e := post("ok-other"); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("another answer: %d %+v", resp.StatusCode, e)
	}
	keys, err := st.RDB.Keys(t.Context(), "formq:captcha:*").Result()
	if err != nil || len(keys) != 2 {
		t.Fatalf("replay cache keys: %v %v", keys, err)
	}
	for _, k := range keys {
		if strings.Contains(k, "ok-") {
			t.Errorf("the cache holds the answer itself: %s", k)
		}
		ttl := st.RDB.TTL(t.Context(), k).Val()
		if ttl <= 0 || ttl > 300*time.Second {
			t.Errorf("%s expires in %s, want within the answer's 300 s", k, ttl)
		}
	}
}

// TestCaptchaAllowOnErrorFailsClosedOnAProvidersRefusal: on_error: allow
// lets posts through while the provider is down, not when it answers and
// refuses the check itself (4xx: a wrong secret or URL, a request it
// will not take), or a captcha would be off without anyone noticing.
func TestCaptchaAllowOnErrorFailsClosedOnAProvidersRefusal(t *testing.T) {
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "bad request", http.StatusBadRequest)
	}))
	t.Cleanup(refusing.Close)
	st := startWithActions(t, captchaActions("turnstile", refusing.URL+"/siteverify", refusing.URL+"/siteverify"), map[string]string{"CAPTCHA_SECRET": "0x4AAAAAAAlocal-test-secret"})
	resp, raw := send(t, st, "contact-down-allow", url.Values{"email": {"a@example.com"}, "cf-turnstile-response": {"any-token"}}, nil)
	if resp.StatusCode == http.StatusAccepted {
		t.Errorf("a post the provider refused to check was accepted under on_error: allow: %s", raw)
	}
	if n := countKeys(t, st, submissionTasks); n != 0 {
		t.Errorf("%d submissions kept", n)
	}
}

// TestCaptchaChecksHostnameActionAndScore: a passed answer is refused when
// the local siteverify (each provider's documented answer: hostname,
// Turnstile's and reCAPTCHA v3's action, reCAPTCHA v3's score) says it
// was solved on a site that is not one of the action's origins or the
// deployment's, made for another widget action, or scored below
// min_score (0.5 by default); the right ones pass.
func TestCaptchaChecksHostnameActionAndScore(t *testing.T) {
	for _, tc := range []struct {
		provider, field, settings string
		fields                    map[string]map[string]any
		refused                   map[string]string // token: message
		passed                    []string
	}{
		{"turnstile", "cf-turnstile-response", `, action: apply`,
			map[string]map[string]any{
				"ok-here":    {"hostname": "forms.example.com", "action": "apply"},
				"ok-app":     {"hostname": "APP.example.com", "action": "apply"},
				"ok-evil":    {"hostname": "evil.example.net", "action": "apply"},
				"ok-login":   {"hostname": "forms.example.com", "action": "login"},
				"ok-noactn":  {"hostname": "forms.example.com"},
				"ok-nohost":  {"action": "apply", "hostname": ""},
				"ok-app-two": {"hostname": "app.example.com", "action": "apply"},
			},
			map[string]string{"ok-evil": "another site", "ok-login": "another form", "ok-noactn": "another form", "ok-nohost": "another site"},
			[]string{"ok-here", "ok-app", "ok-app-two"}},
		{"recaptcha", "g-recaptcha-response", ``,
			map[string]map[string]any{
				"ok-v2":    {"hostname": "forms.example.com"},
				"ok-human": {"hostname": "forms.example.com", "score": 0.9, "action": "submit"},
				"ok-edge":  {"hostname": "forms.example.com", "score": 0.5, "action": "submit"},
				"ok-bot":   {"hostname": "forms.example.com", "score": 0.1, "action": "submit"},
				"ok-evil":  {"hostname": "evil.example.net", "score": 0.9},
			},
			map[string]string{"ok-bot": "tell you from a robot", "ok-evil": "another site"},
			[]string{"ok-v2", "ok-human", "ok-edge"}},
		{"recaptcha", "g-recaptcha-response", `, min_score: 0.8, action: signup`,
			map[string]map[string]any{
				"ok-human": {"hostname": "forms.example.com", "score": 0.9, "action": "signup"},
				"ok-mid":   {"hostname": "forms.example.com", "score": 0.7, "action": "signup"},
				"ok-other": {"hostname": "forms.example.com", "score": 0.9, "action": "login"},
			},
			map[string]string{"ok-mid": "tell you from a robot", "ok-other": "another form"},
			[]string{"ok-human"}},
		{"hcaptcha", "h-captcha-response", ``,
			map[string]map[string]any{
				"ok-here": {"hostname": "forms.example.com"},
				"ok-evil": {"hostname": "evil.example.net"},
			},
			map[string]string{"ok-evil": "another site"},
			[]string{"ok-here"}},
	} {
		t.Run(tc.provider+tc.settings, func(t *testing.T) {
			sv := newSiteverify(t, tc.provider)
			sv.fields = tc.fields
			st := startWithActions(t, fmt.Sprintf(`actions:
  apply:
    fields:
      email: {type: email, required: true}
    origins: ["https://app.example.com:8443"]
    captcha: {provider: %s, secret_env: CAPTCHA_SECRET, site_key: %s-sitekey, verify_url: "%s"%s}
`, tc.provider, tc.provider, sv.srv.URL, tc.settings), map[string]string{"CAPTCHA_SECRET": sv.secret, "FORMQ_PUBLIC_URL": "https://forms.example.com"})
			for token, want := range tc.refused {
				resp, raw := send(t, st, "apply", url.Values{"email": {"a@example.com"}, tc.field: {token}}, nil)
				var e errorBody
				_ = json.Unmarshal(raw, &e)
				if resp.StatusCode != http.StatusUnprocessableEntity || len(e.Errors["_captcha"]) != 1 || !strings.Contains(e.Errors["_captcha"][0], want) {
					t.Errorf("%s: %d %s, want 422 with errors._captcha %q", token, resp.StatusCode, raw, want)
				}
			}
			for _, token := range tc.passed {
				if resp, raw := send(t, st, "apply", url.Values{"email": {"a@example.com"}, tc.field: {token}}, nil); resp.StatusCode != http.StatusAccepted {
					t.Errorf("%s: %d %s, want 202", token, resp.StatusCode, raw)
				}
			}
			if n := countKeys(t, st, submissionTasks); n != len(tc.passed) {
				t.Errorf("%d submissions, want %d", n, len(tc.passed))
			}
		})
	}
}
