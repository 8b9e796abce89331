package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/formq/formq/jobs/step"
	"github.com/formq/formq/submission"
)

// sinkStep is the step that runs a sink for one event.
func sinkStep(s step.Sink, ev submission.Event) step.Type {
	return step.Type{
		Timeout: s.Timeout, MaxAttempts: s.MaxAttempts, Backoff: s.Backoff,
		Run: func(ctx context.Context, run step.Run) error {
			return s.Purge(step.WithDeliveryLog(ctx, run.LogDelivery), ev, eventKey(run.Submission.ID))
		},
	}
}

// eventKey names a submission's event for receivers, the same on every
// attempt of every sink (webhook-id, Idempotency-Key).
func eventKey(submissionID string) string { return "evt_" + submissionID }

// eventSteps are the steps appended to every submission after its
// declared ones: the sinks, in order.
func (d Deps) eventSteps() []submission.Step {
	var steps []submission.Step
	for _, s := range d.Sinks {
		steps = append(steps, submission.Step{Type: s.Name})
	}
	return steps
}

// eventStepType is the code of event step i (counted from the first one),
// each attempt in a span like the declared steps' (Traced).
func (d Deps) eventStepType(i int, ev submission.Event) step.Type {
	return tracedEventStep(d.Sinks[i].Name, sinkStep(d.Sinks[i], ev))
}

// tracedEventStep wraps every attempt of an event step in a span, a child
// of the task's span made by the tracer that made it (see
// step.StartRequestSpan); the sinks' requests are its children.
func tracedEventStep(name string, t step.Type) step.Type {
	run := t.Run
	t.Run = func(ctx context.Context, r step.Run) error {
		tracer := trace.SpanFromContext(ctx).TracerProvider().Tracer("formq/jobs")
		ctx, span := tracer.Start(ctx, "step "+name, trace.WithAttributes(
			attribute.String("formq.step", name),
			attribute.Int("formq.step.index", r.Index),
			attribute.Int("formq.step.attempt", r.Attempt),
		))
		defer span.End()
		err := run(ctx, r)
		endSpan(span, err)
		return err
	}
	return t
}

// runEventSteps runs every event step not yet finished, side by side, one
// attempt each. Steps still waiting for their backoff are left for a
// later run; only, when not nil, limits the run to those steps (a
// redelivery). When some step will be retried, the error returned asks for
// the task to run again at the earliest step's time; when all are done
// and some failed for good, the submission fails naming them.
func (d Deps) runEventSteps(ctx context.Context, log *slog.Logger, sub *submission.Submission, st *submission.Status, first int, steps []submission.Step, ev submission.Event, only map[int]bool) error {
	due, err := d.Status.RetryTimes(ctx, sub.ID, first, len(steps))
	if err != nil {
		return err
	}
	now := d.Now()
	var (
		mu      sync.Mutex
		wg      sync.WaitGroup
		failed  []string
		infra   []error
		retry   *StepError
		waitMin time.Duration
	)
	later := func(se *StepError) {
		if retry == nil || se.Delay < waitMin {
			retry, waitMin = se, se.Delay
		}
	}
	for i := first; i < len(steps); i++ {
		var prev submission.StepStatus
		if i < len(st.Steps) {
			prev = st.Steps[i]
		}
		switch {
		case only != nil && !only[i]:
			continue
		case submission.StepFinished(prev.State):
			continue
		case prev.State == submission.StepFailed:
			failed = append(failed, fmt.Sprintf("step %d (%s) failed: %s", i+1, steps[i].Type, prev.LastError))
			continue
		case prev.State == submission.StepRetrying && due[i-first].After(now):
			later(&StepError{Index: i, Type: steps[i].Type, Attempt: prev.Attempts, Delay: due[i-first].Sub(now), Err: errors.New(prev.LastError)})
			continue
		}
		typ := d.eventStepType(i-first, ev)
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := d.attemptStep(ctx, log, sub, i, steps[i], typ)
			mu.Lock()
			defer mu.Unlock()
			var se *StepError
			switch {
			case err == nil:
			case errors.As(err, &se) && se.final:
				failed = append(failed, fmt.Sprintf("step %d (%s) failed: %s", i+1, se.Type, step.ErrorText(se.Err)))
			case errors.As(err, &se):
				later(se)
			default:
				infra = append(infra, err)
			}
		}()
	}
	wg.Wait()
	switch {
	case len(infra) > 0:
		return errors.Join(infra...)
	case retry != nil:
		return retry
	case len(failed) > 0:
		msg := strings.Join(failed, "; ")
		if err := d.Status.Finish(ctx, sub.ID, submission.StatusFailed, msg, ev.ID); err != nil {
			return err
		}
		return step.Permanent("%s", msg)
	}
	return nil
}
