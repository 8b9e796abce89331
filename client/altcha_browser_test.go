package client_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/formq/formq/internal/teststack"
)

// TestAltchaWidgetInChromium: the real ALTCHA widget (npm altcha, served
// by formq) solves formq's challenges in Chromium, on the hosted form (at
// the default difficulty, timed, with a file after the widget) and on a
// page of its own on another origin with client.js, and both posts are
// accepted with their files; the solutions it made are then refused when
// replayed, once expired, and for another action.
func TestAltchaWidgetInChromium(t *testing.T) {
	var api string
	pageSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html lang="en"><head><title>Contact</title>
<script type="module" src="%[1]s/formq.js"></script>
<script type="module" src="%[1]s/altcha/formq-altcha.js"></script></head>
<body><form action="%[1]s/actions/contact" method="post" enctype="multipart/form-data" data-formq data-formq-success="message">
<label>Email <input id="email" name="email" type="email" required></label>
<label>Photo <input id="photo" name="photo" type="file"></label>
<altcha-widget challenge="%[1]s/actions/contact/challenge" auto="onload"></altcha-widget>
<button>Send</button></form></body></html>`, api)
	}))
	t.Cleanup(pageSrv.Close)
	actions := writeFile(t, "altcha-actions.yaml", []byte(fmt.Sprintf(`actions:
  apply:
    fields:
      email: {type: email, required: true}
    uploads:
      cv: {max_size: 1MB}
    captcha: {provider: altcha, secret_env: ALTCHA_KEY}
  contact:
    origins: ["%[1]s"]
    fields:
      email: {type: email, required: true}
    uploads:
      photo: {max_size: 1MB}
    captcha: {provider: altcha, secret_env: ALTCHA_KEY, max_number: 50000}
  brief:
    fields:
      email: {type: email, required: true}
    captcha: {provider: altcha, secret_env: ALTCHA_KEY, max_number: 20000, expires: 3s}
`, pageSrv.URL)))
	st := teststack.Start(t, map[string]string{"FORMQ_ACTIONS": actions, "ALTCHA_KEY": "browser-test-altcha-key-0123456789abcdef"})
	api = st.APIURL
	post := func(action, payload string) (int, string) {
		t.Helper()
		resp, raw := teststack.Post(t, api+"/actions/"+action, strings.NewReader(url.Values{"email": {"a@example.com"}, "altcha": {payload}}.Encode()),
			"application/x-www-form-urlencoded", map[string]string{"Accept": "application/json"})
		return resp.StatusCode, string(raw)
	}
	refused := func(what string, code int, body, want string) {
		t.Helper()
		if code != http.StatusUnprocessableEntity || !strings.Contains(body, want) {
			t.Errorf("%s: %d %s, want 422 with %q", what, code, body, want)
		}
	}
	solution := func(ctx context.Context) string {
		t.Helper()
		waitJS(t, ctx, "the widget's solution", `!!(document.querySelector("input[name=altcha]") || {}).value`)
		return evalString(t, ctx, `document.querySelector("input[name=altcha]").value`)
	}

	// The hosted form, at the default difficulty: the widget starts on focus.
	ctx := tab(t)
	run(t, ctx, chromedp.Navigate(api+"/forms/apply"), chromedp.WaitVisible(chromedp.CSS("#f-email")))
	waitJS(t, ctx, "the widget", `!!customElements.get("altcha-widget") && !!document.querySelector("altcha-widget input[type=checkbox]")`)
	if order := evalString(t, ctx, `[...document.querySelectorAll("altcha-widget, input[type=file]")].map((e) => e.tagName).join(",")`); order != "ALTCHA-WIDGET,INPUT" {
		t.Errorf("the hosted form's widget and file input come in the order %s, want the widget first", order)
	}
	run(t, ctx, chromedp.Evaluate[chromedp.Void](`window.solvedIn = null; document.querySelector("altcha-widget").addEventListener("verified", () => (window.solvedIn = performance.now() - window.t0)); window.t0 = performance.now()`))
	run(t, ctx, chromedp.Click(chromedp.CSS("altcha-widget input[type=checkbox]")))
	payload := solution(ctx)
	waitJS(t, ctx, "the verified event", `window.solvedIn !== null`)
	took := value(t, ctx, chromedp.Evaluate[float64](`window.solvedIn`))
	t.Logf("the widget solved a challenge at the default difficulty (max_number 50000) in %.0f ms (its minimum shown time is 500 ms)", took)
	run(t, ctx, chromedp.SendKeys(chromedp.CSS("#f-email"), "ada@example.com"),
		chromedp.SetUploadFiles(chromedp.CSS("#f-cv"), []string{writeFile(t, "cv.pdf", []byte(strings.Repeat("%PDF-1.4\n", 200)))}))
	screenshot(t, ctx, "altcha-hosted-form")
	run(t, ctx, chromedp.Click(chromedp.CSS("button[type=submit]")))
	waitJS(t, ctx, "the done page", `location.pathname.endsWith("/forms/apply/done")`)
	if keys, err := st.Store.List(context.Background(), "uploads/apply/"); err != nil || len(keys) != 1 {
		t.Errorf("the hosted form's file: %v %v", keys, err)
	}
	code, body := post("apply", payload)
	refused("the hosted form's solution replayed", code, body, "already used")

	// A page of its own, on another origin, with client.js.
	own := tab(t)
	run(t, own, chromedp.Navigate(pageSrv.URL), chromedp.WaitVisible(chromedp.CSS("#email")))
	ownPayload := solution(own)
	run(t, own, chromedp.Evaluate[chromedp.Void](`window.answer = null; document.querySelector("form").addEventListener("formq:success", (e) => (window.answer = "success")); document.querySelector("form").addEventListener("formq:error", (e) => (window.answer = JSON.stringify(e.detail))); document.querySelector("form").addEventListener("formq:invalid", (e) => (window.answer = JSON.stringify(e.detail)))`),
		chromedp.SendKeys(chromedp.CSS("#email"), "grace@example.com"),
		chromedp.SetUploadFiles(chromedp.CSS("#photo"), []string{pngFile(t, "photo.png", 2000)}))
	screenshot(t, own, "altcha-own-page")
	run(t, own, chromedp.Click(chromedp.CSS("button")))
	waitJS(t, own, "client.js's answer", `window.answer !== null`)
	if got := evalString(t, own, `window.answer`); got != "success" {
		t.Fatalf("the page of its own: %s", got)
	}
	if keys, err := st.Store.List(context.Background(), "uploads/contact/"); err != nil || len(keys) != 1 {
		t.Errorf("the page's file: %v %v", keys, err)
	}
	code, body = post("contact", ownPayload)
	refused("the page's solution replayed", code, body, "already used")

	// A solution for another action, and an expired one, both made by the widget.
	run(t, own, chromedp.Navigate(api+"/forms/brief"), chromedp.WaitVisible(chromedp.CSS("#f-email")))
	waitJS(t, own, "the widget", `!!document.querySelector("altcha-widget input[type=checkbox]")`)
	run(t, own, chromedp.Click(chromedp.CSS("altcha-widget input[type=checkbox]")))
	brief := solution(own)
	code, body = post("contact", brief)
	refused("brief's solution sent to contact", code, body, "not valid")
	time.Sleep(4 * time.Second)
	code, body = post("brief", brief)
	refused("brief's solution after its 3 s", code, body, "expired")

	keys, err := st.RDB.Keys(context.Background(), "asynq:{*}:t:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if n := len(keys); n != 2 {
		t.Errorf("%d submissions kept, want 2 (the hosted form's and the page's)", n)
	}
}
