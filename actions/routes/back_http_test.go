package routes_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/formq/formq/internal/teststack"
)

// backActions: a form on a shop's own page, allowed to post cross-site.
const backActions = `actions:
  contact:
    title: Contact
    origins: [https://shop.example]
    fields:
      name: {type: text, required: true}
`

// TestDonePageLinksBackToThePage: the done page after a post from a page
// on an allowed origin links back to that page (the Referer kept, sealed,
// with the submission's link); after a post whose Referer is not on an
// allowed origin, or from the hosted form, it links to the hosted form.
func TestDonePageLinksBackToThePage(t *testing.T) {
	st := startWithActions(t, backActions, nil)
	done := func(t *testing.T, header map[string]string) string {
		t.Helper()
		h := map[string]string{"Accept": browserAccept["Accept"]}
		for k, v := range header {
			h[k] = v
		}
		resp, raw := teststack.Post(t, st.APIURL+"/actions/contact", strings.NewReader(url.Values{"name": {"Ada"}}.Encode()), "application/x-www-form-urlencoded", h)
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("post: %d %s", resp.StatusCode, raw)
		}
		_, page := teststack.Do(t, http.MethodGet, resp.Header.Get("Location"), nil, browserAccept)
		return string(page)
	}
	hosted := `<a href="/forms/contact">Submit another</a>`

	t.Run("from a page on an allowed origin", func(t *testing.T) {
		page := done(t, map[string]string{"Origin": "https://shop.example", "Sec-Fetch-Site": "cross-site", "Referer": "https://shop.example/help/contact?topic=billing"})
		if want := `<a href="https://shop.example/help/contact?topic=billing">Back to the page you came from</a>`; !strings.Contains(page, want) {
			t.Errorf("done page lacks %s:\n%s", want, page)
		}
	})
	t.Run("a Referer on another origin", func(t *testing.T) {
		page := done(t, map[string]string{"Origin": "https://shop.example", "Sec-Fetch-Site": "cross-site", "Referer": "https://evil.example/phish"})
		if strings.Contains(page, "evil.example") || !strings.Contains(page, hosted) {
			t.Errorf("done page: want the hosted form's link, not the other origin's:\n%s", page)
		}
	})
	t.Run("from the hosted form", func(t *testing.T) {
		page := done(t, map[string]string{"Referer": st.APIURL + "/forms/contact"})
		if strings.Contains(page, "Back to the page") || !strings.Contains(page, hosted) {
			t.Errorf("done page: want the hosted form's link:\n%s", page)
		}
	})
}
