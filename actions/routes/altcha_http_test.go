package routes_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/formq/formq/actions/captcha"
	"github.com/formq/formq/internal/teststack"
)

const altchaActions = `actions:
  contact:
    fields:
      email: {type: email, required: true}
    captcha: {provider: altcha, secret_env: ALTCHA_KEY, max_number: 20000}
  other:
    fields:
      email: {type: email, required: true}
    captcha: {provider: altcha, secret_env: ALTCHA_KEY, max_number: 20000}
  brief:
    fields:
      email: {type: email, required: true}
    captcha: {provider: altcha, secret_env: ALTCHA_KEY, max_number: 20000, expires: 1s}
  plain:
    fields:
      email: {type: email, required: true}
`

// altchaKey is the HMAC key of the tests' ALTCHA captchas.
const altchaKey = "test-altcha-key-0123456789abcdef0123456789"

// challenge fetches one of an action's ALTCHA challenges.
func challenge(t *testing.T, st *teststack.Stack, action string) captcha.Challenge {
	t.Helper()
	resp, raw := teststack.Do(t, http.MethodGet, st.APIURL+"/actions/"+action+"/challenge", nil, nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("challenge of %s: %d %s (Cache-Control %q)", action, resp.StatusCode, raw, resp.Header.Get("Cache-Control"))
	}
	var ch captcha.Challenge
	if err := json.Unmarshal(raw, &ch); err != nil {
		t.Fatal(err)
	}
	return ch
}

func solved(t *testing.T, ch captcha.Challenge) string {
	t.Helper()
	p, ok := captcha.Solve(ch)
	if !ok {
		t.Fatalf("no solution for %+v", ch)
	}
	return p
}

// TestAltchaChallengesAreSingleUseExpireAndBelongToOneAction: formq issues
// ALTCHA challenges (GET /actions/{name}/challenge, the widget's JSON)
// and checks solutions in the field altcha itself: a solved challenge is
// accepted once; replayed, expired, made for another action, tampered
// with, unsolved or the widget's test payload, it is refused with
// errors._captcha and nothing is kept.
func TestAltchaChallengesAreSingleUseExpireAndBelongToOneAction(t *testing.T) {
	st := startWithActions(t, altchaActions, map[string]string{"ALTCHA_KEY": altchaKey})
	post := func(action, payload string) (*http.Response, errorBody) {
		t.Helper()
		resp, raw := send(t, st, action, url.Values{"email": {"a@example.com"}, "altcha": {payload}}, nil)
		var e errorBody
		_ = json.Unmarshal(raw, &e)
		return resp, e
	}
	refused := func(what, action, payload, want string) {
		t.Helper()
		resp, e := post(action, payload)
		if resp.StatusCode != http.StatusUnprocessableEntity || e.Error.Code != "validation_failed" ||
			len(e.Errors["_captcha"]) != 1 || !strings.Contains(e.Errors["_captcha"][0], want) {
			t.Errorf("%s: %d %+v, want 422 with errors._captcha %q", what, resp.StatusCode, e, want)
		}
	}

	ch := challenge(t, st, "contact")
	if ch.Algorithm != "SHA-256" || ch.MaxNumber != 20000 || len(ch.Challenge) != 64 || len(ch.Signature) != 64 ||
		!strings.Contains(ch.Salt, "action=contact") || !strings.Contains(ch.Salt, "expires=") {
		t.Fatalf("challenge: %+v", ch)
	}
	payload := solved(t, ch)
	refused("for another action", "other", payload, "not valid")
	if resp, e := post("contact", payload); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("a solved challenge: %d %+v", resp.StatusCode, e)
	}
	refused("replayed", "contact", payload, "already used")

	refused("missing", "contact", "", "Complete the challenge")
	refused("the widget's test payload", "contact", base64.StdEncoding.EncodeToString([]byte(`{"challenge":null,"solution":null,"test":true}`)), "not valid")
	var s captcha.AltchaSolution
	raw, _ := base64.StdEncoding.DecodeString(solved(t, challenge(t, st, "contact")))
	_ = json.Unmarshal(raw, &s)
	s.Number++
	tampered, _ := json.Marshal(s)
	refused("a wrong number", "contact", base64.StdEncoding.EncodeToString(tampered), "not valid")
	s.Number--
	s.Salt = strings.Replace(s.Salt, "action=contact", "action=other", 1)
	tampered, _ = json.Marshal(s)
	refused("a salt rewritten for another action", "contact", base64.StdEncoding.EncodeToString(tampered), "not valid")

	old := solved(t, challenge(t, st, "brief"))
	time.Sleep(2100 * time.Millisecond)
	refused("expired", "brief", old, "expired")

	if n := countKeys(t, st, submissionTasks); n != 1 {
		t.Errorf("%d submissions kept, want 1", n)
	}
	if resp, _ := teststack.Do(t, http.MethodGet, st.APIURL+"/actions/plain/challenge", nil, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("the challenge of an action without altcha: %d, want 404", resp.StatusCode)
	}
	// The hosted form shows the widget, loaded from formq, before its button.
	page, err := http.Get(st.APIURL + "/forms/contact")
	if err != nil {
		t.Fatal(err)
	}
	html := readAll(t, page)
	if !strings.Contains(html, `<altcha-widget challenge="`) || !strings.Contains(html, `/actions/contact/challenge"`) ||
		!strings.Contains(html, `<script type="module" src="/altcha/formq-altcha.js">`) {
		t.Errorf("the hosted form has no ALTCHA widget:\n%s", html)
	}
	// The widget's files are served, from the pinned package, to any page.
	for _, f := range []string{"formq-altcha.js", "altcha.js", "sha.js", "altcha.css"} {
		resp, _ := teststack.Do(t, http.MethodGet, st.APIURL+"/altcha/"+f, nil, map[string]string{"Origin": "https://www.example.com"})
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("/altcha/%s: %d, ACAO %q", f, resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
		}
	}
}
