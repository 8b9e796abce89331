package routes_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/formq/formq/internal/teststack"
	"github.com/formq/formq/submission"
)

// page fetches an inbox page with the admin token as the Basic-auth
// password, as a browser sends it.
func page(t *testing.T, st *teststack.Stack, method, path string, header map[string]string) (*http.Response, string) {
	t.Helper()
	h := map[string]string{"Authorization": "Basic " + basicAuth("admin", adminToken), "Accept": "text/html"}
	for k, v := range header {
		h[k] = v
	}
	resp, b := teststack.Do(t, method, st.APIURL+path, nil, h)
	return resp, string(b)
}

// TestInboxPagesListDetailAndEraseWithConfirmation walks the HTML inbox
// as a browser: the list, a submission's values, file and steps, the
// confirmation, the erasure, all behind the admin token and refusing
// cross-site posts; the pages load nothing from elsewhere.
func TestInboxPagesListDetailAndEraseWithConfirmation(t *testing.T) {
	st := startWithActions(t, inboxActions, nil)
	body, ct := teststack.MultipartBody(t, map[string]string{"email": "page@example.com"}, map[string][]byte{"avatar": pngBytes(t)})
	resp, raw := teststack.Post(t, st.APIURL+"/actions/apply", body, ct, map[string]string{"Accept": "application/json"})
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("post: %d %s", resp.StatusCode, raw)
	}
	var acc struct {
		Submission struct{ ID string } `json:"submission"`
	}
	json.Unmarshal(raw, &acc)
	id := acc.Submission.ID
	teststack.WaitFor(t, 30*time.Second, "the submission completed", func() bool {
		var done listAnswer
		admin(t, st, "GET", "/admin/submissions?status=completed", &done)
		return len(done.Submissions) == 1
	})

	if r, _ := page(t, st, "GET", "/admin/inbox", map[string]string{"Authorization": ""}); r.StatusCode != http.StatusUnauthorized || r.Header.Get("WWW-Authenticate") == "" {
		t.Fatalf("without the token: %d %q", r.StatusCode, r.Header.Get("WWW-Authenticate"))
	}
	r, html := page(t, st, "GET", "/admin/inbox?action=apply", nil)
	if r.StatusCode != http.StatusOK || !strings.Contains(html, `href="/admin/inbox/`+id+`"`) || !strings.Contains(html, "completed") {
		t.Fatalf("list: %d\n%s", r.StatusCode, html)
	}
	if r, html := page(t, st, "GET", "/admin/inbox?cursor=not-a-cursor", nil); r.StatusCode != http.StatusBadRequest {
		t.Errorf("a made-up cursor: %d, want 400 as for the JSON list\n%s", r.StatusCode, html)
	}
	csp := r.Header.Get("Content-Security-Policy")
	if !strings.HasPrefix(csp, "default-src 'self'") || strings.Contains(html, "http://") || strings.Contains(html, "https://") {
		t.Errorf("the list loads from elsewhere: %s", csp)
	}
	r, html = page(t, st, "GET", "/admin/inbox/"+id, nil)
	if r.StatusCode != http.StatusOK || !strings.Contains(html, "page@example.com") || !strings.Contains(html, "thumbnail") || !strings.Contains(html, "me.png") {
		t.Fatalf("detail: %d\n%s", r.StatusCode, html)
	}
	r, html = page(t, st, "GET", "/admin/inbox/"+id+"/delete", nil)
	if r.StatusCode != http.StatusOK || !strings.Contains(html, `method="post" action="/admin/inbox/`+id+`/delete"`) {
		t.Fatalf("confirmation: %d\n%s", r.StatusCode, html)
	}
	if r, _ := page(t, st, "POST", "/admin/inbox/"+id+"/delete", map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}); r.StatusCode != http.StatusForbidden {
		t.Errorf("a cross-site erase: %d", r.StatusCode)
	}
	if r, _ := page(t, st, "GET", "/admin/inbox/"+id, nil); r.StatusCode != http.StatusOK {
		t.Fatalf("the cross-site post erased the submission: %d", r.StatusCode)
	}
	r, _ = page(t, st, "POST", "/admin/inbox/"+id+"/delete", map[string]string{"Origin": st.APIURL, "Sec-Fetch-Site": "same-origin"})
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/admin/inbox?erased="+id {
		t.Fatalf("erase: %d %s", r.StatusCode, r.Header.Get("Location"))
	}
	if _, html := page(t, st, "GET", "/admin/inbox?erased="+id, nil); !strings.Contains(html, "was erased") || strings.Contains(html, `href="/admin/inbox/`+id+`"`) {
		t.Errorf("the list after erasure:\n%s", html)
	}
	if r, _ := page(t, st, "GET", "/admin/inbox/"+id, nil); r.StatusCode != http.StatusNotFound {
		t.Errorf("detail after erasure: %d", r.StatusCode)
	}
	if st.RDB.HExists(t.Context(), submission.IndexIDs, id).Val() {
		t.Errorf("still indexed")
	}
}
