package api

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/formq/formq"
	"github.com/formq/formq/internal/testenv"
)

// An accepted submission without files costs one Redis round trip (its
// task), and its status still reads queued right after the 202.
func TestAcceptedSubmissionRoundTrips(t *testing.T) {
	ctx := testenv.Context(t)
	r := testenv.StartRedis(t)
	s := testenv.StartS3(t)
	actionsFile := filepath.Join(t.TempDir(), "actions.yaml")
	if err := os.WriteFile(actionsFile, []byte(`actions:
  contact:
    fields:
      name: {type: text, required: true}
      email: {type: email, required: true}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"FORMQ_ENV": "development", "FORMQ_REDIS_URL": r.URL(), "FORMQ_S3_CREATE_BUCKET": "true",
		"FORMQ_ACTIONS": actionsFile, "FORMQ_LOG_LEVEL": "error",
	}
	for k, v := range s.Env() {
		env[k] = v
	}
	cfg, err := formq.LoadConfig(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(ctx, cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	srv := httptest.NewServer(a)
	defer srv.Close()
	counter := &testenv.RoundTrips{}
	a.rdb.AddHook(counter)

	post := func() (id, statusURL string) {
		t.Helper()
		body := url.Values{"name": {"Ada"}, "email": {"ada@example.com"}}.Encode()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/actions/contact", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var ans struct {
			Submission struct{ ID, StatusURL string } `json:"submission"`
		}
		if resp.StatusCode != http.StatusAccepted || json.Unmarshal(raw, &ans) != nil {
			t.Fatalf("POST answered %d: %s", resp.StatusCode, raw)
		}
		return ans.Submission.ID, ans.Submission.StatusURL
	}
	// The first submission to a queue also registers the queue with
	// asynq (once per process), and the first script call loads it.
	post()
	counter.Take()

	id, statusURL := post()
	// A durability WAIT for replicas, when one is configured, follows the
	// enqueue as a call of its own; everything else is the one script.
	var work []string
	for _, c := range counter.Take() {
		if c != "wait" {
			work = append(work, c)
		}
	}
	if len(work) != 1 {
		t.Fatalf("an accepted submission made %d Redis round trips besides WAIT, want 1: %v", len(work), work)
	}

	resp, err := http.Get(statusURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st struct {
		OK         bool `json:"ok"`
		Submission struct {
			ID, Action, Status string
			Version            int64
			Files              []any
			Steps              []any
		} `json:"submission"`
	}
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || json.Unmarshal(raw, &st) != nil {
		t.Fatalf("GET %s answered %d: %s", statusURL, resp.StatusCode, raw)
	}
	if !st.OK || st.Submission.ID != id || st.Submission.Action != "contact" || st.Submission.Status != "queued" ||
		st.Submission.Version != 1 || st.Submission.Files == nil || st.Submission.Steps == nil {
		t.Fatalf("status right after the 202: %s", raw)
	}
}
