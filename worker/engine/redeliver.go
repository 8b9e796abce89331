package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"

	"github.com/formq/formq/jobs"
	"github.com/formq/formq/jobs/step"
	"github.com/formq/formq/submission"
	"github.com/hibiken/asynq"
)

// processRedelivery runs the steps a redelivery names, and nothing else.
func (d Deps) processRedelivery(ctx context.Context, t *asynq.Task) error {
	var r jobs.Redelivery
	if err := json.Unmarshal(t.Payload(), &r); err != nil || r.Submission == nil {
		id, _ := asynq.GetTaskID(ctx)
		err = fmt.Errorf("jobs: decode redelivery: %v: %w", err, asynq.SkipRetry)
		d.Log.ErrorContext(ctx, "task failed", "task", id, "final", true, "err", step.ErrorText(err))
		return err
	}
	only := make(map[int]bool, len(r.Steps))
	for _, i := range r.Steps {
		only[i] = true
	}
	log := d.Log.With("submission", r.Submission.ID, "action", r.Submission.Action, "redelivery", true)
	return d.logFailure(ctx, log, t, d.process(ctx, log, r.Submission, only))
}

// finishRedelivery ends a redelivery: the submission is completed when
// every step is done, failed otherwise, naming the steps that failed or
// never ran.
func (d Deps) finishRedelivery(ctx context.Context, log *slog.Logger, sub *submission.Submission, event string) error {
	st, err := d.Status.Status(ctx, sub.ID)
	if err != nil {
		return err
	}
	var problems []string
	for i, s := range st.Steps {
		switch {
		case submission.StepFinished(s.State):
		case s.State == submission.StepFailed:
			problems = append(problems, fmt.Sprintf("step %d (%s) failed: %s", i+1, s.Type, s.LastError))
		default:
			problems = append(problems, fmt.Sprintf("step %d (%s) did not run", i+1, s.Type))
		}
	}
	if event == "" {
		event = st.Event
	}
	if len(problems) > 0 {
		msg := strings.Join(problems, "; ")
		if err := d.Status.Finish(ctx, sub.ID, submission.StatusFailed, msg, event); err != nil {
			return err
		}
		log.InfoContext(ctx, "redelivery done; the submission stays failed", "err", msg)
		return nil
	}
	if err := d.Status.Finish(ctx, sub.ID, submission.StatusCompleted, "", event); err != nil {
		return err
	}
	log.InfoContext(ctx, "redelivery done; submission completed")
	return nil
}
