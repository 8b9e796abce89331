package routes_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/formq/formq/actions/routes"
	"github.com/formq/formq/internal/audit"
	"github.com/formq/formq/internal/teststack"
	"github.com/labstack/echo/v4"
)

// roster is the named admins of the role tests: alice is an admin, vic
// a viewer by name, the ops group viewers.
const roster = "alice@example.org=admin,vic@example.org=viewer,group:ops=viewer"

// asPerson sends an admin request as the authenticating proxy would for
// a signed-in person: identity headers, no token.
func asPerson(t *testing.T, base, method, path, email, groups string, body url.Values, accept string) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = strings.NewReader(body.Encode())
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("Accept", accept)
	if email != "" {
		req.Header.Set("X-Forwarded-Email", email)
		req.Header.Set("X-Forwarded-User", strings.Split(email, "@")[0])
	}
	if groups != "" {
		req.Header.Set("X-Forwarded-Groups", groups)
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp, raw
}

var noRedirect = &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// postContact posts one submission to the contact action of
// inboxActions and waits until the worker stored it.
func postContact(t *testing.T, st *teststack.Stack, email, message string) string {
	t.Helper()
	resp, raw := send(t, st, "contact", url.Values{"email": {email}, "message": {message}}, nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("post: %d %s", resp.StatusCode, raw)
	}
	var acc struct {
		Submission struct{ ID string } `json:"submission"`
	}
	if err := json.Unmarshal(raw, &acc); err != nil {
		t.Fatal(err)
	}
	id := acc.Submission.ID
	teststack.WaitFor(t, 60*time.Second, id+" stored", func() bool {
		var d detailAnswer
		admin(t, st, "GET", "/admin/submissions/"+id, &d)
		return d.Status != nil && d.Status.Status == "completed"
	})
	return id
}

// refused says whether an answer is the contract's 403 forbidden whose
// message says why.
func refused(t *testing.T, raw []byte, why string) bool {
	t.Helper()
	e := decodeError(t, raw)
	return e.Error.Code == "forbidden" && strings.Contains(e.Error.Message, why)
}

// adminRoutes lists every admin route the API registers, "METHOD path",
// each method of an Any route once.
func adminRoutes(t *testing.T) []string {
	t.Helper()
	e := echo.New()
	if err := routes.Register(e, routes.Parts{}); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range e.Routes() {
		if !strings.HasPrefix(r.Path, "/admin") || r.Method == echo.RouteNotFound || slices.Contains(signInRoutes, r.Path) {
			continue
		}
		out = append(out, r.Method+" "+r.Path)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// signInRoutes are the OIDC sign-in's, open to anyone (404 without
// OIDC); TestOIDCSignInWithMockOIDC tests them.
var signInRoutes = []string{"/admin/signin", "/admin/oidc/callback", "/admin/signout"}

// viewerRoutes are the admin routes a viewer may use: reading, and
// marking read or starred. Every other admin route needs an admin.
var viewerRoutes = []string{
	"GET /admin/submissions", "GET /admin/submissions/:id", "GET /admin/inbox", "GET /admin/inbox/:id", "POST /admin/inbox/bulk",
}

// TestAdminRolesOnEveryRoute goes through every admin route the API
// registers as a viewer and as an admin, both signed in by a trusted
// proxy's headers: the viewer reads but gets 403 forbidden (JSON of the
// contract, or the error page) on every other route, before anything
// happens; the admin gets through everywhere; someone signed in but not
// named in FORMQ_ADMINS gets 403 everywhere; the token still acts as an
// admin.
func TestAdminRolesOnEveryRoute(t *testing.T) {
	st := startWithActions(t, inboxActions, map[string]string{"FORMQ_ADMINS": roster, "FORMQ_ADMIN_PROXIES": "127.0.0.1/32,::1"})
	id := postContact(t, st, "ada@example.com", "Hello there")
	path := func(route string) (string, string) {
		method, p, _ := strings.Cut(route, " ")
		p = strings.ReplaceAll(p, ":id", id)
		p = strings.ReplaceAll(p, "/*", "/")
		switch p {
		case "/admin/submissions/export":
			p += "?action=contact"
		case "/admin/submissions":
			if method == "DELETE" {
				p += "?action=contact&field=email&value=ada@example.com"
			}
		}
		return method, p
	}
	form := url.Values{"id": {id}, "op": {"star"}, "step": {"1"}}
	all := adminRoutes(t)
	if len(all) < 14 {
		t.Fatalf("only %d admin routes found: %v", len(all), all)
	}

	for _, who := range []struct{ email, groups string }{{"vic@example.org", ""}, {"carol@example.org", "staff, ops"}} {
		for _, route := range all {
			method, p := path(route)
			resp, raw := asPerson(t, st.APIURL, method, p, who.email, who.groups, form, "application/json")
			if slices.Contains(viewerRoutes, route) {
				if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusSeeOther {
					t.Errorf("viewer %s: %s: %d %s", who.email, route, resp.StatusCode, raw)
				}
				continue
			}
			if resp.StatusCode != http.StatusForbidden || method != "HEAD" && !refused(t, raw, "admin role") {
				t.Errorf("viewer %s: %s: want 403 forbidden, got %d %s", who.email, route, resp.StatusCode, raw)
			}
		}
	}
	// A bulk erasure or export is an admin's, though bulk marks are a viewer's.
	for _, op := range []string{"erase", "erase-confirmed", "export-csv", "export-ndjson"} {
		resp, raw := asPerson(t, st.APIURL, "POST", "/admin/inbox/bulk", "vic@example.org", "", url.Values{"id": {id}, "op": {op}}, "application/json")
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("viewer bulk %s: %d %s", op, resp.StatusCode, raw)
		}
	}
	// A browser gets the error page, not JSON.
	resp, raw := asPerson(t, st.APIURL, "GET", "/admin/submissions/export?action=contact", "vic@example.org", "", nil, "text/html")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(string(raw), "admin role") {
		t.Errorf("viewer export from a browser: %d %s %.300s", resp.StatusCode, resp.Header.Get("Content-Type"), raw)
	}
	// Nothing the viewer tried happened: the submission is there, starred
	// (a viewer may star), not erased.
	var d detailAnswer
	if r := admin(t, st, "GET", "/admin/submissions/"+id, &d); r.StatusCode != http.StatusOK {
		t.Fatalf("after the viewer: %d", r.StatusCode)
	}

	// The viewer's inbox shows who is signed in, a sign-out, and no
	// export, erase or queue dashboard.
	resp, raw = asPerson(t, st.APIURL, "GET", "/admin/inbox?action=contact", "vic@example.org", "", nil, "text/html")
	html := string(raw)
	if resp.StatusCode != http.StatusOK || !strings.Contains(html, "Signed in as <strong>vic@example.org</strong> (viewer)") ||
		!strings.Contains(html, `href="/oauth2/sign_out"`) || strings.Contains(html, "format=csv") || strings.Contains(html, `value="erase"`) ||
		strings.Contains(html, "/admin/queues/") {
		t.Errorf("viewer's inbox: %d %s", resp.StatusCode, html)
	}
	resp, raw = asPerson(t, st.APIURL, "GET", "/admin/inbox/"+id, "vic@example.org", "", nil, "text/html")
	if html := string(raw); resp.StatusCode != http.StatusOK || strings.Contains(html, "/delete") || !strings.Contains(html, "Hello there") {
		t.Errorf("viewer's detail page: %d %s", resp.StatusCode, html)
	}
	resp, raw = asPerson(t, st.APIURL, "GET", "/admin/inbox?action=contact", "alice@example.org", "", nil, "text/html")
	if html := string(raw); resp.StatusCode != http.StatusOK || !strings.Contains(html, "Signed in as <strong>alice@example.org</strong> (admin)") ||
		!strings.Contains(html, "format=csv") || !strings.Contains(html, `value="erase"`) {
		t.Errorf("admin's inbox: %d %s", resp.StatusCode, html)
	}

	// Someone the proxy signed in who is not in FORMQ_ADMINS.
	for _, route := range all {
		method, p := path(route)
		resp, raw := asPerson(t, st.APIURL, method, p, "mallory@example.org", "staff", form, "application/json")
		if resp.StatusCode != http.StatusForbidden || method != "HEAD" && !refused(t, raw, "mallory@example.org") {
			t.Errorf("stranger: %s: want 403, got %d %s", route, resp.StatusCode, raw)
		}
	}

	// The admin gets through every route; erasures last.
	slices.SortStableFunc(all, func(a, b string) int {
		erases := func(r string) bool { return strings.HasPrefix(r, "DELETE") || strings.HasSuffix(r, "/delete") }
		switch {
		case erases(a) && !erases(b):
			return 1
		case erases(b) && !erases(a):
			return -1
		}
		return 0
	})
	for _, route := range all {
		method, p := path(route)
		resp, raw := asPerson(t, st.APIURL, method, p, "alice@example.org", "", form, "application/json")
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden || resp.StatusCode >= 500 {
			t.Errorf("admin: %s: %d %s", route, resp.StatusCode, raw)
		}
	}
}

// TestAdminProxyHeadersOnlyFromTheProxy is the attack: a client that
// reaches formq directly, not through the trusted proxy, sends the
// proxy's identity headers (and a forged X-Forwarded-For naming the
// proxy) to act as an admin. formq ignores the headers: 401, no data.
// The token still works.
func TestAdminProxyHeadersOnlyFromTheProxy(t *testing.T) {
	st := startWithActions(t, inboxActions, map[string]string{"FORMQ_ADMINS": roster, "FORMQ_ADMIN_PROXIES": "10.0.0.0/8", "FORMQ_TRUSTED_PROXIES": "127.0.0.1"})
	id := postContact(t, st, "ada@example.com", "Hello there")
	for _, route := range []string{"GET /admin/submissions", "GET /admin/submissions/" + id, "GET /admin/submissions/export?action=contact", "DELETE /admin/submissions/" + id} {
		method, p, _ := strings.Cut(route, " ")
		req, _ := http.NewRequest(method, st.APIURL+p, nil)
		req.Header.Set("Accept", "application/json")
		req.Header.Set("X-Forwarded-Email", "alice@example.org")
		req.Header.Set("X-Forwarded-User", "alice")
		req.Header.Set("X-Forwarded-Groups", "ops")
		req.Header.Set("X-Forwarded-For", "10.1.2.3")
		req.Header.Set("X-Real-IP", "10.1.2.3")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if e := decodeError(t, raw); resp.StatusCode != http.StatusUnauthorized || e.Error.Code != "unauthenticated" || strings.Contains(string(raw), "ada@example.com") {
			t.Errorf("%s with forged headers: %d %s", route, resp.StatusCode, raw)
		}
	}
	var d detailAnswer
	if r := admin(t, st, "GET", "/admin/submissions/"+id, &d); r.StatusCode != http.StatusOK || d.Status == nil {
		t.Errorf("the token after the attack: %d %+v", r.StatusCode, d)
	}
}

// auditAnswer is GET /admin/audit.
type auditAnswer struct {
	OK      bool          `json:"ok"`
	Entries []audit.Entry `json:"entries"`
	Next    string        `json:"next"`
}

// TestAuditLogRecordsWhoDidWhatWithoutTheData: what alice (signed in by
// the proxy) and the token do lands in the audit log with who, what,
// when and how many: one sign-in however many requests she sends, the
// export with its row count, a bulk star, an erasure by a personal value
// with its count and field. No entry and no byte of the stream holds
// the erased person's address or the erased submissions' ids; the
// entries about a submission are found by its id while it exists. A
// viewer's refused attempts log nothing, and the log is an admin's.
func TestAuditLogRecordsWhoDidWhatWithoutTheData(t *testing.T) {
	st := startWithActions(t, `actions:
  apply:
    fields:
      email: {type: email, required: true, personal: true}
      note: {type: text}
`, map[string]string{"FORMQ_ADMINS": roster, "FORMQ_ADMIN_PROXIES": "127.0.0.1/32,::1"})
	const email = "grace.erased@example.com"
	var ids []string
	for _, note := range []string{"first", "second"} {
		resp, raw := send(t, st, "apply", url.Values{"email": {email}, "note": {note}}, nil)
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("post: %d %s", resp.StatusCode, raw)
		}
		var acc struct {
			Submission struct{ ID string } `json:"submission"`
		}
		json.Unmarshal(raw, &acc)
		ids = append(ids, acc.Submission.ID)
	}
	other := ""
	{
		resp, raw := send(t, st, "apply", url.Values{"email": {"someone@example.com"}, "note": {"stays"}}, nil)
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("post: %d %s", resp.StatusCode, raw)
		}
		var acc struct {
			Submission struct{ ID string } `json:"submission"`
		}
		json.Unmarshal(raw, &acc)
		other = acc.Submission.ID
	}
	teststack.WaitFor(t, 60*time.Second, "three stored", func() bool {
		var l listAnswer
		admin(t, st, "GET", "/admin/submissions?action=apply&status=completed", &l)
		return len(l.Submissions) == 3
	})
	alice := func(method, path string, form url.Values) (*http.Response, []byte) {
		return asPerson(t, st.APIURL, method, path, "alice@example.org", "", form, "application/json")
	}
	for range 3 {
		if r, raw := alice("GET", "/admin/submissions?action=apply", nil); r.StatusCode != http.StatusOK {
			t.Fatalf("alice lists: %d %s", r.StatusCode, raw)
		}
	}
	r, csv := alice("GET", "/admin/submissions/export?action=apply&format=csv", nil)
	if r.StatusCode != http.StatusOK || strings.Count(string(csv), "\n") != 4 {
		t.Fatalf("export: %d %s", r.StatusCode, csv)
	}
	if r, raw := alice("POST", "/admin/inbox/bulk", url.Values{"id": {ids[0], other}, "op": {"star"}}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("bulk star: %d %s", r.StatusCode, raw)
	}
	// The viewer's refused attempts are not actions.
	asPerson(t, st.APIURL, "GET", "/admin/submissions/export?action=apply", "vic@example.org", "", nil, "application/json")
	asPerson(t, st.APIURL, "DELETE", "/admin/submissions/"+other, "vic@example.org", "", nil, "application/json")
	if r, raw := asPerson(t, st.APIURL, "GET", "/admin/audit", "vic@example.org", "", nil, "application/json"); r.StatusCode != http.StatusForbidden {
		t.Errorf("a viewer reads the audit log: %d %s", r.StatusCode, raw)
	}

	// Before the erasure, the entries about ids[0] (the export, the star)
	// are found by its id.
	var about auditAnswer
	if r := admin(t, st, "GET", "/admin/audit?submission="+ids[0], &about); r.StatusCode != http.StatusOK || len(about.Entries) != 2 || about.Entries[0].What != audit.Bulk || about.Entries[1].What != audit.Export {
		t.Errorf("entries about %s: %d %+v", ids[0], r.StatusCode, about)
	}

	var erased struct{ Erased []string }
	r, raw := alice("DELETE", "/admin/submissions?action=apply&field=email&value="+url.QueryEscape(email), nil)
	if json.Unmarshal(raw, &erased); r.StatusCode != http.StatusOK || len(erased.Erased) != 2 {
		t.Fatalf("erasure: %d %s", r.StatusCode, raw)
	}
	if r := admin(t, st, "DELETE", "/admin/submissions/"+other, nil); r.StatusCode != http.StatusOK {
		t.Fatalf("token erasure: %d", r.StatusCode)
	}

	var log auditAnswer
	if r, raw := alice("GET", "/admin/audit", nil); r.StatusCode != http.StatusOK || json.Unmarshal(raw, &log) != nil {
		t.Fatalf("audit: %d %s", r.StatusCode, raw)
	}
	var got []string
	for _, e := range log.Entries {
		got = append(got, fmt.Sprintf("%s %s/%s/%s %s %s %d %q %d", e.What, e.Who, e.Role, e.Via, e.Action, strings.Repeat("#", len(e.Submissions)), e.Count, e.Detail, len(e.ID)))
		if time.Since(e.At) > time.Minute || e.At.After(time.Now().Add(time.Second)) {
			t.Errorf("entry %s at %s", e.ID, e.At)
		}
	}
	idLen := len(log.Entries[0].ID)
	want := []string{
		fmt.Sprintf(`erase token/admin/token  # 1 "" %d`, idLen),
		fmt.Sprintf(`erase-personal alice@example.org/admin/proxy apply ## 2 "by the personal field email" %d`, idLen),
		fmt.Sprintf(`bulk alice@example.org/admin/proxy  ## 2 "star" %d`, idLen),
		fmt.Sprintf(`export alice@example.org/admin/proxy apply ### 3 "csv" %d`, idLen),
		fmt.Sprintf(`sign-in alice@example.org/admin/proxy   0 "" %d`, idLen),
	}
	// The viewer signed in too (their sign-in is logged, nothing else).
	var vic []string
	for i := len(got) - 1; i >= 0; i-- {
		if strings.Contains(got[i], "vic@example.org") {
			vic = append(vic, got[i])
			got = slices.Delete(got, i, i+1)
		}
	}
	if !slices.Equal(got, want) || len(vic) != 1 || !strings.HasPrefix(vic[0], "sign-in vic@example.org/viewer/proxy") {
		t.Errorf("the audit log:\n%s\nwant\n%s\nand the viewer's: %v", strings.Join(got, "\n"), strings.Join(want, "\n"), vic)
	}

	// Nothing in the stream names the person or the erased submissions.
	for _, m := range st.RDB.XRange(context.Background(), audit.Stream, "-", "+").Val() {
		for _, v := range m.Values {
			for _, needle := range append([]string{email, "grace", other}, ids...) {
				if strings.Contains(toString(v), needle) {
					t.Errorf("audit entry %s holds %q: %s", m.ID, needle, v)
				}
			}
		}
	}

	// Paging: two entries a page, the next page from the cursor.
	var p1, p2 auditAnswer
	admin(t, st, "GET", "/admin/audit?limit=2", &p1)
	admin(t, st, "GET", "/admin/audit?limit=2&before="+p1.Next, &p2)
	if len(p1.Entries) != 2 || len(p2.Entries) != 2 || p2.Entries[0].ID != log.Entries[2].ID {
		t.Errorf("pages: %+v then %+v", p1, p2)
	}
	var bad errorBody
	if r := admin(t, st, "GET", "/admin/audit?before=nope", &bad); r.StatusCode != http.StatusBadRequest || bad.Error.Code != "bad_request" {
		t.Errorf("bad cursor: %d %+v", r.StatusCode, bad)
	}

	// The inbox's page of the log.
	r, raw = asPerson(t, st.APIURL, "GET", "/admin/inbox/audit", "alice@example.org", "", nil, "text/html")
	if html := string(raw); r.StatusCode != http.StatusOK || !strings.Contains(html, "erase-personal") || !strings.Contains(html, "by the personal field email") || strings.Contains(html, email) {
		t.Errorf("audit page: %d %s", r.StatusCode, html)
	}
}
