package formq_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/formq/formq/internal/testenv"
	"github.com/formq/formq/internal/teststack"
)

// The tests of this file run formq as the shipped deployments do: two API
// and two worker processes (built binaries) on one Redis and S3
// (teststack.StartReplicas), and check that what one process decides
// holds on the other.

const replicasAdmin = "replicas-admin-token-0123456789abcdef"

// writeActions writes an actions file for one test and returns its path.
func writeActions(t *testing.T, yaml string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "actions.yaml")
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// postFrom posts a urlencoded form to an action as a script from the
// client address ip would (the APIs trust 127.0.0.1's X-Forwarded-For).
func postFrom(t *testing.T, apiURL, action, ip string, values url.Values) (*http.Response, []byte) {
	t.Helper()
	return teststack.Post(t, apiURL+"/actions/"+action, strings.NewReader(values.Encode()), "application/x-www-form-urlencoded",
		map[string]string{"Accept": "application/json", "X-Forwarded-For": ip})
}

// TestRateLimitHeldAcrossAPIProcesses: an action allowing 4 posts a
// minute per client, posted to 10 times by one client alternately on the
// two API processes, admits 4 in all (not 4 on each); another client is
// still admitted on both.
func TestRateLimitHeldAcrossAPIProcesses(t *testing.T) {
	rs := teststack.StartReplicasOn(t, testenv.StartRedis(t), testenv.StartS3(t), 2, 0, map[string]string{
		"FORMQ_ACTIONS": writeActions(t, `actions:
  limited:
    fields:
      name: {type: text, required: true}
    rate_limit: 4/1m
`),
		"FORMQ_TRUSTED_PROXIES": "127.0.0.1",
	})
	admitted := map[int]int{}
	for i := range 10 {
		resp, raw := postFrom(t, rs.API(i), "limited", "198.51.100.7", url.Values{"name": {"Ada"}})
		switch resp.StatusCode {
		case http.StatusAccepted:
			admitted[i%2]++
		case http.StatusTooManyRequests:
			if resp.Header.Get("Retry-After") == "" {
				t.Errorf("post %d: 429 without Retry-After", i)
			}
		default:
			t.Fatalf("post %d: %d %s", i, resp.StatusCode, raw)
		}
	}
	t.Logf("admitted by API 1: %d, by API 2: %d", admitted[0], admitted[1])
	if n := admitted[0] + admitted[1]; n != 4 {
		t.Errorf("%d of 10 posts admitted across both API processes; the limit is 4 per client", n)
	}
	for i := range 2 {
		if resp, raw := postFrom(t, rs.API(i), "limited", fmt.Sprintf("198.51.100.%d", 20+i), url.Values{"name": {"Grace"}}); resp.StatusCode != http.StatusAccepted {
			t.Errorf("another client on API %d: %d %s", i+1, resp.StatusCode, raw)
		}
	}
}

// TestAnswerWaitedForOnEitherProcess: an action with wait: answers with
// the app's data (or its refusal) whichever API process holds the answer
// and whichever worker runs the step, and the other API process shows the
// same in the status. Each worker serves alone in turn, then both.
func TestAnswerWaitedForOnEitherProcess(t *testing.T) {
	app := &postsApp{calls: map[string][]string{}}
	srv := newLocalServer(t, app)
	rs := teststack.StartReplicasOn(t, testenv.StartRedis(t), testenv.StartS3(t), 2, 1, map[string]string{
		"FORMQ_ACTIONS":               writeActions(t, fmt.Sprintf(answersActions, srv)),
		"FORMQ_WEBHOOK_ALLOW_PRIVATE": "true", "POSTS_HOOK": answersSecret,
	})
	round := func(name string, n int) {
		t.Helper()
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { checkWaitedAnswer(t, rs, i, fmt.Sprintf("%s %d", name, i)) })
		}
		wg.Wait()
	}
	round("first worker", 2)
	rs.Workers[0].Terminate()
	rs.StartWorker(t)
	round("second worker", 2)
	rs.StartWorker(t)
	round("both workers", 6)

	// A refusal, held on API 2, shown by API 1.
	resp, a, _ := postAnswer(t, rs.API(1), "create-post", map[string]string{"title": "taken"}, nil, jsonAccept)
	if resp.StatusCode != http.StatusUnprocessableEntity || len(a.Errors["title"]) == 0 {
		t.Fatalf("refused post on API 2: %d %+v", resp.StatusCode, a)
	}
	if a.Submission.StatusURL == "" {
		t.Fatalf("refused post on API 2: no status URL in %+v", a)
	}
	s := getStatus(t, rs.On(0, a.Submission.StatusURL))
	if s.Submission.Status != "rejected" || len(s.Submission.Errors["title"]) == 0 {
		t.Errorf("the refusal's status on API 1: %+v", s.Submission)
	}
}

// checkWaitedAnswer posts title to API i, wants the app's answer within
// the wait, and the same in the status on the other API.
func checkWaitedAnswer(t *testing.T, rs *teststack.Replicas, i int, title string) {
	resp, a, took := postAnswer(t, rs.API(i), "create-post", map[string]string{"title": title}, nil, jsonAccept)
	id := a.Submission.Data["save"]["id"]
	if resp.StatusCode != http.StatusOK || a.Submission.Status != "completed" || id == "" {
		t.Errorf("%q on API %d: %d after %s, status %q, data %v; want 200 completed with the app's id",
			title, i%2+1, resp.StatusCode, took.Round(time.Millisecond), a.Submission.Status, a.Submission.Data)
		return
	}
	if want := "Post " + id + " created: " + title; a.Message != want {
		t.Errorf("%q on API %d: message %q, want %q", title, i%2+1, a.Message, want)
	}
	s := getStatus(t, rs.On(i+1, a.Submission.StatusURL))
	if s.Submission.Status != "completed" || s.Submission.Data["save"]["id"] != id {
		t.Errorf("%q: the status on API %d is %q with %v; want completed with id %s", title, (i+1)%2+1, s.Submission.Status, s.Submission.Data, id)
	}
}

// TestErasureWhileTheOtherAPIServesTheStatus: a submission is erased on
// API 1 while API 2 serves its status and event stream to its sender
// over and over. Afterwards both answer 404 for it (status, stream and
// admin), and no Redis key or value and no S3 object names it, the
// sender's address or IP.
func TestErasureWhileTheOtherAPIServesTheStatus(t *testing.T) {
	rs := teststack.StartReplicas(t, map[string]string{
		"FORMQ_ACTIONS": writeActions(t, `actions:
  apply:
    fields:
      email: {type: email, required: true, personal: true}
      note: {type: text}
    rate_limit: 20/1h
    revalidate: {tags: ["pub:{email}"], paths: ["/people/{email}"]}
`),
		"FORMQ_TRUSTED_PROXIES": "127.0.0.1", "FORMQ_ADMIN_TOKEN": replicasAdmin,
	})
	const email, ip = "erin.erased@example.com", "198.51.100.9"
	resp, raw := postFrom(t, rs.API(0), "apply", ip, url.Values{"email": {email}, "note": {"hello"}})
	var acc answer
	if resp.StatusCode != http.StatusAccepted || json.Unmarshal(raw, &acc) != nil {
		t.Fatalf("post: %d %s", resp.StatusCode, raw)
	}
	id := acc.Submission.ID
	statusOn2 := rs.On(1, acc.Submission.StatusURL)
	teststack.WaitFor(t, 60*time.Second, "the submission completed, on API 2", func() bool {
		return getStatus(t, statusOn2).Submission.Status == "completed"
	})
	eventsOn2 := strings.Replace(statusOn2, "/submissions/"+id, "/submissions/"+id+"/events", 1)

	// API 2 serves the status and its stream while API 1 erases.
	ctx, stop := context.WithCancel(context.Background())
	var served sync.WaitGroup
	var mu sync.Mutex
	seen := map[string]int{}
	for what, u := range map[string]string{"status": statusOn2, "events": eventsOn2} {
		served.Go(func() {
			for ctx.Err() == nil {
				code, body := readAll(ctx, u)
				mu.Lock()
				seen[fmt.Sprintf("%s %d", what, code)]++
				if code == http.StatusOK && !strings.Contains(body, "completed") {
					t.Errorf("API 2 answered 200 for %s with %s", u, body)
				}
				mu.Unlock()
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	resp, raw = teststack.Do(t, http.MethodDelete, rs.API(0)+"/admin/submissions/"+id, nil, map[string]string{
		"Authorization": "Bearer " + replicasAdmin, "Accept": "application/json",
	})
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(raw), id) {
		t.Fatalf("erase on API 1: %d %s", resp.StatusCode, raw)
	}
	time.Sleep(300 * time.Millisecond)
	stop()
	served.Wait()
	t.Logf("API 2 served while API 1 erased: %v", seen)

	for i := range 2 {
		for _, u := range []string{rs.On(i, statusOn2), rs.On(i, eventsOn2)} {
			if code, body := readAll(context.Background(), u); code != http.StatusNotFound {
				t.Errorf("after the erasure, API %d answers %d for %s: %.200s", i+1, code, u, body)
			}
		}
		resp, _ := teststack.Do(t, http.MethodGet, rs.API(i)+"/admin/submissions/"+id, nil, map[string]string{"Authorization": "Bearer " + replicasAdmin})
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("after the erasure, API %d's admin answers %d for the submission", i+1, resp.StatusCode)
		}
	}
	for _, trace := range teststack.Traces(t, rs.RDB, rs.Store, id, email, ip) {
		t.Errorf("left after the erasure: %s", trace)
	}
}

// readAll GETs u and reads the answer to its end (an event stream ends
// once the submission is done, or is gone).
func readAll(ctx context.Context, u string) (int, string) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	var b strings.Builder
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		b.WriteString(sc.Text() + "\n")
	}
	return resp.StatusCode, b.String()
}

// openEvents opens GET /events on apiURL as the client at ip; the stream
// stays open until the test closes its body.
func openEvents(t *testing.T, apiURL, ip string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, apiURL+"/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Forwarded-For", ip)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// TestEventStreamCapHeldAcrossAPIProcesses: the cap of event streams per
// client (FORMQ_STREAMS_PER_CLIENT, 3 here) held on each API process
// alone, so a client reaching two replicas held twice as many. Now one
// client opening streams alternately on both gets 3 in all and a 429
// rate_limited on either after; a stream it closes on one API frees a
// place on the other; another client still gets its streams.
func TestEventStreamCapHeldAcrossAPIProcesses(t *testing.T) {
	rs := teststack.StartReplicasOn(t, testenv.StartRedis(t), testenv.StartS3(t), 2, 0, map[string]string{
		"FORMQ_STREAMS_PER_CLIENT": "3", "FORMQ_TRUSTED_PROXIES": "127.0.0.1",
	})
	const ip = "198.51.100.30"
	var open []*http.Response
	refused := 0
	for i := range 6 {
		resp := openEvents(t, rs.API(i), ip)
		switch resp.StatusCode {
		case http.StatusOK:
			open = append(open, resp)
		case http.StatusTooManyRequests:
			refused++
			raw, _ := io.ReadAll(resp.Body)
			if !strings.Contains(string(raw), "your address") || resp.Header.Get("Retry-After") == "" {
				t.Errorf("refusal on API %d: %s, Retry-After %q", i%2+1, raw, resp.Header.Get("Retry-After"))
			}
		default:
			t.Fatalf("stream %d: %d", i, resp.StatusCode)
		}
	}
	t.Logf("of 6 streams from one client on two APIs: %d open, %d refused", len(open), refused)
	if len(open) != 3 {
		t.Fatalf("%d streams open across both APIs; the cap is 3 per client", len(open))
	}
	for i := range 2 {
		if resp := openEvents(t, rs.API(i), "198.51.100.31"); resp.StatusCode != http.StatusOK {
			t.Errorf("another client on API %d: %d", i+1, resp.StatusCode)
		}
	}
	// The first stream was on API 1; closed, it frees a place on API 2.
	open[0].Body.Close()
	teststack.WaitFor(t, 10*time.Second, "a place freed by the closed stream", func() bool {
		resp := openEvents(t, rs.API(1), ip)
		defer func() {
			if resp.StatusCode != http.StatusOK {
				resp.Body.Close()
			}
		}()
		return resp.StatusCode == http.StatusOK
	})
	if resp := openEvents(t, rs.API(0), ip); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("at the cap again, API 1 answered %d", resp.StatusCode)
	}
}

// TestEventStreamsOfAKilledAPIStopCounting: the streams a client held on
// an API process that was killed (no shutdown, no release) stop counting
// against its cap within 30 seconds, so the client is not locked out by
// a crash.
func TestEventStreamsOfAKilledAPIStopCounting(t *testing.T) {
	rs := teststack.StartReplicasOn(t, testenv.StartRedis(t), testenv.StartS3(t), 2, 0, map[string]string{
		"FORMQ_STREAMS_PER_CLIENT": "2", "FORMQ_TRUSTED_PROXIES": "127.0.0.1",
	})
	const ip = "198.51.100.32"
	for i := range 2 {
		if resp := openEvents(t, rs.API(0), ip); resp.StatusCode != http.StatusOK {
			t.Fatalf("stream %d on API 1: %d", i+1, resp.StatusCode)
		}
	}
	if resp := openEvents(t, rs.API(1), ip); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("a third stream on API 2: %d, want 429", resp.StatusCode)
	}
	rs.APIs[0].Kill()
	killed := time.Now()
	teststack.WaitFor(t, 45*time.Second, "the killed API's streams to stop counting", func() bool {
		resp := openEvents(t, rs.API(1), ip)
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return false
		}
		return true
	})
	t.Logf("a stream admitted on API 2 %s after API 1 was killed", time.Since(killed).Round(time.Second))
}
