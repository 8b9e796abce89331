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
	case "webhook", "revalidate", "next":
		return true
	}
	return false
}

// Redelivery is the payload of a redelivery task.
type Redelivery struct {
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
	payload, err := json.Marshal(Redelivery{Submission: sub, Steps: steps})
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
