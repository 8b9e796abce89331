package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

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
	Index     *Index
	Publisher Publisher
	Status    *StatusStore
	Steps     Steps
	// Revalidate, when set, is told of every published event (the
	// optional signed revalidation webhook); it runs as a last step.
	Revalidate *Revalidator
	// Sinks are told of every published event, each as a step of its
	// own after the revalidation webhook (CDN purges, app routes).
	Sinks []Sink
	// Metrics records steps; nil records nothing.
	Metrics *Metrics
	Log     *slog.Logger
	Now     func() time.Time
}

// revalidateStep is the type name of the revalidation webhook in a
// submission's status.
const revalidateStep = "revalidate"

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
	mux.HandleFunc(TypeRedeliver, d.processRedelivery)
	return mux
}

// plan lists the steps a submission runs: its declared steps, then the
// revalidation webhook and the sinks when they are configured.
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
		d.Log.ErrorContext(ctx, "task failed", "submission", id, "final", true, "err", readable(err))
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
		attrs = append(attrs, "err", readable(se.Err))
	} else {
		attrs = append(attrs, "err", readable(err))
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
	if only == nil && len(steps) == 0 {
		if handled, err := d.processPlain(ctx, log, sub); handled {
			return err
		}
	}
	st, err := d.Status.begin(ctx, sub, steps)
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
	for i, step := range steps[:declared] {
		if (only != nil && !only[i]) || (i < len(st.Steps) && submission.StepFinished(st.Steps[i].State)) {
			continue
		}
		if err := d.runStep(ctx, log, sub, i, step); err != nil {
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
	if rp, ok := d.Publisher.(*RedisPublisher); ok && only == nil && declared == len(steps) {
		// Nothing runs after the event: publish it and complete the
		// submission in one round trip.
		ev := d.event(sub)
		id, err := rp.publishCompleted(ctx, ev, d.Status)
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
	if err := d.Status.finish(ctx, sub.ID, submission.StatusCompleted, "", ev.ID); err != nil {
		return err
	}
	log.InfoContext(ctx, "submission completed", "event", ev.ID)
	return nil
}

// store writes the submission's record and indexes it.
func (d Deps) store(ctx context.Context, sub *submission.Submission) error {
	record, err := recordJSON(sub)
	if err != nil {
		return d.fail(ctx, sub, readable(err))
	}
	if err := d.Records.PutJSON(ctx, submission.RecordKey(sub.Action, sub.ID), record); err != nil {
		return fmt.Errorf("jobs: store record: %w", err)
	}
	if d.Index != nil {
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
func (d Deps) runStep(ctx context.Context, log *slog.Logger, sub *submission.Submission, i int, step submission.Step) error {
	var err error
	if typ, ok := d.Steps[step.Type]; ok {
		err = d.attemptStep(ctx, log, sub, i, step, typ)
	} else {
		err = d.failStep(ctx, sub, i, step, 0, Permanent("unknown step type %q", step.Type))
	}
	var se *StepError
	if errors.As(err, &se) && se.final {
		se.Err = d.fail(ctx, sub, fmt.Sprintf("step %d (%s) failed: %s", i+1, step.Type, readable(se.Err)))
		se.final = false
	}
	return err
}

// attemptStep runs one attempt of step i and records its outcome on the
// step: nil when it completed, a *StepError to retry it, a *StepError
// marked final when it failed for good (recorded failed), or the error of
// a status write.
func (d Deps) attemptStep(ctx context.Context, log *slog.Logger, sub *submission.Submission, i int, step submission.Step, typ StepType) error {
	opts, cfg, err := typ.options(step.Config)
	if err != nil {
		return d.failStep(ctx, sub, i, step, 0, Permanent("bad configuration: %v", err))
	}
	attempt, err := d.Status.stepStarted(ctx, sub.ID, i)
	if err != nil {
		return err
	}
	if attempt > opts.MaxAttempts {
		// Earlier attempts ended with their worker (a crash, a kill):
		// do not let one poison step take down workers forever.
		return d.failStep(ctx, sub, i, step, attempt, Permanent("gave up after %d attempts", opts.MaxAttempts))
	}
	sctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	start := time.Now()
	logDelivery := func(a submission.DeliveryAttempt) {
		if err := d.Status.logDelivery(context.WithoutCancel(ctx), sub.ID, i, a); err != nil {
			log.WarnContext(ctx, "could not log a webhook delivery", "step_index", i, "err", err)
		}
	}
	err = typ.Run(sctx, StepRun{Submission: sub, Config: cfg, Index: i, Attempt: attempt, LogDelivery: logDelivery})
	timedOut := errors.Is(sctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil
	cancel()
	d.Metrics.ObserveStep(step.Type, time.Since(start), err)
	// Record the outcome even when the worker is shutting down and ctx
	// has ended: the next attempt must see it.
	ctx = context.WithoutCancel(ctx)
	if err == nil {
		return d.Status.stepEnded(ctx, sub.ID, i, submission.StepCompleted, "")
	}
	var skip *skipError
	if errors.As(err, &skip) {
		log.InfoContext(ctx, "step skipped", "step", step.Type, "step_index", i, "why", skip.msg)
		return d.Status.stepEnded(ctx, sub.ID, i, submission.StepSkipped, "", stepField(i, "note"), skip.msg)
	}
	if timedOut {
		err = fmt.Errorf("timed out after %s: %w", opts.Timeout, err)
	}
	if errors.Is(err, asynq.SkipRetry) || attempt >= opts.MaxAttempts || lastTry(ctx) {
		if !errors.Is(err, asynq.SkipRetry) {
			err = Permanent("%s (after %d attempts)", readable(err), attempt)
		}
		return d.failStep(ctx, sub, i, step, attempt, err)
	}
	delay := opts.backoff(attempt)
	if serr := d.Status.stepEnded(ctx, sub.ID, i, submission.StepRetrying, readable(err),
		stepField(i, "next"), strconv.FormatInt(d.Now().Add(delay).UnixMilli(), 10)); serr != nil {
		log.WarnContext(ctx, "could not record step failure", "err", serr)
	}
	return &StepError{Index: i, Type: step.Type, Attempt: attempt, Delay: delay, Err: err}
}

// failStep records a step's final failure; the error, marked final,
// names the step (attempt 0 when it never started) for the log.
func (d Deps) failStep(ctx context.Context, sub *submission.Submission, i int, step submission.Step, attempt int, err error) error {
	if serr := d.Status.stepEnded(ctx, sub.ID, i, submission.StepFailed, readable(err)); serr != nil {
		return serr
	}
	return &StepError{Index: i, Type: step.Type, Attempt: attempt, Err: err, final: true}
}

// fail marks the submission failed; the task is not retried.
func (d Deps) fail(ctx context.Context, sub *submission.Submission, msg string) error {
	if err := d.Status.finish(ctx, sub.ID, submission.StatusFailed, msg, ""); err != nil {
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
