package formq

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/formq/formq/internal/telemetry"
	"github.com/formq/formq/jobs"
	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Worker tuning: an idle worker looks for new tasks this often.
const taskCheckInterval = 100 * time.Millisecond

// RunWorker runs one worker process of the fleet until ctx ends.
func RunWorker(ctx context.Context, args []string, getenv Getenv, stdout io.Writer) error {
	cfg, err := LoadConfig(getenv)
	if err != nil {
		return err
	}
	log := newLogger(stdout, cfg, "worker")
	log.Info("starting", "config", cfg)

	rdb, err := newRedis(ctx, cfg)
	if err != nil {
		return err
	}
	defer rdb.Close()
	store, err := newStore(ctx, cfg)
	if err != nil {
		return err
	}
	checkRedisDurability(ctx, rdb, log)
	steps, revalidate, err := workerSteps(cfg, getenv, store, log)
	if err != nil {
		return err
	}

	reg := newMetricsRegistry()
	metrics := jobs.NewMetrics(reg)
	tracing, err := telemetry.NewTracing(ctx, cfg.OTelEndpoint, "formq-worker")
	if err != nil {
		return err
	}
	defer shutdownTracing(ctx, tracing, log)
	tracer := tracing.Tracer("formq/jobs")
	queues := map[string]int{"critical": 6, "default": 3, "low": 1}
	reg.MustRegister(jobs.NewQueueCollector(asynq.NewInspectorFromRedisClient(rdb), slices.Sorted(maps.Keys(queues)), 5*time.Second))

	mux := jobs.NewMux(jobs.Deps{
		Records:    store,
		Publisher:  jobs.NewRedisPublisher(rdb, cfg.EventsMaxLen),
		Status:     jobs.NewStatusStore(rdb),
		Steps:      steps.Traced(tracer),
		Revalidate: revalidate,
		Metrics:    metrics,
		Log:        log,
	})
	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{
		Concurrency:              cfg.WorkerConcurrency,
		Queues:                   queues,
		TaskCheckInterval:        taskCheckInterval,
		DelayedTaskCheckInterval: time.Second, // retries wait their step's backoff, not 5 s more
		RetryDelayFunc:           jobs.RetryDelay,
		ShutdownTimeout:          cfg.ShutdownTimeout,
		Logger:                   asynqLogger{log.With("component", "asynq")},
		LogLevel:                 asynq.WarnLevel,
	})
	mux.Use(jobs.Middleware(metrics, tracer))
	if err := srv.Start(mux); err != nil {
		return fmt.Errorf("worker: start: %w", err)
	}
	startJanitor(ctx, cfg, store, rdb, log)
	// asynq reclaims a dead worker's tasks only 60-120 s after the kill;
	// this brings it down to about 40 s (see jobs.Recoverer).
	rctx, stopRecoverer := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRecoverer()
	go jobs.NewRecoverer(rdb, slices.Sorted(maps.Keys(queues)), log).Run(rctx)

	l, err := listen(cfg.WorkerAddr, "FORMQ_WORKER_ADDR")
	if err != nil {
		srv.Shutdown()
		return err
	}
	hm := http.NewServeMux()
	hm.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if err := srv.Ping(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, `{"ok":false}`)
			return
		}
		fmt.Fprintln(w, `{"ok":true}`)
	})
	hm.Handle("GET /readyz", readyz(map[string]func(context.Context) error{
		"redis": func(ctx context.Context) error { return rdb.Ping(ctx).Err() },
		"s3":    store.Ping,
	}))
	hm.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	hsrv := &http.Server{Handler: hm, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 60 * time.Second}
	log.Info("listening", "addr", l.Addr().String(), "url", "http://"+l.Addr().String(), "concurrency", cfg.WorkerConcurrency)

	serveErr := serve(ctx, hsrv, l, 5*time.Second, log)
	// Stop taking tasks; in-flight ones finish or go back to the queue
	// within ShutdownTimeout.
	srv.Shutdown()
	log.Info("stopped")
	if serveErr != nil {
		return fmt.Errorf("worker: %w", serveErr)
	}
	return nil
}

// asynqLogger sends asynq's logs to slog.
type asynqLogger struct{ l *slog.Logger }

func (a asynqLogger) Debug(args ...any) { a.l.Debug(fmt.Sprint(args...)) }
func (a asynqLogger) Info(args ...any)  { a.l.Info(fmt.Sprint(args...)) }
func (a asynqLogger) Warn(args ...any)  { a.l.Warn(fmt.Sprint(args...)) }
func (a asynqLogger) Error(args ...any) { a.l.Error(fmt.Sprint(args...)) }
func (a asynqLogger) Fatal(args ...any) { a.l.Error(fmt.Sprint(args...)) }
