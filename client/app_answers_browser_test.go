package client_test

// Browser tests of the app answering through a webhook step: its data in
// the message and the redirect, its refusals at once or after the
// action's wait, with formq.js, the React hook and without JavaScript.

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// userFiles is what the app got for a user it created: file sizes by field.
func (u *usersApp) userFiles(id string) map[string]int64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.files[id]
}

// answersActions: create-user redirects to the page with the new user's
// id; join has no redirect, so browsers without JavaScript land on formq's
// done page. Both wait one second for the app's answer.
const answersActions = `actions:
  create-user:
    title: Create user
    fields:
      email: {type: email, required: true}
    uploads:
      avatar: {max_size: 5MB, types: [image/png]}
    wait: 1s
    steps:
      - webhook: {name: create, url: "APP/users", secret_env: USERS_WEBHOOK_SECRET}
    message: "User {steps.create.id} created!"
    redirect: "PAGE/thanks?id={steps.create.id}"
  join:
    title: Join the club
    fields:
      email: {type: email, required: true}
    uploads:
      avatar: {max_size: 5MB, types: [image/png]}
    wait: 1s
    steps:
      - webhook: {name: create, url: "APP/users", secret_env: USERS_WEBHOOK_SECRET}
    message: "Welcome, member {steps.create.id}!"
`

// TestReactHookAppAnswers: the guide's CreateUserForm on React 19,
// changed in one import (formq's useFormq for React's useActionState).
// The app's field error shows beside the email field with the value and
// the avatar kept; the second submit, without choosing the file again,
// creates the user with the kept avatar, and the app's id reaches the
// message; a refusal the app makes after the action's wait reaches the
// form through the status, the button pending until then.
func TestReactHookAppAnswers(t *testing.T) {
	s := startAnswersSite(t, answersActions)
	ctx := tab(t)
	run(t, ctx, chromedp.Navigate(s.page+"/react"), chromedp.WaitVisible(chromedp.CSS("#email")))
	if v := evalString(t, ctx, `window.reactVersion`); !strings.HasPrefix(v, "19.") {
		t.Fatalf("React %s, want 19", v)
	}
	const avatarSize = 300 << 10
	run(t, ctx, chromedp.SendKeys(chromedp.CSS("#email"), "taken@example.com"),
		chromedp.SetUploadFiles(chromedp.CSS("#avatar"), []string{pngFile(t, "me.png", avatarSize)}),
		chromedp.Click(chromedp.CSS("button")))
	waitJS(t, ctx, "the app's field error", `!!document.querySelector("#email-error")`)
	got := evalString(t, ctx, `[document.querySelector("#email-error").textContent, document.querySelector("[aria-live]").textContent,
		document.querySelector("#email").value, (document.querySelector("#avatar-kept") || {}).textContent].join("|")`)
	if got != "This email is already registered|We could not create your account.|taken@example.com|me.png kept" {
		t.Errorf("after the refusal: %q", got)
	}
	screenshot(t, ctx, "react-app-refusal")

	// Fixed, sent again without choosing the avatar again.
	run(t, ctx, chromedp.SetValue(chromedp.CSS("#email"), "ada@example.com"), chromedp.Click(chromedp.CSS("button")))
	waitJS(t, ctx, "the message with the new user's id", `/^User u\d+ created!$/.test(document.querySelector("[aria-live]").textContent)`)
	id := strings.TrimSuffix(strings.TrimPrefix(evalString(t, ctx, `document.querySelector("[aria-live]").textContent`), "User "), " created!")
	if files := s.app.userFiles(id); files["avatar"] != avatarSize {
		t.Errorf("user %s was created with files %v, want the kept avatar of %d bytes", id, files, avatarSize)
	}
	if got := evalString(t, ctx, `String(!!document.querySelector("#email-error"))`); got != "false" {
		t.Errorf("the field error is still shown after the success")
	}
	screenshot(t, ctx, "react-created")

	// The app refuses after the wait ran out: 202, then the status.
	run(t, ctx, chromedp.SetValue(chromedp.CSS("#email"), "late@example.com"), chromedp.Click(chromedp.CSS("button")))
	waitJS(t, ctx, "the pending button", `document.querySelector("button").disabled`)
	waitJS(t, ctx, "the later refusal", `!!document.querySelector("#email-error") && !document.querySelector("button").disabled`)
	if got := evalString(t, ctx, `document.querySelector("#email-error").textContent + "|" + document.querySelector("#email").value`); got != "This email is already registered|late@example.com" {
		t.Errorf("after the later refusal: %q", got)
	}
}

var userMessage = regexp.MustCompile(`^User (u\d+) created!$`)

// TestClientShowsAppRefusal: formq.js on a page of another origin. The
// app's refusal within the action's wait shows beside the field with the
// avatar kept (formq:invalid from the app); sent again without the file,
// the user is created and the page follows the redirect made with the
// new id, formq:success carrying the data; a refusal after the wait ran
// out reaches the form through the status, the page staying.
func TestClientShowsAppRefusal(t *testing.T) {
	s := startAnswersSite(t, answersActions)
	ctx := tab(t)
	run(t, ctx, chromedp.Navigate(s.page+"/js"), chromedp.WaitVisible(chromedp.CSS("#email")))
	waitJS(t, ctx, "client.js", `document.querySelector("form").noValidate === true`)
	const avatarSize = 200 << 10
	run(t, ctx, chromedp.SendKeys(chromedp.CSS("#email"), "taken@example.com"),
		chromedp.SetUploadFiles(chromedp.CSS("#avatar"), []string{pngFile(t, "me.png", avatarSize)}),
		chromedp.Click(chromedp.CSS("button")))
	waitJS(t, ctx, "the app's field error", `!!document.querySelector("#email-error")`)
	got := evalString(t, ctx, `[document.querySelector("#email-error").textContent, document.querySelector("[data-formq-summary] strong").textContent,
		document.querySelector("#email").value, document.querySelector("[data-formq-kept-note=avatar]").textContent,
		window.seen.map((e) => e.event + ":" + (e.source || "")).join(",")].join("|")`)
	if got != "This email is already registered|We could not create your account.|taken@example.com|me.png (200 KB) kept — choose another to replace it|submit:,invalid:app" {
		t.Errorf("after the refusal: %q", got)
	}
	screenshot(t, ctx, "client-app-refusal")

	// The refusal after the wait: the page stays and shows it.
	run(t, ctx, chromedp.SetValue(chromedp.CSS("#email"), "late@example.com"), chromedp.Click(chromedp.CSS("button")))
	waitJS(t, ctx, "the later refusal", `window.seen.length == 4`)
	got = evalString(t, ctx, `[location.pathname, document.querySelector("#email-error").textContent, document.querySelector("#email").value,
		!!document.querySelector('input[type=hidden][data-formq-kept="avatar"]'), window.seen.map((e) => e.event + ":" + (e.source || "")).join(",")].join("|")`)
	if got != "/js|This email is already registered|late@example.com|true|submit:,invalid:app,submit:,invalid:app" {
		t.Errorf("after the later refusal: %q", got)
	}

	// Fixed: created with the kept avatar; the redirect carries the id.
	run(t, ctx, chromedp.SetValue(chromedp.CSS("#email"), "grace@example.com"), chromedp.Click(chromedp.CSS("button")))
	waitJS(t, ctx, "the redirect with the new user's id", `location.pathname == "/thanks"`)
	id := evalString(t, ctx, `new URLSearchParams(location.search).get("id")`)
	if files := s.app.userFiles(id); files["avatar"] != avatarSize {
		t.Errorf("user %q was created with files %v, want the kept avatar", id, files)
	}
	var seen []struct {
		Event, Source, Message, Status string
		Data                           map[string]map[string]string
	}
	if err := json.Unmarshal([]byte(evalString(t, ctx, `sessionStorage.getItem("seen")`)), &seen); err != nil || len(seen) != 6 {
		t.Fatalf("events %v (%v)", seen, err)
	}
	if last := seen[5]; last.Event != "success" || last.Status != "completed" || last.Data["create"]["id"] != id || last.Message != "User "+id+" created!" {
		t.Errorf("formq:success detail %+v, want status completed, data.create.id %s and the message with it", last, id)
	}
}

// TestClientShowsLaterRefusalInPlace: a form that stays on the page with
// the live status keeps its values while the steps run; the app's refusal
// after the wait shows beside the field with the avatar kept and the
// status Rejected; a slow success shows the message with the new id.
func TestClientShowsLaterRefusalInPlace(t *testing.T) {
	s := startAnswersSite(t, answersActions)
	ctx := tab(t)
	run(t, ctx, chromedp.Navigate(s.page+"/js-status"), chromedp.WaitVisible(chromedp.CSS("#email")))
	waitJS(t, ctx, "client.js", `document.querySelector("form").noValidate === true`)
	run(t, ctx, chromedp.SendKeys(chromedp.CSS("#email"), "late@example.com"),
		chromedp.SetUploadFiles(chromedp.CSS("#avatar"), []string{pngFile(t, "me.png", 100<<10)}),
		chromedp.Click(chromedp.CSS("button")))
	waitJS(t, ctx, "the accepted answer", `document.querySelector("[data-formq-message]").textContent != ""`)
	waitJS(t, ctx, "the later refusal", `document.querySelector("[data-formq-status-text]").dataset.status == "rejected"`)
	got := evalString(t, ctx, `[document.querySelector("#email-error").textContent, document.querySelector("#email").value,
		document.querySelector("[data-formq-kept-note=avatar]").textContent, document.querySelector("[data-formq-status-text]").textContent,
		document.querySelector("[data-formq-message]").textContent, window.seen.map((e) => e.event + ":" + (e.source || "")).join(",")].join("|")`)
	if got != "This email is already registered|late@example.com|me.png (100 KB) kept — choose another to replace it|Rejected: We could not create your account.||submit:,success:,invalid:app" {
		t.Errorf("after the later refusal: %q", got)
	}
	screenshot(t, ctx, "client-later-refusal-in-place")

	run(t, ctx, chromedp.SetValue(chromedp.CSS("#email"), "slow@example.com"), chromedp.Click(chromedp.CSS("button")))
	waitJS(t, ctx, "the status to reach completed", `document.querySelector("[data-formq-status-text]").dataset.status == "completed"`)
	msg := evalString(t, ctx, `document.querySelector("[data-formq-message]").textContent`)
	m := userMessage.FindStringSubmatch(msg)
	if m == nil {
		t.Fatalf("message %q, want the new user's id in it", msg)
	}
	if files := s.app.userFiles(m[1]); files["avatar"] != 100<<10 {
		t.Errorf("user %s files %v, want the kept avatar", m[1], files)
	}
	if got := evalString(t, ctx, `document.querySelector("#email").value + "|" + document.querySelectorAll("[data-formq-error]").length`); got != "|0" {
		t.Errorf("after the completion, the form is not reset: %q", got)
	}
}

// TestAppRefusalWithoutJavaScript: without JavaScript, the app's refusal
// within the wait re-renders the hosted form with the error, the value and
// the kept avatar; on a page of the developer's with an error redirect,
// it comes back as formq_state. A refusal after the wait reaches the done
// page: it shows the error and the filled form again, from which the
// person sends it fixed.
func TestAppRefusalWithoutJavaScript(t *testing.T) {
	s := startAnswersSite(t, answersActions)

	// The hosted form, re-rendered.
	ctx := tab(t)
	run(t, ctx, noScript(true), chromedp.Navigate(s.api+"/forms/create-user"), chromedp.WaitReady(chromedp.CSS("#f-email")),
		chromedp.SendKeys(chromedp.CSS("#f-email"), "taken@example.com"),
		chromedp.SetUploadFiles(chromedp.CSS("#f-avatar"), []string{pngFile(t, "me.png", 50<<10)}),
		chromedp.Click(chromedp.CSS("button")), chromedp.WaitReady(chromedp.CSS("#form-errors")))
	html := value(t, ctx, chromedp.OuterHTML(chromedp.CSS("html")))
	for _, want := range []string{"This email is already registered", "We could not create your account.", `value="taken@example.com"`, "me.png (50 KB) kept"} {
		if !strings.Contains(html, want) {
			t.Errorf("the re-rendered hosted form lacks %q", want)
		}
	}
	screenshot(t, ctx, "hosted-form-app-refusal")

	// The developer's page, through the error redirect.
	page := tab(t)
	run(t, page, noScript(true), chromedp.Navigate(s.page+"/nojs"), chromedp.WaitReady(chromedp.CSS("#email")),
		chromedp.SendKeys(chromedp.CSS("#email"), "taken@example.com"),
		chromedp.SetUploadFiles(chromedp.CSS("#avatar"), []string{pngFile(t, "me.png", 50<<10)}),
		chromedp.Click(chromedp.CSS("button")), chromedp.WaitReady(chromedp.CSS("#email-error")))
	if loc := value(t, page, chromedp.Location()); !strings.HasPrefix(loc, s.page+"/nojs?formq_state=") {
		t.Fatalf("the refusal landed on %s", loc)
	}
	got := evalString(t, page, `[document.querySelector("#summary").textContent, document.querySelector("#email-error").textContent,
		document.querySelector("#email").value, document.querySelector("#avatar-kept").textContent].join("|")`)
	if got != "We could not create your account.|This email is already registered|taken@example.com|me.png kept" {
		t.Errorf("the page's own re-render: %q", got)
	}
	run(t, page, chromedp.SetValue(chromedp.CSS("#email"), "ada@example.com"), chromedp.Click(chromedp.CSS("button")), chromedp.WaitReady(chromedp.CSS("#thanks")))
	loc := value(t, page, chromedp.Location())
	id := strings.TrimPrefix(loc, s.page+"/thanks?id=")
	if files := s.app.userFiles(id); files["avatar"] != 50<<10 {
		t.Errorf("after the error redirect, user %q (%s) files %v, want the kept avatar", id, loc, files)
	}

	// After the wait: the done page, then the refusal there.
	done := tab(t)
	run(t, done, noScript(true), chromedp.Navigate(s.api+"/forms/join"), chromedp.WaitReady(chromedp.CSS("#f-email")),
		chromedp.SendKeys(chromedp.CSS("#f-email"), "late@example.com"),
		chromedp.SetUploadFiles(chromedp.CSS("#f-avatar"), []string{pngFile(t, "me.png", 60<<10)}),
		chromedp.Click(chromedp.CSS("button")), chromedp.WaitReady(chromedp.CSS("[data-formq-status]")))
	loc = value(t, done, chromedp.Location())
	if !strings.Contains(loc, "/forms/join/done?") {
		t.Fatalf("after the wait the post landed on %s, want the done page", loc)
	}
	waitStatus(t, s, loc, "rejected")
	run(t, done, chromedp.Reload(), chromedp.WaitReady(chromedp.CSS("#form-errors")))
	html = value(t, done, chromedp.OuterHTML(chromedp.CSS("html")))
	for _, want := range []string{"This email is already registered", "We could not create your account.", `value="late@example.com"`, "me.png (60 KB) kept"} {
		if !strings.Contains(html, want) {
			t.Errorf("the done page of the refused submission lacks %q", want)
		}
	}
	screenshot(t, done, "done-page-app-refusal")
	run(t, done, noScript(false))
	noAxeViolations(t, done, "the done page of a refused submission")
	run(t, done, noScript(true))
	run(t, done, chromedp.SetValue(chromedp.CSS("#f-email"), "lin@example.com"), chromedp.Click(chromedp.CSS("button")))
	waitText(t, done, "Welcome, member u")
}

// TestDonePageTurnsToTheRefusal: with JavaScript, the done page of a
// submission the app refuses while the person looks at it turns into the
// errors and the filled form, without the person reloading it.
func TestDonePageTurnsToTheRefusal(t *testing.T) {
	s := startAnswersSite(t, answersActions)
	ctx := tab(t)
	// Posted without JavaScript so the browser lands on the done page
	// (the app takes six seconds; the action waits one).
	run(t, ctx, noScript(true), chromedp.Navigate(s.api+"/forms/join"), chromedp.WaitReady(chromedp.CSS("#f-email")),
		chromedp.SendKeys(chromedp.CSS("#f-email"), "sloth@example.com"),
		chromedp.Click(chromedp.CSS("button")), chromedp.WaitReady(chromedp.CSS("[data-formq-status]")))
	run(t, ctx, noScript(false), chromedp.Reload(), chromedp.WaitReady(chromedp.CSS("[data-formq-status]")))
	if got := evalString(t, ctx, `document.querySelector("[data-formq-status]").textContent`); got == "Rejected" {
		t.Fatalf("the app answered before the done page was shown with JavaScript; the test needs it slower")
	}
	evalString(t, ctx, `window.__notReloaded = true, ""`)
	waitJS(t, ctx, "the refusal on the done page", `!!document.querySelector("#form-errors")`)
	if got := evalString(t, ctx, `String(window.__notReloaded)`); got != "undefined" {
		t.Errorf("the refusal showed without the page being shown again (mark %s)", got)
	}
	if got := evalString(t, ctx, `document.querySelector("#f-email").value + "|" + document.querySelector("#form-errors").textContent`); !strings.Contains(got, "sloth@example.com|") || !strings.Contains(got, "This email is already registered") {
		t.Errorf("done page after the refusal: %q", got)
	}
}

// waitStatus polls a done page's submission until it has the status.
func waitStatus(t *testing.T, s *answersSite, donePage, want string) {
	t.Helper()
	u, err := url.Parse(donePage)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	statusURL := s.api + "/submissions/" + q.Get("submission") + "?t=" + url.QueryEscape(q.Get("t"))
	deadline := time.Now().Add(30 * time.Second)
	last := ""
	for time.Now().Before(deadline) {
		resp, err := http.Get(statusURL)
		if err == nil {
			var ans struct{ Submission struct{ Status string } }
			json.NewDecoder(resp.Body).Decode(&ans)
			resp.Body.Close()
			if last = ans.Submission.Status; last == want {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: status %q, want %s", statusURL, last, want)
}

// waitText waits for a page (also one without JavaScript) to show text.
func waitText(t *testing.T, ctx context.Context, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if html, err := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("html"))); err == nil && strings.Contains(html, want) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	html, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("html")))
	t.Fatalf("the page never showed %q:\n%s", want, html)
}
