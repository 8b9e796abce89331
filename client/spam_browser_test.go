package client_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/formq/formq/internal/teststack"
)

const spamFolderActions = `actions:
  contact:
    fields:
      name: {type: text}
      email: {type: email}
      message: {type: textarea, required: true}
    spam:
      links: {max: 1, score: 3}
      blocked_words: {list: [casino], score: 3}
`

// TestAdminSpamFolder: the Spam folder in Chromium with the browser's
// Basic login: held submissions listed with their verdict and reasons,
// in light, dark and on a phone, without axe-core violations; a held
// submission's page shows the score and why, and its Release button
// moves it to the inbox, where its steps ran; Confirm keeps the other
// in the folder.
func TestAdminSpamFolder(t *testing.T) {
	path := writeFile(t, "actions.yaml", []byte(spamFolderActions))
	stack := teststack.Start(t, map[string]string{"FORMQ_ACTIONS": path, "FORMQ_ADMIN_TOKEN": testAdminToken})
	post := func(values url.Values) string {
		resp, raw := teststack.Post(t, stack.APIURL+"/actions/contact", strings.NewReader(values.Encode()), "application/x-www-form-urlencoded", map[string]string{"Accept": "application/json"})
		var acc struct{ Submission struct{ ID string } }
		if resp.StatusCode != http.StatusAccepted || json.Unmarshal(raw, &acc) != nil {
			t.Fatalf("post: %d %s", resp.StatusCode, raw)
		}
		return acc.Submission.ID
	}
	post(url.Values{"name": {"Ada Lovelace"}, "email": {"ada@example.com"}, "message": {"Could you send me the timetable for the autumn courses?"}})
	spammy := post(url.Values{"name": {"Best Offers"}, "email": {"win@offers.example"}, "message": {"Casino bonus today http://win.example/a and http://win.example/b"}})
	bot := post(url.Values{"name": {"Bob"}, "email": {"bob@example.net"}, "message": {"Hello there"}, "_gotcha": {"http://bot.example"}})
	admin := func(query string) []struct {
		ID, Status string
		Spam       struct{ Verdict string }
	} {
		_, raw := teststack.Do(t, "GET", stack.APIURL+"/admin/submissions?"+query, nil, map[string]string{"Authorization": "Bearer " + testAdminToken})
		var l struct {
			Submissions []struct {
				ID, Status string
				Spam       struct{ Verdict string }
			}
		}
		json.Unmarshal(raw, &l)
		return l.Submissions
	}
	teststack.WaitFor(t, 60*time.Second, "two held and one completed", func() bool {
		return len(admin("folder=spam")) == 2 && len(admin("status=completed")) == 1
	})

	u, _ := url.Parse(stack.APIURL)
	u.User = url.UserPassword("admin", testAdminToken)
	ctx := tab(t)
	run(t, ctx, chromedp.Navigate(u.String()+"/admin/inbox"), chromedp.WaitVisible(chromedp.CSS("tbody tr")))
	if got := evalString(t, ctx, `[...document.querySelectorAll("tbody .who")].map((e) => e.textContent.trim()).join(" | ")`); got != "Unread: Ada Lovelace <ada@example.com>" {
		t.Errorf("the inbox shows %q; spam must not be in it", got)
	}
	run(t, ctx, chromedp.Click(`nav.folders a[href$="folder=spam"]`), chromedp.WaitVisible(chromedp.CSS("tbody tr")))
	waitJS(t, ctx, "the Spam folder", `document.querySelector("h1").textContent == "Spam" && document.querySelectorAll("tbody tr").length == 2`)
	rows := evalString(t, ctx, `[...document.querySelectorAll("tbody tr")].map((r) => r.innerText.replace(/\s+/g, " ").trim()).join(" | ")`)
	for _, want := range []string{"Bob <bob@example.net>", "Score 10: the hidden honeypot field was filled in", "Best Offers <win@offers.example>", "Score 6: 2 links (more than 1); blocked words: casino", "spam"} {
		if !strings.Contains(rows, want) {
			t.Errorf("the Spam folder's rows lack %q: %s", want, rows)
		}
	}
	if got := evalString(t, ctx, `document.querySelector("nav.folders [aria-current]").textContent`); got != "Spam" {
		t.Errorf("the current folder reads %q", got)
	}
	inBothThemes(t, ctx, "spam-list", "the Spam folder")
	onAPhone(t, ctx, "spam-list", "the Spam folder")
	run(t, ctx, chromedp.EmulateViewport(1024, 768))

	run(t, ctx, chromedp.Navigate(u.String()+"/admin/inbox/"+spammy), chromedp.WaitVisible(chromedp.CSS("#spam-h")))
	section := evalString(t, ctx, `document.querySelector("section[aria-labelledby=spam-h]").innerText`)
	for _, want := range []string{"Spam check: spam, score 6", "links", "2 links (more than 1)", "blocked_words", "blocked words: casino", "Not spam: release and run its steps", "Confirm spam"} {
		if !strings.Contains(section, want) {
			t.Errorf("the held submission's spam check lacks %q: %s", want, section)
		}
	}
	inBothThemes(t, ctx, "spam-detail", "a held submission")

	run(t, ctx, chromedp.Click(`button[value=release]`))
	waitJS(t, ctx, "the release's notice", `(document.querySelector("[role=status]") || {}).textContent == "Released: it is in the inbox and its steps are running."`)
	if got := evalString(t, ctx, `document.querySelector("#spam-h").textContent`); got != "Spam check: released, score 6" {
		t.Errorf("after the release the page reads %q", got)
	}
	screenshot(t, ctx, "spam-released")
	teststack.WaitFor(t, 30*time.Second, "the released one completed in the inbox", func() bool {
		for _, it := range admin("status=completed") {
			if it.ID == spammy && it.Spam.Verdict == "released" {
				return true
			}
		}
		return false
	})

	run(t, ctx, chromedp.Navigate(u.String()+"/admin/inbox/"+bot), chromedp.WaitVisible(chromedp.CSS("#spam-h")), chromedp.Click(`button[value=confirm]`))
	waitJS(t, ctx, "the confirmation's notice", `(document.querySelector("[role=status]") || {}).textContent.startsWith("Confirmed as spam")`)
	if held := admin("folder=spam"); len(held) != 1 || held[0].ID != bot || held[0].Spam.Verdict != "confirmed" {
		t.Errorf("the Spam folder after a release and a confirmation: %+v", held)
	}
}
