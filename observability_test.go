package formq_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/formq/formq/api"
	"github.com/formq/formq/internal/buildinfo"
	"github.com/formq/formq/internal/testenv"
	"github.com/formq/formq/internal/teststack"
	"github.com/formq/formq/worker"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// Distinctive secret values: none may appear in any log line.
const (
	testSecret     = "formq-observability-secret-0123456789abcdef"
	testAdminToken = "admin-token-never-logged-5f3e2a-0b9c"
	testPassword   = "hunter2-sensitive-value-9c1b"
)

// TestObservabilityOfOneSubmission runs the API and a worker with tracing
// to an in-process OTLP/HTTP collector, posts one submission and checks
// what operators see: the action's series on both /metrics endpoints, one
// trace from the request through the task and its work, log lines that
// carry the request and submission ids, and no secret in any log line.
func TestObservabilityOfOneSubmission(t *testing.T) {
	collector := newOTLPCollector(t)
	r := testenv.StartRedis(t)
	s := testenv.StartS3(t)
	actionsFile, err := filepath.Abs("testdata/observability-actions.yaml")
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"FORMQ_ENV":              "production",
		"FORMQ_SECRET":           testSecret,
		"FORMQ_ADMIN_TOKEN":      testAdminToken,
		"FORMQ_ADDR":             "127.0.0.1:0",
		"FORMQ_WORKER_ADDR":      "127.0.0.1:0",
		"FORMQ_REDIS_URL":        r.URL(),
		"FORMQ_S3_CREATE_BUCKET": "true",
		"FORMQ_ACTIONS":          actionsFile,
		"FORMQ_OTEL_ENDPOINT":    collector.URL,
		"FORMQ_LOG_LEVEL":        "debug",
	}
	for k, v := range s.Env() {
		env[k] = v
	}
	api := startCapturing(t, "api", api.Main, env)
	worker := startCapturing(t, "worker", worker.Main, env)

	form := url.Values{"name": {"Ada"}, "password": {testPassword}}
	resp, body := teststack.Post(t, api.url+"/actions/sign-up", strings.NewReader(form.Encode()),
		"application/x-www-form-urlencoded", map[string]string{"Accept": "application/json"})
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	requestID := resp.Header.Get("X-Request-Id")
	var accepted struct {
		Submission struct{ ID string } `json:"submission"`
	}
	if err := json.Unmarshal(body, &accepted); err != nil || accepted.Submission.ID == "" || requestID == "" {
		t.Fatalf("answer %s, request id %q: %v", body, requestID, err)
	}
	id := accepted.Submission.ID
	// A refused submission, for the validation series.
	teststack.Post(t, api.url+"/actions/sign-up", strings.NewReader("name=A"), "application/x-www-form-urlencoded",
		map[string]string{"Accept": "application/json"})

	teststack.WaitFor(t, 30*time.Second, "the worker to finish the submission", func() bool {
		return strings.Contains(scrape(t, worker.url), `formq_tasks_total{outcome="ok",queue="default",type="submission:process"} 1`)
	})

	t.Run("metrics", func(t *testing.T) {
		apiMetrics, workerMetrics := scrape(t, api.url), scrape(t, worker.url)
		for _, want := range []string{
			`formq_action_requests_total{action="sign-up",status="202"} 1`,
			`formq_action_requests_total{action="sign-up",status="422"} 1`,
			`formq_action_request_duration_seconds_count{action="sign-up"} 2`,
			`formq_validation_failures_total{action="sign-up",field="name"} 1`,
			`formq_validation_failures_total{action="sign-up",field="password"} 1`,
		} {
			if !strings.Contains(apiMetrics, want) {
				t.Errorf("API /metrics lacks %s", want)
			}
		}
		for _, want := range []string{
			`formq_tasks_total{outcome="ok",queue="default",type="submission:process"} 1`,
			`formq_task_duration_seconds_count{type="submission:process"} 1`,
			`formq_queue_depth{queue="default",state="pending"} 0`,
			`formq_queue_latency_seconds{queue="default"}`,
		} {
			if !strings.Contains(workerMetrics, want) {
				t.Errorf("worker /metrics lacks %s", want)
			}
		}
		b := buildinfo.Get()
		build := fmt.Sprintf(`formq_build_info{commit=%q,goversion=%q,version=%q} 1`, b.Commit, b.GoVersion, b.Version)
		if !strings.Contains(apiMetrics, build) || !strings.Contains(workerMetrics, build) {
			t.Errorf("API or worker /metrics lacks %s", build)
		}
		if strings.Contains(apiMetrics+workerMetrics, id) {
			t.Error("a submission id is used as a label value")
		}
	})

	// Stopping flushes the spans and closes the logs.
	api.stop(t)
	worker.stop(t)

	t.Run("one trace from request to worker", func(t *testing.T) {
		spans := collector.spans()
		request := findSpan(spans, "formq-api", "POST /actions/:name")
		task := findSpan(spans, "formq-worker", "task submission:process")
		if request == nil || task == nil {
			t.Fatalf("spans: want the API request and the worker task, have %v", spanNames(spans))
		}
		if !bytes.Equal(request.TraceId, task.TraceId) {
			t.Errorf("the task's trace %x is not the request's %x", task.TraceId, request.TraceId)
		}
		if !bytes.Equal(task.ParentSpanId, request.SpanId) {
			t.Errorf("the task's parent span %x is not the request's span %x", task.ParentSpanId, request.SpanId)
		}
	})

	t.Run("logs", func(t *testing.T) {
		all := api.logs.String() + worker.logs.String()
		for _, secret := range []string{testSecret, testAdminToken, testPassword, s.SecretKey} {
			if strings.Contains(all, secret) {
				t.Errorf("a secret value %q... is in the logs", secret[:6])
			}
		}
		traceID := ""
		if request := findSpan(collector.spans(), "formq-api", "POST /actions/:name"); request != nil {
			traceID = hex.EncodeToString(request.TraceId)
		}
		checks := []struct {
			proc *captured
			msg  string
		}{
			{api, "submission accepted"},
			{api, "request"},
			{worker, "submission completed"},
		}
		for _, c := range checks {
			line := c.proc.line(t, func(l map[string]any) bool { return l["msg"] == c.msg && l["submission"] == id })
			if line == nil {
				t.Errorf("no %q log line with submission %s", c.msg, id)
				continue
			}
			if line["request_id"] != requestID {
				t.Errorf("%q line has request_id %v, want %s", c.msg, line["request_id"], requestID)
			}
			if traceID != "" && line["trace_id"] != traceID {
				t.Errorf("%q line has trace_id %v, want %s", c.msg, line["trace_id"], traceID)
			}
		}
	})
}

// captured is a process started by startCapturing.
type captured struct {
	url    string
	logs   *syncBuffer
	cancel context.CancelFunc
	done   chan struct{} // closed when run returned
	err    error         // what run returned
	once   sync.Once
}

// startCapturing runs a process like teststack.StartRun and keeps every
// log line it writes.
func startCapturing(t *testing.T, name string, run teststack.RunFunc, env map[string]string) *captured {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c := &captured{logs: &syncBuffer{}, cancel: cancel, done: make(chan struct{})}
	pr, pw := io.Pipe()
	go func() {
		c.err = run(ctx, []string{name}, func(k string) string { return env[k] }, pw)
		pw.Close()
		close(c.done)
	}()
	listening := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			c.logs.Write(append(sc.Bytes(), '\n'))
			var l struct{ Msg, URL string }
			if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == "listening" {
				select {
				case listening <- l.URL:
				default:
				}
			}
		}
	}()
	t.Cleanup(func() { c.stop(t) })
	select {
	case c.url = <-listening:
	case <-c.done:
		t.Fatalf("%s stopped at start: %v\n%s", name, c.err, c.logs.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not start within 30s", name)
	}
	teststack.WaitOK(t, c.url+"/healthz")
	return c
}

// stop ends the process and waits for it; later calls do nothing.
func (c *captured) stop(t *testing.T) {
	t.Helper()
	c.once.Do(func() {
		c.cancel()
		select {
		case <-c.done:
			if c.err != nil {
				t.Errorf("run returned %v", c.err)
			}
		case <-time.After(30 * time.Second):
			t.Error("the process did not stop within 30s")
		}
	})
}

// line returns the first JSON log line that match accepts.
func (c *captured) line(t *testing.T, match func(map[string]any) bool) map[string]any {
	t.Helper()
	for l := range strings.Lines(c.logs.String()) {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && match(m) {
			return m
		}
	}
	return nil
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func scrape(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s/metrics: %s", base, resp.Status)
	}
	return string(b)
}

// otlpCollector is an OTLP/HTTP trace receiver keeping every span with
// its service name.
type otlpCollector struct {
	*httptest.Server
	mu  sync.Mutex
	got []serviceSpan
}

type serviceSpan struct {
	service string
	span    *tracepb.Span
}

func newOTLPCollector(t *testing.T) *otlpCollector {
	t.Helper()
	c := &otlpCollector{}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/traces" {
			http.NotFound(w, r)
			return
		}
		b, err := io.ReadAll(r.Body)
		var req collectortrace.ExportTraceServiceRequest
		if err == nil {
			err = proto.Unmarshal(b, &req)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		c.mu.Lock()
		for _, rs := range req.ResourceSpans {
			service := ""
			for _, a := range rs.GetResource().GetAttributes() {
				if a.Key == "service.name" {
					service = a.GetValue().GetStringValue()
				}
			}
			for _, ss := range rs.ScopeSpans {
				for _, sp := range ss.Spans {
					c.got = append(c.got, serviceSpan{service, sp})
				}
			}
		}
		c.mu.Unlock()
		out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(out)
	}))
	t.Cleanup(c.Close)
	return c
}

func (c *otlpCollector) spans() []serviceSpan {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]serviceSpan(nil), c.got...)
}

func findSpan(spans []serviceSpan, service, name string) *tracepb.Span {
	for _, s := range spans {
		if s.service == service && s.span.Name == name {
			return s.span
		}
	}
	return nil
}

func spanNames(spans []serviceSpan) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.service+": "+s.span.Name)
	}
	return out
}
