package client_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// submissionFiles reads what the API stored for a submission, as the
// admin sees it.
func submissionFiles(t *testing.T, s *site, id string) map[string]int64 {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.stack.APIURL+"/submissions/"+id, nil)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", "Bearer "+testAdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ans struct {
		Submission struct {
			Files []struct {
				Field string
				Size  int64
			}
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil || resp.StatusCode != 200 {
		t.Fatalf("status of %s: %d %v", id, resp.StatusCode, err)
	}
	out := map[string]int64{}
	for _, f := range ans.Submission.Files {
		out[f.Field] = f.Size
	}
	return out
}

// TestCustomPageWithJavaScript: a page on another origin with client.js.
// A file over its limit is refused before a byte is sent; the server's
// errors show inline with the values still in place; a file sent with a
// failed submit is kept and attached on the second submit without being
// sent again; the button shows the pending state; a multi-MB upload
// reports progress; success follows _redirect back to the page's origin.
func TestCustomPageWithJavaScript(t *testing.T) {
	s := startSite(t)
	ctx := tab(t)
	run(t, ctx, chromedp.Navigate(s.page+"/js"), chromedp.WaitVisible(chromedp.CSS("#name")))
	waitJS(t, ctx, "client.js to load the schema", `document.querySelector("form").noValidate === true`)

	// Checks in the browser: nothing reaches the API.
	run(t, ctx,
		chromedp.SendKeys(chromedp.CSS("#name"), "A"),
		chromedp.SetUploadFiles(chromedp.CSS("#avatar"), []string{pngFile(t, "huge.png", 6<<20)}),
		chromedp.Click(chromedp.CSS("button")))
	waitJS(t, ctx, "the error summary", `!!document.querySelector("[data-formq-summary]")`)
	if n := s.posts.Load(); n != 0 {
		t.Fatalf("the API saw %d posts for a form refused in the browser", n)
	}
	for sel, want := range map[string]string{
		"#avatar-error": "File too large (max 5MB)", "#name-error": "Name must be at least 2 characters",
		"#agree-error": "Please accept the terms", "[data-formq-summary]": "Please fix the errors below.",
	} {
		if got := evalString(t, ctx, `(document.querySelector(`+jsString(sel)+`) || {}).textContent || ""`); !strings.Contains(got, want) {
			t.Errorf("%s: %q, want %q", sel, got, want)
		}
	}
	if got := evalString(t, ctx, `document.activeElement.dataset.formqSummary === "" ? "summary" : document.activeElement.outerHTML`); got != "summary" {
		t.Errorf("focus on %s, want the error summary", got)
	}
	if got := evalString(t, ctx, `document.querySelector("#name").getAttribute("aria-invalid") + " " + document.querySelector("#name").getAttribute("aria-describedby")`); got != "true name-error" {
		t.Errorf("name: aria-invalid and aria-describedby %q", got)
	}
	screenshot(t, ctx, "custom-page-inline-errors")

	// The server's errors: the document's bytes are text although its
	// name says PNG, so only the server can tell. The avatar is kept.
	const avatarSize = 3 << 20
	run(t, ctx,
		chromedp.SetValue(chromedp.CSS("#name"), "Ada Lovelace"), chromedp.SendKeys(chromedp.CSS("#email"), "ada@example.com"),
		chromedp.SetValue(chromedp.CSS("#plan"), "pro"), chromedp.Click(chromedp.CSS("#agree")),
		chromedp.SetUploadFiles(chromedp.CSS("#avatar"), []string{pngFile(t, "me.png", avatarSize)}),
		chromedp.SetUploadFiles(chromedp.CSS("#document"), []string{writeFile(t, "fake.png", []byte("just some text, not a picture"))}),
		chromedp.Click(chromedp.CSS("button")))
	waitJS(t, ctx, "the kept avatar", `!!document.querySelector('input[type=hidden][data-formq-kept="avatar"]')`)
	first := s.bytes.Load()
	if s.posts.Load() != 1 || first < avatarSize {
		t.Fatalf("first submit: %d posts, %d bytes", s.posts.Load(), first)
	}
	if got := evalString(t, ctx, `document.querySelector("#document-error").textContent`); !strings.Contains(got, "File type text (text/plain) not allowed (allowed: PDF or PNG)") {
		t.Errorf("server error for the document: %q", got)
	}
	if got := evalString(t, ctx, `document.querySelector("#name").value + "|" + document.querySelector("#email").value`); got != "Ada Lovelace|ada@example.com" {
		t.Errorf("values after the failed submit: %q", got)
	}
	if got := evalString(t, ctx, `document.querySelector("[data-formq-kept-note=avatar]").textContent`); got != "me.png (3 MB) kept — choose another to replace it" {
		t.Errorf("kept note %q", got)
	}
	screenshot(t, ctx, "custom-page-server-errors-kept-file")

	// The second submit sends a 12 MB document and the avatar's reference.
	const docSize = 12 << 20
	run(t, ctx, chromedp.SetUploadFiles(chromedp.CSS("#document"), []string{pngFile(t, "portfolio.png", docSize)}), chromedp.Click(chromedp.CSS("button")))
	waitJS(t, ctx, "the redirect back to the page's origin", `location.pathname == "/thanks"`)
	second := s.bytes.Load() - first
	if second < docSize || second >= docSize+avatarSize {
		t.Errorf("second submit sent %d bytes: the 12 MB document and not the 3 MB avatar again", second)
	}
	id := evalString(t, ctx, `new URLSearchParams(location.search).get("id")`)
	if files := submissionFiles(t, s, id); files["avatar"] != avatarSize || files["document"] != docSize {
		t.Errorf("submission %s files %v", id, files)
	}

	var seen struct {
		Events   []string
		Pending  []bool
		Progress [][3]any
	}
	if err := json.Unmarshal([]byte(evalString(t, ctx, `sessionStorage.getItem("seen")`)), &seen); err != nil {
		t.Fatal(err)
	}
	if len(seen.Pending) != 2 || !seen.Pending[0] || !seen.Pending[1] {
		t.Errorf("pending state (data-pending, aria-busy, disabled button, pending label) on each sent submit: %v", seen.Pending)
	}
	if strings.Join(seen.Events, ",") != "invalid,submit,invalid,submit,success" {
		t.Errorf("events %v", seen.Events)
	}
	last := seen.Progress[len(seen.Progress)-1]
	if len(seen.Progress) < 2 || last[0] != last[1] || last[1].(float64) < docSize || !strings.Contains(last[2].(string), "document:12582912/12582912") {
		t.Errorf("progress events %v", seen.Progress)
	}
	t.Logf("%d progress events for the 12 MB upload; last %v", len(seen.Progress), last)
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// TestLiveStatusOnThePage: a form that stays on the page shows the
// action's message and the submission's status live until completed.
func TestLiveStatusOnThePage(t *testing.T) {
	s := startSite(t)
	ctx := tab(t)
	run(t, ctx, chromedp.Navigate(s.page+"/js-status"), chromedp.WaitVisible(chromedp.CSS("#name")))
	waitJS(t, ctx, "client.js", `document.querySelector("form").noValidate === true`)
	run(t, ctx, chromedp.SendKeys(chromedp.CSS("#name"), "Grace Hopper"), chromedp.SendKeys(chromedp.CSS("#email"), "grace@example.com"),
		chromedp.SetValue(chromedp.CSS("#plan"), "free"), chromedp.Click(chromedp.CSS("#agree")), chromedp.Click(chromedp.CSS("button")))
	waitJS(t, ctx, "the status to reach completed", `document.querySelector("[data-formq-status-text]").dataset.status == "completed"`)
	if got := evalString(t, ctx, `document.querySelector("[data-formq-message]").textContent + "|" + document.querySelector("[data-formq-status-text]").textContent`); got != "Welcome aboard!|Completed" {
		t.Errorf("message and status %q", got)
	}
	if got := evalString(t, ctx, `window.seen.events.join(",")`); !strings.HasPrefix(got, "submit,success,status") || !strings.HasSuffix(got, "status") {
		t.Errorf("events %s", got)
	}
	if got := evalString(t, ctx, `location.pathname`); got != "/js-status" {
		t.Errorf("left the page for %s", got)
	}
}

// TestCustomPageWithoutJavaScript: the same page with JavaScript off. A
// failed post comes back to the page (formq_state), whose server shows
// the errors, values and kept file; the second post attaches the kept
// file without sending it again and lands on the _redirect.
func TestCustomPageWithoutJavaScript(t *testing.T) {
	s := startSite(t)
	ctx := tab(t)
	const avatarSize = 2 << 20
	run(t, ctx, noScript(true), chromedp.Navigate(s.page+"/nojs"), chromedp.WaitReady(chromedp.CSS("#name")),
		chromedp.SendKeys(chromedp.CSS("#name"), "A"), chromedp.SendKeys(chromedp.CSS("#email"), "ada@example.com"),
		chromedp.SetUploadFiles(chromedp.CSS("#avatar"), []string{pngFile(t, "me.png", avatarSize)}),
		chromedp.Click(chromedp.CSS("button")), chromedp.WaitReady(chromedp.CSS("#name-server-error")))
	loc := value(t, ctx, chromedp.Location())
	html := value(t, ctx, chromedp.OuterHTML(chromedp.CSS("html")))
	if !strings.HasPrefix(loc, s.page+"/nojs?formq_state=") {
		t.Fatalf("error redirect landed on %s", loc)
	}
	for _, want := range []string{"Name must be at least 2 characters", "Please accept the terms", `value="ada@example.com"`, "me.png kept"} {
		if !strings.Contains(html, want) {
			t.Errorf("the page's own re-render lacks %q", want)
		}
	}
	first := s.bytes.Load()
	run(t, ctx, chromedp.SetValue(chromedp.CSS("#name"), "Ada Lovelace"), chromedp.SetValue(chromedp.CSS("#plan"), "pro"), chromedp.Click(chromedp.CSS("#agree")),
		chromedp.Click(chromedp.CSS("button")), chromedp.WaitReady(chromedp.CSS("#thanks")))
	loc = value(t, ctx, chromedp.Location())
	if !strings.HasPrefix(loc, s.page+"/thanks?id=") {
		t.Fatalf("success landed on %s", loc)
	}
	if second := s.bytes.Load() - first; second >= avatarSize {
		t.Errorf("the kept avatar was sent again: %d bytes", second)
	}
	id := strings.TrimPrefix(loc, s.page+"/thanks?id=")
	if files := submissionFiles(t, s, id); files["avatar"] != avatarSize {
		t.Errorf("submission %s files %v", id, files)
	}
}

// TestRefusedOriginInTheBrowser: a page on an origin formq does not allow
// says why, naming the setting, before it sends anything.
func TestRefusedOriginInTheBrowser(t *testing.T) {
	s := startSite(t)
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.servePage(t, w, r) }))
	t.Cleanup(other.Close)
	ctx := tab(t)
	run(t, ctx, chromedp.Navigate(other.URL+"/js"), chromedp.WaitVisible(chromedp.CSS("#name")))
	waitJS(t, ctx, "client.js", `document.querySelector("form").noValidate === true`)
	run(t, ctx, chromedp.SendKeys(chromedp.CSS("#name"), "Ada"), chromedp.Click(chromedp.CSS("button")))
	waitJS(t, ctx, "the refusal", `!!document.querySelector("[data-formq-summary]")`)
	got := evalString(t, ctx, `document.querySelector("[data-formq-summary]").textContent`)
	if !strings.Contains(got, other.URL) || !strings.Contains(got, "FORMQ_ALLOWED_ORIGINS") || !strings.Contains(got, `"signup"`) {
		t.Errorf("refusal %q", got)
	}
	if n := s.posts.Load(); n != 0 {
		t.Errorf("%d posts sent from a refused origin", n)
	}
}

// TestHostedForm: the hosted form in light and dark, with no axe-core
// violations; submitted with the keyboard alone; the done page's status
// reaching completed; the no-JavaScript re-render with focus on its
// summary and a kept file.
func TestHostedForm(t *testing.T) {
	s := startSite(t)
	ctx := tab(t)
	run(t, ctx, chromedp.Navigate(s.api+"/forms/signup"), chromedp.WaitVisible(chromedp.CSS("#f-name")))
	waitJS(t, ctx, "client.js", `document.querySelector("form").noValidate === true`)
	inBothThemes(t, ctx, "hosted-form", "the hosted form")
	onAPhone(t, ctx, "hosted-form", "the hosted form")
	run(t, ctx, chromedp.EmulateReset(), chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#f-name")))
	waitJS(t, ctx, "client.js", `document.querySelector("form").noValidate === true`)

	// Keyboard only: Tab through the fields, type, Space, Enter.
	focused := func(want string) {
		t.Helper()
		if got := evalString(t, ctx, `document.activeElement.id || document.activeElement.tagName`); got != want {
			t.Fatalf("focus on %s, want %s", got, want)
		}
	}
	key := func(keys string) { run(t, ctx, chromedp.KeyEvent(keys)) }
	key(kb.Tab)
	focused("f-name")
	key("Ada Lovelace")
	key(kb.Tab)
	focused("f-email")
	key("ada@example.com")
	key(kb.Tab)
	focused("f-plan")
	key(kb.ArrowDown)
	key(kb.ArrowDown)
	key(kb.Tab)
	focused("f-agree")
	key(" ")
	key(kb.Tab)
	focused("f-avatar")
	key(kb.Tab)
	focused("f-document")
	key(kb.Tab)
	focused("BUTTON")
	if got := evalString(t, ctx, `[document.querySelector("#f-plan").value, document.querySelector("#f-agree").checked].join()`); got != "pro,true" {
		t.Fatalf("plan and terms by keyboard: %s", got)
	}
	key(kb.Enter)
	waitJS(t, ctx, "the done page", `location.pathname == "/forms/signup/done"`)
	waitJS(t, ctx, "the live status to reach completed", `(document.querySelector("[data-formq-status]") || {dataset: {}}).dataset.status == "completed"`)
	screenshot(t, ctx, "done-page")
	noAxeViolations(t, ctx, "the done page")

	// Without JavaScript: the server's re-render, focus on its summary
	// (autofocus), Error: in the title, the avatar kept.
	nojs := tab(t)
	run(t, nojs, noScript(true), chromedp.Navigate(s.api+"/forms/signup"), chromedp.WaitReady(chromedp.CSS("#f-name")),
		chromedp.SendKeys(chromedp.CSS("#f-name"), "A"),
		chromedp.SetUploadFiles(chromedp.CSS("#f-avatar"), []string{pngFile(t, "me.png", 200<<10)}),
		chromedp.Click(chromedp.CSS("button")), chromedp.WaitReady(chromedp.CSS("#form-errors")))
	title := value(t, nojs, chromedp.Title())
	html := value(t, nojs, chromedp.OuterHTML(chromedp.CSS("html")))
	run(t, nojs, noScript(false))
	if title != "Error: Create your account" || !strings.Contains(html, "me.png (200 KB) kept — choose another to replace it") {
		t.Errorf("re-render: title %q\n%s", title, html)
	}
	if got := evalString(t, nojs, `document.activeElement.id`); got != "form-errors" {
		t.Errorf("focus after the re-render on %q, want the error summary", got)
	}
	screenshot(t, nojs, "hosted-form-rerender")
	noAxeViolations(t, nojs, "the re-rendered hosted form")
	run(t, nojs, darkMode(true))
	screenshot(t, nojs, "hosted-form-rerender-dark")
	noAxeViolations(t, nojs, "the re-rendered hosted form (dark)")
}

// TestRetriesAndBusyServer: a 503 is explained with its Retry-After; a
// post whose answer is lost (formq accepted it, the connection dropped) is
// retried with the same idempotency key, so the submission is made once.
func TestRetriesAndBusyServer(t *testing.T) {
	s := startSite(t)
	ctx := tab(t)
	run(t, ctx, chromedp.Navigate(s.page+"/js"), chromedp.WaitVisible(chromedp.CSS("#name")))
	waitJS(t, ctx, "client.js", `document.querySelector("form").noValidate === true`)
	run(t, ctx, chromedp.SendKeys(chromedp.CSS("#name"), "Ada Lovelace"), chromedp.SendKeys(chromedp.CSS("#email"), "ada@example.com"),
		chromedp.SetValue(chromedp.CSS("#plan"), "pro"), chromedp.Click(chromedp.CSS("#agree")))
	s.busy.Store(1)
	run(t, ctx, chromedp.Click(chromedp.CSS("button")))
	waitJS(t, ctx, "the busy notice", `!!document.querySelector("[data-formq-summary]")`)
	if got := evalString(t, ctx, `document.querySelector("[data-formq-summary]").textContent`); got != "The service is briefly unavailable; nothing was saved. Try again shortly. Try again in 7 seconds." {
		t.Errorf("busy notice %q", got)
	}
	if got := evalString(t, ctx, `document.querySelector("button").disabled + " " + window.seen.events.join(",")`); got != "false submit,error" {
		t.Errorf("after the 503: %s", got)
	}
	s.drop.Store(1)
	run(t, ctx, chromedp.Click(chromedp.CSS("button")))
	waitJS(t, ctx, "the redirect after the retry", `location.pathname == "/thanks"`)
	if n := s.posts.Load(); n != 3 {
		t.Errorf("%d posts, want 3: the busy one, the dropped one and its retry", n)
	}
	// The API queues a submission's task (its id is the submission id)
	// before it answers: a second submission would be here already.
	keys, err := s.stack.RDB.Keys(context.Background(), "asynq:{*}:t:*").Result()
	id := evalString(t, ctx, `new URLSearchParams(location.search).get("id")`)
	if err != nil || len(keys) != 1 || !strings.HasSuffix(keys[0], ":t:"+id) {
		t.Errorf("submissions %v (%v), want only %s", keys, err, id)
	}
}

// TestThemedHostedForm: a deployment-wide theme from the actions file: the
// accent, a logo and a stylesheet from the developer's origin, let in by
// the page's Content-Security-Policy.
func TestThemedHostedForm(t *testing.T) {
	s := startSiteWith(t, func(page string) string {
		return `{accent: "#7c3aed", logo: "` + page + `/logo.svg", stylesheet: "` + page + `/forms.css"}`
	})
	ctx := tab(t)
	run(t, ctx, chromedp.Navigate(s.api+"/forms/signup"), chromedp.WaitVisible(chromedp.CSS("#f-name")))
	waitJS(t, ctx, "the logo and the stylesheet", `document.querySelector("img.logo").naturalWidth > 0 && getComputedStyle(document.querySelector("button")).borderRadius == "0px"`)
	got := evalString(t, ctx, `[getComputedStyle(document.querySelector("button")).backgroundColor, getComputedStyle(document.body).fontFamily].join("|")`)
	if got != "rgb(124, 58, 237)|Georgia, serif" {
		t.Errorf("accent and font: %s", got)
	}
	screenshot(t, ctx, "hosted-form-themed")
	noAxeViolations(t, ctx, "the themed hosted form")
}

// TestStaticPageRestoresState: a browser without JavaScript posted a
// static page's form and failed validation; formq's error redirect brings
// it back with ?formq_state=. With JavaScript on that page, formq.js shows
// the errors, values and kept file again by itself, says which value was
// too long to carry back, and drops formq_state from the address.
func TestStaticPageRestoresState(t *testing.T) {
	s := startSite(t)
	loc := failedPostWithoutJavaScript(t, s, "/static")

	ctx := tab(t)
	run(t, ctx, chromedp.Navigate(loc))
	waitJS(t, ctx, "the errors brought back", `!!document.querySelector("[data-formq-summary]")`)
	for expr, want := range map[string]string{
		`document.querySelector("#email").value`:                                           "ada@example.com",
		`document.querySelector("#plan").value`:                                            "pro",
		`document.querySelector("#name").value`:                                            "",
		`document.querySelector("#name-error").textContent`:                                "Too long to bring back: please enter it again.",
		`document.querySelector("#agree-error").textContent`:                               "Please accept the terms",
		`document.querySelector("[data-formq-kept-note=avatar]").textContent`:              "kept — choose another to replace it",
		`String(!!document.querySelector('input[type=hidden][data-formq-kept="avatar"]'))`: "true",
		`location.search`: "",
		`document.activeElement.dataset.formqSummary === "" ? "summary" : document.activeElement.tagName`: "summary",
	} {
		if got := evalString(t, ctx, expr); !strings.Contains(got, want) || (want == "" && got != "") {
			t.Errorf("%s = %q, want %q", expr, got, want)
		}
	}
	screenshot(t, ctx, "static-page-restored-state")
}

// TestProgressOnlyWhileUploading: the page's <progress data-formq-progress>
// is hidden until files upload, shown while they do, and hidden again
// when the answer came.
func TestProgressOnlyWhileUploading(t *testing.T) {
	s := startSite(t)
	ctx := tab(t)
	run(t, ctx, chromedp.Navigate(s.page+"/js"), chromedp.WaitVisible(chromedp.CSS("#name")))
	waitJS(t, ctx, "client.js to enhance the form", `document.querySelector("form").noValidate === true`)
	if got := evalString(t, ctx, `String(document.querySelector("progress").hidden)`); got != "true" {
		t.Fatalf("the progress bar before any upload: hidden=%s, want true", got)
	}
	// Stay on the page: the bar's state at each progress event and after.
	evalString(t, ctx, `(() => { const f = document.querySelector("form"); f.dataset.formqSuccess = "message";
		window.bar = []; f.addEventListener("formq:progress", () => window.bar.push(document.querySelector("progress").hidden)); return "" })()`)
	run(t, ctx,
		chromedp.SendKeys(chromedp.CSS("#name"), "Ada Lovelace"), chromedp.SendKeys(chromedp.CSS("#email"), "ada@example.com"),
		chromedp.SetValue(chromedp.CSS("#plan"), "pro"), chromedp.Click(chromedp.CSS("#agree")),
		chromedp.SetUploadFiles(chromedp.CSS("#avatar"), []string{pngFile(t, "me.png", 3<<20)}),
		chromedp.Click(chromedp.CSS("button")))
	waitJS(t, ctx, "the answer", `document.querySelector("[data-formq-message]").textContent != ""`)
	if got := evalString(t, ctx, `JSON.stringify([...new Set(window.bar)]) + " " + document.querySelector("progress").hidden`); got != "[false] true" {
		t.Errorf("the bar while uploading and after: %s, want [false] true (shown during every progress event, hidden after)", got)
	}
}
