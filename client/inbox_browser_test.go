package client_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/formq/formq/internal/teststack"
)

// TestAdminInbox: the inbox pages in Chromium, signed in with the
// browser's Basic login: the list with who and what, in light, dark and
// on a phone, without axe-core violations; a search, a selection starred
// with the keyboard alone; the detail page; an export fetched with the
// same login.
func TestAdminInbox(t *testing.T) {
	s := startSite(t)
	signups(t, s)
	u := signedIn(s)
	ctx := tab(t)
	run(t, ctx, chromedp.Navigate(u.String()+"/admin/inbox"), chromedp.WaitVisible(chromedp.CSS("tbody tr")))
	if got := evalString(t, ctx, `[...document.querySelectorAll("tbody .who")].map((e) => e.textContent.trim()).join(" | ")`); got != "Unread: Margaret Hamilton <margaret@example.com> | Unread: Grace Hopper <grace@example.com> | Unread: Ada Lovelace <ada@example.com>" {
		t.Errorf("the list shows %q", got)
	}
	if got := evalString(t, ctx, `document.querySelector(".count").textContent`); got != "3 submissions" {
		t.Errorf("the count reads %q", got)
	}
	inBothThemes(t, ctx, "inbox-list", "the inbox list")
	onAPhone(t, ctx, "inbox-list", "the inbox list")
	run(t, ctx, chromedp.EmulateReset(), chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("tbody tr")))

	// Keyboard only: Tab to the search, type, Enter; Tab to the row's
	// checkbox, Space; Tab back to Star, Enter.
	key := func(keys string) { run(t, ctx, chromedp.KeyEvent(keys)) }
	tabTo := func(js, what string) {
		t.Helper()
		for range 30 {
			if evalString(t, ctx, `String(`+js+`)`) == "true" {
				return
			}
			key(kb.Tab)
		}
		t.Fatalf("Tab never reached %s", what)
	}
	tabTo(`document.activeElement.id == "f-q"`, "the search box")
	key("grace")
	key(kb.Enter)
	waitJS(t, ctx, "the search's page", `location.search.includes("q=grace") && document.querySelectorAll("tbody tr").length == 1`)
	tabTo(`document.activeElement.name == "id"`, "the row's checkbox")
	key(" ")
	run(t, ctx, chromedp.KeyEvent(kb.Tab, chromedp.KeyModifiers(kb.ModifierShift)))
	for range 10 {
		if evalString(t, ctx, `document.activeElement.value`) == "star" {
			break
		}
		run(t, ctx, chromedp.KeyEvent(kb.Tab, chromedp.KeyModifiers(kb.ModifierShift)))
	}
	key(kb.Enter)
	waitJS(t, ctx, "the starred notice", `(document.querySelector("[role=status]") || {}).textContent == "1 submission starred."`)
	if got := evalString(t, ctx, `document.querySelector("tbody .who").textContent.trim()`); got != "Unread: ★ Starred: Grace Hopper <grace@example.com>" {
		t.Errorf("the starred row reads %q", got)
	}
	screenshot(t, ctx, "inbox-search-starred")

	tabTo(`document.activeElement.matches("td.msg a")`, "the row's link")
	key(kb.Enter)
	waitJS(t, ctx, "the detail page", `document.querySelector("h1") && document.querySelector("h1").textContent.startsWith("Submission")`)
	if got := evalString(t, ctx, `document.querySelector("main").innerText`); !strings.Contains(got, "Grace Hopper") || !strings.Contains(got, "Unstar") {
		t.Errorf("the detail page: %s", got)
	}
	inBothThemes(t, ctx, "inbox-detail", "the inbox detail")

	// The export, with the login the browser holds.
	out := value(t, ctx, chromedp.Evaluate[string](`fetch(location.origin + "/admin/submissions/export?action=signup&format=csv").then(async (r) => r.status + "\n" + await r.text())`, chromedp.EvalAwaitPromise))
	if !strings.HasPrefix(out, "200\n") || !strings.Contains(out, "margaret@example.com") {
		t.Errorf("the CSV export from the browser: %s", out)
	}
	// Back to the list: the opened submission is read now.
	run(t, ctx, chromedp.Navigate(s.stack.APIURL+"/admin/inbox"), chromedp.WaitVisible(chromedp.CSS("tbody tr")))
	if n := evalString(t, ctx, `String(document.querySelectorAll("tr.unread").length)`); n != "2" {
		t.Errorf("%s unread after opening one of three", n)
	}

	// The audit log page, from the nav: the star and the export are there,
	// with who did them and how many.
	tabTo(`document.activeElement.textContent == "Audit log"`, "the audit log link")
	key(kb.Enter)
	waitJS(t, ctx, "the audit log", `document.querySelector("h1") && document.querySelector("h1").textContent == "Audit log"`)
	rows := evalString(t, ctx, `[...document.querySelectorAll("tbody tr")].map((r) => [...r.cells].slice(1).map((c) => c.innerText.replace(/\s+/g, " ").trim()).join(" / ")).join("\n")`)
	if rows != "token admin, by token / export / signup / 3 / csv\ntoken admin, by token / bulk /  / 1 / star" {
		t.Errorf("the audit log page shows:\n%s", rows)
	}
	inBothThemes(t, ctx, "inbox-audit", "the audit log")
	onAPhone(t, ctx, "inbox-audit", "the audit log")
}

// signups posts Ada's, Grace's and Margaret's signups, in that order, and
// waits until the worker completed them; it answers their ids by email.
func signups(t *testing.T, s *site) map[string]string {
	t.Helper()
	ids := map[string]string{}
	for i, p := range []struct{ name, email string }{{"Ada Lovelace", "ada@example.com"}, {"Grace Hopper", "grace@example.com"}, {"Margaret Hamilton", "margaret@example.com"}} {
		if i > 0 {
			// The inbox lists by the millisecond a post was received, and
			// posts of one millisecond in any order (their ids are random):
			// two posts a few hundred microseconds apart once listed Grace
			// before Margaret.
			time.Sleep(3 * time.Millisecond)
		}
		form := url.Values{"name": {p.name}, "email": {p.email}, "plan": {"pro"}, "agree": {"on"}}
		resp, raw := teststack.Post(t, s.stack.APIURL+"/actions/signup", strings.NewReader(form.Encode()), "application/x-www-form-urlencoded", map[string]string{"Accept": "application/json"})
		var acc struct{ Submission struct{ ID string } }
		if resp.StatusCode != http.StatusAccepted || json.Unmarshal(raw, &acc) != nil {
			t.Fatalf("post %s: %d %s", p.name, resp.StatusCode, raw)
		}
		ids[p.email] = acc.Submission.ID
	}
	teststack.WaitFor(t, 60*time.Second, "three completed submissions", func() bool {
		_, raw := teststack.Do(t, "GET", s.stack.APIURL+"/admin/submissions?status=completed", nil, map[string]string{"Authorization": "Bearer " + testAdminToken})
		var l struct{ Submissions []json.RawMessage }
		json.Unmarshal(raw, &l)
		return len(l.Submissions) == 3
	})
	return ids
}

// signedIn is the API's URL with the admin's Basic login in it, as a
// browser holds it.
func signedIn(s *site) *url.URL {
	u, _ := url.Parse(s.stack.APIURL)
	u.User = url.UserPassword("admin", testAdminToken)
	return u
}
