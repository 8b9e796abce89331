package wire

import (
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/formq/formq"
)

// writes records each write the log output makes.
type writes struct {
	mu    sync.Mutex
	calls []string
}

func (w *writes) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls = append(w.calls, string(p))
	return len(p), nil
}

func (w *writes) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.calls
	w.calls = nil
	return out
}

func testLogger(t *testing.T, after time.Duration) (*slog.Logger, *writes, func()) {
	t.Helper()
	cfg := formq.DefaultConfig()
	cfg.LogLevel = "debug"
	w := &writes{}
	log, flush := processLogger(w, cfg, "api", after)
	t.Cleanup(flush)
	return log, w, flush
}

// INFO lines wait and go together; a WARN line takes them along at once,
// in order, in one write.
func TestProcessLoggerWritesWarningsAtOnce(t *testing.T) {
	log, w, _ := testLogger(t, time.Hour)
	for i := range 100 {
		log.Info("request", "n", i)
	}
	if got := w.take(); len(got) != 0 {
		t.Fatalf("INFO lines were written at once (%d writes)", len(got))
	}
	log.Warn("dependency down", "dependency", "redis")
	got := w.take()
	if len(got) != 1 {
		t.Fatalf("100 INFO lines and a WARN took %d writes, want 1", len(got))
	}
	lines := strings.Split(strings.TrimSuffix(got[0], "\n"), "\n")
	if len(lines) != 101 {
		t.Fatalf("%d lines written, want 101", len(lines))
	}
	for i, l := range lines {
		var rec struct {
			Level, Process string
			N              *int
		}
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("line %d is not JSON: %q", i, l)
		}
		if rec.Process != "api" || (i < 100 && (rec.N == nil || *rec.N != i)) || (i == 100 && rec.Level != "WARN") {
			t.Fatalf("line %d out of order or wrong: %s", i, l)
		}
	}
}

// A waiting line is written within the period.
func TestProcessLoggerWritesWithinThePeriod(t *testing.T) {
	log, w, _ := testLogger(t, 20*time.Millisecond)
	log.Info("one")
	deadline := time.Now().Add(10 * time.Second)
	for {
		if got := w.take(); len(got) == 1 && strings.Contains(got[0], `"msg":"one"`) {
			return
		} else if len(got) > 0 {
			t.Fatalf("unexpected writes %q", got)
		}
		if time.Now().After(deadline) {
			t.Fatal("an INFO line was not written within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Lines are written without waiting once 32 KiB wait, and by the
// process's flush; after that flush, lines go at once.
func TestProcessLoggerWritesWhenFullAndAtExit(t *testing.T) {
	log, w, flush := testLogger(t, time.Hour)
	pad := strings.Repeat("x", 1000)
	n := 0
	for len(w.take()) == 0 {
		if n++; n > 40 {
			t.Fatalf("%d lines of 1 KB waited", n)
		}
		log.Info("big", "pad", pad)
	}
	if n < 30 {
		t.Fatalf("written after %d lines of 1 KB, want about 32", n)
	}
	log.Info("last before exit")
	flush()
	if got := strings.Join(w.take(), ""); !strings.Contains(got, "last before exit") {
		t.Fatalf("the process's flush did not write the waiting line: %q", got)
	}
	log.Info("after exit")
	if got := strings.Join(w.take(), ""); !strings.Contains(got, "after exit") {
		t.Fatalf("a line after the flush waited: %q", got)
	}
}
