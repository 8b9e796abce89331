package client_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/formq/formq/internal/teststack"
	"github.com/formq/formq/submission"
)

// TestClientStampsFormsOfMinFillTimeActions: a page on another origin,
// enhanced by client.js, posting to actions with min_fill_time. client.js
// fetches a stamp as it enhances the form and posts it as _rendered: a
// post after the fill time is kept; one sooner looks accepted, keeps
// nothing and is counted as too_fast, like a filled honeypot.
func TestClientStampsFormsOfMinFillTimeActions(t *testing.T) {
	var api atomic.Value // formq's URL, known once the stack runs
	pageSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, pageHead, "Write to us")
		fmt.Fprintf(w, `<script type="module" src="%[1]s/formq.js"></script>
<form data-formq data-formq-success="message" method="post" action="%[1]s/actions/%[2]s">
<label for="email">Email</label><input id="email" name="email" type="email">
<button>Send</button>
<p data-formq-message></p>
</form></main></body></html>`, api.Load(), r.URL.Query().Get("action"))
	}))
	t.Cleanup(pageSrv.Close)
	// "patient" needs one second, which the test waits out; "hasty" needs
	// an hour, so a post in this test is always too fast for it.
	actions := writeFile(t, "stamp-actions.yaml", []byte(`actions:
  patient:
    fields:
      email: {type: email, required: true}
    min_fill_time: 1s
  hasty:
    fields:
      email: {type: email, required: true}
    min_fill_time: 1h
`))
	st := teststack.Start(t, map[string]string{"FORMQ_ACTIONS": actions, "FORMQ_ALLOWED_ORIGINS": pageSrv.URL, "FORMQ_ADMIN_TOKEN": testAdminToken})
	api.Store(st.APIURL)
	ctx := tab(t)

	open := func(action string) {
		t.Helper()
		run(t, ctx, chromedp.Navigate(pageSrv.URL+"/?action="+action), chromedp.WaitVisible(chromedp.CSS("#email")))
		waitJS(t, ctx, "formq.js to fetch a stamp", `performance.getEntriesByType("resource").some((e) => e.name.endsWith("/actions/`+action+`/stamp"))`)
	}
	send := func() string {
		t.Helper()
		run(t, ctx, chromedp.SendKeys(chromedp.CSS("#email"), "ada@example.com"), chromedp.Click(chromedp.CSS("button")))
		waitJS(t, ctx, "the answer", `document.querySelector("[data-formq-message]").textContent.length > 0`)
		return evalString(t, ctx, `document.querySelector("[data-formq-message]").textContent`)
	}
	records := func(action string) int {
		keys, err := st.Store.List(context.Background(), submission.RecordsPrefix+action+"/")
		if err != nil {
			t.Fatal(err)
		}
		return len(keys)
	}

	// Too fast: it looks accepted and nothing is kept.
	open("hasty")
	if msg := send(); !strings.Contains(msg, "Thank") {
		t.Fatalf("a too fast post shows %q, want it to look accepted", msg)
	}
	if got := apiMetric(t, st, `formq_rejections_total{action="hasty",reason="too_fast"}`); got != "1" {
		t.Errorf("too_fast rejections of hasty = %s, want 1", got)
	}
	if keys, _ := st.RDB.Keys(context.Background(), "asynq:{*}:t:*").Result(); len(keys) != 0 {
		t.Fatalf("a too fast post was queued: %v", keys)
	}

	// After the fill time: kept.
	open("patient")
	time.Sleep(1500 * time.Millisecond) // a person filling the form in
	if msg := send(); !strings.Contains(msg, "Thank") {
		t.Fatalf("a post after min_fill_time shows %q", msg)
	}
	teststack.WaitFor(t, 30*time.Second, "the patient submission's record", func() bool { return records("patient") == 1 })
	if got := apiMetric(t, st, `formq_rejections_total{action="patient",reason="too_fast"}`); got != "0" {
		t.Errorf("too_fast rejections of patient = %s, want 0", got)
	}
	if n := records("hasty"); n != 0 {
		t.Errorf("the too fast post left %d records", n)
	}
}

// apiMetric reads one series of the API's /metrics, "0" when absent.
func apiMetric(t *testing.T, st *teststack.Stack, series string) string {
	t.Helper()
	resp, err := http.Get(st.APIURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return v
		}
	}
	return "0"
}
