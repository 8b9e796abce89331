package app

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/formq/formq/actions"
	"github.com/formq/formq/internal/config"
	"github.com/formq/formq/internal/seal"
	"github.com/formq/formq/jobs"
	"github.com/formq/formq/uploads"
	"github.com/hibiken/asynq"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
)

// RunAPI serves formq's HTTP API until ctx ends.
func RunAPI(ctx context.Context, args []string, getenv Getenv, stdout io.Writer) error {
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	log := newLogger(stdout, cfg, "api")
	log.Info("starting", "config", cfg)

	list, err := actions.LoadFile(cfg.Actions)
	if err != nil {
		return err
	}
	registry := actions.NewRegistry(list...)
	pages, err := actions.NewPages()
	if err != nil {
		return err
	}

	sealer, err := seal.New(cfg.Secret)
	if err != nil {
		return err
	}
	rdb, err := newRedis(ctx, cfg)
	if err != nil {
		return err
	}
	defer rdb.Close()
	store, err := newStore(ctx, cfg)
	if err != nil {
		return err
	}
	queue := asynq.NewClientFromRedisClient(rdb)

	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = actions.ErrorHandler(log, pages)
	e.Use(middleware.RequestID())
	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{DisableErrorHandler: false}))
	h := &actions.Handler{
		Actions: registry, Files: store, Queue: jobs.NewEnqueuer(queue), Pages: pages, Log: log, Sealer: sealer,
		ReaderLimits: uploads.DefaultReaderLimits,
	}
	actions.Routes(e, h, map[string]actions.Check{
		"redis": func(ctx context.Context) error { return rdb.Ping(ctx).Err() },
		"s3":    store.Ping,
	})

	l, err := listen(cfg.Addr, "FORMQ_ADDR")
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           e,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
	log.Info("listening", "addr", l.Addr().String(), "url", "http://"+l.Addr().String(), "actions", registry.Names())
	if err := serve(ctx, srv, l, cfg.ShutdownTimeout, log); err != nil {
		return fmt.Errorf("api: %w", err)
	}
	log.Info("stopped")
	return nil
}
