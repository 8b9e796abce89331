package routes_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/formq/formq/internal/teststack"
	"github.com/formq/formq/submission"
)

// hookReceiver is a local webhook receiver: it answers 503 until told to
// accept, can hold requests until released, and keeps every webhook-id.
type hookReceiver struct {
	*httptest.Server
	accept atomic.Bool
	mu     sync.Mutex
	ids    []string
	hold   chan struct{} // when not nil, requests wait for it to close
	held   chan struct{} // told when a request is held
}

func newHookReceiver(t *testing.T) *hookReceiver {
	r := &hookReceiver{held: make(chan struct{}, 8)}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		io.Copy(io.Discard, req.Body)
		r.mu.Lock()
		r.ids = append(r.ids, req.Header.Get("webhook-id"))
		hold := r.hold
		r.mu.Unlock()
		if hold != nil {
			r.held <- struct{}{}
			<-hold
		}
		if !r.accept.Load() {
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *hookReceiver) seen() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.ids...)
}

// errorAnswer is a contract error's JSON.
type errorAnswer struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

type detailAnswer struct {
	Status *submission.Status `json:"status"`
}

// TestRedeliverAFailedWebhookWithItsWebhookID runs a webhook that fails
// for good against a local receiver, reads its attempts in the delivery
// log (admin detail, admin status, inbox page; never the submitter's
// view), then redelivers it from the inbox page's button once the
// receiver is back: the receiver gets the same webhook-id and the log
// shows the new attempt. A redelivery while one runs is refused (409),
// as are non-webhook steps (422) and unknown ids (404).
func TestRedeliverAFailedWebhookWithItsWebhookID(t *testing.T) {
	hook := newHookReceiver(t)
	actionsYAML := `actions:
  apply:
    fields:
      email: {type: email, required: true}
    uploads:
      avatar: {max_size: 1MB, types: [image/png]}
    steps:
      - thumbnail: {field: avatar, sizes: [16]}
      - webhook: {url: "` + hook.URL + `/hook?token=s3cret", secret_env: REDELIVER_HOOK_SECRET, max_attempts: 2, backoff: 50ms}
`
	st := startWithActions(t, actionsYAML, map[string]string{
		"FORMQ_WEBHOOK_ALLOW_PRIVATE": "true", "REDELIVER_HOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
	})
	body, ct := teststack.MultipartBody(t, map[string]string{"email": "hook@example.com"}, map[string][]byte{"avatar": pngBytes(t)})
	resp, raw := teststack.Post(t, st.APIURL+"/actions/apply", body, ct, map[string]string{"Accept": "application/json"})
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("post: %d %s", resp.StatusCode, raw)
	}
	var acc struct {
		Submission struct{ ID, StatusURL string } `json:"submission"`
	}
	json.Unmarshal(raw, &acc)
	id := acc.Submission.ID

	var d detailAnswer
	teststack.WaitFor(t, 60*time.Second, "the webhook failed for good", func() bool {
		d = detailAnswer{}
		admin(t, st, "GET", "/admin/submissions/"+id, &d)
		return d.Status != nil && d.Status.Status == submission.StatusFailed
	})
	hs := d.Status.Steps[1]
	if hs.Type != "webhook" || hs.State != submission.StepFailed || len(hs.Deliveries) != 2 {
		t.Fatalf("the webhook step: %+v", hs)
	}
	for _, a := range hs.Deliveries {
		if a.Status != http.StatusServiceUnavailable || !strings.Contains(a.Error, "answered 503") || a.URL != hook.URL+"/hook" ||
			a.WebhookID != "msg_"+id+"_1" || a.At.IsZero() || a.LatencyMS < 0 {
			t.Errorf("a failed attempt in the log: %+v", a)
		}
	}
	if len(d.Status.Steps[0].Deliveries) != 0 {
		t.Errorf("the thumbnail step has a delivery log: %+v", d.Status.Steps[0])
	}
	// The admin's status JSON has the log; the submitter's has none.
	var adminStatus StatusAnswerJSON
	admin(t, st, "GET", "/submissions/"+id, &adminStatus)
	if len(adminStatus.Submission.Steps) != 2 || len(adminStatus.Submission.Steps[1].Deliveries) != 2 {
		t.Errorf("the admin's status: %+v", adminStatus.Submission.Steps)
	}
	sresp, sraw := get(t, acc.Submission.StatusURL, map[string]string{"Accept": "application/json"})
	if sresp.StatusCode != http.StatusOK || strings.Contains(string(sraw), "deliveries") || strings.Contains(string(sraw), "s3cret") || strings.Contains(string(sraw), hook.URL) {
		t.Errorf("the submitter's view shows the log: %d %s", sresp.StatusCode, sraw)
	}
	r, html := page(t, st, "GET", "/admin/inbox/"+id, nil)
	if r.StatusCode != http.StatusOK || !strings.Contains(html, "Deliveries of step 2 (webhook)") || !strings.Contains(html, hook.URL+"/hook") ||
		strings.Contains(html, "s3cret") || !strings.Contains(html, "answered 503") || !strings.Contains(html, `action="/admin/inbox/`+id+`/redeliver"`) {
		t.Fatalf("the inbox page: %d\n%s", r.StatusCode, html)
	}

	// Refusals.
	var e errorAnswer
	if r := admin(t, st, "POST", "/admin/submissions/"+id+"/redeliver?step=1", &e); r.StatusCode != http.StatusUnprocessableEntity || e.Error.Code != "not_redeliverable" {
		t.Errorf("redeliver the thumbnail step: %d %+v", r.StatusCode, e)
	}
	if r := admin(t, st, "POST", "/admin/submissions/"+id+"/redeliver?step=3", &e); r.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("redeliver step 3 of 2: %d %+v", r.StatusCode, e)
	}
	if r := admin(t, st, "POST", "/admin/submissions/nosuchsubmission/redeliver", &e); r.StatusCode != http.StatusNotFound || e.Error.Code != "submission_not_found" {
		t.Errorf("redeliver an unknown id: %d %+v", r.StatusCode, e)
	}
	if r, _ := page(t, st, "POST", "/admin/inbox/"+id+"/redeliver", map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}); r.StatusCode != http.StatusForbidden {
		t.Errorf("a cross-site redelivery: %d", r.StatusCode)
	}
	if n := len(hook.seen()); n != 2 {
		t.Fatalf("the receiver saw %d requests before the redelivery, want 2", n)
	}

	// Redeliver from the page's button, the receiver holding the request:
	// meanwhile the submission is busy.
	release := make(chan struct{})
	hook.mu.Lock()
	hook.hold = release
	hook.mu.Unlock()
	hook.accept.Store(true)
	form := url.Values{"step": {"2"}}.Encode()
	req, _ := http.NewRequest("POST", st.APIURL+"/admin/inbox/"+id+"/redeliver", strings.NewReader(form))
	req.SetBasicAuth("admin", adminToken)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", st.APIURL)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	presp, err := noFollow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	presp.Body.Close()
	if presp.StatusCode != http.StatusSeeOther || presp.Header.Get("Location") != "/admin/inbox/"+id+"?redelivered=2" {
		t.Fatalf("the Redeliver button: %d %q", presp.StatusCode, presp.Header.Get("Location"))
	}
	select {
	case <-hook.held:
	case <-time.After(60 * time.Second):
		t.Fatal("the redelivery never reached the receiver")
	}
	if r := admin(t, st, "POST", "/admin/submissions/"+id+"/redeliver", &e); r.StatusCode != http.StatusConflict || e.Error.Code != "submission_busy" {
		t.Errorf("redeliver while processing: %d %+v", r.StatusCode, e)
	}
	hook.mu.Lock()
	hook.hold = nil
	hook.mu.Unlock()
	close(release)
	teststack.WaitFor(t, 60*time.Second, "the redelivered submission completed", func() bool {
		d = detailAnswer{}
		admin(t, st, "GET", "/admin/submissions/"+id, &d)
		return d.Status != nil && d.Status.Status == submission.StatusCompleted
	})
	ids := hook.seen()
	if len(ids) != 3 || ids[2] != ids[0] || ids[0] != "msg_"+id+"_1" {
		t.Errorf("webhook-ids the receiver saw: %q", ids)
	}
	log := d.Status.Steps[1].Deliveries
	if len(log) != 3 || log[2].Status != http.StatusNoContent || log[2].Error != "" || log[2].WebhookID != ids[0] {
		t.Errorf("the log after the redelivery: %+v", log)
	}
	if d.Status.Steps[0].State != submission.StepCompleted || d.Status.Steps[0].Attempts != 1 {
		t.Errorf("the thumbnail step ran again: %+v", d.Status.Steps[0])
	}
	if d.Status.Steps[1].State != submission.StepCompleted || d.Status.Steps[1].Attempts != 1 || d.Status.Error != "" {
		t.Errorf("the webhook step after the redelivery: %+v (error %q)", d.Status.Steps[1], d.Status.Error)
	}

	// The JSON route answers 202 with the status URL and runs it again.
	var red struct {
		OK         bool `json:"ok"`
		Submission struct{ ID, StatusURL string }
		Steps      []int `json:"steps"`
	}
	if r := admin(t, st, "POST", "/admin/submissions/"+id+"/redeliver", &red); r.StatusCode != http.StatusAccepted || !red.OK ||
		red.Submission.StatusURL != st.APIURL+"/submissions/"+id || len(red.Steps) != 1 || red.Steps[0] != 2 {
		t.Fatalf("redeliver every webhook step: %d %+v", r.StatusCode, red)
	}
	teststack.WaitFor(t, 60*time.Second, "the second redelivery", func() bool {
		d = detailAnswer{}
		admin(t, st, "GET", "/admin/submissions/"+id, &d)
		return d.Status != nil && d.Status.Status == submission.StatusCompleted && len(d.Status.Steps[1].Deliveries) == 4
	})
	if ids := hook.seen(); len(ids) != 4 || ids[3] != ids[0] {
		t.Errorf("webhook-ids after the second redelivery: %q", ids)
	}
	if _, html := page(t, st, "GET", "/admin/inbox/"+id, nil); strings.Count(html, "status-completed\">204<") != 2 {
		t.Errorf("the inbox page does not show the two successful attempts:\n%s", html)
	}
}

// StatusAnswerJSON is GET /submissions/{id} as the admin reads it.
type StatusAnswerJSON struct {
	Submission submission.Status `json:"submission"`
}
