package wire

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// switchable is a probe whose answer the test sets.
type switchable struct {
	mu  sync.Mutex
	err error
}

func (s *switchable) set(err error) { s.mu.Lock(); s.err = err; s.mu.Unlock() }
func (s *switchable) check(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// logLines decodes the JSON log lines written so far.
func logLines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// TestHealthNeedsTwoFailedProbesAndLogsEachChangeOnce drives Health with
// probes the test controls: one failed probe refuses nothing, the second
// in a row marks Redis down with one WARN line naming it and its error,
// later failures log nothing more, and one good probe brings it back
// with one INFO line.
func TestHealthNeedsTwoFailedProbesAndLogsEachChangeOnce(t *testing.T) {
	redis, s3 := &switchable{}, &switchable{}
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h := NewHealth(map[string]Check{"redis": redis.check, "s3": s3.check}, log)
	ctx := context.Background()

	h.Probe(ctx)
	if err := h.Err(); err != nil {
		t.Fatalf("all probes good: %v", err)
	}
	refused := errors.New("dial tcp 127.0.0.1:6379: connect: connection refused")
	redis.set(refused)
	h.Probe(ctx)
	if err := h.Err(); err != nil {
		t.Fatalf("after one failed probe: %v, want nil (one slow or failed probe is not an outage)", err)
	}
	// A good probe in between starts the count again.
	redis.set(nil)
	h.Probe(ctx)
	redis.set(refused)
	h.Probe(ctx)
	if err := h.Err(); err != nil {
		t.Fatalf("after fail, good, fail: %v, want nil", err)
	}
	if lines := logLines(t, &buf); len(lines) != 0 {
		t.Fatalf("log before any outage: %v", lines)
	}
	h.Probe(ctx)
	err := h.Err()
	if !errors.Is(err, ErrDependencyDown) || !strings.Contains(err.Error(), "redis") || strings.Contains(err.Error(), "s3") {
		t.Fatalf("after two failed probes in a row: %v, want ErrDependencyDown naming redis only", err)
	}
	for range 5 {
		h.Probe(ctx)
	}
	lines := logLines(t, &buf)
	if len(lines) != 1 {
		t.Fatalf("log lines during the outage: %d %v, want one", len(lines), lines)
	}
	if l := lines[0]; l["level"] != "WARN" || l["dependency"] != "redis" || l["err"] != refused.Error() {
		t.Errorf("the down line: %v, want WARN with dependency redis and the error", l)
	}
	if h.Err() == nil {
		t.Fatal("still failing, but up")
	}

	redis.set(nil)
	h.Probe(ctx)
	if err := h.Err(); err != nil {
		t.Fatalf("after one good probe: %v, want up", err)
	}
	h.Probe(ctx)
	lines = logLines(t, &buf)
	if len(lines) != 2 || lines[1]["level"] != "INFO" || lines[1]["dependency"] != "redis" {
		t.Fatalf("log after recovery: %v, want one INFO line naming redis after the WARN", lines)
	}
}

// TestHealthCountsAProbeWithoutAnswerAsFailed: a check that ignores its
// deadline counts as failed, with an error saying it did not answer.
func TestHealthCountsAProbeWithoutAnswerAsFailed(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	release := make(chan struct{})
	defer close(release)
	h := NewHealth(map[string]Check{"s3": func(context.Context) error { <-release; return nil }}, log)
	h.Probe(context.Background())
	h.Probe(context.Background())
	if err := h.Err(); !errors.Is(err, ErrDependencyDown) {
		t.Fatalf("a hung check twice: %v, want down", err)
	}
	if lines := logLines(t, &buf); len(lines) != 1 || !strings.Contains(lines[0]["err"].(string), "no answer") {
		t.Fatalf("log: %v", lines)
	}
}
