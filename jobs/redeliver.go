package jobs

// Redelivery: an admin runs a finished submission's webhook steps again
// on purpose. The API reopens those steps in the status (pending, no
// attempts; the delivery log stays) and queues a task limited to them;
// the worker runs them with the same webhook-id as before, so receivers
// can drop what they already have.

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/formq/formq/internal/telemetry"
	"github.com/formq/formq/submission"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// TypeRedeliver is the task type of a redelivery: some steps of a stored
// submission, run again.
const TypeRedeliver = "submission:redeliver"

// Redeliverable reports whether steps of a type post webhooks through
// Deliver and may be run again on purpose: declared webhook steps, the
// revalidation webhook and the Next.js sink.
func Redeliverable(stepType string) bool {
	switch stepType {
	case "webhook", revalidateStep, "next":
		return true
	}
	return false
}

// redelivery is the payload of a redelivery task.
type redelivery struct {
	Submission *submission.Submission `json:"submission"`
	Steps      []int                  `json:"steps"` // indexes in the status's steps, from 0
}

// reopenSteps moves a finished submission back to queued with the given
// steps (ARGV[5:]) pending and their attempts at zero; anything else
// answers its status unchanged ('missing' when it has none).
var reopenSteps = redis.NewScript(`
local st = redis.call('HGET', KEYS[1], 'status')
if not st then return 'missing' end
if st ~= 'completed' and st ~= 'failed' then return st end
redis.call('HSET', KEYS[1], 'status', 'queued', 'updated', ARGV[2])
redis.call('HDEL', KEYS[1], 'error')
for i = 5, #ARGV do
  local f = 's' .. ARGV[i] .. '.'
  redis.call('HSET', KEYS[1], f .. 'state', 'pending', f .. 'attempts', 0)
  redis.call('HDEL', KEYS[1], f .. 'error', f .. 'next', f .. 'note')
end
redis.call('HINCRBY', KEYS[1], 'v', 1)
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 'ok'
`)

// Redeliverer queues redeliveries; it is the API's handler.Redeliverer.
type Redeliverer struct {
	client *asynq.Client
	status *StatusStore
	log    *slog.Logger
}

// NewRedeliverer builds a Redeliverer on the API's asynq client and
// status store.
func NewRedeliverer(c *asynq.Client, status *StatusStore, log *slog.Logger) *Redeliverer {
	return &Redeliverer{client: c, status: status, log: log}
}

// Redeliver queues webhook step number step (from 1, as the status and
// its errors count them) of a stored submission to run again, or every
// webhook-like step when step is 0, and answers the steps (from 1) it
// queued. Errors: submission.ErrNotFound when the submission has no
// status any more, submission.ErrBusy while it is queued or processing,
// submission.ErrNotRedeliverable when the step posts no webhook.
func (e *Redeliverer) Redeliver(ctx context.Context, sub *submission.Submission, step int) ([]int, error) {
	if e.status == nil {
		return nil, fmt.Errorf("jobs: redeliver %s: no status store", sub.ID)
	}
	st, err := e.status.Status(ctx, sub.ID)
	if err != nil {
		return nil, err
	}
	if !st.Done() {
		return nil, submission.ErrBusy
	}
	var steps []int
	for i, s := range st.Steps {
		if (step == 0 || step == i+1) && Redeliverable(s.Type) {
			steps = append(steps, i)
		}
	}
	if len(steps) == 0 {
		if step < 0 || step > len(st.Steps) {
			return nil, fmt.Errorf("%w: the submission has %d steps", submission.ErrNotRedeliverable, len(st.Steps))
		}
		if step > 0 {
			return nil, fmt.Errorf("%w: step %d is a %s step", submission.ErrNotRedeliverable, step, st.Steps[step-1].Type)
		}
		return nil, fmt.Errorf("%w: the submission has no webhook step", submission.ErrNotRedeliverable)
	}
	payload, err := json.Marshal(redelivery{Submission: sub, Steps: steps})
	if err != nil {
		return nil, fmt.Errorf("jobs: encode redelivery of %s: %w", sub.ID, err)
	}
	args := []any{StatusTTL.Milliseconds(), e.status.stamp(), submission.StatusChannel, sub.ID}
	for _, i := range steps {
		args = append(args, i)
	}
	res, err := reopenSteps.Run(ctx, e.status.rdb, []string{submission.StatusKey(sub.ID)}, args...).Text()
	switch {
	case err != nil:
		return nil, fmt.Errorf("jobs: reopen %s: %w", sub.ID, err)
	case res == "missing":
		return nil, submission.ErrNotFound
	case res != "ok":
		return nil, submission.ErrBusy
	}
	queue := sub.Queue
	if queue == "" {
		queue = submission.DefaultQueue
	}
	taskID := sub.ID + "-redeliver-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	t := asynq.NewTaskWithHeaders(TypeRedeliver, payload, telemetry.TaskHeaders(ctx),
		asynq.TaskID(taskID), asynq.Queue(queue), asynq.MaxRetry(MaxRetry),
		asynq.Retention(Retention), asynq.Timeout(Timeout))
	if _, err := e.client.EnqueueContext(ctx, t); err != nil {
		// Put the status back as it was, so the submission is not left
		// queued with no task.
		e.restore(context.WithoutCancel(ctx), st, steps)
		return nil, fmt.Errorf("jobs: enqueue redelivery of %s: %w", sub.ID, err)
	}
	out := make([]int, len(steps))
	for k, i := range steps {
		out[k] = i + 1
	}
	return out, nil
}

// restore writes back the status a reopen changed.
func (e *Redeliverer) restore(ctx context.Context, st *submission.Status, steps []int) {
	fields := []any{"status", st.Status}
	var gone []string
	if st.Error != "" {
		fields = append(fields, "error", st.Error)
	}
	for _, i := range steps {
		s := st.Steps[i]
		fields = append(fields, stepField(i, "state"), s.State, stepField(i, "attempts"), s.Attempts)
		if s.LastError != "" {
			fields = append(fields, stepField(i, "error"), s.LastError)
		} else {
			gone = append(gone, stepField(i, "error"))
		}
	}
	_, err := e.status.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		if len(gone) > 0 {
			p.HDel(ctx, submission.StatusKey(st.ID), gone...)
		}
		e.status.touch(ctx, p, st.ID, fields...)
		return nil
	})
	if err != nil && e.log != nil {
		e.log.WarnContext(ctx, "redelivery not queued and the status could not be put back", "submission", st.ID, "err", err)
	}
}

// processRedelivery runs the steps a redelivery names, and nothing else.
func (d Deps) processRedelivery(ctx context.Context, t *asynq.Task) error {
	var r redelivery
	if err := json.Unmarshal(t.Payload(), &r); err != nil || r.Submission == nil {
		id, _ := asynq.GetTaskID(ctx)
		err = fmt.Errorf("jobs: decode redelivery: %v: %w", err, asynq.SkipRetry)
		d.Log.ErrorContext(ctx, "task failed", "task", id, "final", true, "err", readable(err))
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
		if err := d.Status.finish(ctx, sub.ID, submission.StatusFailed, msg, event); err != nil {
			return err
		}
		log.InfoContext(ctx, "redelivery done; the submission stays failed", "err", msg)
		return nil
	}
	if err := d.Status.finish(ctx, sub.ID, submission.StatusCompleted, "", event); err != nil {
		return err
	}
	log.InfoContext(ctx, "redelivery done; submission completed")
	return nil
}
