package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/formq/formq/actions"
	"github.com/formq/formq/jobs"
	"github.com/formq/formq/jobs/sink/next"
	"github.com/formq/formq/jobs/step"
	"github.com/formq/formq/jobs/step/builtin"
	"github.com/formq/formq/jobs/step/webhook"
	"github.com/formq/formq/submission"
	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
)

// harness runs processSubmission directly, as asynq would on each retry,
// against the real test Redis.
type harness struct {
	t      *testing.T
	deps   Deps
	status *jobs.StatusStore
	rdb    *redis.Client
}

func newHarness(t *testing.T, steps step.Steps) *harness {
	t.Helper()
	rdb := testRedis(t)
	st := jobs.NewStatusStore(rdb)
	return &harness{t: t, status: st, rdb: rdb, deps: Deps{
		Records: &memRecords{}, Publisher: jobs.NewRedisPublisher(rdb, 1000), Status: st, Steps: steps, Log: quietLog(), Now: time.Now,
	}}
}

func (h *harness) run(sub *submission.Submission) error {
	h.t.Helper()
	payload, err := json.Marshal(sub)
	if err != nil {
		h.t.Fatal(err)
	}
	return h.deps.processSubmission(context.Background(), asynq.NewTask(jobs.TypeSubmission, payload))
}

func (h *harness) state(id string) *submission.Status {
	h.t.Helper()
	st, err := h.status.Status(context.Background(), id)
	if err != nil {
		h.t.Fatalf("status of %s: %v", id, err)
	}
	return st
}

func counting(n *atomic.Int32, fail func(attempt int) error) step.Type {
	return step.Type{Backoff: time.Millisecond, Run: func(ctx context.Context, r step.Run) error {
		n.Add(1)
		if fail != nil {
			return fail(r.Attempt)
		}
		return nil
	}}
}

func TestRetryNeverRedoesAFinishedStep(t *testing.T) {
	var first, flaky atomic.Int32
	h := newHarness(t, step.Steps{
		"first": counting(&first, nil),
		"flaky": counting(&flaky, func(attempt int) error {
			if attempt == 1 {
				return errors.New("receiver is down")
			}
			return nil
		}),
	})
	sub := testSubmission("01RETRY")
	sub.Steps = []submission.Step{{Type: "first"}, {Type: "flaky"}}
	sub.Revalidate = submission.Revalidate{Paths: []string{"/users"}, Tags: []string{"users"}}
	if err := h.deps.Status.Queued(context.Background(), sub, sub.Steps); err != nil {
		t.Fatal(err)
	}
	if st := h.state(sub.ID); st.Status != submission.StatusQueued || len(st.Steps) != 2 || st.Steps[0].State != submission.StepPending {
		t.Fatalf("queued status %+v", st)
	}

	err := h.run(sub)
	var se *StepError
	if !errors.As(err, &se) || se.Index != 1 || se.Attempt != 1 || errors.Is(err, asynq.SkipRetry) {
		t.Fatalf("first run: %v; want a retried failure of step 2", err)
	}
	if d := RetryDelay(0, err, nil); d < time.Millisecond || d > 2*time.Millisecond {
		t.Errorf("retry delay %s, want the step's backoff (1ms + jitter)", d)
	}
	st := h.state(sub.ID)
	if st.Status != submission.StatusProcessing || st.Steps[0].State != submission.StepCompleted ||
		st.Steps[1].State != submission.StepRetrying || st.Steps[1].Attempts != 1 || st.Steps[1].LastError != "receiver is down" {
		t.Fatalf("after a failed attempt: %+v", st)
	}

	if err := h.run(sub); err != nil {
		t.Fatalf("second run: %v", err)
	}
	if first.Load() != 1 || flaky.Load() != 2 {
		t.Errorf("runs: first %d (want 1), flaky %d (want 2)", first.Load(), flaky.Load())
	}
	st = h.state(sub.ID)
	if st.Status != submission.StatusCompleted || st.Event == "" || st.Steps[1].State != submission.StepCompleted || st.Steps[1].Attempts != 2 {
		t.Fatalf("after success: %+v", st)
	}

	// A repeat of a completed submission (a duplicate delivery) does nothing.
	if err := h.run(sub); err != nil {
		t.Fatal(err)
	}
	n, _ := h.rdb.XLen(context.Background(), submission.EventsStream).Result()
	if n != 1 || first.Load() != 1 {
		t.Errorf("events %d (want 1), first step runs %d (want 1)", n, first.Load())
	}
}

func TestStepFailures(t *testing.T) {
	cases := []struct {
		name    string
		step    step.Type
		cfg     map[string]any
		runs    int // runs of processSubmission
		wantErr string
	}{
		{"permanent", step.Type{Run: func(context.Context, step.Run) error { return step.Permanent("the image is 65535x65535") }},
			nil, 1, "step 1 (s) failed: the image is 65535x65535"},
		{"skip retry from a custom step", step.Type{Run: func(context.Context, step.Run) error { return fmt.Errorf("bad input: %w", asynq.SkipRetry) }},
			nil, 1, "step 1 (s) failed: bad input"},
		{"out of attempts", step.Type{Backoff: time.Millisecond, Run: func(context.Context, step.Run) error { return errors.New("still down") }},
			map[string]any{"max_attempts": 2}, 2, "step 1 (s) failed: still down (after 2 attempts)"},
		{"timeout", step.Type{Run: func(ctx context.Context, _ step.Run) error { <-ctx.Done(); return ctx.Err() }},
			map[string]any{"timeout": "50ms", "max_attempts": 1}, 1, "timed out after 50ms"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, step.Steps{"s": tc.step})
			sub := testSubmission("01FAIL")
			sub.Steps = []submission.Step{{Type: "s", Config: tc.cfg}}
			var err error
			for range tc.runs {
				err = h.run(sub)
			}
			if !errors.Is(err, asynq.SkipRetry) {
				t.Fatalf("last run: %v; want a permanent failure", err)
			}
			st := h.state(sub.ID)
			if st.Status != submission.StatusFailed || !strings.Contains(st.Error, tc.wantErr) || strings.Contains(st.Error, "skip retry") {
				t.Errorf("status %q, error %q; want failed with %q", st.Status, st.Error, tc.wantErr)
			}
			if st.Steps[0].State != submission.StepFailed || st.Steps[0].Attempts != tc.runs {
				t.Errorf("step %+v", st.Steps[0])
			}
			if st.Event != "" {
				t.Errorf("a failed submission published event %s", st.Event)
			}
		})
	}
}

func TestUnknownStatusIsSubmissionNotFound(t *testing.T) {
	_, err := jobs.NewStatusStore(testRedis(t)).Status(context.Background(), "01NOPE")
	if !errors.Is(err, submission.ErrNotFound) {
		t.Fatalf("err = %v", err)
	}
}

func TestActionsFileStepChecks(t *testing.T) {
	file := []byte(`actions:
  a:
    fields: {name: {type: text}}
    uploads: {avatar: {max_size: 1MB, types: [image/png]}}
    steps:
      - thumbnial: {field: avatar}
      - thumbnail: {field: avatar, sizes: [0]}
      - webhook: {url: "ftp://x", secret_env: HOOK}
      - email: {to: "not an address", subject: hi}
      - email: {to: "a@example.com", subject: hi, timeout: soon}
      - thumbnail: {field: avatar, sizes: [64, 256], max_attempts: 3, timeout: 10s}
`)
	_, err := actions.ParseWith("actions.yaml", file, actions.ParseOptions{Steps: builtin.Checks(nil).Checks()})
	var fe *actions.FileError
	if !errors.As(err, &fe) {
		t.Fatalf("err = %v; want the problems listed", err)
	}
	want := []string{`step "thumbnial": unknown step type, want one of email, notify, thumbnail, webhook`,
		`step "thumbnail": sizes: 0 is not between 1 and 4096`, `step "webhook": url "ftp://x"`,
		`step "email": to "not an address"`, `step "email": timeout "soon"`}
	if len(fe.Problems) != len(want) {
		t.Errorf("%d problems, want %d:\n%v", len(fe.Problems), len(want), err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("problems do not mention %q:\n%v", w, err)
		}
	}
}

func TestRevalidationWebhookAfterTheEvent(t *testing.T) {
	var bodies []map[string]any
	var mu sync.Mutex
	rc := &receiver{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		mu.Lock()
		bodies = append(bodies, m)
		mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(b))
		rc.ServeHTTP(w, r)
	}))
	defer srv.Close()
	h := newHarness(t, step.Steps{})
	rv, err := next.NewRevalidate(srv.URL+"/api/revalidate", testSecret, webhook.NewClient(true))
	if err != nil {
		t.Fatal(err)
	}
	h.deps.Sinks = []step.Sink{rv}
	sub := testSubmission("01REVAL")
	sub.Revalidate = submission.Revalidate{Paths: []string{"/users"}, Tags: []string{"users", "user:01REVAL"}}
	if err := h.run(sub); err != nil {
		t.Fatal(err)
	}
	st := h.state(sub.ID)
	if st.Status != submission.StatusCompleted || len(st.Steps) != 1 || st.Steps[0].Type != "revalidate" || st.Steps[0].State != submission.StepCompleted {
		t.Fatalf("status %+v", st)
	}
	ids := rc.Seen()
	if len(ids) != 1 || ids[0] != "evt_01REVAL" || rc.BadSignatures() != 0 {
		t.Fatalf("deliveries %v, bad signatures %d", ids, rc.BadSignatures())
	}
	b := bodies[0]
	if b["id"] != st.Event || b["submission"] != "01REVAL" || fmt.Sprint(b["paths"]) != "[/users]" || fmt.Sprint(b["tags"]) != "[users user:01REVAL]" {
		t.Errorf("body %v; want the event with its stream id %s", b, st.Event)
	}
}

// TestStepFailureIsLoggedOnceWithItsStep: a failed attempt of a step is
// one log line naming the submission, action, step and attempts; the
// final failure is one error line.
func TestStepFailureIsLoggedOnceWithItsStep(t *testing.T) {
	var logs bytes.Buffer
	var n atomic.Int32
	h := newHarness(t, step.Steps{"flaky": {MaxAttempts: 2, Backoff: time.Millisecond, Run: func(context.Context, step.Run) error {
		n.Add(1)
		return errors.New("receiver is down")
	}}})
	h.deps.Log = slog.New(slog.NewJSONHandler(&logs, nil))
	sub := testSubmission("01LOGGEDONCE")
	sub.Steps = []submission.Step{{Type: "flaky"}}
	for range 2 {
		if err := h.run(sub); err == nil {
			t.Fatal("the step failed but the run did not")
		}
	}
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if m["level"] == "WARN" || m["level"] == "ERROR" {
			lines = append(lines, m)
		}
	}
	if len(lines) != 2 {
		t.Fatalf("%d warning/error lines for 2 failed runs: %v", len(lines), lines)
	}
	for i, m := range lines {
		if m["msg"] != "task failed" || m["submission"] != sub.ID || m["action"] != sub.Action || m["step"] != "flaky" ||
			m["step_attempt"] != float64(i+1) || !strings.Contains(m["err"].(string), "receiver is down") {
			t.Errorf("line %d: %v", i, m)
		}
	}
	if lines[0]["retry_in"] == nil || lines[1]["final"] != true || lines[1]["level"] != "ERROR" {
		t.Errorf("first line should say when it retries, the last that it is final: %v", lines)
	}
}

// TestSkippedStepCompletesTheSubmission: a step that answers Skip (an
// autoresponder over its limit) is recorded skipped with its note, the
// submission completes, a later run does not run it again, and the step
// counts under outcome skip.
func TestSkippedStepCompletesTheSubmission(t *testing.T) {
	var n atomic.Int32
	h := newHarness(t, step.Steps{"mail": counting(&n, func(int) error { return step.Skip("the recipient already got 5 messages in 1h (limit 5/1h)") })})
	h.deps.Metrics = NewMetrics(prometheus.NewRegistry())
	sub := testSubmission("01SKIP")
	sub.Steps = []submission.Step{{Type: "mail"}}
	if err := h.run(sub); err != nil {
		t.Fatalf("run: %v", err)
	}
	st := h.state(sub.ID)
	if st.Status != submission.StatusCompleted || st.Steps[0].State != submission.StepSkipped || !strings.Contains(st.Steps[0].Note, "limit 5/1h") || st.Steps[0].LastError != "" {
		t.Fatalf("status: %+v", st)
	}
	if err := h.run(sub); err != nil || n.Load() != 1 {
		t.Fatalf("a second run: %v, step ran %d times", err, n.Load())
	}
	if v := testutil.ToFloat64(h.deps.Metrics.steps.WithLabelValues("mail", OutcomeSkip)); v != 1 {
		t.Errorf("formq_steps_total{outcome=skip} = %v", v)
	}
}
