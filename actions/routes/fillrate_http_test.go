package routes_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/formq/formq/internal/teststack"
	"github.com/formq/formq/submission"
)

var renderedInput = regexp.MustCompile(`name="_rendered" value="([^"]+)"`)

// hostedStamp renders an action's hosted form and returns its _rendered.
func hostedStamp(t *testing.T, st *teststack.Stack, action string) string {
	t.Helper()
	resp, err := http.Get(st.APIURL + "/forms/" + action)
	if err != nil {
		t.Fatal(err)
	}
	m := renderedInput.FindStringSubmatch(readAll(t, resp))
	if m == nil {
		t.Fatalf("the hosted form of %s carries no _rendered field", action)
	}
	return m[1]
}

// metricValue reads one series of the API's /metrics, 0 when absent.
func metricValue(t *testing.T, st *teststack.Stack, series string) string {
	t.Helper()
	resp, err := http.Get(st.APIURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(readAll(t, resp), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return v
		}
	}
	return "0"
}

// TestMinFillTimeTreatsFastPostsLikeTheHoneypot: a post sooner than
// min_fill_time after its hosted form was rendered, or without (or with a
// forged) _rendered stamp, looks accepted and keeps nothing, counted under
// reason too_fast; one after it is accepted and kept.
func TestMinFillTimeTreatsFastPostsLikeTheHoneypot(t *testing.T) {
	st := startWithActions(t, `actions:
  contact:
    fields:
      email: {type: email, required: true}
    min_fill_time: 1s
  other:
    fields:
      email: {type: email, required: true}
    min_fill_time: 1s
`, nil)
	stamp := hostedStamp(t, st, "contact")
	otherStamp := hostedStamp(t, st, "other")
	for _, tc := range []struct {
		name string
		form url.Values
	}{
		{"at once", url.Values{"_rendered": {stamp}}},
		{"no stamp", url.Values{}},
		{"forged stamp", url.Values{"_rendered": {"AQ" + strings.Repeat("x", 60)}}},
		{"another action's stamp", url.Values{"_rendered": {otherStamp}}},
	} {
		tc.form.Set("email", "a@example.com")
		resp, raw := send(t, st, "contact", tc.form, nil)
		if resp.StatusCode != http.StatusAccepted || !strings.Contains(string(raw), `"ok":true`) {
			t.Errorf("%s: %d %s, want it to look accepted", tc.name, resp.StatusCode, raw)
		}
	}
	if n := countKeys(t, st, submissionTasks); n != 0 {
		t.Fatalf("fast posts kept %d submissions", n)
	}
	if got := metricValue(t, st, `formq_rejections_total{action="contact",reason="too_fast"}`); got != "4" {
		t.Errorf("too_fast rejections = %s, want 4", got)
	}

	time.Sleep(1100 * time.Millisecond) // a person filling the form in
	resp, raw := send(t, st, "contact", url.Values{"email": {"a@example.com"}, "_rendered": {stamp}}, nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("a post after min_fill_time: %d %s", resp.StatusCode, raw)
	}
	if n := countKeys(t, st, submissionTasks); n != 1 {
		t.Fatalf("a post after min_fill_time was not kept: %d submissions", n)
	}
	// A browser without JavaScript is redirected like any success.
	resp, _ = teststack.Post(t, st.APIURL+"/actions/contact", strings.NewReader("email=a%40example.com"), "application/x-www-form-urlencoded", nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("a fast browser post: %d, want 303 like a success", resp.StatusCode)
	}
}

// TestStampRoute: GET /actions/{name}/stamp answers a sealed render time
// that counts like the hosted form's, never cached, readable by the
// action's origins only, 404 for an unknown action; the schema tells
// min_fill_time in milliseconds.
func TestStampRoute(t *testing.T) {
	st := startWithActions(t, `actions:
  contact:
    fields:
      email: {type: email, required: true}
    min_fill_time: 1s
    origins: [https://shop.example]
  plain:
    fields:
      email: {type: email, required: true}
`, nil)
	get := func(path, origin string) (*http.Response, string) {
		t.Helper()
		h := map[string]string{}
		if origin != "" {
			h["Origin"] = origin
		}
		resp, raw := teststack.Do(t, http.MethodGet, st.APIURL+path, nil, h)
		return resp, string(raw)
	}
	stampOf := func(body string) string {
		t.Helper()
		var ans struct{ Rendered string }
		if err := json.Unmarshal([]byte(body), &ans); err != nil || ans.Rendered == "" {
			t.Fatalf("stamp answer %q: %v", body, err)
		}
		return ans.Rendered
	}

	resp, body := get("/actions/contact/stamp", "https://shop.example")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("stamp: %d %s", resp.StatusCode, body)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", cc)
	}
	if acao := resp.Header.Get("Access-Control-Allow-Origin"); acao != "https://shop.example" {
		t.Errorf("Access-Control-Allow-Origin %q for the action's origin", acao)
	}
	stamp := stampOf(body)
	resp, _ = teststack.Do(t, http.MethodOptions, st.APIURL+"/actions/contact/stamp", nil,
		map[string]string{"Origin": "https://shop.example", "Access-Control-Request-Method": "GET"})
	if acao := resp.Header.Get("Access-Control-Allow-Origin"); resp.StatusCode >= 300 || acao != "https://shop.example" {
		t.Errorf("preflight from the action's origin: %d, Access-Control-Allow-Origin %q", resp.StatusCode, acao)
	}
	resp, body = get("/actions/contact/stamp", "https://elsewhere.example")
	if acao := resp.Header.Get("Access-Control-Allow-Origin"); acao != "" {
		t.Errorf("a foreign origin may read the stamp: Access-Control-Allow-Origin %q", acao)
	}
	stampOf(body) // answered all the same: CORS only keeps a foreign page from reading it
	resp, body = get("/actions/nope/stamp", "")
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(body, `"action_not_found"`) {
		t.Errorf("unknown action: %d %s", resp.StatusCode, body)
	}
	if resp, body = get("/actions/plain/stamp", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("an action without min_fill_time: %d %s", resp.StatusCode, body)
	}
	_, body = get("/actions/contact/schema", "")
	if !strings.Contains(body, `"minFillTime":1000`) {
		t.Errorf("schema of contact has no minFillTime 1000: %s", body)
	}
	_, body = get("/actions/plain/schema", "")
	if strings.Contains(body, "minFillTime") {
		t.Errorf("schema of plain names minFillTime: %s", body)
	}

	// The stamp counts like the hosted form's: too fast at once, kept after.
	if resp, raw := send(t, st, "contact", url.Values{"email": {"a@example.com"}, "_rendered": {stamp}}, nil); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("a fast post: %d %s", resp.StatusCode, raw)
	}
	if n := countKeys(t, st, submissionTasks); n != 0 {
		t.Fatalf("a post right after its stamp kept %d submissions", n)
	}
	if got := metricValue(t, st, `formq_rejections_total{action="contact",reason="too_fast"}`); got != "1" {
		t.Errorf("too_fast rejections = %s, want 1", got)
	}
	time.Sleep(1100 * time.Millisecond) // a person filling the form in
	if resp, raw := send(t, st, "contact", url.Values{"email": {"a@example.com"}, "_rendered": {stamp}}, nil); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("a post after min_fill_time: %d %s", resp.StatusCode, raw)
	}
	if got := metricValue(t, st, `formq_rejections_total{action="contact",reason="too_fast"}`); got != "1" {
		t.Errorf("too_fast rejections after a patient post = %s, want still 1", got)
	}
	teststack.WaitFor(t, 30*time.Second, "the patient post's record", func() bool {
		keys, err := st.Store.List(context.Background(), submission.RecordsPrefix+"contact/")
		return err == nil && len(keys) == 1
	})
}

// TestMinFillTimeStampIsSingleUse: one render stamp, old enough, vouches
// for one submission: a script replaying it gets the decoy answer and
// nothing is kept.
func TestMinFillTimeStampIsSingleUse(t *testing.T) {
	st := startWithActions(t, `actions:
  contact:
    fields:
      email: {type: email, required: true}
    min_fill_time: 1s
`, nil)
	stamp := hostedStamp(t, st, "contact")
	time.Sleep(1100 * time.Millisecond)
	for range 5 {
		resp, raw := send(t, st, "contact", url.Values{"email": {"a@example.com"}, "_rendered": {stamp}}, nil)
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("post: %d %s", resp.StatusCode, raw)
		}
	}
	if n := countKeys(t, st, submissionTasks); n != 1 {
		t.Errorf("one stamp kept %d submissions, want 1", n)
	}
}
