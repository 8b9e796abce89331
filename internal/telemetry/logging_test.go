package telemetry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/formq/formq/internal/telemetry"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// logLines decodes JSON log lines.
func logLines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for l := range strings.Lines(buf.String()) {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not JSON: %q", l)
		}
		out = append(out, m)
	}
	return out
}

func TestContextAttributesReachEveryLine(t *testing.T) {
	var buf bytes.Buffer
	log := telemetry.NewLogger(&buf, slog.LevelDebug, "api")

	// A request scope; the handler adds the submission id later, and
	// the middleware's copy of the context sees it too.
	outer := telemetry.WithLogAttrs(context.Background(), slog.String(telemetry.KeyRequestID, "req-1"))
	inner, cancel := context.WithCancel(outer) // a derived context, as handlers make
	defer cancel()
	if !telemetry.AddLogAttrs(inner, slog.String(telemetry.KeySubmission, "sub-1")) {
		t.Fatal("AddLogAttrs found no scope")
	}
	log.InfoContext(inner, "in the handler")
	log.InfoContext(outer, "in the middleware, after the handler")
	log.With("submission", "explicit").InfoContext(outer, "logger already has the key")
	log.InfoContext(outer, "record has the key", "request_id", "explicit")
	log.WithGroup("g").InfoContext(outer, "inside a group")
	log.InfoContext(context.Background(), "no scope")

	lines := logLines(t, &buf)
	if len(lines) != 6 {
		t.Fatalf("%d lines", len(lines))
	}
	for i, want := range []map[string]any{
		{"request_id": "req-1", "submission": "sub-1", "process": "api"},
		{"request_id": "req-1", "submission": "sub-1"},
		{"request_id": "req-1", "submission": "explicit"},
		{"request_id": "explicit", "submission": "sub-1"},
		{"request_id": nil, "submission": nil},
		{"request_id": nil, "submission": nil},
	} {
		for k, v := range want {
			if lines[i][k] != v {
				t.Errorf("line %d (%s): %s = %v, want %v", i, lines[i]["msg"], k, lines[i][k], v)
			}
		}
	}
	if n := strings.Count(strings.Split(buf.String(), "\n")[2], `"submission"`); n != 1 {
		t.Errorf("line 2 repeats the submission key %d times", n)
	}
	if telemetry.AddLogAttrs(context.Background(), slog.String("a", "b")) {
		t.Error("AddLogAttrs reported success without a scope")
	}
}

func TestLogLinesCarryTheSpan(t *testing.T) {
	var buf bytes.Buffer
	log := telemetry.NewLogger(&buf, nil, "worker")
	tp := sdktrace.NewTracerProvider()
	ctx, span := tp.Tracer("t").Start(context.Background(), "work")
	log.InfoContext(ctx, "inside")
	span.End()
	line := logLines(t, &buf)[0]
	if line["trace_id"] != span.SpanContext().TraceID().String() || line["span_id"] != span.SpanContext().SpanID().String() {
		t.Errorf("line %v, want trace %s span %s", line, span.SpanContext().TraceID(), span.SpanContext().SpanID())
	}
}

func TestTaskHeadersCarryTraceAndRequest(t *testing.T) {
	tp := sdktrace.NewTracerProvider()
	ctx := telemetry.WithLogAttrs(context.Background(), slog.String(telemetry.KeyRequestID, "req-9"))
	ctx, span := tp.Tracer("t").Start(ctx, "request")
	defer span.End()

	h := telemetry.TaskHeaders(ctx)
	if !strings.Contains(h["traceparent"], span.SpanContext().TraceID().String()) || h[telemetry.HeaderRequestID] != "req-9" {
		t.Fatalf("headers %v", h)
	}
	got := telemetry.FromTaskHeaders(context.Background(), h)
	_, child := tp.Tracer("t").Start(got, "task")
	if child.SpanContext().TraceID() != span.SpanContext().TraceID() {
		t.Error("the task does not continue the request's trace")
	}
	if h := telemetry.TaskHeaders(context.Background()); h == nil || len(h) != 0 {
		t.Errorf("headers without trace or scope: %v, want empty", h)
	}
}

func TestTracesURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"http://otel:4318", "http://otel:4318/v1/traces"},
		{"http://otel:4318/", "http://otel:4318/v1/traces"},
		{"https://collector.example.com/custom/path", "https://collector.example.com/custom/path"},
		{"otel:4318", ""},
		{"ftp://otel", ""},
	} {
		got, err := telemetry.TracesURL(tc.in)
		if tc.want == "" {
			if !errors.Is(err, telemetry.ErrEndpoint) {
				t.Errorf("TracesURL(%q) = %q, %v; want ErrEndpoint", tc.in, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("TracesURL(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestTracingOffWithoutEndpoint(t *testing.T) {
	tr, err := telemetry.NewTracing(context.Background(), "", "formq-api")
	if err != nil {
		t.Fatal(err)
	}
	_, span := tr.Tracer("t").Start(context.Background(), "x")
	if span.SpanContext().IsValid() || span.IsRecording() {
		t.Error("spans are recorded with tracing off")
	}
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Error(err)
	}
}
