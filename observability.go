package formq

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"time"

	"github.com/formq/formq/internal/telemetry"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// newMetricsRegistry is one process's Prometheus registry with the Go
// runtime and process series. Each process builds its own, so nothing
// registers globally and tests can run many processes side by side.
func newMetricsRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// shutdownTracing flushes the spans not yet exported, for a few seconds at
// most, after the process has stopped serving.
func shutdownTracing(ctx context.Context, t *telemetry.Tracing, log *slog.Logger) {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := t.Shutdown(sctx); err != nil {
		log.Warn("flushing traces", "err", err)
	}
}

// readyz answers 200 when every check passes within two seconds, else 503
// naming the failing ones; the worker's readiness probe.
func readyz(checks map[string]func(context.Context) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		failed := map[string]string{}
		for name, check := range checks {
			if err := check(ctx); err != nil {
				failed[name] = "unreachable"
			}
		}
		w.Header().Set("Content-Type", "application/json")
		if len(failed) > 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"ok": len(failed) == 0, "failed": failed})
	})
}
