package engine

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/formq/formq/submission"
)

// hold keeps a submission the spam check held: its record is stored and
// it goes to the Spam folder, its status says spam with every step
// pending; no step runs, no event is published. Released later, it comes
// back as a task of its own (jobs.ReleaseTask) and runs like any other.
func (d Deps) hold(ctx context.Context, log *slog.Logger, sub *submission.Submission, steps []submission.Step) error {
	record, err := recordJSON(sub)
	if err != nil {
		return d.fail(ctx, sub, err.Error())
	}
	if err := d.Records.PutJSON(ctx, submission.RecordKey(sub.Action, sub.ID), record); err != nil {
		return fmt.Errorf("jobs: store record: %w", err)
	}
	if d.Index != nil {
		held, err := d.Index.Hold(ctx, sub)
		if err != nil {
			return err
		}
		if !held {
			log.InfoContext(ctx, "spam already decided by an admin; not held again")
			return nil
		}
	}
	st, err := d.Status.Begin(ctx, sub, steps)
	if err != nil {
		return err
	}
	if st.Done() {
		return nil
	}
	if err := d.Status.Finish(ctx, sub.ID, submission.StatusSpam, "", ""); err != nil {
		return err
	}
	log.InfoContext(ctx, "submission held as spam", "score", sub.Spam.Score)
	return nil
}
