package engine

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/formq/formq/internal/testenv"
	"github.com/formq/formq/jobs/step"
	"github.com/formq/formq/jobs/step/webhook"
	"github.com/formq/formq/submission"
	"github.com/formq/formq/uploads"
)

// app is a local app answering formq's webhook step the way the test sets.
type app struct {
	rc          receiver
	contentType string
	status      int
	body        string
}

func (a *app) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.rc.Status.Store(0)
	rec := httptest.NewRecorder()
	a.rc.ServeHTTP(rec, r) // checks the signature, counts the delivery
	if a.contentType != "" {
		w.Header().Set("Content-Type", a.contentType)
	}
	w.WriteHeader(a.status)
	_, _ = w.Write([]byte(a.body))
}

// webhookHarness runs submissions whose first step is a webhook named
// "save" to the app, then a counting step.
func webhookHarness(t *testing.T, a *app) (*harness, *atomic.Int32, *submission.Submission) {
	t.Helper()
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	getenv := func(string) string { return testSecret }
	var after atomic.Int32
	h := newHarness(t, step.Steps{
		"webhook": webhook.Step(webhook.NewClient(true), getenv, nil),
		"after":   counting(&after, nil),
	})
	sub := testSubmission("01ANSWER" + strings.ToUpper(strings.ReplaceAll(t.Name()[len("TestWebhookAnswers/"):], " ", "")))
	sub.Steps = []submission.Step{
		{Type: "webhook", Config: map[string]any{"url": srv.URL + "/entries", "secret_env": "HOOK", "name": "save", "backoff": "1ms"}},
		{Type: "after"},
	}
	return h, &after, sub
}

func TestWebhookAnswers(t *testing.T) {
	t.Run("data", func(t *testing.T) {
		h, after, sub := webhookHarness(t, &app{contentType: "application/json", status: 201, body: `{"data": {"id": 42, "slug": "hello-world", "ok": true, "none": null}}`})
		if err := h.run(sub); err != nil {
			t.Fatal(err)
		}
		st := h.state(sub.ID)
		want := map[string]string{"id": "42", "slug": "hello-world", "ok": "true", "none": ""}
		if st.Status != submission.StatusCompleted || after.Load() != 1 || len(st.Data["save"]) != len(want) {
			t.Fatalf("status %s, later step ran %d times, data %v; want completed, 1, %v", st.Status, after.Load(), st.Data, want)
		}
		for k, v := range want {
			if st.Data["save"][k] != v {
				t.Errorf("data save.%s = %q, want %q", k, st.Data["save"][k], v)
			}
		}
		if st.Steps[0].Name != "save" || st.Steps[0].State != submission.StepCompleted {
			t.Errorf("step %+v, want named save and completed", st.Steps[0])
		}
	})

	t.Run("2xx without json", func(t *testing.T) {
		h, after, sub := webhookHarness(t, &app{contentType: "text/plain", status: 200, body: `{"data": {"id": 1}}`})
		if err := h.run(sub); err != nil {
			t.Fatal(err)
		}
		st := h.state(sub.ID)
		if st.Status != submission.StatusCompleted || after.Load() != 1 || st.Data != nil {
			t.Fatalf("status %s, later step %d, data %v; want completed without data as before", st.Status, after.Load(), st.Data)
		}
	})

	t.Run("refusal", func(t *testing.T) {
		a := &app{contentType: "application/json", status: 422,
			body: `{"errors": {"email": ["This email is already registered"], "nickname": "Taken"}, "message": "Please check the form."}`}
		h, after, sub := webhookHarness(t, a)
		if err := h.run(sub); err != nil {
			t.Fatalf("a refusal ends the task: got %v", err)
		}
		st := h.state(sub.ID)
		if st.Status != submission.StatusRejected || !st.Done() {
			t.Fatalf("status %s, want rejected (final)", st.Status)
		}
		if got := st.Errors["email"]; len(got) != 1 || got[0] != "This email is already registered" {
			t.Errorf("errors %v", st.Errors)
		}
		if got := st.Errors["nickname"]; len(got) != 1 || got[0] != "Taken" {
			t.Errorf("a single message is a list of one: errors %v", st.Errors)
		}
		if st.Message != "Please check the form." || st.Steps[0].State != submission.StepRejected || st.Steps[1].State != submission.StepPending {
			t.Errorf("message %q, steps %+v", st.Message, st.Steps)
		}
		if after.Load() != 0 {
			t.Errorf("the step after the refusal ran %d times", after.Load())
		}
		// No revalidation event, and running the task again changes
		// nothing: no retry, no second delivery.
		if n, _ := h.rdb.Exists(context.Background(), submission.EventKey(sub.ID)).Result(); n != 0 {
			t.Error("a rejected submission published its event")
		}
		if err := h.run(sub); err != nil {
			t.Fatal(err)
		}
		if seen := a.rc.Seen(); len(seen) != 1 || a.rc.BadSignatures() != 0 {
			t.Errorf("deliveries %v (bad signatures %d), want one", seen, a.rc.BadSignatures())
		}
	})

	for _, tc := range []struct {
		name, contentType string
		status            int
		body, want        string
	}{
		{"invalid json", "application/json", 200, `{"data": {"id": `, "invalid JSON"},
		{"nested data", "application/json", 200, `{"data": {"post": {"id": 1}}}`, "data.post is an object or a list"},
		{"errors of the wrong shape", "application/json", 422, `{"errors": {"email": [1, 2]}}`, "errors.email of the wrong shape"},
		{"refusal without errors", "application/json", 422, `{"ok": false}`, "without errors or a message"},
		{"refusal that is not json", "text/html", 422, `<!doctype html>`, "without a refusal formq can read"},
		{"body over 64 KiB", "application/json", 200, `{"data": {"x": "` + strings.Repeat("a", 70<<10) + `"}}`, "over 64 KiB"},
		{"data key not a name", "application/json", 200, `{"data": {"a b": "1"}}`, "data key \"a b\""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, after, sub := webhookHarness(t, &app{contentType: tc.contentType, status: tc.status, body: tc.body})
			if err := h.run(sub); err == nil {
				t.Fatal("a bad answer must fail the attempt, to be retried")
			}
			st := h.state(sub.ID)
			if st.Status != submission.StatusProcessing || st.Steps[0].State != submission.StepRetrying || after.Load() != 0 {
				t.Fatalf("status %s, step %+v, later step %d; want processing, retrying, 0", st.Status, st.Steps[0], after.Load())
			}
			if !strings.Contains(st.Steps[0].LastError, tc.want) || st.Data != nil || st.Errors != nil {
				t.Errorf("lastError %q (want it to say %q); data %v, errors %v: nothing half-applied", st.Steps[0].LastError, tc.want, st.Data, st.Errors)
			}
		})
	}
}

// TestGoStepAnswers: a step written in Go answers data or refuses through
// the step API, as a webhook's app does.
func TestGoStepAnswers(t *testing.T) {
	h := newHarness(t, step.Steps{
		"create": {Run: func(ctx context.Context, r step.Run) error {
			if r.Submission.Values["name"] == "taken" {
				return step.Reject(map[string][]string{"name": {"That name is taken"}}, "")
			}
			r.Answer(step.Data{"id": "7"})
			return nil
		}},
	})
	ok := testSubmission("01GOSTEPOK")
	ok.Steps = []submission.Step{{Type: "create", Config: map[string]any{"name": "create"}}}
	if err := h.run(ok); err != nil {
		t.Fatal(err)
	}
	if st := h.state(ok.ID); st.Status != submission.StatusCompleted || st.Data["create"]["id"] != "7" {
		t.Errorf("status %s, data %v", st.Status, st.Data)
	}
	taken := testSubmission("01GOSTEPTAKEN")
	taken.Values["name"] = "taken"
	taken.Steps = ok.Steps
	if err := h.run(taken); err != nil {
		t.Fatal(err)
	}
	if st := h.state(taken.ID); st.Status != submission.StatusRejected || st.Errors["name"][0] != "That name is taken" {
		t.Errorf("status %s, errors %v", st.Status, st.Errors)
	}
}

// TestRejectionKeepsFiles: a rejected submission's files are copied to
// staged keys on the real S3 server, for references the API seals.
func TestRejectionKeepsFiles(t *testing.T) {
	s3 := testenv.StartS3(t)
	ctx := context.Background()
	store, err := uploads.NewStore(ctx, uploads.Config{Endpoint: s3.Endpoint, Region: s3.Region, Bucket: s3.Bucket, AccessKey: s3.AccessKey, SecretKey: s3.SecretKey})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.EnsureBucket(ctx); err != nil {
		t.Fatal(err)
	}
	sub := testSubmission("01REJECTFILES")
	key := submission.UploadKey(sub.Action, sub.ID, "avatar", 0)
	content := []byte("\x89PNG\r\n\x1a\n not really a picture")
	if err := store.PutJSON(ctx, key, content); err != nil {
		t.Fatal(err)
	}
	sub.Files = []submission.File{{Field: "avatar", Object: submission.Object{Key: key, Size: int64(len(content)), ContentType: "image/png", Filename: "me.png"}}}
	sub.Steps = []submission.Step{{Type: "refuse"}}
	h := newHarness(t, step.Steps{"refuse": {Run: func(context.Context, step.Run) error {
		return step.Reject(nil, "We cannot take this picture.")
	}}})
	h.deps.Files = store
	if err := h.run(sub); err != nil {
		t.Fatal(err)
	}
	st := h.state(sub.ID)
	if st.Status != submission.StatusRejected || len(st.Staged) != 1 {
		t.Fatalf("status %s, staged %+v; want rejected with one kept file", st.Status, st.Staged)
	}
	k := st.Staged[0]
	if !strings.HasPrefix(k.Staged, "uploads/_staged/") || k.Field != "avatar" || k.Filename != "me.png" || k.Size != int64(len(content)) {
		t.Errorf("kept %+v", k)
	}
	got, err := store.Get(ctx, k.Staged)
	if err != nil || !bytes.Equal(got, content) {
		t.Errorf("the staged copy holds %q (%v), want the file", got, err)
	}
}
