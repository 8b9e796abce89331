// Package wire holds the plumbing the API and the worker share when they
// are built from a formq.Config: clients of Redis and S3 checked at
// start, the logger, a metrics registry, listening and serving with a
// graceful shutdown, and the readiness answer.
package wire

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/formq/formq"
	"github.com/formq/formq/internal/buildinfo"
	"github.com/formq/formq/internal/telemetry"
	"github.com/formq/formq/uploads"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"
)

// Logger is the process's JSON logger, tagged with the process name.
func Logger(w io.Writer, cfg formq.Config, process string) *slog.Logger {
	return telemetry.NewLogger(w, cfg.SlogLevel(), process)
}

// Redis connects to FORMQ_REDIS_URL and checks that it answers.
func Redis(ctx context.Context, cfg formq.Config) (*redis.Client, error) {
	opt, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("%w: FORMQ_REDIS_URL: %v", formq.ErrInvalid, err)
	}
	rdb := redis.NewClient(opt)
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		rdb.Close()
		return nil, fmt.Errorf("redis at %s is not reachable: %w", opt.Addr, err)
	}
	return rdb, nil
}

// Store opens the S3 bucket, creating it when FORMQ_S3_CREATE_BUCKET is
// set, and checks that it answers.
func Store(ctx context.Context, cfg formq.Config) (*uploads.Store, error) {
	store, err := uploads.NewStore(ctx, uploads.Config{
		Endpoint: cfg.S3Endpoint, Region: cfg.S3Region, Bucket: cfg.S3Bucket,
		AccessKey: cfg.S3AccessKey, SecretKey: cfg.S3SecretKey,
		PartSize: int64(cfg.UploadPartSize), Memory: int64(cfg.UploadMemory),
	})
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if cfg.S3CreateBucket {
		if err := store.EnsureBucket(sctx); err != nil {
			return nil, err
		}
	}
	if err := store.Ping(sctx); err != nil {
		return nil, fmt.Errorf("S3 bucket %q is not reachable (FORMQ_S3_BUCKET, FORMQ_S3_ENDPOINT): %w", cfg.S3Bucket, err)
	}
	return store, nil
}

// Listen opens addr with a clear message when the port is taken; setting
// names the variable that chose the address.
func Listen(addr, setting string) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on %s (%s): %w; is another process using the port?", addr, setting, err)
	}
	return l, nil
}

// Serve runs srv on l until ctx ends, then shuts it down within timeout.
func Serve(ctx context.Context, srv *http.Server, l net.Listener, timeout time.Duration, log *slog.Logger) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve %s: %w", l.Addr(), err)
	case <-ctx.Done():
	}
	log.Info("shutting down", "addr", l.Addr().String(), "timeout", timeout.String())
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
		return fmt.Errorf("shutdown %s: %w", l.Addr(), err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// MetricsRegistry is one process's Prometheus registry with the Go
// runtime and process series. Each process builds its own, so nothing
// registers globally and tests can run many processes side by side.
func MetricsRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), buildinfo.Collector())
	return reg
}

// ShutdownTracing flushes the spans not yet exported, for a few seconds
// at most, after the process has stopped serving.
func ShutdownTracing(ctx context.Context, t *telemetry.Tracing, log *slog.Logger) {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := t.Shutdown(sctx); err != nil {
		log.Warn("flushing traces", "err", err)
	}
}

// Check is one readiness dependency, such as Redis or S3.
type Check func(ctx context.Context) error

// ReadyTimeout bounds one readiness answer.
const ReadyTimeout = 2 * time.Second

// Ready answers GET /readyz for the API and the worker alike:
// {"ok":true,"checks":{"redis":"ok","s3":"ok"}} with 200 when every
// dependency answers, 503 with the failing ones "unavailable" otherwise.
// The checks run at once, each within ReadyTimeout.
func Ready(checks map[string]Check) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), ReadyTimeout)
		defer cancel()
		var mu sync.Mutex
		var wg sync.WaitGroup
		status := make(map[string]string, len(checks))
		ok := true
		for name, check := range checks {
			wg.Go(func() {
				err := check(ctx)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					status[name], ok = "unavailable", false
				} else {
					status[name] = "ok"
				}
			})
		}
		wg.Wait()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"ok": ok, "checks": status})
	})
}

// Healthz answers GET /healthz: the process is alive.
func Healthz(alive func() error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if alive != nil {
			if err := alive(); err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				fmt.Fprintln(w, `{"ok":false}`)
				return
			}
		}
		fmt.Fprintln(w, `{"ok":true}`)
	})
}
