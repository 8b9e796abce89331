package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/formq/formq/internal/telemetry"
	"github.com/formq/formq/submission"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// TypeSubmission is the task type of an accepted submission.
const TypeSubmission = "submission:process"

// Task defaults. Steps have their own attempt limits (max_attempts);
// MaxRetry only bounds the task's runs across all its steps.
const (
	MaxRetry  = 100
	Retention = 24 * time.Hour // finished tasks are kept; a resubmitted id conflicts meanwhile
	Timeout   = 10 * time.Minute
)

// NewSubmissionTask builds the task of a submission. The submission id is
// the task id, so a submission is queued at most once. The task's headers
// carry ctx's trace context and request id to the worker.
func NewSubmissionTask(ctx context.Context, sub *submission.Submission) (*asynq.Task, error) {
	payload, err := json.Marshal(sub)
	if err != nil {
		return nil, fmt.Errorf("jobs: encode submission %s: %w", sub.ID, err)
	}
	queue := sub.Queue
	if queue == "" {
		queue = submission.DefaultQueue
	}
	return asynq.NewTaskWithHeaders(TypeSubmission, payload, telemetry.TaskHeaders(ctx),
		asynq.TaskID(sub.ID), asynq.Queue(queue), asynq.MaxRetry(MaxRetry),
		asynq.Retention(Retention), asynq.Timeout(Timeout),
	), nil
}

// Enqueuer queues submissions in asynq; it is the API's Enqueuer.
// Accepting a submission writes its task and nothing else: until a worker
// writes the submission's status, StatusStore.Status derives `queued` from
// the task, so a submission without files costs one Redis round trip.
type Enqueuer struct {
	client *asynq.Client
	log    *slog.Logger
	// rdb and replication: see WithReplication.
	rdb         *redis.Client
	replication Replication
	group       *groupCommit // see WithGroupCommit
}

// NewEnqueuer wraps an asynq client. status is not written at enqueue
// any more (see Enqueuer) and may be nil; log receives what goes wrong
// after the task is queued.
func NewEnqueuer(c *asynq.Client, status *StatusStore, log *slog.Logger) *Enqueuer {
	return &Enqueuer{client: c, log: log}
}

// WithGroupCommit makes concurrent Enqueue calls share Redis round trips:
// rdb, the client asynq enqueues with, sends the enqueues that arrive
// while one is on the wire together as the next pipeline. Each submission
// still gets its own reply. Call it once per client.
func (e *Enqueuer) WithGroupCommit(rdb *redis.Client) *Enqueuer {
	e.group = newGroupCommit(rdb)
	return e
}

// Enqueue queues the submission. A submission already queued (same id) is
// not an error: the task is there.
func (e *Enqueuer) Enqueue(ctx context.Context, sub *submission.Submission) error {
	t, err := NewSubmissionTask(ctx, sub)
	if err != nil {
		return err
	}
	qctx := ctx
	if e.group != nil {
		qctx = withGroupCommit(ctx)
	}
	if _, err := e.client.EnqueueContext(qctx, t); err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		return fmt.Errorf("jobs: enqueue submission %s: %w", sub.ID, err)
	}
	// FORMQ_REDIS_MIN_REPLICAS: acknowledged only once replicas have it.
	return e.awaitReplicas(ctx, sub)
}
