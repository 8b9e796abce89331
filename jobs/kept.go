package jobs

import (
	"context"
	"errors"
	"fmt"

	"github.com/formq/formq/submission"
	"github.com/formq/formq/uploads"
	"github.com/hibiken/asynq"
)

// RecordHeader looks up stored records; *uploads.Store is the
// implementation.
type RecordHeader interface {
	Head(ctx context.Context, key string) (uploads.Object, error)
}

// SubmissionKept tells the janitor whether a submission's files must
// stay: its record is in S3, or its task is still in a queue (queued,
// scheduled, retrying, running or archived; the worker writes the record
// only when it runs the task).
func SubmissionKept(records RecordHeader, insp *asynq.Inspector) func(context.Context, string, string) (bool, error) {
	return func(ctx context.Context, action, sub string) (bool, error) {
		_, err := records.Head(ctx, submission.RecordKey(action, sub))
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, uploads.ErrNotFound) {
			return false, err
		}
		for _, q := range submission.AllQueues {
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
