// Package formq runs formq, the form backend, from Go: its HTTP API (forms
// post to it, are validated, their files streamed to S3) and its worker
// (the follow-up steps of accepted submissions, then revalidation
// events). Config holds every setting, read from the environment by
// LoadConfig; RunAPI and RunWorker are what the api and worker commands
// run. The config reading refuses to start on a bad setting, with the
// setting's name.
package formq

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/formq/formq/internal/telemetry"
	"github.com/formq/formq/uploads"
	"github.com/redis/go-redis/v9"
)

// Getenv reads one environment variable; os.Getenv in production.
type Getenv func(string) string

func newLogger(w io.Writer, cfg Config, process string) *slog.Logger {
	return telemetry.NewLogger(w, cfg.SlogLevel(), process)
}

func newRedis(ctx context.Context, cfg Config) (*redis.Client, error) {
	opt, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("%w: FORMQ_REDIS_URL: %v", ErrInvalid, err)
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

func newStore(ctx context.Context, cfg Config) (*uploads.Store, error) {
	store, err := uploads.NewStore(ctx, uploads.Config{
		Endpoint: cfg.S3Endpoint, Region: cfg.S3Region, Bucket: cfg.S3Bucket,
		AccessKey: cfg.S3AccessKey, SecretKey: cfg.S3SecretKey,
		PartSize: cfg.UploadPartSize, Memory: cfg.UploadMemory,
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

// listen opens addr with a clear message when the port is taken.
func listen(addr, name string) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on %s (%s): %w; is another process using the port?", addr, name, err)
	}
	return l, nil
}

// serve runs srv on l until ctx ends, then shuts it down within timeout.
func serve(ctx context.Context, srv *http.Server, l net.Listener, timeout time.Duration, log *slog.Logger) error {
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
