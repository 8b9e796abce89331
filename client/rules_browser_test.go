package client_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/formq/formq/internal/teststack"
)

// TestNotInAndEqualsFieldEndToEnd: the not_in and equals_field rules,
// declared once in the actions file, as every part sees them: the public
// declaration lists them, the server refuses a post breaking them (JSON
// 422 with the field's error, or the hosted form re-rendered with it),
// and formq.js refuses it in Chromium before anything is posted.
func TestNotInAndEqualsFieldEndToEnd(t *testing.T) {
	actions := writeFile(t, "rules-actions.yaml", []byte(`actions:
  register:
    fields:
      email:    {type: email, required: true, not_in: [Mailinator.com, "nobody@example.com"]}
      nick:     {type: text, not_in: [admin, root]}
      password: {type: password, required: true}
      repeat:   {type: password, required: true, equals_field: password, messages: {equals_field: "The passwords differ"}}
`))
	st := teststack.Start(t, map[string]string{"FORMQ_ACTIONS": actions, "FORMQ_ADMIN_TOKEN": testAdminToken})

	// The public declaration.
	resp, body := teststack.Do(t, http.MethodGet, st.APIURL+"/actions/register/schema", nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("schema: %d %s", resp.StatusCode, body)
	}
	var decl struct {
		Fields []struct {
			Name     string            `json:"name"`
			Messages map[string]string `json:"messages"`
			Checks   []struct {
				Rule       string `json:"rule"`
				Setting    any    `json:"setting"`
				Refuse     string `json:"refuse"`
				IgnoreCase bool   `json:"ignoreCase"`
				SameAs     string `json:"sameAs"`
			} `json:"checks"`
		} `json:"fields"`
	}
	if err := json.Unmarshal(body, &decl); err != nil {
		t.Fatal(err)
	}
	email, repeat := decl.Fields[0], decl.Fields[3]
	if len(email.Checks) != 1 || email.Checks[0].Rule != "not_in" || !email.Checks[0].IgnoreCase || email.Checks[0].Refuse == "" ||
		email.Messages["not_in"] != "Email is not accepted here: please use another" {
		t.Errorf("email's declaration: %+v", email)
	}
	if len(repeat.Checks) != 1 || repeat.Checks[0].Rule != "equals_field" || repeat.Checks[0].SameAs != "password" || repeat.Messages["equals_field"] != "The passwords differ" {
		t.Errorf("repeat's declaration: %+v", repeat)
	}

	// The server: JSON and the hosted form re-rendered.
	form := url.Values{"email": {"ada@MAILINATOR.com"}, "nick": {"Root"}, "password": {"secret-1"}, "repeat": {"secret-2"}}
	post := func(accept string) (*http.Response, []byte) {
		return teststack.Post(t, st.APIURL+"/actions/register", strings.NewReader(form.Encode()), "application/x-www-form-urlencoded", map[string]string{"Accept": accept})
	}
	resp, body = post("application/json")
	var ans struct {
		Error  struct{ Code string } `json:"error"`
		Errors map[string][]string   `json:"errors"`
	}
	if err := json.Unmarshal(body, &ans); err != nil || resp.StatusCode != http.StatusUnprocessableEntity || ans.Error.Code != "validation_failed" {
		t.Fatalf("post: %d %s", resp.StatusCode, body)
	}
	want := map[string][]string{"email": {"Email is not accepted here: please use another"}, "nick": {"Nick is not accepted here: please use another"}, "repeat": {"The passwords differ"}}
	for name, msgs := range want {
		if strings.Join(ans.Errors[name], "|") != strings.Join(msgs, "|") {
			t.Errorf("errors[%s] = %q, want %q", name, ans.Errors[name], msgs)
		}
	}
	if len(ans.Errors) != len(want) {
		t.Errorf("errors = %v, want only %v", ans.Errors, want)
	}
	resp, body = post("text/html")
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(string(body), "Email is not accepted here: please use another") ||
		!strings.Contains(string(body), "The passwords differ") || strings.Contains(string(body), "secret-") {
		t.Errorf("hosted re-render: %d\n%s", resp.StatusCode, body)
	}
	// A value the list does not hold passes, the domain only counts for
	// email fields and after the last @.
	form = url.Values{"email": {"mailinator.com@example.com"}, "nick": {"admin2"}, "password": {"pw"}, "repeat": {"pw"}}
	if resp, body = post("application/json"); resp.StatusCode != http.StatusAccepted {
		t.Errorf("a post the rules allow: %d %s", resp.StatusCode, body)
	}

	// The browser: formq.js refuses before posting.
	ctx := tab(t)
	run(t, ctx, chromedp.Navigate(st.APIURL+"/forms/register"), chromedp.WaitVisible(chromedp.CSS("#f-email")))
	waitJS(t, ctx, "formq.js to load the declaration", `performance.getEntriesByType("resource").some((e) => e.name.endsWith("/actions/register/schema"))`)
	run(t, ctx,
		chromedp.SendKeys(chromedp.CSS("#f-email"), "ada@Mailinator.COM"),
		chromedp.SendKeys(chromedp.CSS("#f-nick"), "ADMIN"),
		chromedp.SendKeys(chromedp.CSS("#f-password"), "secret-1"),
		chromedp.SendKeys(chromedp.CSS("#f-repeat"), "secret-2"),
		chromedp.Click(chromedp.CSS("button[type=submit]")))
	waitJS(t, ctx, "the errors", `document.querySelector("#f-email-error") != null`)
	for id, msg := range map[string]string{"f-email": "Email is not accepted here: please use another", "f-nick": "Nick is not accepted here: please use another", "f-repeat": "The passwords differ"} {
		if got := evalString(t, ctx, `(document.getElementById("`+id+`-error") || {}).textContent || ""`); got != msg {
			t.Errorf("%s's error in the browser = %q, want %q", id, got, msg)
		}
	}
	if got := evalString(t, ctx, `document.getElementById("f-password-error") ? "shown" : "none"`); got != "none" {
		t.Errorf("password has an error in the browser")
	}
	if got := evalString(t, ctx, `String(performance.getEntriesByType("resource").filter((e) => e.initiatorType == "xmlhttprequest").length)`); got != "0" {
		t.Errorf("formq.js posted %s times a form its checks refuse", got)
	}
	// Fixed, it is sent and accepted.
	run(t, ctx,
		chromedp.SetValue(chromedp.CSS("#f-email"), "ada@example.org"),
		chromedp.SetValue(chromedp.CSS("#f-nick"), "ada"),
		chromedp.SetValue(chromedp.CSS("#f-repeat"), "secret-1"),
		chromedp.Click(chromedp.CSS("button[type=submit]")))
	waitJS(t, ctx, "the success page", `location.pathname != "/forms/register" || document.querySelector("[data-formq-message]") != null && document.querySelector("[data-formq-message]").textContent != ""`)
}
