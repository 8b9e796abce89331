package engine

// A step's refusal: the submission ends rejected, its files kept as
// staged uploads so the person can send the form again without choosing
// them again, and nothing after the refusing step runs.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/formq/formq/jobs/step"
	"github.com/formq/formq/submission"
	"github.com/oklog/ulid/v2"
)

// FileKeeper copies a stored file to another key; *uploads.Store is the
// one formq uses.
type FileKeeper interface {
	Copy(ctx context.Context, from string, obj submission.Object) error
}

// maxKeptCopy is the largest file a rejection keeps: one CopyObject moves
// at most 5 GiB.
const maxKeptCopy = 5 << 30

// errRejected ends a run whose submission a step rejected: the task is
// done, nothing is retried.
var errRejected = errors.New("submission rejected")

// reject ends a submission that step i refused with rej: the files are
// copied to staged keys, then the status becomes rejected in one write.
// A failed status write is retried (the task runs again and so does the
// step; copies made by the failed run are staged uploads the janitor
// removes).
func (d Deps) reject(ctx context.Context, log *slog.Logger, sub *submission.Submission, i int, name string, rej *step.Rejection) error {
	staged := d.keepFiles(ctx, log, sub)
	if err := d.Status.Reject(ctx, sub.ID, i, name, rej.Errors, rej.Message, staged); err != nil {
		return err
	}
	log.InfoContext(ctx, "submission rejected", "step_index", i, "fields", len(rej.Errors), "kept", len(staged))
	return errRejected
}

// keepFiles copies the submission's files to fresh staged keys. The
// originals stay with the record (the inbox shows what was refused; the
// record's retention erases them); a file that cannot be copied is
// logged and left out: the person chooses it again.
func (d Deps) keepFiles(ctx context.Context, log *slog.Logger, sub *submission.Submission) []submission.StagedFile {
	if d.Files == nil || len(sub.Files) == 0 {
		return nil
	}
	staged := make([]submission.StagedFile, 0, len(sub.Files))
	for _, f := range sub.Files {
		if f.Size > maxKeptCopy {
			log.WarnContext(ctx, "a file of a rejected submission is too large to keep", "field", f.Field, "size", f.Size)
			continue
		}
		obj := f.Object
		obj.Key = submission.StagedKey(ulid.Make().String())
		if err := d.Files.Copy(ctx, f.Key, obj); err != nil {
			log.WarnContext(ctx, "could not keep a file of a rejected submission", "key", f.Key, "err", err)
			continue
		}
		staged = append(staged, submission.StagedFile{File: submission.File{Field: f.Field, Object: f.Object}, Staged: obj.Key})
	}
	return staged
}

// checkAnswer turns a step's answer formq cannot keep or show into a
// failed attempt (retried like any failure), with why: data over the
// limits, or a refusal without errors or message.
func checkAnswer(err error, data step.Data) error {
	if rej, ok := step.Rejected(err); ok {
		if cerr := rej.Check(); cerr != nil {
			return fmt.Errorf("the step refused the submission in a form formq cannot show: %v", cerr)
		}
		return err
	}
	if err == nil && data != nil {
		if cerr := data.Check(); cerr != nil {
			return fmt.Errorf("the step answered data formq cannot keep: %v", cerr)
		}
	}
	return err
}
