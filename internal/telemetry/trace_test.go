package telemetry_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/formq/formq/actions/web"
	"github.com/formq/formq/internal/telemetry"
	"github.com/formq/formq/internal/testenv"
	"github.com/formq/formq/jobs"
	"github.com/formq/formq/jobs/step"
	"github.com/formq/formq/submission"
	"github.com/formq/formq/worker/engine"
	"github.com/hibiken/asynq"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// TestOneTraceFromRequestToStep follows one submission through the pieces
// formq's processes are built from, on a real Redis, with an in-memory
// exporter: the API's request span (web.RequestScope), the task enqueued by
// jobs.Enqueuer with the trace context in its headers, the worker's task
// span (engine.Middleware) and a step's span (engine.Traced) all share one
// trace, each a child of the one before.
func TestOneTraceFromRequestToStep(t *testing.T) {
	exporter := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exporter))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	log := telemetry.NewLogger(testWriter{t}, nil, "test")

	rdb := testenv.StartRedis(t).Client(t)

	// API side: the middleware chain of RunAPI and a handler that queues.
	client := asynq.NewClientFromRedisClient(rdb)
	enqueuer := jobs.NewEnqueuer(client, nil, log)
	e := echo.New()
	e.Use(middleware.RequestID())
	e.Use(web.RequestScope(tp.Tracer("formq/api"), log))
	e.POST("/actions/:name", func(c echo.Context) error {
		sub := &submission.Submission{ID: "01TRACE", Action: c.Param("name"), Queue: submission.DefaultQueue}
		if err := enqueuer.Enqueue(c.Request().Context(), sub); err != nil {
			return err
		}
		return c.NoContent(http.StatusAccepted)
	})
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)

	// Worker side: the task middleware and a traced step.
	stepRan := make(chan trace.SpanContext, 1)
	steps := engine.Traced(step.Steps{"probe": {Run: func(ctx context.Context, r step.Run) error {
		stepRan <- trace.SpanContextFromContext(ctx)
		return nil
	}}}, tp.Tracer("formq/jobs"))
	mux := asynq.NewServeMux()
	mux.Use(engine.Middleware(nil, tp.Tracer("formq/jobs")))
	mux.HandleFunc(jobs.TypeSubmission, func(ctx context.Context, t *asynq.Task) error {
		return steps["probe"].Run(ctx, step.Run{Attempt: 1})
	})
	worker := asynq.NewServerFromRedisClient(rdb, asynq.Config{
		Concurrency: 1, Queues: map[string]int{submission.DefaultQueue: 1}, TaskCheckInterval: 50 * time.Millisecond,
		LogLevel: asynq.FatalLevel,
	})
	if err := worker.Start(mux); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(worker.Shutdown)

	resp, err := http.Post(srv.URL+"/actions/sign-up", "application/x-www-form-urlencoded", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("status %d", resp.StatusCode)
	}
	select {
	case <-stepRan:
	case <-time.After(20 * time.Second):
		t.Fatal("the worker did not run the step within 20s")
	}
	worker.Shutdown() // the task span ends before Shutdown returns

	byName := map[string]tracetest.SpanStub{}
	for _, s := range exporter.GetSpans() {
		byName[s.Name] = s
	}
	request, task, step := byName["POST /actions/:name"], byName["task "+jobs.TypeSubmission], byName["step probe"]
	for name, s := range map[string]tracetest.SpanStub{"request": request, "task": task, "step": step} {
		if !s.SpanContext.IsValid() {
			t.Fatalf("no %s span; have %v", name, spanNames(exporter.GetSpans()))
		}
	}
	if request.SpanKind != trace.SpanKindServer || task.SpanKind != trace.SpanKindConsumer {
		t.Errorf("kinds: request %v, task %v", request.SpanKind, task.SpanKind)
	}
	trace := request.SpanContext.TraceID()
	if task.SpanContext.TraceID() != trace || step.SpanContext.TraceID() != trace {
		t.Errorf("traces differ: request %s, task %s, step %s", trace, task.SpanContext.TraceID(), step.SpanContext.TraceID())
	}
	if task.Parent.SpanID() != request.SpanContext.SpanID() || !task.Parent.IsRemote() {
		t.Errorf("the task's parent is %s (remote %v), want the request span %s", task.Parent.SpanID(), task.Parent.IsRemote(), request.SpanContext.SpanID())
	}
	if step.Parent.SpanID() != task.SpanContext.SpanID() {
		t.Errorf("the step's parent is %s, want the task span %s", step.Parent.SpanID(), task.SpanContext.SpanID())
	}
}

func spanNames(spans tracetest.SpanStubs) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	return out
}

// testWriter sends log lines to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}
