package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/formq/formq/internal/config"
	"github.com/formq/formq/jobs"
	"github.com/hibiken/asynq"
)

// Worker tuning: an idle worker looks for new tasks this often.
const taskCheckInterval = 100 * time.Millisecond

// RunWorker runs one worker process of the fleet until ctx ends.
func RunWorker(ctx context.Context, args []string, getenv Getenv, stdout io.Writer) error {
	cfg, err := config.Load(getenv)
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

	mux := jobs.NewMux(jobs.Deps{
		Records:   store,
		Publisher: jobs.NewRedisPublisher(rdb, cfg.EventsMaxLen),
		Steps:     jobs.Steps{},
		Log:       log,
	})
	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{
		Concurrency:       cfg.WorkerConcurrency,
		Queues:            map[string]int{"critical": 6, "default": 3, "low": 1},
		TaskCheckInterval: taskCheckInterval,
		ShutdownTimeout:   cfg.ShutdownTimeout,
		Logger:            asynqLogger{log.With("component", "asynq")},
		LogLevel:          asynq.WarnLevel,
	})
	if err := srv.Start(mux); err != nil {
		return fmt.Errorf("worker: start: %w", err)
	}

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
