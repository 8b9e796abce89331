package jobs_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/formq/formq/api"
	"github.com/formq/formq/internal/testenv"
	"github.com/formq/formq/internal/teststack"
	"github.com/formq/formq/jobs"
	"github.com/formq/formq/submission"
)

const fleetSecret = "whsec_ZmxlZXQtdGVzdC1zZWNyZXQtMTIzNDU2Nzg="

// fleetReceiver is the webhook endpoint of the fleet test. It checks every
// signature itself and, once holdAfter deliveries arrived, holds the next
// ones until released, so the test can kill a worker in the middle of
// deliveries.
type fleetReceiver struct {
	holdAfter int
	release   chan struct{}

	mu     sync.Mutex
	all    int
	held   int
	ids    map[string]int
	badSig int
}

func (rc *fleetReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	id := r.Header.Get("webhook-id")
	ok := checkSignature(id, r.Header.Get("webhook-timestamp"), r.Header.Get("webhook-signature"), body)
	rc.mu.Lock()
	rc.all++
	rc.ids[id]++
	if !ok {
		rc.badSig++
	}
	hold := rc.all > rc.holdAfter
	if hold {
		rc.held++
	}
	rc.mu.Unlock()
	if hold {
		<-rc.release
	}
	w.WriteHeader(http.StatusOK)
}

func (rc *fleetReceiver) counts() (all, held, distinct, bad int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.all, rc.held, len(rc.ids), rc.badSig
}

// checkSignature verifies a Standard Webhooks signature from the spec.
func checkSignature(id, ts, header string, body []byte) bool {
	key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(fleetSecret, "whsec_"))
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%s.%s", id, ts, body)
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	for _, s := range strings.Fields(header) {
		if hmac.Equal([]byte(s), []byte(want)) {
			return true
		}
	}
	return false
}

func buildWorker(t *testing.T) string {
	t.Helper()
	return testenv.Build(t, "", "./cmd/worker")
}

// startWorker runs cmd/worker as its own process.
func startWorker(t *testing.T, bin, name string, env map[string]string) *teststack.Process {
	t.Helper()
	return teststack.StartProcess(t, bin, name, env)
}

// TestTwoWorkerProcessesSurviveSIGKILL: 200 submissions with a webhook
// step, two worker processes, one SIGKILLed while it is delivering.
func TestTwoWorkerProcessesSurviveSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds cmd/worker and waits for lease recovery (about a minute)")
	}
	const n = 200
	bin := buildWorker(t)
	r := testenv.StartRedis(t)
	s3 := testenv.StartS3(t)
	rc := &fleetReceiver{holdAfter: 60, release: make(chan struct{}), ids: map[string]int{}}
	recv := httptest.NewServer(rc)
	defer recv.Close()
	var releaseOnce sync.Once
	release := func() { releaseOnce.Do(func() { close(rc.release) }) }
	defer release()

	actionsFile := filepath.Join(t.TempDir(), "actions.yaml")
	os.WriteFile(actionsFile, []byte(`actions:
  hook:
    fields:
      name: {type: text, required: true}
    steps:
      - webhook: {url: "`+recv.URL+`/hook", secret_env: FLEET_HOOK_SECRET, backoff: 200ms}
    revalidate: {paths: [/hooks], tags: [hooks, "hook:{id}"]}
`), 0o644)
	env := map[string]string{
		"FORMQ_ENV": "development", "FORMQ_ADDR": "127.0.0.1:0", "FORMQ_WORKER_ADDR": "127.0.0.1:0",
		"FORMQ_REDIS_URL": r.URL(), "FORMQ_S3_CREATE_BUCKET": "true", "FORMQ_ACTIONS": actionsFile,
		"FORMQ_WEBHOOK_ALLOW_PRIVATE": "true", "FLEET_HOOK_SECRET": fleetSecret,
		"FORMQ_WORKER_CONCURRENCY": "4", "FORMQ_SHUTDOWN_TIMEOUT": "5s",
	}
	for k, v := range s3.Env() {
		env[k] = v
	}
	apiURL := teststack.StartRun(t, "api", api.Main, env)
	w1 := startWorker(t, bin, "worker1", env)
	w2 := startWorker(t, bin, "worker2", env)

	ids := make([]string, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			resp, err := http.PostForm(apiURL+"/actions/hook?", url.Values{"name": {fmt.Sprintf("user %d", i)}})
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			// The HTML flow: 303 to the done page with the id.
			loc, _ := url.Parse(resp.Request.URL.String())
			ids[i] = loc.Query().Get("submission")
		}()
	}
	wg.Wait()

	// Wait until both workers are stuck in deliveries, then kill one.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, held, _, _ := rc.counts(); held >= 8 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	_, heldAtKill, _, _ := rc.counts()
	w1.Kill()
	killedAt := time.Now()
	release()

	rdb := r.Client(t)
	status := jobs.NewStatusStore(rdb)
	ctx := context.Background()
	pending := map[string]bool{}
	for _, id := range ids {
		if id == "" {
			t.Fatal("a submission was not accepted")
		}
		pending[id] = true
	}
	var lastDone time.Time
	teststack.WaitFor(t, 150*time.Second, "every submission to complete", func() bool {
		for id := range pending {
			st, err := status.Status(ctx, id)
			if err == nil && st.Done() {
				if st.Status != submission.StatusCompleted {
					t.Fatalf("submission %s ended %s: %s", id, st.Status, st.Error)
				}
				delete(pending, id)
				lastDone = time.Now()
			}
		}
		return len(pending) == 0
	})
	t.Logf("killed worker1 with %d deliveries held in the receiver; all %d completed %.1fs after the kill", heldAtKill, n, lastDone.Sub(killedAt).Seconds())

	// Exactly one event per submission.
	msgs, err := rdb.XRange(ctx, submission.EventsStream, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, m := range msgs {
		var ev submission.Event
		_ = json.Unmarshal([]byte(m.Values["event"].(string)), &ev)
		seen[ev.Submission]++
	}
	if len(msgs) != n || len(seen) != n {
		t.Errorf("stream holds %d events for %d submissions, want %d and %d", len(msgs), len(seen), n, n)
	}
	for _, id := range ids {
		if seen[id] != 1 {
			t.Errorf("submission %s has %d events", id, seen[id])
		}
	}

	// 200 distinct, validly signed webhook-ids; the deliveries cut by the
	// kill came again with the same id.
	all, _, distinct, bad := rc.counts()
	if distinct != n || bad != 0 {
		t.Errorf("receiver saw %d distinct webhook-ids (want %d), %d bad signatures", distinct, n, bad)
	}
	for _, id := range ids {
		if rc.ids["msg_"+id+"_0"] == 0 {
			t.Errorf("no webhook for %s", id)
		}
	}
	if heldAtKill >= 8 && all <= n {
		t.Errorf("%d deliveries for %d submissions: the killed worker's deliveries were not retried", all, n)
	}
	t.Logf("%d deliveries, %d distinct webhook-ids", all, distinct)

	keys := listRecords(t, s3)
	if len(keys) != n {
		t.Errorf("S3 holds %d records, want %d", len(keys), n)
	}
	teststack.WaitOK(t, w2.URL+"/healthz")
	if out, _ := os.ReadFile(w2.Log); !strings.Contains(string(out), "requeued tasks") {
		t.Logf("worker2 log has no recoverer line; asynq's own recoverer took the tasks back")
	}
}

func listRecords(t *testing.T, s testenv.S3) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(s.Dir, "submissions", "hook"))
	if err != nil {
		t.Fatalf("records on disk: %v", err)
	}
	var keys []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".json") {
			keys = append(keys, e.Name())
		}
	}
	return keys
}
