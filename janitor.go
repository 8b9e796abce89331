package formq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/formq/formq/actions"
	"github.com/formq/formq/submission"
	"github.com/formq/formq/uploads"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// startJanitor runs the uploads janitor in the worker process until ctx
// ends; FORMQ_JANITOR_INTERVAL=0 turns it off.
func startJanitor(ctx context.Context, cfg Config, store *uploads.Store, rdb *redis.Client, log *slog.Logger) {
	if cfg.JanitorInterval <= 0 {
		return
	}
	j := &uploads.Janitor{
		Store:     store,
		MinAge:    cfg.JanitorMinAge,
		StagedAge: max(cfg.JanitorMinAge, actions.MaxUploadRefTTL+time.Hour),
		Keep:      submissionKept(store, asynq.NewInspectorFromRedisClient(rdb)),
		Log:       log.With("component", "janitor"),
	}
	host, _ := os.Hostname()
	owner := fmt.Sprintf("%s/%d", host, os.Getpid())
	claim := func(ctx context.Context) bool {
		ok, err := rdb.SetNX(ctx, submission.JanitorLock, owner, cfg.JanitorInterval*9/10).Result()
		return err == nil && ok
	}
	go j.Run(ctx, cfg.JanitorInterval, claim)
}

// submissionKept tells the janitor whether a submission's files must
// stay: its record is in S3, or its task is still in a queue (queued,
// scheduled, retrying, running or archived; the worker writes the record
// only when it runs the task).
func submissionKept(store *uploads.Store, insp *asynq.Inspector) func(context.Context, string, string) (bool, error) {
	return func(ctx context.Context, action, sub string) (bool, error) {
		_, err := store.Head(ctx, submission.RecordKey(action, sub))
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, uploads.ErrNotFound) {
			return false, err
		}
		for _, q := range submission.Queues {
			_, err := insp.GetTaskInfo(q, sub)
			switch {
			case err == nil:
				return true, nil
			case errors.Is(err, asynq.ErrTaskNotFound), errors.Is(err, asynq.ErrQueueNotFound):
			default:
				return false, fmt.Errorf("look up task %s in queue %s: %w", sub, q, err)
			}
		}
		return false, nil
	}
}
