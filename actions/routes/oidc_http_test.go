package routes_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/formq/formq/internal/teststack"
	"github.com/oauth2-proxy/mockoidc"
)

// startOIDC runs mockoidc, a real OpenID Connect provider, on loopback
// and a stack that signs people in with it.
func startOIDC(t *testing.T) (*mockoidc.MockOIDC, *teststack.Stack) {
	t.Helper()
	m, err := mockoidc.Run()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Shutdown() })
	cfg := m.Config()
	st := startWithActions(t, inboxActions, map[string]string{
		"FORMQ_ADMINS": roster, "FORMQ_ADMIN_OIDC_ISSUER": cfg.Issuer, "FORMQ_ADMIN_OIDC_CLIENT_ID": cfg.ClientID,
		"FORMQ_ADMIN_OIDC_CLIENT_SECRET": cfg.ClientSecret, "FORMQ_ADMIN_OIDC_SCOPES": "openid,email,profile,groups",
	})
	return m, st
}

// browserGet is a GET as a browser sends it, following redirects with
// the browser's cookies.
func browserGet(t *testing.T, c *http.Client, u string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	req.Header.Set("Accept", "text/html")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func newBrowser(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: 30 * time.Second}
}

// TestOIDCSignInWithMockOIDC signs people in through mockoidc with the
// authorization code flow: a browser asking for the inbox goes to the
// provider and comes back signed in (PKCE, state and nonce checked by
// both sides), its session cookie then works for the JSON routes with
// the role FORMQ_ADMINS gives (a group's viewer cannot export); sign-out
// ends the session; a person the roster does not name gets no session;
// a callback with the wrong state, without the flow cookie, or a forged
// session cookie signs nobody in. Sign-ins and sign-outs are audited.
func TestOIDCSignInWithMockOIDC(t *testing.T) {
	m, st := startOIDC(t)
	postContact(t, st, "ada@example.com", "Hello there")

	alice := newBrowser(t)
	m.QueueUser(&mockoidc.MockUser{Subject: "alice-1", Email: "alice@example.org", EmailVerified: true, PreferredUsername: "alice"})
	resp, html := browserGet(t, alice, st.APIURL+"/admin/inbox?action=contact")
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/admin/inbox" || resp.Request.URL.Query().Get("action") != "contact" ||
		!strings.Contains(html, "Signed in as <strong>alice@example.org</strong> (admin)") || !strings.Contains(html, `action="/admin/signout"`) || !strings.Contains(html, "ada@example.com") {
		t.Fatalf("alice's sign-in ended at %s: %d %s", resp.Request.URL, resp.StatusCode, html)
	}
	jsonGet := func(c *http.Client, path string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest("GET", st.APIURL+path, nil)
		req.Header.Set("Accept", "application/json")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	if r, b := jsonGet(alice, "/admin/submissions/export?action=contact"); r.StatusCode != http.StatusOK || !strings.Contains(string(b), "ada@example.com") {
		t.Errorf("alice's export: %d %s", r.StatusCode, b)
	}
	// Without the cookie an API client gets the 401, not a redirect.
	if r, b := jsonGet(newBrowser(t), "/admin/submissions"); r.StatusCode != http.StatusUnauthorized || decodeError(t, b).Error.Code != "unauthenticated" {
		t.Errorf("no session: %d %s", r.StatusCode, b)
	}

	// A viewer through a group.
	carol := newBrowser(t)
	m.QueueUser(&mockoidc.MockUser{Subject: "carol-1", Email: "carol@example.org", EmailVerified: true, Groups: []string{"staff", "ops"}})
	if resp, html := browserGet(t, carol, st.APIURL+"/admin/inbox"); resp.StatusCode != http.StatusOK || !strings.Contains(html, "(viewer)") {
		t.Errorf("carol's sign-in: %d %s", resp.StatusCode, html)
	}
	if r, b := jsonGet(carol, "/admin/submissions/export?action=contact"); r.StatusCode != http.StatusForbidden || !refused(t, b, "admin role") {
		t.Errorf("carol's export: %d %s", r.StatusCode, b)
	}

	// Someone the provider knows but FORMQ_ADMINS does not, and someone
	// whose address the provider did not verify: no session.
	for _, u := range []*mockoidc.MockUser{
		{Subject: "mallory-1", Email: "mallory@example.org", EmailVerified: true},
		{Subject: "fake-1", Email: "alice@example.org", EmailVerified: false},
	} {
		b := newBrowser(t)
		m.QueueUser(u)
		if resp, html := browserGet(t, b, st.APIURL+"/admin/inbox"); resp.StatusCode != http.StatusForbidden || strings.Contains(html, "ada@example.com") {
			t.Errorf("%s (verified %v): %d %s", u.Email, u.EmailVerified, resp.StatusCode, html)
		}
		if r, _ := jsonGet(b, "/admin/submissions"); r.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s has a session: %d", u.Email, r.StatusCode)
		}
	}

	// Forged callbacks: a wrong state, no flow cookie.
	noFollow := newBrowser(t)
	noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, _ = browserGet(t, noFollow, st.APIURL+"/admin/signin")
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusSeeOther || loc.Query().Get("code_challenge_method") != "S256" || loc.Query().Get("nonce") == "" || loc.Query().Get("state") == "" {
		t.Fatalf("the sign-in's redirect: %d %s", resp.StatusCode, loc)
	}
	m.QueueUser(&mockoidc.MockUser{Subject: "alice-1", Email: "alice@example.org", EmailVerified: true})
	resp, _ = browserGet(t, noFollow, loc.String()) // the provider answers with a code
	back, _ := url.Parse(resp.Header.Get("Location"))
	q := back.Query()
	q.Set("state", "forged")
	if resp, html := browserGet(t, noFollow, st.APIURL+"/admin/oidc/callback?"+q.Encode()); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a wrong state: %d %s", resp.StatusCode, html)
	}
	if resp, html := browserGet(t, newBrowser(t), back.String()); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a callback without the flow cookie: %d %s", resp.StatusCode, html)
	}
	forged := newBrowser(t)
	u, _ := url.Parse(st.APIURL)
	forged.Jar.SetCookies(u, []*http.Cookie{{Name: "formq_admin", Value: "eyJlIjoiYWxpY2VAZXhhbXBsZS5vcmcifQ", Path: "/admin"}})
	if r, _ := jsonGet(forged, "/admin/submissions"); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("a forged session cookie: %d", r.StatusCode)
	}

	// Sign-out: the session ends.
	req, _ := http.NewRequest("POST", st.APIURL+"/admin/signout", nil)
	req.Header.Set("Accept", "text/html")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	so, err := alice.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	sob, _ := io.ReadAll(so.Body)
	so.Body.Close()
	if so.StatusCode != http.StatusOK || !strings.Contains(string(sob), "You are signed out") {
		t.Errorf("sign-out: %d %s", so.StatusCode, sob)
	}
	if r, _ := jsonGet(alice, "/admin/submissions"); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("after sign-out: %d", r.StatusCode)
	}

	var log auditAnswer
	admin(t, st, "GET", "/admin/audit", &log)
	var got []string
	for _, e := range log.Entries {
		if e.Via == "oidc" {
			got = append(got, e.What+" "+e.Who+" "+e.Role)
		}
	}
	want := "sign-out alice@example.org admin|sign-in carol@example.org viewer|export alice@example.org admin|sign-in alice@example.org admin"
	if strings.Join(got, "|") != want {
		t.Errorf("the audit log's OIDC entries: %v, want %s", got, want)
	}
}
