package handler

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/formq/formq/actions"
	"github.com/formq/formq/internal/wire"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestOutageIsLoggedOnceAndRefusalsCounted: while Redis is down, every
// submission gets 503 with Retry-After, the outage is one WARN line (from
// the health probe, naming Redis and its error) and no refusal logs at
// ERROR; the refusals are counted under reason dependency_down.
func TestOutageIsLoggedOnceAndRefusalsCounted(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	health := wire.NewHealth(map[string]wire.Check{
		"redis": func(context.Context) error { return errors.New("connection refused") },
	}, log)
	health.Probe(context.Background())
	health.Probe(context.Background())

	m := NewMetrics(prometheus.NewRegistry())
	h := &Handler{Actions: actions.NewRegistry(&actions.Action{Name: "contact"}), Log: log, Health: health.Err, Metrics: m}
	e := echo.New()
	e.HTTPErrorHandler = ErrorHandler(log, nil)
	e.Use(m.Middleware(func(name string) bool { return name == "contact" }))
	e.POST("/actions/:name", h.Submit)
	const posts = 5
	for range posts {
		req := httptest.NewRequest(http.MethodPost, "/actions/contact", strings.NewReader("email=a@example.com"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "application/json")
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" || !strings.Contains(rec.Body.String(), `"unavailable"`) {
			t.Fatalf("submission with Redis down: %d %v %s", rec.Code, rec.Header(), rec.Body)
		}
	}
	var lines []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var l map[string]any
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		lines = append(lines, l)
	}
	if len(lines) != 1 || lines[0]["level"] != "WARN" || lines[0]["dependency"] != "redis" || lines[0]["err"] != "connection refused" {
		t.Fatalf("log of the outage and %d refusals:\n%s\nwant one WARN line naming redis and its error", posts, logs.String())
	}
	if got := testutil.ToFloat64(m.rejected.WithLabelValues("contact", RejectDependencyDown)); got != posts {
		t.Errorf("rejections{reason=dependency_down} = %v, want %d", got, posts)
	}
}
