package formq_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net"
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
	"github.com/formq/formq/submission"
)

const answersSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

const answersAdmin = "answers-admin-token-0123456789abcdef"

// answersActions: a post whose app answers (webhook step "save"), waited
// for up to 3 s, with an upload field whose files are kept on a refusal.
const answersActions = `actions:
  create-post:
    fields:
      title: {type: text, required: true}
    uploads:
      cover: {max_size: 1MB, types: [image/png]}
    steps:
      - webhook: {name: save, url: "%[1]s/posts", secret_env: POSTS_HOOK, backoff: 200ms, max_attempts: 5}
    wait: 3s
    message: "Post {steps.save.id} created: {title}"
    redirect: /posts/{steps.save.id}
  later-post:
    fields:
      title: {type: text, required: true}
    steps:
      - webhook: {name: save, url: "%[1]s/posts", secret_env: POSTS_HOOK}
    message: "Post {steps.save.id} created: {title}"
    redirect: /posts/{steps.save.id}
`

// postsApp is the app behind the webhook step, as a Next.js route would
// answer: a taken title is refused with a field error (and one for a
// field the form does not have), "slow" answers after a delay, anything
// else gets a new id.
type postsApp struct {
	mu     sync.Mutex
	calls  map[string][]string // webhook-ids by title
	queues []string            // the queue of each delivered record
	delay  time.Duration
	next   int
}

func (p *postsApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var rec struct {
		Values map[string]any `json:"values"`
		Queue  string         `json:"queue"`
	}
	_ = json.NewDecoder(r.Body).Decode(&rec)
	title, _ := rec.Values["title"].(string)
	p.mu.Lock()
	p.calls[title] = append(p.calls[title], r.Header.Get("webhook-id"))
	p.queues = append(p.queues, rec.Queue)
	p.next++
	id := fmt.Sprintf("p%d", p.next)
	delay := p.delay
	p.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	switch {
	case title == "taken":
		w.WriteHeader(http.StatusUnprocessableEntity)
		_, _ = io.WriteString(w, `{"errors": {"title": ["That title is taken"], "tags": ["Tags are closed"]}, "message": "Check the form."}`)
		return
	case strings.HasPrefix(title, "slow"):
		time.Sleep(delay)
	}
	w.WriteHeader(http.StatusCreated)
	_, _ = fmt.Fprintf(w, `{"data": {"id": %q}}`, id)
}

func (p *postsApp) seen(title string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.calls[title]...)
}

// answersStack runs the API and a worker as processes of their own on
// real Redis and S3, with the posts app, and returns the API's URL.
type answersStack struct {
	api, worker string
	env         map[string]string
	app         *postsApp
	apiProc     *teststack.Process
	workerProc  *teststack.Process
	redis       testenv.Redis
}

func startAnswers(t *testing.T, extra map[string]string) *answersStack {
	t.Helper()
	app := &postsApp{calls: map[string][]string{}, delay: 5 * time.Second}
	srv := newLocalServer(t, app)
	dir := t.TempDir()
	file := filepath.Join(dir, "actions.yaml")
	if err := os.WriteFile(file, fmt.Appendf(nil, answersActions, srv), 0o644); err != nil {
		t.Fatal(err)
	}
	r, s3 := testenv.StartRedis(t), testenv.StartS3(t)
	env := map[string]string{
		"FORMQ_ENV": "development", "FORMQ_ADDR": "127.0.0.1:0", "FORMQ_WORKER_ADDR": "127.0.0.1:0",
		"FORMQ_REDIS_URL": r.URL(), "FORMQ_S3_CREATE_BUCKET": "true", "FORMQ_ACTIONS": file,
		"FORMQ_SECRET": strings.Repeat("k", 40), "FORMQ_WEBHOOK_ALLOW_PRIVATE": "true", "POSTS_HOOK": answersSecret,
		"FORMQ_ADMIN_TOKEN": answersAdmin,
	}
	for k, v := range s3.Env() {
		env[k] = v
	}
	for k, v := range extra {
		env[k] = v
	}
	st := &answersStack{env: env, app: app, redis: r}
	st.apiProc = teststack.StartProcess(t, testenv.Build(t, "", "./cmd/api"), "api", env)
	st.workerProc = teststack.StartProcess(t, testenv.Build(t, "", "./cmd/worker"), "worker", env)
	st.api, st.worker = st.apiProc.URL, st.workerProc.URL
	return st
}

// newLocalServer serves h on a loopback port until the test ends.
func newLocalServer(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	l, err := netListen()
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + l.Addr().String()
}

// answer is what the tests read of a submit or status answer.
type answer struct {
	OK       bool   `json:"ok"`
	Message  string `json:"message"`
	Redirect string `json:"redirect"`
	Error    struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	Errors     map[string][]string `json:"errors"`
	Values     map[string]any      `json:"values"`
	Kept       map[string][]struct{ Ref, Filename string }
	Submission struct {
		ID        string                       `json:"id"`
		Status    string                       `json:"status"`
		StatusURL string                       `json:"statusUrl"`
		Data      map[string]map[string]string `json:"data"`
		Files     []submission.File            `json:"files"`
		Errors    map[string][]string          `json:"errors"`
		Message   string                       `json:"message"`
		Redirect  string                       `json:"redirect"`
		Kept      map[string][]struct{ Ref, Filename string }
	} `json:"submission"`
}

func postAnswer(t *testing.T, apiURL, action string, values map[string]string, files map[string][]byte, accept string) (*http.Response, answer, time.Duration) {
	t.Helper()
	body, ct := teststack.MultipartBody(t, values, files)
	req, err := http.NewRequest(http.MethodPost, apiURL+"/actions/"+action, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", ct)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var a answer
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &a); err != nil {
			t.Fatalf("answer %s: %v", raw, err)
		}
	} else {
		resp.Body = io.NopCloser(strings.NewReader(string(raw)))
	}
	return resp, a, took
}

func getStatus(t *testing.T, statusURL string) answer {
	t.Helper()
	resp, body := teststack.Do(t, http.MethodGet, statusURL, nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", statusURL, resp.StatusCode, body)
	}
	var a answer
	if err := json.Unmarshal(body, &a); err != nil {
		t.Fatal(err)
	}
	return a
}

const jsonAccept = "application/json"

var pngCover = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89")

// TestAppAnswersTheForm: the app's data reaches the message and redirect,
// its refusal reaches the form as field errors with the files kept, and
// a wait that runs out answers 202 with the result in the status.
func TestAppAnswersTheForm(t *testing.T) {
	st := startAnswers(t, nil)

	t.Run("data into message and redirect", func(t *testing.T) {
		resp, a, took := postAnswer(t, st.api, "create-post", map[string]string{"title": "Hello"}, nil, jsonAccept)
		if resp.StatusCode != http.StatusOK || a.Submission.Status != "completed" {
			t.Fatalf("%d %+v (after %s); want 200 completed", resp.StatusCode, a, took)
		}
		id := a.Submission.Data["save"]["id"]
		if id == "" || a.Message != "Post "+id+" created: Hello" || !strings.HasSuffix(a.Redirect, "/posts/"+id) || !strings.HasPrefix(a.Redirect, "http") {
			t.Errorf("data %v, message %q, redirect %q", a.Submission.Data, a.Message, a.Redirect)
		}
		st.app.mu.Lock()
		queues := append([]string(nil), st.app.queues...)
		st.app.mu.Unlock()
		if len(queues) == 0 || queues[0] != submission.WaitQueue {
			t.Errorf("queues %v: a submission someone waits for goes to the %q queue", queues, submission.WaitQueue)
		}
		// The status says the same later.
		s := getStatus(t, a.Submission.StatusURL)
		if s.Submission.Status != "completed" || s.Submission.Message != a.Message || s.Submission.Redirect != a.Redirect {
			t.Errorf("status %+v", s.Submission)
		}
	})

	t.Run("browser goes to the redirect", func(t *testing.T) {
		resp, _, _ := postAnswer(t, st.api, "create-post", map[string]string{"title": "Browser"}, nil, "text/html")
		loc := resp.Header.Get("Location")
		if resp.StatusCode != http.StatusSeeOther || !strings.Contains(loc, "/posts/p") {
			t.Errorf("%d Location %q; want 303 to /posts/{id}", resp.StatusCode, loc)
		}
	})

	var keptRef string
	t.Run("refusal", func(t *testing.T) {
		resp, a, _ := postAnswer(t, st.api, "create-post", map[string]string{"title": "taken"}, map[string][]byte{"cover": pngCover}, jsonAccept)
		if resp.StatusCode != http.StatusUnprocessableEntity || a.Error.Code != "validation_failed" {
			t.Fatalf("%d %+v; want 422 validation_failed", resp.StatusCode, a)
		}
		if got := a.Errors["title"]; len(got) != 1 || got[0] != "That title is taken" {
			t.Errorf("errors %v", a.Errors)
		}
		if _, ok := a.Errors["tags"]; ok || a.Error.Message != "Check the form. Tags are closed" {
			t.Errorf("an undeclared field's error goes into the message: errors %v, message %q", a.Errors, a.Error.Message)
		}
		if a.Values["title"] != "taken" || len(a.Kept["cover"]) != 1 || a.Kept["cover"][0].Ref == "" {
			t.Fatalf("values %v, kept %v", a.Values, a.Kept)
		}
		keptRef = a.Kept["cover"][0].Ref
		if a.Submission.Status != "rejected" || a.Submission.StatusURL == "" {
			t.Errorf("submission %+v", a.Submission)
		}
		// No retry and no revalidation event, also a while later.
		time.Sleep(1500 * time.Millisecond)
		if n := len(st.app.seen("taken")); n != 1 {
			t.Errorf("the app was called %d times, want once (a refusal is not retried)", n)
		}
		rdb := st.redis.Client(t)
		if n, _ := rdb.Exists(context.Background(), submission.EventKey(a.Submission.ID)).Result(); n != 0 {
			t.Error("a rejected submission published a revalidation event")
		}
		s := getStatus(t, a.Submission.StatusURL)
		if s.Submission.Status != "rejected" || s.Submission.Errors["title"][0] != "That title is taken" || len(s.Submission.Kept["cover"]) != 1 {
			t.Errorf("status %+v", s.Submission)
		}
		// The export says so too.
		resp, body := teststack.Do(t, http.MethodGet, st.api+"/admin/submissions/export?action=create-post&format=csv", nil, map[string]string{"Authorization": "Bearer " + answersAdmin})
		rows, err := csv.NewReader(strings.NewReader(string(body))).ReadAll()
		if resp.StatusCode != http.StatusOK || err != nil || len(rows) < 2 || rows[0][len(rows[0])-1] != "status" {
			t.Fatalf("export %d %v: %s", resp.StatusCode, err, body)
		}
		found := false
		for _, row := range rows[1:] {
			if row[0] == a.Submission.ID {
				found = true
				if row[len(row)-1] != "rejected" {
					t.Errorf("export row %v: want status rejected", row)
				}
			}
		}
		if !found {
			t.Errorf("the rejected submission is not in the export:\n%s", body)
		}
	})

	t.Run("resend with the kept file", func(t *testing.T) {
		if keptRef == "" {
			t.Fatal("no kept file to send again: the refusal answered none")
		}
		resp, a, _ := postAnswer(t, st.api, "create-post", map[string]string{"title": "Fixed", "cover": keptRef}, nil, jsonAccept)
		if resp.StatusCode != http.StatusOK || len(a.Submission.Files) != 1 || a.Submission.Files[0].Field != "cover" || a.Submission.Files[0].Size != int64(len(pngCover)) {
			t.Errorf("%d %+v; want completed with the kept cover attached", resp.StatusCode, a.Submission)
		}
	})

	t.Run("hosted form shows the refusal", func(t *testing.T) {
		resp, _, _ := postAnswer(t, st.api, "create-post", map[string]string{"title": "taken"}, nil, "text/html")
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(string(body), "That title is taken") || !strings.Contains(string(body), "Check the form.") {
			t.Errorf("%d, body has the errors: %v", resp.StatusCode, strings.Contains(string(body), "That title is taken"))
		}
	})

	t.Run("error redirect carries the refusal", func(t *testing.T) {
		resp, _, _ := postAnswer(t, st.api, "create-post", map[string]string{"title": "taken", "_error_redirect": st.api + "/forms/create-post"}, nil, "text/html")
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusSeeOther || loc == nil || loc.Query().Get("formq_state") == "" {
			t.Fatalf("%d Location %v; want 303 with formq_state", resp.StatusCode, loc)
		}
		_, body := teststack.Do(t, http.MethodGet, st.api+"/actions/create-post/state/"+url.PathEscape(loc.Query().Get("formq_state")), nil, nil)
		if !strings.Contains(string(body), "That title is taken") {
			t.Errorf("state %s", body)
		}
	})

	t.Run("wait runs out", func(t *testing.T) {
		resp, a, took := postAnswer(t, st.api, "create-post", map[string]string{"title": "slow one"}, nil, jsonAccept)
		if resp.StatusCode != http.StatusAccepted || a.Submission.Status != "queued" {
			t.Fatalf("%d %+v after %s; want 202 queued once the 3 s wait ran out", resp.StatusCode, a.Submission, took)
		}
		if took < 2500*time.Millisecond || took > 6*time.Second {
			t.Errorf("answered after %s; want about the 3 s wait", took)
		}
		if a.Message != "" || !strings.Contains(a.Redirect, "/forms/create-post/done") {
			t.Errorf("message %q, redirect %q: the 202 cannot fill step data, so no message and the done page", a.Message, a.Redirect)
		}
		var s answer
		teststack.WaitFor(t, 15*time.Second, "completed in the status", func() bool {
			s = getStatus(t, a.Submission.StatusURL)
			return s.Submission.Status == "completed"
		})
		id := s.Submission.Data["save"]["id"]
		if id == "" || s.Submission.Message != "Post "+id+" created: slow one" || !strings.HasSuffix(s.Submission.Redirect, "/posts/"+id) {
			t.Errorf("status %+v", s.Submission)
		}
	})

	t.Run("an action without wait answers at once", func(t *testing.T) {
		resp, a, _ := postAnswer(t, st.api, "later-post", map[string]string{"title": "taken"}, nil, jsonAccept)
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("%d, want 202", resp.StatusCode)
		}
		var s answer
		teststack.WaitFor(t, 10*time.Second, "rejected in the status", func() bool {
			s = getStatus(t, a.Submission.StatusURL)
			return s.Submission.Status == "rejected"
		})
		if s.Submission.Errors["title"][0] != "That title is taken" || !strings.Contains(s.Submission.Message, "Tags are closed") {
			t.Errorf("status %+v", s.Submission)
		}
	})
}

// TestWaitingAnswersAreCapped: past FORMQ_WAIT_MAX waiting answers, a post
// is answered at once, as without wait:.
func TestWaitingAnswersAreCapped(t *testing.T) {
	st := startAnswers(t, map[string]string{"FORMQ_WAIT_MAX": "1"})
	st.app.delay = 2 * time.Second
	first := make(chan time.Duration, 1)
	go func() {
		_, _, took := postAnswer(t, st.api, "create-post", map[string]string{"title": "slow first"}, nil, jsonAccept)
		first <- took
	}()
	teststack.WaitFor(t, 10*time.Second, "the first post reaching the app", func() bool { return len(st.app.seen("slow first")) > 0 })
	resp, a, took := postAnswer(t, st.api, "create-post", map[string]string{"title": "slow second"}, nil, jsonAccept)
	if resp.StatusCode != http.StatusAccepted || took > time.Second {
		t.Errorf("second post: %d after %s (%+v); want 202 at once, the one waiting slot being taken", resp.StatusCode, took, a.Submission)
	}
	if d := <-first; d < 1500*time.Millisecond {
		t.Errorf("the first post was answered after %s; want it to wait for the app (2 s)", d)
	}
}

// TestWorkerKilledWhileAnAnswerWaits: the answer is 202 when the wait
// runs out, and the submission completes later on another worker, once.
func TestWorkerKilledWhileAnAnswerWaits(t *testing.T) {
	st := startAnswers(t, nil)
	st.app.delay = 1500 * time.Millisecond
	done := make(chan answer, 1)
	codes := make(chan int, 1)
	go func() {
		resp, a, _ := postAnswer(t, st.api, "create-post", map[string]string{"title": "slow kill"}, nil, jsonAccept)
		codes <- resp.StatusCode
		done <- a
	}()
	teststack.WaitFor(t, 10*time.Second, "the post reaching the app", func() bool { return len(st.app.seen("slow kill")) > 0 })
	st.workerProc.Kill()
	if code := <-codes; code != http.StatusAccepted {
		t.Fatalf("answer %d, want 202 once the wait ran out", code)
	}
	a := <-done
	teststack.StartProcess(t, testenv.Build(t, "", "./cmd/worker"), "worker2", st.env)
	var s answer
	teststack.WaitFor(t, 60*time.Second, "completed on the second worker", func() bool {
		s = getStatus(t, a.Submission.StatusURL)
		return s.Submission.Status == "completed"
	})
	ids := st.app.seen("slow kill")
	for _, id := range ids {
		if id != ids[0] {
			t.Errorf("webhook ids %v: a redelivery must carry the same id", ids)
		}
	}
	rdb := st.redis.Client(t)
	n, err := rdb.XLen(context.Background(), submission.EventsStream).Result()
	if err != nil || n != 1 {
		t.Errorf("%d events (%v), want exactly one", n, err)
	}
	if s.Submission.Data["save"]["id"] == "" {
		t.Errorf("status %+v", s.Submission)
	}
}

// netListen listens on a free loopback port.
func netListen() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }
