package formq_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/formq/formq/internal/testenv"
	"github.com/formq/formq/internal/teststack"
)

// TestEmbedExample builds examples/embed as its own module, outside this
// one, and runs it on real Redis and S3: an echo app serving formq under
// /forms with a worker in the same process. A post through the mounted
// API is accepted, the app's own check refuses a role address, and the
// app's own step and mailer run on the real worker.
func TestEmbedExample(t *testing.T) {
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "examples", "embed")
	bin := testenv.Build(t, dir, ".")

	r, s := testenv.StartRedis(t), testenv.StartS3(t)
	addr, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	audit := filepath.Join(t.TempDir(), "audit.log")
	outbox := filepath.Join(t.TempDir(), "outbox.log")
	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"FORMQ_ENV=development", "FORMQ_REDIS_URL=" + r.URL(), "FORMQ_S3_CREATE_BUCKET=true",
		"FORMQ_ACTIONS=" + filepath.Join(dir, "actions.yaml"), "APP_ADDR=" + addr, "AUDIT_FILE=" + audit, "OUTBOX_FILE=" + outbox,
	}
	for k, v := range s.Env() {
		env = append(env, k+"="+v)
	}
	var logs strings.Builder
	cmd := exec.Command(bin)
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = dir, env, &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("the example did not stop cleanly: %v\n%s", err, logs.String())
			}
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("the example did not stop within 20 s of SIGINT\n%s", logs.String())
		}
	})
	app := "http://" + addr
	teststack.WaitOK(t, app+"/")

	post := func(values url.Values) (int, map[string]any) {
		req, _ := http.NewRequest(http.MethodPost, app+"/forms/actions/signup", strings.NewReader(values.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body
	}
	code, body := post(url.Values{"name": {"Ada"}, "email": {"admin@example.com"}})
	if code != http.StatusUnprocessableEntity || !strings.Contains(toJSON(body), "Please sign up with a personal address.") {
		t.Fatalf("role address: %d %v; want 422 with the app's own message", code, body)
	}
	code, body = post(url.Values{"name": {"Ada"}, "email": {"ada@example.com"}})
	sub, _ := body["submission"].(map[string]any)
	id, _ := sub["id"].(string)
	if code != http.StatusAccepted || id == "" {
		t.Fatalf("signup: %d %v; want 202 with a submission id\n%s", code, body, logs.String())
	}
	su, _ := sub["statusUrl"].(string)
	if !strings.Contains(su, "/forms/submissions/"+id+"?t=") {
		t.Errorf("statusUrl %q does not carry the mount prefix /forms", su)
	}
	teststack.WaitFor(t, 30*time.Second, "the app's audit step to run", func() bool {
		b, _ := os.ReadFile(audit)
		return strings.Contains(string(b), id+" signup ada@example.com new signup")
	})
	teststack.WaitFor(t, 30*time.Second, "the app's mailer to get the email step's message", func() bool {
		b, _ := os.ReadFile(outbox)
		return strings.Contains(string(b), "to team@example.com: New signup: Ada")
	})
	teststack.WaitFor(t, 10*time.Second, "the submission to complete", func() bool {
		statusURL := su // it carries the submitter's capability
		if !strings.HasPrefix(su, "http") {
			statusURL = app + su
		}
		resp, err := http.Get(statusURL)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var st struct{ Submission struct{ Status string } }
		_ = json.NewDecoder(resp.Body).Decode(&st)
		return st.Submission.Status == "completed"
	})
}

func toJSON(v any) string { b, _ := json.Marshal(v); return string(b) }
