package submit

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
	"github.com/formq/formq/actions/web"
	"github.com/formq/formq/internal/wire"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
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

	reg := prometheus.NewRegistry()
	m := web.NewMetrics(reg)
	gate := web.NewGate(web.GateConfig{Health: health.Err}, nil, nil, m, log)
	h, err := New(Config{}, Deps{Actions: actions.NewRegistry(&actions.Action{Name: "contact"}), Log: log, Gate: gate})
	if err != nil {
		t.Fatal(err)
	}
	e := echo.New()
	e.HTTPErrorHandler = web.ErrorHandler(log, nil)
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
	if got := rejections(t, reg, "contact", web.RejectDependencyDown); got != posts {
		t.Errorf("rejections{reason=dependency_down} = %v, want %d", got, posts)
	}
}

// rejections reads formq_rejections_total of an action and a reason.
func rejections(t *testing.T, reg *prometheus.Registry, action, reason string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "formq_rejections_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["action"] == action && labels["reason"] == reason {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}
