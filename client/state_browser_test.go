package client_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/formq/formq/internal/teststack"
)

// failedPostWithoutJavaScript makes the post of a browser without
// JavaScript from the page at path: a name too long to carry back (and
// over its max_length), the terms not accepted, an avatar. It answers the
// error redirect's URL back to that page, with its formq_state.
func failedPostWithoutJavaScript(t *testing.T, s *site, path string) string {
	t.Helper()
	body, ctype := teststack.MultipartBody(t, map[string]string{
		"name": strings.Repeat("x", 1200), "email": "ada@example.com", "plan": "pro", "_error_redirect": s.page + path,
	}, map[string][]byte{"avatar": teststack.PNGLike(4096, 1)})
	req, err := http.NewRequest(http.MethodPost, s.api+"/actions/signup", body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", ctype)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, s.page+path+"?formq_state=") {
		t.Fatalf("the failed post answered %d to %q, want 303 to %s with formq_state", resp.StatusCode, loc, path)
	}
	return loc
}

// TestStateURLIsNoKeyAfterThePage: once the page it came back to has shown
// it (formq.js on a static page, or the page's own server), the
// formq_state URL, as history, logs and analytics keep it, gives another
// client none of the person's values. Two forms of the action on one page
// both show the state, which formq.js read once.
func TestStateURLIsNoKeyAfterThePage(t *testing.T) {
	s := startSite(t)
	readsAgain := func(t *testing.T, loc string) {
		t.Helper()
		u, err := url.Parse(loc)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.Get(s.api + "/actions/signup/state/" + url.PathEscape(u.Query().Get("formq_state")))
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || strings.Contains(string(raw), "ada@example.com") || strings.Contains(string(raw), "avatar") {
			t.Errorf("the formq_state URL, read again by another client, answered %d %s; want 400 without the values", resp.StatusCode, raw)
		}
	}

	t.Run("static page", func(t *testing.T) {
		loc := failedPostWithoutJavaScript(t, s, "/static-twice")
		ctx := tab(t)
		run(t, ctx, chromedp.Navigate(loc))
		waitJS(t, ctx, "the errors brought back", `!!document.querySelector("[data-formq-summary]")`)
		waitJS(t, ctx, "the footer form's value", `document.querySelector("#footer-email").value == "ada@example.com"`)
		if got := evalString(t, ctx, `document.querySelector("#email").value + "|" + location.search`); got != "ada@example.com|" {
			t.Errorf("the page's first form and address: %q", got)
		}
		readsAgain(t, loc)
	})

	t.Run("page's server", func(t *testing.T) {
		ctx := tab(t)
		run(t, ctx, noScript(true), chromedp.Navigate(s.page+"/nojs"), chromedp.WaitReady(chromedp.CSS("#name")),
			chromedp.SendKeys(chromedp.CSS("#name"), "A"), chromedp.SendKeys(chromedp.CSS("#email"), "ada@example.com"),
			chromedp.Click(chromedp.CSS("button")), chromedp.WaitReady(chromedp.CSS("#name-server-error")))
		loc := value(t, ctx, chromedp.Location())
		if !strings.HasPrefix(loc, s.page+"/nojs?formq_state=") {
			t.Fatalf("error redirect landed on %s", loc)
		}
		if html := value(t, ctx, chromedp.OuterHTML(chromedp.CSS("html"))); !strings.Contains(html, `value="ada@example.com"`) {
			t.Errorf("the page's own re-render lacks the address")
		}
		readsAgain(t, loc)
	})
}
