package routes_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/formq/formq/internal/teststack"
)

// TestNotifyStepPostsToALocalSlackServerThroughTheWorker runs both
// binaries with a notify step whose url_env names a local server taking
// Slack's incoming-webhook shape: the worker posts one message per
// submission, with its values and the link to its inbox page, and the
// step completes.
func TestNotifyStepPostsToALocalSlackServerThroughTheWorker(t *testing.T) {
	var mu sync.Mutex
	var got []map[string]any
	slack := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var msg map[string]any
		if json.Unmarshal(raw, &msg) != nil || msg["text"] == nil || msg["blocks"] == nil || r.URL.Path != "/services/T0/B0/secret" {
			http.Error(w, "invalid_payload", http.StatusBadRequest)
			return
		}
		mu.Lock()
		got = append(got, msg)
		mu.Unlock()
		io.WriteString(w, "ok")
	}))
	t.Cleanup(slack.Close)
	st := startWithActions(t, `actions:
  contact:
    fields:
      name: {type: text}
      email: {type: email, required: true}
    steps:
      - notify: {service: slack, url_env: SALES_SLACK_URL, fields: [name, email]}
`, map[string]string{"FORMQ_WEBHOOK_ALLOW_PRIVATE": "true", "SALES_SLACK_URL": slack.URL + "/services/T0/B0/secret", "FORMQ_PUBLIC_URL": "https://forms.example.com"})
	resp, raw := send(t, st, "contact", url.Values{"name": {"Ada"}, "email": {"ada@example.com"}}, nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("post: %d %s", resp.StatusCode, raw)
	}
	var acc struct{ Submission struct{ ID string } }
	json.Unmarshal(raw, &acc)
	teststack.WaitFor(t, 30*time.Second, "the Slack message", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 1 })
	b, _ := json.Marshal(got[0])
	text := strings.NewReplacer(`\u003c`, "<", `\u003e`, ">").Replace(string(b))
	if !strings.Contains(text, "<https://forms.example.com/admin/inbox/"+acc.Submission.ID+"|New submission to contact>") || !strings.Contains(text, `*name*: Ada\n*email*: ada@example.com`) {
		t.Errorf("the message: %s", text)
	}
	teststack.WaitFor(t, 30*time.Second, "the submission completed", func() bool {
		var d struct {
			Status struct{ Status string } `json:"status"`
		}
		admin(t, st, "GET", "/admin/submissions/"+acc.Submission.ID, &d)
		return d.Status.Status == "completed"
	})
}
