// Package engine is formq's worker runtime: the asynq task handlers that
// store a submission's record, run its steps and sinks in order with
// their own attempts and backoff, publish its revalidation event and keep
// its status (NewMux), and the parts around them: the long-lived task
// runners, the retention sweep, the task and step metrics and spans, and
// the Redis durability check at start. Package worker builds it from a
// formq.Config; embedders use worker.Worker, not this package, and add
// steps and sinks through jobs/step. What it reads and writes in Redis
// goes through package jobs, which the API shares.
package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/formq/formq/jobs"
	"github.com/formq/formq/jobs/step"
	"github.com/formq/formq/submission"
	"github.com/hibiken/asynq"
)

// RecordStore keeps submission records; *uploads.Store is the one formq
// uses.
type RecordStore interface {
	PutJSON(ctx context.Context, key string, body []byte) error
}

// Deps are what the task handlers need.
type Deps struct {
	Records RecordStore
	// Index lists stored records for the admin inbox; nil keeps no index.
	Index     *jobs.Index
	Publisher jobs.Publisher
	Status    *jobs.StatusStore
	Steps     step.Steps
	// Sinks are told of every published event, each as a step of its
	// own after the declared steps, in this order (the revalidation
	// webhook, CDN purges, app routes).
	Sinks []step.Sink
	// Files keeps a rejected submission's files for the resend; nil
	// keeps none.
	Files FileKeeper
	// Metrics records steps; nil records nothing.
	Metrics *Metrics
	Log     *slog.Logger
	Now     func() time.Time
}

// NewMux registers every task handler of formq.
func NewMux(d Deps) *asynq.ServeMux {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Steps == nil {
		d.Steps = step.Steps{}
	}
	mux := asynq.NewServeMux()
	mux.HandleFunc(jobs.TypeSubmission, d.processSubmission)
	mux.HandleFunc(jobs.TypeRedeliver, d.processRedelivery)
	return mux
}

// plan lists the steps a submission runs: its declared steps, then the
// sinks when they are configured.
func (d Deps) plan(sub *submission.Submission) []submission.Step {
	return append(append([]submission.Step(nil), sub.Steps...), d.eventSteps()...)
}

// processSubmission stores the record, runs the steps not yet completed
// in order, publishes the revalidation event, and keeps the status up to
// date. Every part is idempotent and finished steps are never run again,
// so a retry after a failure or a crash repeats nothing visible.
//
// Every failure is logged here, once, with the submission, the action,
// the task's attempt, the step when a step failed, the error and when the
// task runs again (RetryDelay) or that it will not.
func (d Deps) processSubmission(ctx context.Context, t *asynq.Task) error {
	var sub submission.Submission
	if err := json.Unmarshal(t.Payload(), &sub); err != nil {
		err = fmt.Errorf("jobs: decode submission: %v: %w", err, asynq.SkipRetry)
		id, _ := asynq.GetTaskID(ctx)
		d.Log.ErrorContext(ctx, "task failed", "submission", id, "final", true, "err", step.ErrorText(err))
		return err
	}
	log := d.Log.With("submission", sub.ID, "action", sub.Action)
	return d.logFailure(ctx, log, t, d.process(ctx, log, &sub, nil))
}

// logFailure logs a failed run of a task, once, and returns its error.
func (d Deps) logFailure(ctx context.Context, log *slog.Logger, t *asynq.Task, err error) error {
	if err == nil {
		return nil
	}
	retried, _ := asynq.GetRetryCount(ctx)
	attrs := []any{"attempt", retried + 1}
	var se *StepError
	if errors.As(err, &se) {
		attrs = append(attrs, "step", se.Type, "step_index", se.Index)
		if se.Attempt > 0 {
			attrs = append(attrs, "step_attempt", se.Attempt)
		}
		attrs = append(attrs, "err", step.ErrorText(se.Err))
	} else {
		attrs = append(attrs, "err", step.ErrorText(err))
	}
	if errors.Is(err, asynq.SkipRetry) || lastTry(ctx) {
		log.ErrorContext(ctx, "task failed", append(attrs, "final", true)...)
	} else {
		log.WarnContext(ctx, "task failed", append(attrs, "retry_in", RetryDelay(retried, err, t).Round(time.Millisecond).String())...)
	}
	return err
}

// process is one run of a submission's task. only, when not nil, limits
// the run to those steps of a stored submission (a redelivery): the record
// is not written again and the submission ends as its steps stand.
func (d Deps) process(ctx context.Context, log *slog.Logger, sub *submission.Submission, only map[int]bool) error {
	steps := d.plan(sub)
	if only == nil && sub.Spam != nil && sub.Spam.Verdict == submission.SpamHeld {
		return d.hold(ctx, log, sub, steps)
	}
	if only == nil && len(steps) == 0 && sub.Spam == nil {
		if handled, err := d.processPlain(ctx, log, sub); handled {
			return err
		}
	}
	st, err := d.Status.Begin(ctx, sub, steps)
	if err != nil {
		return err
	}
	if st.Done() {
		log.InfoContext(ctx, "submission already finished", "status", st.Status)
		return nil
	}
	if only == nil {
		if err := d.store(ctx, sub); err != nil {
			return err
		}
	}
	declared := len(sub.Steps)
	for i, decl := range steps[:declared] {
		if (only != nil && !only[i]) || (i < len(st.Steps) && submission.StepFinished(st.Steps[i].State)) {
			continue
		}
		if err := d.runStep(ctx, log, sub, i, decl); err != nil {
			if errors.Is(err, errRejected) {
				return nil // done: the steps after it do not run, no event
			}
			return err
		}
	}
	events := declared < len(steps)
	if only != nil {
		events = false
		for i := range only {
			events = events || (i >= declared && i < len(steps))
		}
		if !events {
			return d.finishRedelivery(ctx, log, sub, "")
		}
	}
	if rp, ok := d.Publisher.(*jobs.RedisPublisher); ok && only == nil && declared == len(steps) {
		// Nothing runs after the event: publish it and complete the
		// submission in one round trip.
		ev := d.event(sub)
		id, err := rp.PublishCompleted(ctx, ev, d.Status)
		if err != nil {
			return err
		}
		log.InfoContext(ctx, "submission completed", "event", id)
		return nil
	}
	// The event goes out before the webhook and sinks that report it;
	// publishing again returns the first event.
	ev, err := d.publish(ctx, sub)
	if err != nil {
		return err
	}
	if events {
		if err := d.runEventSteps(ctx, log, sub, st, declared, steps, *ev, only); err != nil {
			return err
		}
	}
	if only != nil {
		return d.finishRedelivery(ctx, log, sub, ev.ID)
	}
	if err := d.Status.Finish(ctx, sub.ID, submission.StatusCompleted, "", ev.ID); err != nil {
		return err
	}
	log.InfoContext(ctx, "submission completed", "event", ev.ID)
	return nil
}

// store writes the submission's record and indexes it.
func (d Deps) store(ctx context.Context, sub *submission.Submission) error {
	record, err := recordJSON(sub)
	if err != nil {
		return d.fail(ctx, sub, step.ErrorText(err))
	}
	if err := d.Records.PutJSON(ctx, submission.RecordKey(sub.Action, sub.ID), record); err != nil {
		return fmt.Errorf("jobs: store record: %w", err)
	}
	if d.Index != nil {
		if err := d.Index.NoteVerdict(ctx, sub); err != nil {
			return err
		}
		return d.Index.Add(ctx, sub)
	}
	return nil
}

// publish sends the submission's revalidation event, once: a repeat
// returns the first event's id.
func (d Deps) publish(ctx context.Context, sub *submission.Submission) (*submission.Event, error) {
	ev := d.event(sub)
	id, err := d.Publisher.Publish(ctx, ev)
	if err != nil {
		return nil, err
	}
	ev.ID = id
	return &ev, nil
}

// event is the revalidation event of a submission, without its id.
func (d Deps) event(sub *submission.Submission) submission.Event {
	return submission.Event{
		Type: "revalidate", Action: sub.Action, Submission: sub.ID,
		Paths: sub.Revalidate.Paths, Tags: sub.Revalidate.Tags, At: d.Now().UTC(),
	}
}

// runStep runs one attempt of declared step i and records how it went. A
// failure that cannot be retried (permanent, out of attempts) fails the
// submission.
func (d Deps) runStep(ctx context.Context, log *slog.Logger, sub *submission.Submission, i int, decl submission.Step) error {
	var err error
	if typ, ok := d.Steps[decl.Type]; ok {
		err = d.attemptStep(ctx, log, sub, i, decl, typ)
	} else {
		err = d.failStep(ctx, sub, i, decl, 0, step.Permanent("unknown step type %q", decl.Type))
	}
	var se *StepError
	if errors.As(err, &se) && se.final {
		se.Err = d.fail(ctx, sub, fmt.Sprintf("step %d (%s) failed: %s", i+1, decl.Type, step.ErrorText(se.Err)))
		se.final = false
	}
	return err
}

// attemptStep runs one attempt of step i and records its outcome on the
// step: nil when it completed, a *StepError to retry it, a *StepError
// marked final when it failed for good (recorded failed), or the error of
// a status write.
func (d Deps) attemptStep(ctx context.Context, log *slog.Logger, sub *submission.Submission, i int, decl submission.Step, typ step.Type) error {
	opts, cfg, err := typ.Options(decl.Config)
	if err != nil {
		return d.failStep(ctx, sub, i, decl, 0, step.Permanent("bad configuration: %v", err))
	}
	attempt, err := d.Status.StepStarted(ctx, sub.ID, i)
	if err != nil {
		return err
	}
	if attempt > opts.MaxAttempts {
		// Earlier attempts ended with their worker (a crash, a kill):
		// do not let one poison step take down workers forever.
		return d.failStep(ctx, sub, i, decl, attempt, step.Permanent("gave up after %d attempts", opts.MaxAttempts))
	}
	sctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	start := time.Now()
	logDelivery := func(a submission.DeliveryAttempt) {
		if err := d.Status.LogDelivery(context.WithoutCancel(ctx), sub.ID, i, a); err != nil {
			log.WarnContext(ctx, "could not log a webhook delivery", "step_index", i, "err", err)
		}
	}
	var answered step.Data
	answer := func(data step.Data) { answered = data }
	err = typ.Run(sctx, step.Run{Submission: sub, Config: cfg, Index: i, Attempt: attempt, LogDelivery: logDelivery, Answer: answer})
	timedOut := errors.Is(sctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil
	cancel()
	err = checkAnswer(err, answered)
	d.Metrics.ObserveStep(decl.Type, time.Since(start), err)
	// Record the outcome even when the worker is shutting down and ctx
	// has ended: the next attempt must see it.
	ctx = context.WithoutCancel(ctx)
	if err == nil {
		if opts.Name != "" {
			return d.Status.StepAnswered(ctx, sub.ID, i, opts.Name, answered)
		}
		return d.Status.StepEnded(ctx, sub.ID, i, submission.StepCompleted, "")
	}
	if rej, ok := step.Rejected(err); ok {
		return d.reject(ctx, log, sub, i, opts.Name, rej)
	}
	if why, ok := step.Skipped(err); ok {
		log.InfoContext(ctx, "step skipped", "step", decl.Type, "step_index", i, "why", why)
		return d.Status.StepSkipped(ctx, sub.ID, i, why)
	}
	if timedOut {
		err = fmt.Errorf("timed out after %s: %w", opts.Timeout, err)
	}
	if errors.Is(err, asynq.SkipRetry) || attempt >= opts.MaxAttempts || lastTry(ctx) {
		if !errors.Is(err, asynq.SkipRetry) {
			err = step.Permanent("%s (after %d attempts)", step.ErrorText(err), attempt)
		}
		return d.failStep(ctx, sub, i, decl, attempt, err)
	}
	delay := backoff(opts, attempt)
	if serr := d.Status.StepRetrying(ctx, sub.ID, i, step.ErrorText(err), d.Now().Add(delay)); serr != nil {
		log.WarnContext(ctx, "could not record step failure", "err", serr)
	}
	return &StepError{Index: i, Type: decl.Type, Attempt: attempt, Delay: delay, Err: err}
}

// failStep records a step's final failure; the error, marked final,
// names the step (attempt 0 when it never started) for the log.
func (d Deps) failStep(ctx context.Context, sub *submission.Submission, i int, decl submission.Step, attempt int, err error) error {
	if serr := d.Status.StepEnded(ctx, sub.ID, i, submission.StepFailed, step.ErrorText(err)); serr != nil {
		return serr
	}
	return &StepError{Index: i, Type: decl.Type, Attempt: attempt, Err: err, final: true}
}

// fail marks the submission failed; the task is not retried.
func (d Deps) fail(ctx context.Context, sub *submission.Submission, msg string) error {
	if err := d.Status.Finish(ctx, sub.ID, submission.StatusFailed, msg, ""); err != nil {
		return err
	}
	return fmt.Errorf("jobs: %s: %w", msg, asynq.SkipRetry)
}

// lastTry reports whether asynq will not retry the task after this run.
func lastTry(ctx context.Context) bool {
	n, ok1 := asynq.GetRetryCount(ctx)
	max, ok2 := asynq.GetMaxRetry(ctx)
	return ok1 && ok2 && n >= max
}

// recordJSON is the submission record, as stored in S3.
func recordJSON(sub *submission.Submission) ([]byte, error) {
	b, err := json.Marshal(sub)
	if err != nil {
		return nil, step.Permanent("encode the submission record: %v", err)
	}
	return b, nil
}
