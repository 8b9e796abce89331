package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/formq/formq/actions"
	"github.com/hibiken/asynq"
)

// RecordStore keeps submission records; *uploads.Store is the one formq
// uses.
type RecordStore interface {
	PutJSON(ctx context.Context, key string, body []byte) error
}

// Deps are what the task handlers need.
type Deps struct {
	Records   RecordStore
	Publisher Publisher
	Steps     Steps
	Log       *slog.Logger
	Now       func() time.Time
}

// NewMux registers every task handler of formq.
func NewMux(d Deps) *asynq.ServeMux {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Steps == nil {
		d.Steps = Steps{}
	}
	mux := asynq.NewServeMux()
	mux.HandleFunc(TypeSubmission, d.processSubmission)
	return mux
}

// processSubmission stores the record, runs the steps and publishes the
// revalidation event. Every part is idempotent, so a retry after a crash
// repeats nothing visible.
func (d Deps) processSubmission(ctx context.Context, t *asynq.Task) error {
	var sub actions.Submission
	if err := json.Unmarshal(t.Payload(), &sub); err != nil {
		return fmt.Errorf("jobs: decode submission: %v: %w", err, asynq.SkipRetry)
	}
	log := d.Log.With("submission", sub.ID, "action", sub.Action)
	record, err := json.Marshal(&sub)
	if err != nil {
		return fmt.Errorf("jobs: encode record: %v: %w", err, asynq.SkipRetry)
	}
	if err := d.Records.PutJSON(ctx, actions.RecordKey(sub.Action, sub.ID), record); err != nil {
		return fmt.Errorf("jobs: store record: %w", err)
	}
	for _, step := range sub.Steps {
		if err := d.Steps.run(ctx, &sub, step); err != nil {
			log.WarnContext(ctx, "step failed", "step", step.Type, "err", err)
			return fmt.Errorf("jobs: step %s: %w", step.Type, err)
		}
	}
	id, err := d.Publisher.Publish(ctx, Event{
		Type: "revalidate", Action: sub.Action, Submission: sub.ID,
		Paths: sub.Revalidate.Paths, Tags: sub.Revalidate.Tags, At: d.Now().UTC(),
	})
	if err != nil {
		return err
	}
	log.InfoContext(ctx, "submission completed", "event", id)
	return nil
}
