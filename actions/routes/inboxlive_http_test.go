package routes_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/formq/formq/internal/teststack"
	"github.com/formq/formq/submission"
)

// previewAnswer is GET /admin/submissions with the previews and total.
type previewAnswer struct {
	Submissions []struct {
		submission.Listed
		Preview struct{ Who, What string } `json:"preview"`
	} `json:"submissions"`
	Total int    `json:"total"`
	Next  string `json:"next"`
}

// startLiveInbox runs a stack whose contact action posts to a local app
// that refuses grace@example.com with field errors (422), and posts
// three submissions; it answers their ids by first name.
func startLiveInbox(t *testing.T) (*teststack.Stack, map[string]string) {
	t.Helper()
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var rec submission.Submission
		json.NewDecoder(r.Body).Decode(&rec)
		if rec.Values["email"] == "grace@example.com" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnprocessableEntity)
			w.Write([]byte(`{"errors": {"email": ["This email is already registered"]}, "message": "Please check the form."}`))
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(app.Close)
	st := startWithActions(t, `actions:
  contact:
    fields:
      first_name: {type: text, label: First name}
      email: {type: email, required: true}
      topic: {type: select, options: [sales, support]}
      message: {type: textarea}
    steps:
      - webhook: {name: app, url: "`+app.URL+`/hook", secret_env: LIVE_HOOK_SECRET, max_attempts: 1}
  newsletter:
    fields:
      email: {type: email, required: true}
`, map[string]string{"FORMQ_WEBHOOK_ALLOW_PRIVATE": "true", "LIVE_HOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"})
	ids := map[string]string{}
	for _, p := range []struct{ name, email, message string }{
		{"Ada", "ada@example.com", "Question about the invoices of March: the totals look doubled."},
		{"Grace", "grace@example.com", "Bug report: the compiler rejects my form."},
		{"Linus", "linus@example.com", "Could you add a Finnish translation?"},
	} {
		resp, raw := send(t, st, "contact", url.Values{"first_name": {p.name}, "email": {p.email}, "topic": {"support"}, "message": {p.message}}, nil)
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("post %s: %d %s", p.name, resp.StatusCode, raw)
		}
		var acc struct{ Submission struct{ ID string } }
		json.Unmarshal(raw, &acc)
		ids[p.name] = acc.Submission.ID
	}
	if resp, raw := send(t, st, "newsletter", url.Values{"email": {"solo@example.com"}}, nil); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("newsletter: %d %s", resp.StatusCode, raw)
	}
	teststack.WaitFor(t, 60*time.Second, "four indexed submissions, done", func() bool {
		var l listAnswer
		admin(t, st, "GET", "/admin/submissions", &l)
		done := 0
		for _, s := range l.Submissions {
			if s.Status == submission.StatusCompleted || s.Status == submission.StatusRejected {
				done++
			}
		}
		return done == 4
	})
	return st, ids
}

// TestInboxPreviewsSearchAndCount: the list shows who sent each
// submission and what it says (from the declared name-like, email and
// text fields), the total, and a search over the values narrows it, on
// the JSON route and the page; the app's refusal shows in the status
// filter and on the detail page.
func TestInboxPreviewsSearchAndCount(t *testing.T) {
	st, ids := startLiveInbox(t)
	var l previewAnswer
	if r := admin(t, st, "GET", "/admin/submissions?action=contact", &l); r.StatusCode != http.StatusOK || l.Total != 3 || len(l.Submissions) != 3 {
		t.Fatalf("list: %d, total %d, %d items", r.StatusCode, l.Total, len(l.Submissions))
	}
	ada := l.Submissions[2]
	if ada.ID != ids["Ada"] || ada.Preview.Who != "Ada <ada@example.com>" || !strings.HasPrefix(ada.Preview.What, "Question about the invoices") {
		t.Errorf("Ada's preview: %+v", ada)
	}
	if ada.Values["topic"] != "support" || ada.Read || ada.Starred {
		t.Errorf("Ada's card and marks: %+v", ada)
	}
	for q, want := range map[string][]string{
		"compiler":          {"Grace"},
		"GRACE bug":         {"Grace"},
		"example.com":       {"Linus", "Grace", "Ada"},
		"finnish":           {"Linus"},
		"finnish invoices":  nil,
		ids["Ada"][10:]:     {"Ada"},
		"nothing-like-this": nil,
	} {
		var got previewAnswer
		if r := admin(t, st, "GET", "/admin/submissions?action=contact&q="+url.QueryEscape(q), &got); r.StatusCode != http.StatusOK {
			t.Fatalf("q=%s: %d", q, r.StatusCode)
		}
		var names []string
		for _, s := range got.Submissions {
			names = append(names, strings.Fields(s.Preview.Who)[0])
		}
		// The order of submissions posted within a few ms of each
		// other follows when the worker indexed them: compare as sets.
		sort.Strings(names)
		want = slices.Sorted(slices.Values(want))
		if fmt.Sprint(names) != fmt.Sprint(want) {
			t.Errorf("q=%q found %v, want %v", q, names, want)
		}
	}

	var rejected listAnswer
	if r := admin(t, st, "GET", "/admin/submissions?status=rejected", &rejected); r.StatusCode != http.StatusOK || len(rejected.Submissions) != 1 || rejected.Submissions[0].ID != ids["Grace"] {
		t.Fatalf("status=rejected: %d %+v", r.StatusCode, rejected.Submissions)
	}
	r, html := page(t, st, "GET", "/admin/inbox?action=contact&q=invoices", nil)
	if r.StatusCode != http.StatusOK || !strings.Contains(html, "Ada &lt;ada@example.com&gt;") || strings.Contains(html, "Linus") ||
		!strings.Contains(html, "3 submissions to contact") || !strings.Contains(html, `value="invoices"`) {
		t.Fatalf("the searched page: %d\n%s", r.StatusCode, html)
	}
	if r, html := page(t, st, "GET", "/admin/inbox?status=rejected", nil); r.StatusCode != http.StatusOK || !strings.Contains(html, "Grace &lt;grace@example.com&gt;") || strings.Contains(html, "Ada") {
		t.Fatalf("the rejected page: %d\n%s", r.StatusCode, html)
	}
	r, html = page(t, st, "GET", "/admin/inbox/"+ids["Grace"], nil)
	if r.StatusCode != http.StatusOK || !strings.Contains(html, "Your app refused this submission") || !strings.Contains(html, "Please check the form.") ||
		!strings.Contains(html, "This email is already registered") {
		t.Fatalf("the rejected detail: %d\n%s", r.StatusCode, html)
	}
}

// TestInboxMarksBulkAndExportFromTheBrowserSession: opening a submission
// marks it read; a selection is starred, marked unread and erased (after
// a confirmation) from the list's form; the export buttons' links work
// with the browser's Basic login.
func TestInboxMarksBulkAndExportFromTheBrowserSession(t *testing.T) {
	st, ids := startLiveInbox(t)
	ctx := context.Background()
	same := map[string]string{"Origin": st.APIURL, "Sec-Fetch-Site": "same-origin", "Content-Type": "application/x-www-form-urlencoded"}
	bulk := func(op string, back string, names ...string) (*http.Response, string) {
		t.Helper()
		form := url.Values{"op": {op}, "back": {back}}
		for _, n := range names {
			form.Add("id", ids[n])
		}
		h := map[string]string{"Authorization": "Basic " + basicAuth("admin", adminToken), "Accept": "text/html"}
		for k, v := range same {
			h[k] = v
		}
		resp, b := teststack.Do(t, "POST", st.APIURL+"/admin/inbox/bulk", strings.NewReader(form.Encode()), h)
		return resp, string(b)
	}
	flagged := func(flag string) []string {
		t.Helper()
		var l previewAnswer
		admin(t, st, "GET", "/admin/submissions?action=contact&flag="+flag, &l)
		var names []string
		for _, s := range l.Submissions {
			names = append(names, strings.Fields(s.Preview.Who)[0])
		}
		return names
	}
	if got := flagged("unread"); len(got) != 3 {
		t.Fatalf("unread at first: %v", got)
	}
	if r, _ := page(t, st, "GET", "/admin/inbox/"+ids["Linus"], nil); r.StatusCode != http.StatusOK {
		t.Fatalf("detail: %d", r.StatusCode)
	}
	if got := fmt.Sprint(flagged("read")); got != "[Linus]" {
		t.Errorf("read after opening Linus's: %s", got)
	}
	r, _ := bulk("star", "/admin/inbox?action=contact", "Ada", "Grace")
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/admin/inbox?action=contact&marked=star-2" {
		t.Fatalf("bulk star: %d %s", r.StatusCode, r.Header.Get("Location"))
	}
	if got := fmt.Sprint(flagged("starred")); got != "[Grace Ada]" {
		t.Errorf("starred: %s", got)
	}
	if _, html := page(t, st, "GET", "/admin/inbox?action=contact&marked=star-2", nil); !strings.Contains(html, "2 submissions starred.") || strings.Count(html, `<span class="visually-hidden">Starred: </span>`) != 2 {
		t.Errorf("the list after starring:\n%s", html)
	}
	bulk("unread", "/admin/inbox", "Linus")
	if got := flagged("read"); len(got) != 0 {
		t.Errorf("read after marking Linus's unread: %v", got)
	}
	// A post from another site is refused, like every admin form.
	same["Origin"], same["Sec-Fetch-Site"] = "https://evil.example", "cross-site"
	if r, _ := bulk("erase-confirmed", "/admin/inbox", "Ada"); r.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site bulk erase: %d", r.StatusCode)
	}
	same["Origin"], same["Sec-Fetch-Site"] = st.APIURL, "same-origin"
	r, html := bulk("erase", "https://evil.example/", "Ada", "Linus")
	if r.StatusCode != http.StatusOK || !strings.Contains(html, "Erase 2 submissions?") || !strings.Contains(html, `value="`+ids["Ada"]+`"`) || !strings.Contains(html, `name="back" value="/admin/inbox"`) {
		t.Fatalf("bulk erase question: %d\n%s", r.StatusCode, html)
	}
	if n := st.RDB.HLen(ctx, submission.IndexIDs).Val(); n != 4 {
		t.Fatalf("the question erased something: %d left", n)
	}
	r, _ = bulk("erase-confirmed", "/admin/inbox", "Ada", "Linus")
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/admin/inbox?marked=erased-2" {
		t.Fatalf("bulk erase: %d %s", r.StatusCode, r.Header.Get("Location"))
	}
	for _, n := range []string{"Ada", "Linus"} {
		id := ids[n]
		if st.RDB.HExists(ctx, submission.IndexCards, id).Val() || st.RDB.SIsMember(ctx, submission.InboxStarred, id).Val() || st.RDB.SIsMember(ctx, submission.InboxRead, id).Val() || st.RDB.HExists(ctx, submission.IndexIDs, id).Val() {
			t.Errorf("%s's card or marks outlived the erasure", n)
		}
	}
	if got := fmt.Sprint(flagged("starred")); got != "[Grace]" {
		t.Errorf("starred after the erasure: %s", got)
	}

	// The export buttons: links the browser follows with its Basic login.
	r, html = page(t, st, "GET", "/admin/inbox?action=contact", nil)
	if !strings.Contains(html, `href="/admin/submissions/export?action=contact&amp;format=csv"`) || !strings.Contains(html, `href="/admin/submissions/export?action=contact&amp;format=ndjson"`) {
		t.Fatalf("no export buttons: %d\n%s", r.StatusCode, html)
	}
	r, csvText := page(t, st, "GET", "/admin/submissions/export?action=contact&format=csv", nil)
	if r.StatusCode != http.StatusOK || !strings.Contains(csvText, "grace@example.com") || strings.Contains(csvText, "ada@example.com") {
		t.Fatalf("CSV export with Basic: %d\n%s", r.StatusCode, csvText)
	}
	r, _ = page(t, st, "GET", "/admin/submissions/export?action=contact&format=ndjson", map[string]string{"Authorization": "Basic " + basicAuth("admin", "wrong")})
	if r.StatusCode != http.StatusForbidden {
		t.Fatalf("export with a wrong password: %d", r.StatusCode)
	}
}
