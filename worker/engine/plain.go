package engine

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/formq/formq/jobs"
	"github.com/formq/formq/submission"
)

// A submission without steps needs no status before its end: nothing in
// it can be half done but its record, which is written again whole. Its
// worker stores the record and then, in one round trip, indexes it,
// publishes its event (once) and writes its status completed, so readers
// go from the `queued` derived from the task (version 1) straight to
// `completed` (version 2). A run that finds the submission already ended
// changes nothing.

// processPlain runs a submission without steps (no declared ones, no
// sinks): its record, then jobs.RedisPublisher.CompletePlain.
// handled is false when it cannot (another Publisher than Redis's, a
// record that does not encode); process then takes the usual way.
func (d Deps) processPlain(ctx context.Context, log *slog.Logger, sub *submission.Submission) (handled bool, err error) {
	rp, ok := d.Publisher.(*jobs.RedisPublisher)
	if !ok {
		return false, nil
	}
	record, err := recordJSON(sub)
	if err != nil {
		return false, nil // the usual way records the failure
	}
	if err := d.Records.PutJSON(ctx, submission.RecordKey(sub.Action, sub.ID), record); err != nil {
		return true, fmt.Errorf("jobs: store record: %w", err)
	}
	state, event, ended, err := rp.CompletePlain(ctx, sub, d.event(sub), d.Status, d.Index)
	if err != nil {
		return true, err
	}
	if !ended {
		log.InfoContext(ctx, "submission already finished", "status", state)
		return true, nil
	}
	log.InfoContext(ctx, "submission completed", "event", event)
	return true, nil
}
