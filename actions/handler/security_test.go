package handler_test

// Each test here reproduces one attack over real HTTP against a real API
// and worker on real Redis and S3, and asserts that it fails.

import (
	"encoding/base64"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/formq/formq/actions"
	"github.com/formq/formq/internal/seal"
)

// do sends a request with headers and returns the answer and its body.
func do(t *testing.T, method, url string, body io.Reader, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		if v != "" {
			req.Header.Set(k, v)
		}
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp, raw
}

// A page on another site makes the browser post to the dashboard with the
// Basic credentials it cached: the queue must not pause.
func TestAttackAdminCrossSiteRequest(t *testing.T) {
	st := startActions(t, nil)
	basic := func(h map[string]string) map[string]string {
		h["Authorization"] = "Basic " + basicAuth("admin", adminToken)
		h["Accept"] = "application/json"
		return h
	}
	// Put a queue in Redis so that pausing it can succeed.
	send(t, st, "create-user", map[string][]string{"name": {"Ada"}, "email": {"ada@example.com"}}, nil)

	for _, tc := range []struct {
		name   string
		header map[string]string
	}{
		{"sec-fetch-site cross-site", map[string]string{"Sec-Fetch-Site": "cross-site"}},
		{"foreign origin", map[string]string{"Origin": "https://evil.example"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, raw := do(t, http.MethodPost, st.APIURL+"/admin/queues/api/queues/default:pause", nil, basic(tc.header))
			wantCode(t, resp, raw, http.StatusForbidden, "forbidden_origin")
			resp, raw = do(t, http.MethodPost, st.APIURL+"/admin/bind", strings.NewReader(`{"action":"update-user","args":{"userId":"1"}}`),
				map[string]string{"Authorization": "Bearer " + adminToken, "Content-Type": "application/json", "Accept": "application/json", "Origin": tc.header["Origin"], "Sec-Fetch-Site": tc.header["Sec-Fetch-Site"]})
			wantCode(t, resp, raw, http.StatusForbidden, "forbidden_origin")
		})
	}
	// The same request from the dashboard's own page works.
	resp, raw := do(t, http.MethodPost, st.APIURL+"/admin/queues/api/queues/default:pause", nil, basic(map[string]string{"Sec-Fetch-Site": "same-origin"}))
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("same-origin pause: %d %s", resp.StatusCode, raw)
	}
}

func basicAuth(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
}

// The development key used to be a constant in the source: anyone could
// seal bound arguments with it. A development API without FORMQ_SECRET
// must refuse them.
func TestAttackForgedBoundWithPublicDevelopmentKey(t *testing.T) {
	st := startActions(t, nil) // development, no FORMQ_SECRET
	list, err := actions.LoadFile("../testdata/actions.yaml")
	if err != nil {
		t.Fatal(err)
	}
	a, _ := actions.NewRegistry(list...).Get("update-user")
	public, err := seal.New("formq-development-secret-not-for-production")
	if err != nil {
		t.Fatal(err)
	}
	forged, err := actions.Bind(public, a, map[string]any{"userId": "1"}, "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	resp, raw := send(t, st, "update-user", url.Values{"name": {"Mallory"}, "_bound": {forged}}, nil)
	wantCode(t, resp, raw, http.StatusBadRequest, "invalid_bound_args")
	// The API's own key still works.
	token := bind(t, st, `{"action":"update-user","args":{"userId":1}}`)
	if resp, raw := send(t, st, "update-user", url.Values{"name": {"Ada"}, "_bound": {token}}, nil); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("the API's own token: %d %s", resp.StatusCode, raw)
	}
}
