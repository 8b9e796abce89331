package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/formq/formq/jobs"
	"github.com/formq/formq/jobs/sink/cdn"
	"github.com/formq/formq/jobs/step"
	"github.com/formq/formq/submission"
	"github.com/hibiken/asynq"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// TestSinkWaitsItsOwnBackoff: runs of the task before a failed sink's
// next attempt is due leave it waiting, while the other sinks finish on
// the first run and are never called again.
func TestSinkWaitsItsOwnBackoff(t *testing.T) {
	var flaky, steady int
	now := time.Unix(1_800_000_000, 0)
	h := newHarness(t, step.Steps{})
	h.deps.Now = func() time.Time { return now }
	h.deps.Sinks = []step.Sink{
		{Name: "flaky", Backoff: time.Minute, Purge: func(context.Context, submission.Event, string) error {
			flaky++
			if flaky == 1 {
				return errors.New("cdn is down")
			}
			return nil
		}},
		{Name: "steady", Purge: func(context.Context, submission.Event, string) error { steady++; return nil }},
	}
	sub := testSubmission("01BACKOFF")
	var se *StepError
	if err := h.run(sub); !errors.As(err, &se) || se.Type != "flaky" || se.Delay < time.Minute {
		t.Fatalf("first run: %v", err)
	}
	now = now.Add(30 * time.Second) // asynq ran the task early
	if err := h.run(sub); !errors.As(err, &se) || se.Delay > 30*time.Second+15*time.Second || flaky != 1 {
		t.Fatalf("early run: err %v, flaky called %d times", err, flaky)
	}
	now = now.Add(time.Minute)
	if err := h.run(sub); err != nil {
		t.Fatal(err)
	}
	st := h.state(sub.ID)
	if st.Status != submission.StatusCompleted || flaky != 2 || steady != 1 ||
		st.Steps[0].Attempts != 2 || st.Steps[1].Attempts != 1 {
		t.Errorf("status %s, flaky %d, steady %d, steps %+v", st.Status, flaky, steady, st.Steps)
	}
}

// TestSinkSpansOnLocalServers: every attempt of a sink is a span under the
// task's, and every request it makes a client span under that, with the
// method, URL, answer status and idempotency key; a failed request's span
// carries the error.
func TestSinkSpansOnLocalServers(t *testing.T) {
	var fastlyCalls int
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/client/v4/"):
			io.WriteString(w, `{"success":true,"errors":[],"messages":[],"result":{"id":"z"}}`)
		case r.URL.Path == "/service/s/purge" || strings.HasPrefix(r.URL.Path, "/purge/"):
			mu.Lock()
			fastlyCalls++
			n := fastlyCalls
			mu.Unlock()
			if n == 2 { // the first URL purge
				http.Error(w, `{"msg":"busy"}`, http.StatusServiceUnavailable)
				return
			}
			io.WriteString(w, `{"status":"ok","id":"1"}`)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	cf, err := cdn.NewCloudflare(cdn.CloudflareConfig{APIURL: srv.URL + "/client/v4", Token: "t", ZoneID: "z", SiteURL: "https://www.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	fastly, err := cdn.NewFastly(cdn.FastlyConfig{APIURL: srv.URL, Key: "k", ServiceID: "s", SiteURL: "https://www.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, step.Steps{})
	h.deps.Sinks = []step.Sink{cf, fastly}
	recorder := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(recorder))
	defer tp.Shutdown(context.Background())
	ctx, root := tp.Tracer("test").Start(context.Background(), "task")
	sub := testSubmission("01SPANS")
	sub.Revalidate.Paths = []string{"/a"}
	sub.Revalidate.Tags = []string{"t"}
	payload, _ := json.Marshal(sub)
	var se *StepError
	if err := h.deps.processSubmission(ctx, asynq.NewTask(jobs.TypeSubmission, payload)); !errors.As(err, &se) || se.Type != "fastly" {
		t.Fatalf("run: %v, want fastly to be retried", err)
	}
	root.End()

	byID := map[trace.SpanID]sdktrace.ReadOnlySpan{}
	var lines []string
	for _, s := range recorder.Ended() {
		byID[s.SpanContext().SpanID()] = s
	}
	for _, s := range recorder.Ended() {
		if !strings.HasPrefix(s.Name(), "cloudflare ") && !strings.HasPrefix(s.Name(), "fastly ") {
			continue
		}
		attrs := map[string]string{}
		for _, kv := range s.Attributes() {
			attrs[string(kv.Key)] = kv.Value.String()
		}
		parent := byID[s.Parent().SpanID()]
		if parent == nil || byID[parent.Parent().SpanID()] == nil || byID[parent.Parent().SpanID()].Name() != "task" {
			t.Errorf("span %s is not under a step span under the task", s.Name())
			continue
		}
		lines = append(lines, fmt.Sprintf("%s/%s %s %s %s %s %s", parent.Name(), s.Name(), s.SpanKind(), attrs["url.full"], attrs["http.response.status_code"], attrs["formq.idempotency_key"], s.Status().Code))
	}
	slices.Sort(lines)
	u := srv.URL
	want := []string{
		"step cloudflare/cloudflare POST client " + u + "/client/v4/zones/z/purge_cache 200 evt_01SPANS.files.0 Unset",
		"step cloudflare/cloudflare POST client " + u + "/client/v4/zones/z/purge_cache 200 evt_01SPANS.tags.0 Unset",
		"step fastly/fastly POST client " + u + "/purge/www.example.com/a 503 evt_01SPANS.urls.0 Error",
		"step fastly/fastly POST client " + u + "/service/s/purge 200 evt_01SPANS.keys.0 Unset",
	}
	if !slices.Equal(lines, want) {
		t.Errorf("request spans\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	for _, s := range recorder.Ended() {
		if s.Name() == "step fastly" && (s.Status().Code != codes.Error || len(s.Events()) == 0) {
			t.Errorf("step fastly span status %v with %d events, want the error recorded", s.Status(), len(s.Events()))
		}
	}
}
