package routes_test

// Each test here reproduces one attack over real HTTP against a real API
// and worker on real Redis and S3, and asserts that it fails.

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/formq/formq/actions"
	"github.com/formq/formq/internal/seal"
	"github.com/formq/formq/internal/teststack"
)

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
			resp, raw := teststack.Do(t, http.MethodPost, st.APIURL+"/admin/queues/api/queues/default:pause", nil, basic(tc.header))
			wantCode(t, resp, raw, http.StatusForbidden, "forbidden_origin")
			resp, raw = teststack.Do(t, http.MethodPost, st.APIURL+"/admin/bind", strings.NewReader(`{"action":"update-user","args":{"userId":"1"}}`),
				map[string]string{"Authorization": "Bearer " + adminToken, "Content-Type": "application/json", "Accept": "application/json", "Origin": tc.header["Origin"], "Sec-Fetch-Site": tc.header["Sec-Fetch-Site"]})
			wantCode(t, resp, raw, http.StatusForbidden, "forbidden_origin")
		})
	}
	// The same request from the dashboard's own page works.
	resp, raw := teststack.Do(t, http.MethodPost, st.APIURL+"/admin/queues/api/queues/default:pause", nil, basic(map[string]string{"Sec-Fetch-Site": "same-origin"}))
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

// accepted is what the tests read of an accepted answer.
type accepted struct {
	Submission struct {
		ID        string `json:"id"`
		StatusURL string `json:"statusUrl"`
	} `json:"submission"`
}

func acceptedOf(t *testing.T, resp *http.Response, raw []byte) accepted {
	t.Helper()
	var a accepted
	if resp.StatusCode != http.StatusAccepted || json.Unmarshal(raw, &a) != nil || a.Submission.ID == "" {
		t.Fatalf("not accepted: %d %s", resp.StatusCode, raw)
	}
	return a
}

// waitDone polls a status URL (with the admin token) until the submission
// is completed or failed.
func waitDone(t *testing.T, st *teststack.Stack, id string) {
	t.Helper()
	teststack.WaitFor(t, 20*time.Second, "submission "+id+" done", func() bool {
		_, raw := teststack.Do(t, http.MethodGet, st.APIURL+"/submissions/"+id, nil, map[string]string{"Authorization": "Bearer " + adminToken})
		return strings.Contains(string(raw), `"status":"completed"`) || strings.Contains(string(raw), `"status":"failed"`)
	})
}

// firstEvent opens GET /events with headers and returns the data of its
// first message.
func firstEvent(t *testing.T, st *teststack.Stack, header map[string]string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, st.APIURL+"/events", nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		raw, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(raw)
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			return resp.StatusCode, data
		}
	}
	t.Fatalf("event stream ended without an event: %v", sc.Err())
	return 0, ""
}

// Anyone used to read every submission: /events replayed the ids of all
// actions, and /submissions/{id} answered filenames, keys, hashes and
// internal errors for any id.
func TestAttackReadAnotherSubmittersData(t *testing.T) {
	st := startActions(t, map[string]string{"FORMQ_EVENTS_TOKEN": "events-token-of-at-least-32-characters"})
	body, ct := teststack.MultipartBody(t, map[string]string{"name": "Ada", "email": "ada@example.com"}, map[string][]byte{"avatar": pngBytes(t)})
	resp, raw := teststack.Post(t, st.APIURL+"/actions/create-user", body, ct, map[string]string{"Accept": "application/json"})
	mine := acceptedOf(t, resp, raw)
	id := mine.Submission.ID
	if !strings.Contains(mine.Submission.StatusURL, "?t=") {
		t.Errorf("statusUrl %q carries no capability", mine.Submission.StatusURL)
	}
	waitDone(t, st, id)

	t.Run("status without the capability", func(t *testing.T) {
		for _, path := range []string{"/submissions/" + id, "/submissions/" + id + "/events"} {
			resp, raw := teststack.Do(t, http.MethodGet, st.APIURL+path, nil, map[string]string{"Accept": "application/json"})
			wantCode(t, resp, raw, http.StatusNotFound, "submission_not_found")
		}
	})
	t.Run("without the capability the answer says why, the same for every id", func(t *testing.T) {
		_, known := teststack.Do(t, http.MethodGet, st.APIURL+"/submissions/"+id, nil, map[string]string{"Accept": "application/json"})
		_, unknown := teststack.Do(t, http.MethodGet, st.APIURL+"/submissions/01NOSUCHSUBMISSION000000000", nil, map[string]string{"Accept": "application/json"})
		if string(known) != string(unknown) {
			t.Errorf("an existing id answers %s, a missing one %s: the answer tells them apart", known, unknown)
		}
		if !strings.Contains(string(known), "t=") || !strings.Contains(string(known), "statusUrl") {
			t.Errorf("the 404 without t= does not say the link needs it: %s", known)
		}
	})
	t.Run("another submission's capability", func(t *testing.T) {
		resp, raw := send(t, st, "create-user", url.Values{"name": {"Eve"}, "email": {"eve@example.com"}}, nil)
		other := acceptedOf(t, resp, raw)
		_, query, _ := strings.Cut(other.Submission.StatusURL, "?")
		resp, raw = teststack.Do(t, http.MethodGet, st.APIURL+"/submissions/"+id+"?"+query, nil, map[string]string{"Accept": "application/json"})
		wantCode(t, resp, raw, http.StatusNotFound, "submission_not_found")
	})
	t.Run("the submitter's view", func(t *testing.T) {
		resp, raw := teststack.Do(t, http.MethodGet, mine.Submission.StatusURL, nil, map[string]string{"Accept": "application/json"})
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(raw), `"field":"avatar"`) {
			t.Fatalf("with the capability: %d %s", resp.StatusCode, raw)
		}
		for _, secret := range []string{"me.png", `"key":"`, `"sha256":"`, "uploads/"} {
			if strings.Contains(string(raw), secret) {
				t.Errorf("the submitter's view shows %s: %s", secret, raw)
			}
		}
		resp, raw = teststack.Do(t, http.MethodGet, st.APIURL+"/submissions/"+id, nil, map[string]string{"Authorization": "Bearer " + adminToken})
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(raw), "me.png") || !strings.Contains(string(raw), `"sha256":"`) {
			t.Errorf("the admin sees everything: %d %s", resp.StatusCode, raw)
		}
	})
	t.Run("events without a token", func(t *testing.T) {
		// A public action's event comes after the private ones.
		resp, raw := send(t, st, "newsletter", url.Values{"email": {"ada@example.com"}}, nil)
		news := acceptedOf(t, resp, raw)
		waitDone(t, st, news.Submission.ID)
		replay := map[string]string{"Last-Event-ID": "0-0", "Accept": "text/event-stream"}
		status, data := firstEvent(t, st, replay)
		if status != http.StatusOK || !strings.Contains(data, `"action":"newsletter"`) || strings.Contains(data, news.Submission.ID) || strings.Contains(data, id) {
			t.Errorf("anonymous replay: %d %s; want only the public action's event, without its id", status, data)
		}
		replay["Authorization"] = "Bearer events-token-of-at-least-32-characters"
		if status, data := firstEvent(t, st, replay); status != http.StatusOK || !strings.Contains(data, id) {
			t.Errorf("with the events token: %d %s; want the first submission's event", status, data)
		}
		replay["Authorization"] = "Bearer wrong"
		if status, data := firstEvent(t, st, replay); status != http.StatusForbidden {
			t.Errorf("wrong events token: %d %s", status, data)
		}
	})
}

// A bot that fills the honeypot used to tell its fake success apart: the
// id it got answered 404. It must answer like a real submission.
func TestAttackHoneypotIsDistinguishable(t *testing.T) {
	st := startActions(t, nil)
	resp, raw := send(t, st, "create-user", url.Values{"name": {"Ada"}, "email": {"ada@example.com"}}, nil)
	real := acceptedOf(t, resp, raw)
	waitDone(t, st, real.Submission.ID)
	resp, raw = send(t, st, "create-user", url.Values{"name": {"Bot"}, "email": {"bot@example.com"}, "_gotcha": {"spam"}}, nil)
	fake := acceptedOf(t, resp, raw)

	shape := func(statusURL string) (map[string]any, []string) {
		resp, raw := teststack.Do(t, http.MethodGet, statusURL, nil, map[string]string{"Accept": "application/json"})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s", statusURL, resp.StatusCode, raw)
		}
		var v struct {
			Submission map[string]any `json:"submission"`
		}
		if err := json.Unmarshal(raw, &v); err != nil {
			t.Fatal(err)
		}
		var keys []string
		for k := range v.Submission {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		return v.Submission, keys
	}
	realSt, realKeys := shape(real.Submission.StatusURL)
	fakeSt, fakeKeys := shape(fake.Submission.StatusURL)
	if !slices.Equal(realKeys, fakeKeys) || fakeSt["status"] != realSt["status"] || fakeSt["id"] != fake.Submission.ID {
		t.Errorf("honeypot status %v differs from a real one %v", fakeSt, realSt)
	}
	resp, raw = teststack.Do(t, http.MethodGet, strings.Replace(fake.Submission.StatusURL, "?", "/events?", 1), nil, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(raw), `"status":"completed"`) {
		t.Errorf("honeypot status stream: %d %s", resp.StatusCode, raw)
	}
}

// /metrics exposes process_start_time_seconds and every counter; with
// FORMQ_METRICS_ADDR it leaves the public address.
func TestAttackScrapePublicMetrics(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	st := startActions(t, map[string]string{"FORMQ_METRICS_ADDR": addr})
	resp, raw := teststack.Do(t, http.MethodGet, st.APIURL+"/metrics", nil, map[string]string{"Accept": "application/json"})
	wantCode(t, resp, raw, http.StatusNotFound, "not_found")
	resp, raw = teststack.Do(t, http.MethodGet, "http://"+addr+"/metrics", nil, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(raw), "go_goroutines") {
		t.Fatalf("metrics on their own address: %d %.200s", resp.StatusCode, raw)
	}
}

// openStream opens an event stream and returns its answer; a 200 stays
// open until the test ends.
func openStream(t *testing.T, url string, header map[string]string) *http.Response {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	req.Header.Set("Accept", "text/event-stream")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); resp.Body.Close() })
	return resp
}

// refusedStream reads the refusal of a stream that must not open.
func refusedStream(t *testing.T, resp *http.Response) []byte {
	t.Helper()
	if resp.StatusCode == http.StatusOK {
		t.Fatalf("the stream was served (200); want 429")
	}
	raw, _ := io.ReadAll(resp.Body)
	return raw
}

// One client used to hold as many event streams as it liked (300 were all
// served): streams are capped per client address and in all, with 429.
func TestAttackExhaustEventStreams(t *testing.T) {
	st := startActions(t, map[string]string{
		"FORMQ_STREAMS_PER_CLIENT": "3", "FORMQ_STREAMS_MAX": "5", "FORMQ_TRUSTED_PROXIES": "127.0.0.1/32",
	})
	from := func(ip string) map[string]string { return map[string]string{"X-Forwarded-For": ip} }
	for i := range 3 {
		if resp := openStream(t, st.APIURL+"/events", from("203.0.113.1")); resp.StatusCode != http.StatusOK {
			t.Fatalf("stream %d of the first client: %d", i+1, resp.StatusCode)
		}
	}
	resp := openStream(t, st.APIURL+"/events", from("203.0.113.1"))
	raw := refusedStream(t, resp)
	e := wantCode(t, resp, raw, http.StatusTooManyRequests, "rate_limited")
	if !strings.Contains(e.Error.Message, "your address") || resp.Header.Get("Retry-After") == "" {
		t.Errorf("per-client refusal: %s, Retry-After %q", raw, resp.Header.Get("Retry-After"))
	}
	// Status streams count too.
	rresp, rraw := send(t, st, "create-user", url.Values{"name": {"Ada"}, "email": {"ada@example.com"}}, map[string]string{"X-Forwarded-For": "203.0.113.1"})
	su := acceptedOf(t, rresp, rraw).Submission.StatusURL
	resp = openStream(t, strings.Replace(su, "?", "/events?", 1), from("203.0.113.1"))
	raw = refusedStream(t, resp)
	wantCode(t, resp, raw, http.StatusTooManyRequests, "rate_limited")

	for i := range 2 {
		if resp := openStream(t, st.APIURL+"/events", from("203.0.113.2")); resp.StatusCode != http.StatusOK {
			t.Fatalf("stream %d of the second client: %d", i+1, resp.StatusCode)
		}
	}
	resp = openStream(t, st.APIURL+"/events", from("203.0.113.3"))
	raw = refusedStream(t, resp)
	e = wantCode(t, resp, raw, http.StatusTooManyRequests, "rate_limited")
	if !strings.Contains(e.Error.Message, "this server") {
		t.Errorf("total refusal: %s", raw)
	}
}

// TestAttackQueueDashboardFramed: the queue dashboard's buttons delete,
// retry and pause; another site must not frame it (clickjacking) nor
// make a browser read its files as another type, as the inbox already
// forbids.
func TestAttackQueueDashboardFramed(t *testing.T) {
	st := startActions(t, nil)
	for _, path := range []string{"/admin/queues", "/admin/queues/api/queues"} {
		resp, _ := teststack.Do(t, http.MethodGet, st.APIURL+path, nil, map[string]string{
			"Authorization": "Basic " + basicAuth("admin", adminToken), "Sec-Fetch-Site": "same-origin"})
		h := resp.Header
		if resp.StatusCode != http.StatusOK || !strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") ||
			h.Get("X-Frame-Options") != "DENY" || h.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: %d, CSP %q, X-Frame-Options %q, X-Content-Type-Options %q", path, resp.StatusCode,
				h.Get("Content-Security-Policy"), h.Get("X-Frame-Options"), h.Get("X-Content-Type-Options"))
		}
	}
}
