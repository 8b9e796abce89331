package telemetry

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"sync"

	"go.opentelemetry.io/otel/trace"
)

// Log attribute keys that tie a log line to a request, a submission and a
// trace. Dashboards and log queries match on them.
const (
	KeyRequestID  = "request_id"
	KeySubmission = "submission"
	KeyAction     = "action"
	KeyTraceID    = "trace_id"
	KeySpanID     = "span_id"
)

type attrsKey struct{}

// attrBag holds the attributes of one scope (a request, a task). It is
// shared by pointer, so attributes added deep inside a handler (the
// submission id, known only once the body is read) reach the lines that
// middleware and the error handler write afterwards.
type attrBag struct {
	mu    sync.Mutex
	attrs []slog.Attr
}

func (b *attrBag) snapshot() []slog.Attr {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.attrs)
}

func (b *attrBag) add(attrs []slog.Attr) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, a := range attrs {
		i := slices.IndexFunc(b.attrs, func(x slog.Attr) bool { return x.Key == a.Key })
		if i >= 0 {
			b.attrs[i] = a
		} else {
			b.attrs = append(b.attrs, a)
		}
	}
}

// WithLogAttrs starts a log scope: every line logged with the returned
// context (or one derived from it) carries attrs and those of the scopes
// above it.
func WithLogAttrs(ctx context.Context, attrs ...slog.Attr) context.Context {
	b := &attrBag{}
	if parent, ok := ctx.Value(attrsKey{}).(*attrBag); ok {
		b.attrs = parent.snapshot()
	}
	b.add(attrs)
	return context.WithValue(ctx, attrsKey{}, b)
}

// AddLogAttrs adds attrs to the innermost log scope of ctx, so that they
// also show on lines logged later by code holding an outer copy of the
// same context (middleware, the error handler). It reports false when ctx
// has no scope; then nothing is added.
func AddLogAttrs(ctx context.Context, attrs ...slog.Attr) bool {
	b, ok := ctx.Value(attrsKey{}).(*attrBag)
	if !ok {
		return false
	}
	b.add(attrs)
	return true
}

// LogAttrs returns the attributes of the log scope of ctx.
func LogAttrs(ctx context.Context) []slog.Attr {
	if b, ok := ctx.Value(attrsKey{}).(*attrBag); ok {
		return b.snapshot()
	}
	return nil
}

// ContextHandler adds the attributes of the context's log scope and its
// trace and span ids to every record. An attribute the record or the
// logger already has (same key at the top level) is not repeated.
type ContextHandler struct {
	inner slog.Handler
	keys  []string // top-level keys added with WithAttrs
	group bool     // a group is open: attrs of ours would land inside it
}

var _ slog.Handler = (*ContextHandler)(nil)

// NewContextHandler wraps inner.
func NewContextHandler(inner slog.Handler) *ContextHandler {
	return &ContextHandler{inner: inner}
}

// Enabled reports whether inner logs at level.
func (h *ContextHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.inner.Enabled(ctx, level)
}

// Handle adds the context's attributes and hands the record on. It runs
// for every line, so it copies nothing it does not add.
func (h *ContextHandler) Handle(ctx context.Context, r slog.Record) error {
	if !h.group {
		var buf [8]slog.Attr
		extra := buf[:0]
		if b, ok := ctx.Value(attrsKey{}).(*attrBag); ok {
			b.mu.Lock()
			for _, a := range b.attrs {
				if !slices.Contains(h.keys, a.Key) && !recordHas(r, a.Key) {
					extra = append(extra, a)
				}
			}
			b.mu.Unlock()
		}
		if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
			extra = append(extra, slog.String(KeyTraceID, sc.TraceID().String()), slog.String(KeySpanID, sc.SpanID().String()))
		}
		r.AddAttrs(extra...)
	}
	return h.inner.Handle(ctx, r)
}

// recordHas reports whether the record has a top-level attribute key.
func recordHas(r slog.Record, key string) bool {
	found := false
	r.Attrs(func(a slog.Attr) bool {
		found = a.Key == key
		return !found
	})
	return found
}

// WithAttrs remembers the keys so that Handle does not repeat them.
func (h *ContextHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.inner = h.inner.WithAttrs(attrs)
	if !h.group {
		c.keys = slices.Clone(h.keys)
		for _, a := range attrs {
			c.keys = append(c.keys, a.Key)
		}
	}
	return &c
}

// WithGroup opens a group; context attributes are then left out, since
// they would be nested under the group's name.
func (h *ContextHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.inner = h.inner.WithGroup(name)
	c.group = true
	return &c
}

// NewLogger is formq's logger: JSON lines on w at level, tagged with the
// process name, carrying the context's request, submission and trace ids.
func NewLogger(w io.Writer, level slog.Leveler, process string) *slog.Logger {
	json := slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})
	return slog.New(NewContextHandler(json)).With("process", process)
}
