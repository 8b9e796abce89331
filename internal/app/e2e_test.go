package app_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/formq/formq/internal/app"
	"github.com/formq/formq/internal/testenv"
	"github.com/formq/formq/uploads"
	"github.com/redis/go-redis/v9"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// stack is one API and one worker process on real Redis and S3.
type stack struct {
	apiURL    string
	workerURL string
	env       map[string]string
	store     *uploads.Store
	rdb       *redis.Client
}

func startStack(t *testing.T, extraEnv map[string]string) *stack {
	t.Helper()
	r := testenv.StartRedis(t)
	s := testenv.StartS3(t)
	env := map[string]string{
		"FORMQ_ENV":              "development",
		"FORMQ_ADDR":             "127.0.0.1:0",
		"FORMQ_WORKER_ADDR":      "127.0.0.1:0",
		"FORMQ_REDIS_URL":        r.URL(),
		"FORMQ_S3_CREATE_BUCKET": "true",
		"FORMQ_ACTIONS":          "testdata/actions.yaml",
	}
	for k, v := range s.Env() {
		env[k] = v
	}
	for k, v := range extraEnv {
		env[k] = v
	}
	st := &stack{env: env}
	st.apiURL = startRun(t, "api", app.RunAPI, env)
	st.workerURL = startRun(t, "worker", app.RunWorker, env)

	store, err := uploads.NewStore(context.Background(), uploads.Config{
		Endpoint: s.Endpoint, Region: s.Region, Bucket: s.Bucket, AccessKey: s.AccessKey, SecretKey: s.SecretKey,
	})
	if err != nil {
		t.Fatal(err)
	}
	st.store = store
	opt, _ := redis.ParseURL(r.URL())
	st.rdb = redis.NewClient(opt)
	t.Cleanup(func() { st.rdb.Close() })
	return st
}

type runFunc func(context.Context, []string, app.Getenv, io.Writer) error

// startRun calls a process's run on port 0 and returns its URL, read from
// its "listening" log line. The process stops when the test ends.
func startRun(t *testing.T, name string, run runFunc, env map[string]string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan struct{})
	var runErr error
	go func() {
		runErr = run(ctx, []string{name}, func(k string) string { return env[k] }, pw)
		pw.CloseWithError(io.EOF)
		close(done)
	}()
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		sent := false
		for sc.Scan() {
			var line struct {
				Msg string `json:"msg"`
				URL string `json:"url"`
			}
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "listening" && !sent {
				addr <- line.URL
				sent = true
			} else if !strings.Contains(sc.Text(), `"level":"INFO"`) {
				t.Logf("%s: %s", name, sc.Text())
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
			if runErr != nil && !t.Failed() {
				t.Errorf("%s run returned %v", name, runErr)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("%s did not stop within 30s of its context ending", name)
		}
	})
	select {
	case u := <-addr:
		waitOK(t, u+"/healthz")
		return u
	case <-done:
		t.Fatalf("%s stopped at start: %v", name, runErr)
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not start listening within 30s", name)
	}
	return ""
}

func waitOK(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s never answered 200", url)
}

// multipartBody builds a form with values and one file per entry.
func multipartBody(t *testing.T, values map[string]string, files map[string][]byte) (*bytes.Buffer, string) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for k, v := range values {
		if err := w.WriteField(k, v); err != nil {
			t.Fatal(err)
		}
	}
	for field, data := range files {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", `form-data; name="`+field+`"; filename="me.png"`)
		h.Set("Content-Type", "application/octet-stream")
		p, err := w.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		p.Write(data)
	}
	w.Close()
	return &buf, w.FormDataContentType()
}

func post(t *testing.T, url string, body io.Reader, contentType string, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func TestSubmissionTravelsThroughS3AndQueueToEvent(t *testing.T) {
	st := startStack(t, nil)
	ctx := context.Background()
	png, err := os.ReadFile("testdata/avatar.png")
	if err != nil {
		t.Fatal(err)
	}

	body, ctype := multipartBody(t, map[string]string{"name": "Ada Lovelace", "email": "ada@example.com"}, map[string][]byte{"avatar": png})
	resp, raw := post(t, st.apiURL+"/actions/create-user", body, ctype, map[string]string{"Accept": "application/json"})
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("status %d, body %s", resp.StatusCode, raw)
	}
	var ok struct {
		OK         bool   `json:"ok"`
		Message    string `json:"message"`
		Redirect   string `json:"redirect"`
		Submission struct {
			ID, Action, Status, StatusURL string
			Files                         []struct {
				Field, Key, ContentType, SHA256, Filename string
				Size                                      int64
			}
		} `json:"submission"`
	}
	if err := json.Unmarshal(raw, &ok); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
	id := ok.Submission.ID
	if !ok.OK || id == "" || ok.Message != "User created!" || ok.Submission.Status != "queued" || ok.Submission.StatusURL != "/submissions/"+id {
		t.Fatalf("unexpected answer %s", raw)
	}
	if ok.Redirect != "/forms/create-user/done?submission="+id {
		t.Errorf("redirect %q", ok.Redirect)
	}
	wantKey := "uploads/create-user/" + id + "/avatar/0"
	if len(ok.Submission.Files) != 1 || ok.Submission.Files[0].Key != wantKey || ok.Submission.Files[0].ContentType != "image/png" ||
		ok.Submission.Files[0].Size != int64(len(png)) || ok.Submission.Files[0].Filename != "me.png" || len(ok.Submission.Files[0].SHA256) != 64 {
		t.Fatalf("files in answer: %+v", ok.Submission.Files)
	}

	obj, err := st.store.Head(ctx, wantKey)
	if err != nil {
		t.Fatalf("uploaded object: %v", err)
	}
	if obj.Size != int64(len(png)) || obj.ContentType != "image/png" || obj.SHA256 != ok.Submission.Files[0].SHA256 {
		t.Errorf("object %+v", obj)
	}
	stored, err := st.store.Get(ctx, wantKey)
	if err != nil || !bytes.Equal(stored, png) {
		t.Errorf("stored bytes differ from the upload (err %v)", err)
	}

	// The worker writes the record and publishes the event.
	var record struct {
		ID     string            `json:"id"`
		Action string            `json:"action"`
		Values map[string]string `json:"values"`
		Files  []map[string]any  `json:"files"`
	}
	waitFor(t, 15*time.Second, "record in S3", func() bool {
		b, err := st.store.Get(ctx, "submissions/create-user/"+id+".json")
		return err == nil && json.Unmarshal(b, &record) == nil
	})
	if record.ID != id || record.Values["name"] != "Ada Lovelace" || record.Values["email"] != "ada@example.com" || len(record.Files) != 1 {
		t.Errorf("record %+v", record)
	}
	var event map[string]any
	waitFor(t, 15*time.Second, "event in formq:events", func() bool {
		msgs, err := st.rdb.XRange(ctx, "formq:events", "-", "+").Result()
		if err != nil {
			return false
		}
		for _, m := range msgs {
			var ev map[string]any
			if json.Unmarshal([]byte(m.Values["event"].(string)), &ev) == nil && ev["submission"] == id {
				event = ev
				return true
			}
		}
		return false
	})
	if event["type"] != "revalidate" || event["action"] != "create-user" {
		t.Errorf("event %v", event)
	}
	if tags, _ := event["tags"].([]any); len(tags) != 2 || tags[0] != "users" || tags[1] != "user:"+id {
		t.Errorf("event tags %v", event["tags"])
	}
}

func TestInvalidPostAnswers422WithDeclaredMessage(t *testing.T) {
	st := startStack(t, nil)
	body, ctype := multipartBody(t, map[string]string{"name": "A", "email": "a@example.com"}, nil)
	resp, raw := post(t, st.apiURL+"/actions/create-user", body, ctype, map[string]string{"Accept": "application/json"})
	if resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("status %d, body %s", resp.StatusCode, raw)
	}
	var got struct {
		OK    bool `json:"ok"`
		Error struct {
			Code, Message string
		} `json:"error"`
		Errors map[string][]string `json:"errors"`
		Values map[string]string   `json:"values"`
	}
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	if got.OK || got.Error.Code != "validation_failed" || got.Error.Message != "Please fix the errors below." {
		t.Errorf("answer %s", raw)
	}
	if len(got.Errors["name"]) != 1 || got.Errors["name"][0] != "Name must be at least 2 characters" {
		t.Errorf("errors %v", got.Errors)
	}
	if got.Values["name"] != "A" || got.Values["email"] != "a@example.com" {
		t.Errorf("values %v", got.Values)
	}
	// Nothing was queued for a refused submission.
	if n, _ := st.rdb.Keys(context.Background(), "asynq:{default}:t:*").Result(); len(n) != 0 {
		t.Errorf("tasks queued for an invalid post: %v", n)
	}
}

func TestBadConfigurationStopsAtStartWithOneLine(t *testing.T) {
	env := map[string]string{"FORMQ_ENV": "development"}
	err := app.RunAPI(context.Background(), nil, func(k string) string { return env[k] }, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "FORMQ_S3_BUCKET") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("err = %v, want one line naming FORMQ_S3_BUCKET", err)
	}
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s", timeout, what)
}
