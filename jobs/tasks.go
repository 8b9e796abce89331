// Package jobs is formq's queue side: the asynq task that carries an
// accepted submission, its constructor and handler, the follow-up steps,
// and the revalidation events published when a submission is done.
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

// Enqueuer queues submissions in asynq and records them queued; it
// is the API's Enqueuer.
type Enqueuer struct {
	client *asynq.Client
	status *StatusStore
	log    *slog.Logger
}

// NewEnqueuer wraps an asynq client; status, when not nil, receives the
// queued status of every submission.
func NewEnqueuer(c *asynq.Client, status *StatusStore, log *slog.Logger) *Enqueuer {
	return &Enqueuer{client: c, status: status, log: log}
}

// Enqueue queues the submission. A submission already queued (same id) is
// not an error: the task is there.
func (e *Enqueuer) Enqueue(ctx context.Context, sub *submission.Submission) error {
	t, err := NewSubmissionTask(ctx, sub)
	if err != nil {
		return err
	}
	if _, err := e.client.EnqueueContext(ctx, t); err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		return fmt.Errorf("jobs: enqueue submission %s: %w", sub.ID, err)
	}
	if e.status == nil {
		return nil
	}
	// Right after the task: the submission is accepted even if this write
	// fails, and the worker writes the status when it starts anyway.
	if err := e.status.Queued(context.WithoutCancel(ctx), sub, sub.Steps); err != nil && e.log != nil {
		e.log.WarnContext(ctx, "submission queued but its status could not be written", "submission", sub.ID, "err", err)
	}
	return nil
}
