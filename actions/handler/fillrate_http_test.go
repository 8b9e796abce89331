package handler_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/formq/formq/internal/teststack"
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
