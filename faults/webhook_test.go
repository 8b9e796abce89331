//go:build faults

package faults

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/formq/formq/internal/testenv"
	"github.com/formq/formq/submission"
)

// receiver is a webhook receiver that refuses (503) while down and
// counts, per webhook-id, the deliveries it accepted.
type receiver struct {
	down      atomic.Bool
	mu        sync.Mutex
	refused   int
	delivered map[string]int
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	io.Copy(io.Discard, req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.down.Load() {
		r.refused++
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	r.delivered[req.Header.Get("webhook-id")]++
	w.WriteHeader(http.StatusNoContent)
}

const faultsAdminToken = "faults-suite-admin-token-0123456789abcdef"

// adminJSON calls the admin API and decodes its JSON into out.
func adminJSON(apiURL, method, path string, out any) (int, error) {
	req, _ := http.NewRequest(method, apiURL+path, nil)
	req.Header.Set("Authorization", "Bearer "+faultsAdminToken)
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	return resp.StatusCode, json.NewDecoder(resp.Body).Decode(out)
}

// listed is the ids of the admin list of an action's submissions in
// one status.
func listed(t *testing.T, apiURL, action, status string) map[string]bool {
	t.Helper()
	ids := map[string]bool{}
	cursor := ""
	for {
		var page struct {
			Submissions []submission.Listed `json:"submissions"`
			Next        string              `json:"next"`
		}
		q := url.Values{"action": {action}, "status": {status}, "cursor": {cursor}}
		if code, err := adminJSON(apiURL, http.MethodGet, "/admin/submissions?"+q.Encode(), &page); err != nil || code != http.StatusOK {
			t.Fatalf("admin list: %d %v", code, err)
		}
		for _, s := range page.Submissions {
			ids[s.ID] = true
		}
		if page.Next == "" {
			return ids
		}
		cursor = page.Next
	}
}

// TestWebhookReceiverDownPastItsRetries posts for 5 s (20/s)
// to an action whose webhook has 3 attempts 100 ms apart, while its
// receiver answers 503. Expected: every one ends failed and is listed so
// in the admin API; once the receiver is back, a redelivery of each
// (POST /admin/submissions/{id}/redeliver) delivers each exactly once,
// under its first webhook-id, and each ends completed.
// The recovery column is the time from the receiver's return (and the
// redeliveries) to the last submission completed.
func TestWebhookReceiverDownPastItsRetries(t *testing.T) {
	started := time.Now()
	r := testenv.StartRedis(t)
	recv := &receiver{delivered: map[string]int{}}
	recv.down.Store(true)
	actionsFile := hookActions(t, recv, "max_attempts: 3, backoff: 100ms", "")
	st := newStack(t, r.URL(), testenv.StartS3(t), map[string]string{"FORMQ_ACTIONS": actionsFile, "FORMQ_ADMIN_TOKEN": faultsAdminToken})
	api := start(t, st.apiBin, "api", st.env)
	_ = start(t, st.workerBin, "worker", st.env)

	l := runLoad(api.URL, 20, 5*time.Second)
	name := "webhook receiver down past its 3 attempts (100ms backoff), 20 posts/s for 5s, then redelivered"
	row := row{scenario: name, posted: l.posted, acked: len(l.acked), unavailable: l.unavailable, otherFailure: l.other,
		backAfter: notMeasured, slowest202: l.slowest202, slowest503: l.slowest503}
	deadline := time.Now().Add(60 * time.Second)
	var failed map[string]bool
	for {
		failed = listed(t, api.URL, "hook", submission.StatusFailed)
		if len(failed) >= len(l.acked) || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	for id := range l.acked {
		if !failed[id] {
			row.lost++
		}
	}
	expect(t, &row.failed, row.lost == 0, "%d of %d acknowledged submissions not listed failed in the admin API", row.lost, row.acked)
	recv.mu.Lock()
	refused := recv.refused
	recv.mu.Unlock()
	expect(t, &row.failed, refused == 3*row.acked, "the receiver refused %d deliveries, want 3 per submission (%d)", refused, 3*row.acked)

	recv.down.Store(false)
	back := time.Now()
	for id := range l.acked {
		var red struct{ Steps []int }
		if code, err := adminJSON(api.URL, http.MethodPost, "/admin/submissions/"+id+"/redeliver", &red); err != nil || code != http.StatusAccepted {
			row.failed = append(row.failed, fmt.Sprintf("redeliver %s: %d %v", id, code, err))
			t.Errorf("redeliver %s: %d %v", id, code, err)
		}
	}
	var completed map[string]bool
	deadline = time.Now().Add(60 * time.Second)
	for {
		completed = listed(t, api.URL, "hook", submission.StatusCompleted)
		if len(completed) >= len(l.acked) || time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	row.recovery = time.Since(back)
	row.recoveryMax = row.recovery
	row.caught = len(completed)
	recv.mu.Lock()
	var missing []string
	for id := range l.acked {
		switch n := recv.delivered["msg_"+id+"_0"]; {
		case n == 0:
			missing = append(missing, id)
		case n > 1:
			row.dup++
		}
	}
	extra := len(recv.delivered) - len(l.acked) + len(missing)
	recv.mu.Unlock()
	expect(t, &row.failed, len(missing) == 0, "%d submissions never delivered after the redelivery: %v", len(missing), missing[:min(len(missing), 3)])
	expect(t, &row.failed, row.dup == 0, "%d submissions delivered more than once", row.dup)
	expect(t, &row.failed, extra == 0, "%d deliveries under unknown webhook-ids", extra)
	expect(t, &row.failed, len(completed) == row.acked, "%d of %d completed after the redelivery", len(completed), row.acked)
	expect(t, &row.failed, row.acked == row.posted && row.otherFailure == 0, "acknowledged %d of %d posts, %d other answers", row.acked, row.posted, row.otherFailure)
	row.took = time.Since(started)
	record(t, row)
}
