package wire

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/formq/formq"
	"github.com/formq/formq/internal/telemetry"
)

// Log lines below WARN wait at most logFlushAfter, or until logFlushSize
// bytes are waiting, to be written together.
const (
	logFlushAfter = 50 * time.Millisecond
	logFlushSize  = 32 << 10
)

// ProcessLogger is Logger for a process's own output: lines below WARN are
// gathered and written together within 50 ms, so a busy API makes one
// write for many request lines instead of one each (a write per line was
// about a twentieth of the API's CPU per accepted form); a WARN or ERROR
// line is written at once, after everything logged before it. Call the
// returned func before the process exits: it writes what waits. A process
// killed outright loses at most the last 50 ms of INFO and DEBUG lines.
func ProcessLogger(w io.Writer, cfg formq.Config, process string) (*slog.Logger, func()) {
	return processLogger(w, cfg, process, logFlushAfter)
}

func processLogger(w io.Writer, cfg formq.Config, process string, after time.Duration) (*slog.Logger, func()) {
	out := &logOutput{w: w, after: after}
	json := slog.NewJSONHandler(out, &slog.HandlerOptions{Level: cfg.SlogLevel()})
	log := slog.New(telemetry.NewContextHandler(flushingHandler{json, out})).With("process", process)
	return log, out.close
}

// logOutput gathers writes for w and writes them within logFlushAfter.
type logOutput struct {
	w     io.Writer
	after time.Duration // logFlushAfter

	mu     sync.Mutex
	buf    []byte
	timer  *time.Timer // armed while buf holds lines
	closed bool
}

// Write keeps p, one log line (slog writes each line in one call).
func (o *logOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return o.w.Write(p)
	}
	o.buf = append(o.buf, p...)
	switch {
	case len(o.buf) >= logFlushSize:
		o.flushLocked()
	case o.timer == nil:
		o.timer = time.AfterFunc(o.after, o.flush)
	}
	return len(p), nil
}

func (o *logOutput) flush() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.flushLocked()
}

// flushLocked writes what waits. A failed write drops it: logging has no
// one to report to, and the next lines should not wait behind it.
func (o *logOutput) flushLocked() {
	if o.timer != nil {
		o.timer.Stop()
		o.timer = nil
	}
	if len(o.buf) == 0 {
		return
	}
	_, _ = o.w.Write(o.buf)
	if cap(o.buf) > 4*logFlushSize {
		o.buf = nil // a burst's buffer is not kept for ever
	} else {
		o.buf = o.buf[:0]
	}
}

// close writes what waits; later lines are written at once.
func (o *logOutput) close() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.flushLocked()
	o.closed = true
}

// flushingHandler writes the output at once after a WARN or ERROR line.
type flushingHandler struct {
	slog.Handler
	out *logOutput
}

func (h flushingHandler) Handle(ctx context.Context, r slog.Record) error {
	err := h.Handler.Handle(ctx, r)
	if r.Level >= slog.LevelWarn {
		h.out.flush()
	}
	return err
}

func (h flushingHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return flushingHandler{h.Handler.WithAttrs(attrs), h.out}
}

func (h flushingHandler) WithGroup(name string) slog.Handler {
	return flushingHandler{h.Handler.WithGroup(name), h.out}
}
