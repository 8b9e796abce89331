package routes_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/formq/formq/internal/testenv"
	"github.com/formq/formq/internal/teststack"
	"github.com/golang-jwt/jwt/v5"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

const (
	adminToken = "test-admin-token"
	hsSecret   = "an-hs256-secret-of-at-least-32-characters"
)

// startActions runs the stack with the package's test actions file.
func startActions(t *testing.T, extra map[string]string) *teststack.Stack {
	t.Helper()
	abs, err := filepath.Abs("../testdata/actions.yaml")
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"FORMQ_ACTIONS":           abs,
		"FORMQ_ADMIN_TOKEN":       adminToken,
		"FORMQ_AUTH_HS256_SECRET": hsSecret,
	}
	for k, v := range extra {
		env[k] = v
	}
	return teststack.Start(t, env)
}

// send posts a urlencoded form with headers and returns status, headers, body.
func send(t *testing.T, st *teststack.Stack, action string, form url.Values, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	h := map[string]string{"Accept": "application/json"}
	for k, v := range header {
		h[k] = v
	}
	return teststack.Post(t, st.APIURL+"/actions/"+action, strings.NewReader(form.Encode()), "application/x-www-form-urlencoded", h)
}

type errorBody struct {
	OK    bool `json:"ok"`
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	Errors map[string][]string `json:"errors"`
	Values map[string]any      `json:"values"`
}

func decodeError(t *testing.T, raw []byte) errorBody {
	t.Helper()
	var e errorBody
	if err := json.Unmarshal(raw, &e); err != nil {
		t.Fatalf("not JSON: %s", raw)
	}
	return e
}

func wantCode(t *testing.T, resp *http.Response, raw []byte, status int, code string) errorBody {
	t.Helper()
	e := decodeError(t, raw)
	if resp.StatusCode != status || e.Error.Code != code || e.OK || e.Error.Message == "" {
		t.Fatalf("got %d %s, want %d %s", resp.StatusCode, raw, status, code)
	}
	return e
}

func bind(t *testing.T, st *teststack.Stack, body string) string {
	t.Helper()
	resp, raw := teststack.Post(t, st.APIURL+"/admin/bind", strings.NewReader(body), "application/json",
		map[string]string{"Authorization": "Bearer " + adminToken, "Accept": "application/json"})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("bind: %d %s", resp.StatusCode, raw)
	}
	var out struct{ Token string }
	if err := json.Unmarshal(raw, &out); err != nil || out.Token == "" {
		t.Fatalf("bind answer %s", raw)
	}
	return out.Token
}

func hsToken(t *testing.T, sub string, exp time.Duration) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": sub, "exp": time.Now().Add(exp).Unix()}).SignedString([]byte(hsSecret))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestOrigins(t *testing.T) {
	st := startActions(t, map[string]string{"FORMQ_ALLOWED_ORIGINS": "https://everywhere.example"})
	form := url.Values{"name": {"Ada"}}
	tests := []struct {
		name, action string
		header       map[string]string
		status       int
	}{
		{"cross-site browser post", "partner-only", map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}, 403},
		{"old browser cross-origin", "partner-only", map[string]string{"Origin": "https://evil.example"}, 403},
		{"opaque origin", "partner-only", map[string]string{"Origin": "null", "Sec-Fetch-Site": "cross-site"}, 403},
		{"action's allowed origin", "partner-only", map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://partner.example"}, 202},
		{"deployment's allowed origin", "partner-only", map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://everywhere.example"}, 202},
		{"same origin", "partner-only", map[string]string{"Sec-Fetch-Site": "same-origin"}, 202},
		{"origin matches host", "partner-only", map[string]string{"Origin": st.APIURL}, 202},
		{"script without headers", "partner-only", nil, 202},
		{"strict refuses no headers", "strict", nil, 403},
		{"strict accepts same origin", "strict", map[string]string{"Sec-Fetch-Site": "same-origin"}, 202},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, raw := send(t, st, tc.action, form, tc.header)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, raw, tc.status)
			}
			if tc.status == 403 {
				wantCode(t, resp, raw, 403, "forbidden_origin")
			}
		})
	}
}

func TestBoundArguments(t *testing.T) {
	st := startActions(t, nil)
	token := bind(t, st, `{"action":"update-user","args":{"userId":42},"ttl":"1h"}`)

	resp, raw := send(t, st, "update-user", url.Values{"name": {"Ada"}, "_bound": {token}, "userId": {"7"}}, nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("valid bound token: %d %s", resp.StatusCode, raw)
	}
	id := submissionID(t, raw)
	record := waitRecord(t, st, "update-user", id)
	if record["bound"].(map[string]any)["userId"] != float64(42) {
		t.Errorf("bound args in record: %v (a form field must not override them)", record["bound"])
	}
	if _, ok := record["values"].(map[string]any)["userId"]; ok {
		t.Errorf("a posted userId must not reach the record's values: %v", record["values"])
	}

	other := bind(t, st, `{"action":"delete-user","args":{"userId":42}}`)
	tampered := []byte(token)
	tampered[len(tampered)/2] ^= 1
	for name, form := range map[string]url.Values{
		"missing":      {"name": {"Ada"}},
		"tampered":     {"name": {"Ada"}, "_bound": {string(tampered)}},
		"other action": {"name": {"Ada"}, "_bound": {other}},
		"garbage":      {"name": {"Ada"}, "_bound": {"xyz"}},
		"twice":        {"name": {"Ada"}, "_bound": {token, token}},
	} {
		t.Run(name, func(t *testing.T) {
			resp, raw := send(t, st, "update-user", form, nil)
			wantCode(t, resp, raw, 400, "invalid_bound_args")
		})
	}

	t.Run("bound to another subject", func(t *testing.T) {
		tok := bind(t, st, `{"action":"update-user","args":{"userId":1},"subject":"alice"}`)
		resp, raw := send(t, st, "update-user", url.Values{"name": {"x"}, "_bound": {tok}}, nil)
		wantCode(t, resp, raw, 403, "forbidden")
	})
	t.Run("admin token checks", func(t *testing.T) {
		resp, raw := teststack.Post(t, st.APIURL+"/admin/bind", strings.NewReader(`{}`), "application/json", map[string]string{"Accept": "application/json"})
		wantCode(t, resp, raw, 401, "unauthenticated")
		resp, raw = teststack.Post(t, st.APIURL+"/admin/bind", strings.NewReader(`{}`), "application/json", map[string]string{"Accept": "application/json", "Authorization": "Bearer nope"})
		wantCode(t, resp, raw, 403, "forbidden")
		resp, raw = teststack.Post(t, st.APIURL+"/admin/bind", strings.NewReader(`{"action":"update-user","args":{"other":1}}`), "application/json",
			map[string]string{"Accept": "application/json", "Authorization": "Bearer " + adminToken})
		wantCode(t, resp, raw, 400, "bad_request")
	})
}

func TestBoundTokenExpires(t *testing.T) {
	st := startActions(t, nil)
	token := bind(t, st, `{"action":"update-user","args":{"userId":1},"ttl":"1s"}`)
	time.Sleep(2100 * time.Millisecond)
	resp, raw := send(t, st, "update-user", url.Values{"name": {"x"}, "_bound": {token}}, nil)
	wantCode(t, resp, raw, 400, "invalid_bound_args")
}

func TestIdempotencyConcurrentRepeats(t *testing.T) {
	st := startActions(t, nil)
	const n = 50
	var wg sync.WaitGroup
	bodies := make([]string, n)
	codes := make([]int, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, raw := send(t, st, "create-user", url.Values{"name": {"Ada"}, "email": {"ada@example.com"}}, map[string]string{"Idempotency-Key": "double-click-1"})
			codes[i], bodies[i] = resp.StatusCode, string(raw)
		}()
	}
	wg.Wait()
	for i := range n {
		if codes[i] != http.StatusAccepted || bodies[i] != bodies[0] {
			t.Fatalf("answer %d: %d %s, want 202 %s", i, codes[i], bodies[i], bodies[0])
		}
	}
	id := submissionID(t, []byte(bodies[0]))
	ctx := context.Background()
	tasks, err := st.RDB.Keys(ctx, "asynq:{default}:t:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(tasks) != 1 || !strings.HasSuffix(tasks[0], ":"+id) {
		t.Fatalf("want exactly one job for %s, got %v", id, tasks)
	}
	waitRecord(t, st, "create-user", id)
	if keys, _ := st.Store.List(ctx, "submissions/"); len(keys) != 1 {
		t.Fatalf("want one submission record, got %v", keys)
	}

	// The same key in the form field (a hosted form's double submit) and a
	// browser: the same submission, as a redirect.
	resp, _ := teststack.Post(t, st.APIURL+"/actions/create-user",
		strings.NewReader(url.Values{"name": {"Ada"}, "email": {"ada@example.com"}, "_idempotency": {"double-click-1"}}.Encode()),
		"application/x-www-form-urlencoded", nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != st.APIURL+"/users/new?created="+id {
		t.Fatalf("browser repeat: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	// A refused submission does not keep its key.
	resp, raw := send(t, st, "create-user", url.Values{"name": {"A"}}, map[string]string{"Idempotency-Key": "k2"})
	wantCode(t, resp, raw, 422, "validation_failed")
	resp, raw = send(t, st, "create-user", url.Values{"name": {"Ada"}, "email": {"a@example.com"}}, map[string]string{"Idempotency-Key": "k2"})
	if resp.StatusCode != http.StatusAccepted || submissionID(t, raw) == id {
		t.Fatalf("after a refusal the key is free: %d %s", resp.StatusCode, raw)
	}
}

func TestAuth(t *testing.T) {
	st := startActions(t, nil)
	form := url.Values{"note": {"hi"}}
	resp, raw := send(t, st, "private", form, nil)
	wantCode(t, resp, raw, 401, "unauthenticated")
	resp, raw = send(t, st, "private", form, map[string]string{"Authorization": "Bearer " + hsToken(t, "alice", -time.Hour)})
	wantCode(t, resp, raw, 401, "unauthenticated")
	resp, raw = send(t, st, "private", form, map[string]string{"Authorization": "Bearer " + hsToken(t, "alice", time.Hour)[:20]})
	wantCode(t, resp, raw, 401, "unauthenticated")
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"sub": "alice", "exp": time.Now().Add(time.Hour).Unix()}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	resp, raw = send(t, st, "private", form, map[string]string{"Authorization": "Bearer " + none})
	wantCode(t, resp, raw, 401, "unauthenticated")

	resp, raw = send(t, st, "private", form, map[string]string{"Authorization": "Bearer " + hsToken(t, "alice", time.Hour)})
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("valid bearer: %d %s", resp.StatusCode, raw)
	}
	rec := waitRecord(t, st, "private", submissionID(t, raw))
	if rec["subject"] != "alice" {
		t.Errorf("subject in record: %v", rec["subject"])
	}
	resp, raw = send(t, st, "private", form, map[string]string{"Cookie": "formq_session=" + hsToken(t, "bob", time.Hour)})
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("valid cookie: %d %s", resp.StatusCode, raw)
	}
}

func TestAuthJWKS(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	b64 := func(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
	jwks := fmt.Sprintf(`{"keys":[{"kty":"RSA","kid":"r1","alg":"RS256","use":"sig","n":%q,"e":%q},{"kty":"EC","kid":"e1","alg":"ES256","use":"sig","crv":"P-256","x":%q,"y":%q}]}`,
		b64(rsaKey.N.Bytes()), b64(big.NewInt(int64(rsaKey.E)).Bytes()), b64(ecKey.X.FillBytes(make([]byte, 32))), b64(ecKey.Y.FillBytes(make([]byte, 32))))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, jwks)
	}))
	defer srv.Close()
	st := startActions(t, map[string]string{"FORMQ_AUTH_JWKS_URL": srv.URL, "FORMQ_AUTH_HS256_SECRET": ""})

	sign := func(m jwt.SigningMethod, kid string, key any, sub string) string {
		tok := jwt.NewWithClaims(m, jwt.MapClaims{"sub": sub, "exp": time.Now().Add(time.Hour).Unix()})
		tok.Header["kid"] = kid
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	for _, tc := range []struct {
		name  string
		token string
		want  int
	}{
		{"RS256", sign(jwt.SigningMethodRS256, "r1", rsaKey, "rs-user"), 202},
		{"ES256", sign(jwt.SigningMethodES256, "e1", ecKey, "es-user"), 202},
		{"HS256 refused without a secret", hsToken(t, "x", time.Hour), 401},
		{"unknown key", func() string {
			k, _ := rsa.GenerateKey(rand.Reader, 2048)
			return sign(jwt.SigningMethodRS256, "r1", k, "x")
		}(), 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, raw := send(t, st, "private", url.Values{"note": {"n"}}, map[string]string{"Authorization": "Bearer " + tc.token})
			if resp.StatusCode != tc.want {
				t.Fatalf("%d %s, want %d", resp.StatusCode, raw, tc.want)
			}
		})
	}
}

func TestRateLimitAndHoneypot(t *testing.T) {
	st := startActions(t, nil)
	ok := url.Values{"name": {"Ada"}, "email": {"a@example.com"}, "agree": {"on"}, "password": {"longenough"}}
	for i := range 3 {
		resp, raw := send(t, st, "signup", ok, nil)
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("post %d: %d %s", i, resp.StatusCode, raw)
		}
	}
	resp, raw := send(t, st, "signup", ok, nil)
	wantCode(t, resp, raw, 429, "rate_limited")
	if ra := resp.Header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Errorf("Retry-After %q", ra)
	}
	// Spoofed X-Forwarded-For does not escape the limit without trusted proxies.
	resp, raw = send(t, st, "signup", ok, map[string]string{"X-Forwarded-For": "203.0.113.9"})
	wantCode(t, resp, raw, 429, "rate_limited")

	// Honeypot: looks like success, keeps nothing.
	resp, raw = send(t, st, "create-user", url.Values{"name": {"Bot"}, "email": {"b@example.com"}, "_gotcha": {"http://spam"}}, nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("honeypot answer %d %s", resp.StatusCode, raw)
	}
	spamID := submissionID(t, raw)
	if n, _ := st.RDB.Exists(context.Background(), "asynq:{default}:t:"+spamID).Result(); n != 0 {
		t.Fatal("a honeypot post was queued")
	}
}

func submissionID(t *testing.T, raw []byte) string {
	t.Helper()
	var a struct {
		Submission struct{ ID string } `json:"submission"`
	}
	if err := json.Unmarshal(raw, &a); err != nil || a.Submission.ID == "" {
		t.Fatalf("no submission id in %s", raw)
	}
	return a.Submission.ID
}

// doneURL is the done page of an accepted answer, with the capability
// its statusUrl carries.
func doneURL(t *testing.T, action string, raw []byte) string {
	t.Helper()
	var a struct {
		Submission struct{ ID, StatusURL string } `json:"submission"`
	}
	if err := json.Unmarshal(raw, &a); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
	u, err := url.Parse(a.Submission.StatusURL)
	if err != nil || u.Query().Get("t") == "" {
		t.Fatalf("statusUrl %q has no capability", a.Submission.StatusURL)
	}
	return "/forms/" + action + "/done?submission=" + url.QueryEscape(a.Submission.ID) + "&t=" + url.QueryEscape(u.Query().Get("t"))
}

func waitRecord(t *testing.T, st *teststack.Stack, action, id string) map[string]any {
	t.Helper()
	var rec map[string]any
	teststack.WaitFor(t, 15*time.Second, "record of "+id, func() bool {
		b, err := st.Store.Get(context.Background(), "submissions/"+action+"/"+id+".json")
		return err == nil && json.Unmarshal(b, &rec) == nil
	})
	return rec
}

// TestStagingIsGuardedLikeItsAction: POST /uploads and /uploads/presign
// for an action's field obey that action's origins and auth.
func TestStagingIsGuardedLikeItsAction(t *testing.T) {
	st := startActions(t, nil)
	body, ctype := teststack.MultipartBody(t, nil, map[string][]byte{"file": []byte("\x89PNG\r\n\x1a\nrest")})
	resp, raw := teststack.Post(t, st.APIURL+"/uploads?action=create-user&field=avatar", body, ctype,
		map[string]string{"Accept": "application/json", "Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"})
	wantCode(t, resp, raw, 403, "forbidden_origin")
	resp, raw = teststack.Post(t, st.APIURL+"/uploads/presign", strings.NewReader(`{"action":"create-user","field":"avatar","contentType":"image/png"}`), "application/json",
		map[string]string{"Accept": "application/json", "Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"})
	wantCode(t, resp, raw, 403, "forbidden_origin")
	if objs, _ := st.Store.List(context.Background(), ""); len(objs) != 0 {
		t.Fatalf("a refused staging stored %v", objs)
	}
}

// TestCORS: pages on allowed origins may read answers (and send the
// Idempotency-Key header); others get no CORS headers.
func TestCORS(t *testing.T) {
	st := startActions(t, map[string]string{"FORMQ_ALLOWED_ORIGINS": "https://everywhere.example"})
	preflight := func(origin string) *http.Response {
		req, _ := http.NewRequest(http.MethodOptions, st.APIURL+"/actions/create-user", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "idempotency-key")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	for _, origin := range []string{"https://partner.example", "https://everywhere.example"} {
		resp := preflight(origin)
		if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != origin ||
			!strings.Contains(strings.ToLower(resp.Header.Get("Access-Control-Allow-Headers")), "idempotency-key") {
			t.Errorf("preflight from %s: %d %v", origin, resp.StatusCode, resp.Header)
		}
	}
	if resp := preflight("https://evil.example"); resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("evil origin allowed: %v", resp.Header)
	}
	resp, raw := send(t, st, "partner-only", url.Values{"name": {"Ada"}}, map[string]string{"Origin": "https://partner.example", "Sec-Fetch-Site": "cross-site"})
	if resp.StatusCode != http.StatusAccepted || resp.Header.Get("Access-Control-Allow-Origin") != "https://partner.example" {
		t.Fatalf("cross-site post from an allowed origin: %d %s %v", resp.StatusCode, raw, resp.Header)
	}
}

// TestPublicURL: links start with FORMQ_PUBLIC_URL, and its origin counts
// as this service's own when a proxy rewrites Host.
func TestPublicURL(t *testing.T) {
	st := startActions(t, map[string]string{"FORMQ_PUBLIC_URL": "https://forms.example.com/formq"})
	resp, raw := send(t, st, "signup", url.Values{"name": {"Ada"}, "email": {"a@example.com"}, "agree": {"on"}, "password": {"longenough"}},
		map[string]string{"Origin": "https://forms.example.com"})
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("post with the public origin: %d %s", resp.StatusCode, raw)
	}
	if !strings.Contains(string(raw), `"statusUrl":"https://forms.example.com/formq/submissions/`) {
		t.Errorf("statusUrl not under the public URL: %s", raw)
	}
	page, err := http.Get(st.APIURL + "/forms/create-user")
	if err != nil {
		t.Fatal(err)
	}
	defer page.Body.Close()
	b, _ := io.ReadAll(page.Body)
	if !strings.Contains(string(b), `action="https://forms.example.com/formq/actions/create-user"`) {
		t.Errorf("form action not under the public URL")
	}
}

// TestTrustedProxyClientIP: behind a trusted proxy the client IP comes
// from X-Forwarded-For, so clients are limited apart, and the record
// names the real client.
func TestTrustedProxyClientIP(t *testing.T) {
	st := startActions(t, map[string]string{"FORMQ_TRUSTED_PROXIES": "127.0.0.1"})
	ok := url.Values{"name": {"Ada"}, "email": {"a@example.com"}, "agree": {"on"}, "password": {"longenough"}}
	xff := func(ip string) map[string]string { return map[string]string{"X-Forwarded-For": ip} }
	var first []byte
	for i := range 3 {
		resp, raw := send(t, st, "signup", ok, xff("203.0.113.1"))
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("post %d: %d %s", i, resp.StatusCode, raw)
		}
		first = raw
	}
	resp, raw := send(t, st, "signup", ok, xff("203.0.113.1"))
	wantCode(t, resp, raw, 429, "rate_limited")
	if resp, raw := send(t, st, "signup", ok, xff("198.51.100.7")); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("another client behind the proxy is limited apart: %d %s", resp.StatusCode, raw)
	}
	if rec := waitRecord(t, st, "signup", submissionID(t, first)); rec["clientIp"] != "203.0.113.1" {
		t.Errorf("record clientIp = %v", rec["clientIp"])
	}
}

// TestUploadProfileGate: a profile's auth, origins and rate limit hold for
// POST /uploads as they do for an action.
func TestUploadProfileGate(t *testing.T) {
	st := startActions(t, nil)
	stage := func(header map[string]string) (*http.Response, []byte) {
		body, ctype := teststack.MultipartBody(t, nil, map[string][]byte{"file": pngBytes(t)})
		h := map[string]string{"Accept": "application/json"}
		for k, v := range header {
			h[k] = v
		}
		return teststack.Post(t, st.APIURL+"/uploads?profile=private-files", body, ctype, h)
	}
	bearer := "Bearer " + hsToken(t, "alice", time.Hour)
	resp, raw := stage(nil)
	wantCode(t, resp, raw, 401, "unauthenticated")
	resp, raw = stage(map[string]string{"Authorization": bearer, "Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"})
	wantCode(t, resp, raw, 403, "forbidden_origin")
	resp, raw = stage(map[string]string{"Authorization": bearer, "Sec-Fetch-Site": "cross-site", "Origin": "https://partner.example"})
	if resp.StatusCode != http.StatusCreated || resp.Header.Get("Access-Control-Allow-Origin") != "https://partner.example" {
		t.Fatalf("staging from the profile's origin: %d %s", resp.StatusCode, raw)
	}
	// The limit is 2 a minute and the unauthenticated attempt counted too
	// (the origin check comes before the rate limit, so the 403 did not).
	resp, raw = stage(map[string]string{"Authorization": bearer})
	wantCode(t, resp, raw, 429, "rate_limited")
}
