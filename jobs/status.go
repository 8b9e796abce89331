package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/formq/formq/submission"
	"github.com/redis/go-redis/v9"
)

// Redis layout of submission status: one hash per submission, kept for
// StatusTTL after its last change.
const (
	// StatusTTL is how long the status of a submission stays readable.
	StatusTTL = 7 * 24 * time.Hour
)

// StatusStore keeps the status of submissions in Redis: written by the
// Enqueuer (queued) and the workers (processing, each step, the end), read
// by the API. Every write also publishes the id on formq:status, so status
// streams hear of the change at once.
type StatusStore struct {
	rdb redis.UniversalClient
	now func() time.Time
}

// NewStatusStore builds a status store on a Redis client.
func NewStatusStore(rdb redis.UniversalClient) *StatusStore {
	return &StatusStore{rdb: rdb, now: time.Now}
}

func stepField(i int, name string) string { return "s" + strconv.Itoa(i) + "." + name }

// createQueued writes a queued status unless the submission has one: a
// worker may already have started it.
var createQueued = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'status', 'queued', 'action', ARGV[2], 'files', ARGV[3], 'steps', ARGV[4], 'updated', ARGV[5], 'v', 1)
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('PUBLISH', ARGV[6], ARGV[7])
return 1
`)

// beginStatus moves a submission to processing unless it already ended,
// and answers the status hash as it is then, so the worker's start is one
// round trip.
//
// Until this first write the status is derived from the queued task as
// version 1 (see Status), so a status written here for the first time
// starts at version 2: a stream that sent the derived one sends this.
var beginStatus = redis.NewScript(`
local st = redis.call('HGET', KEYS[1], 'status')
if st ~= 'completed' and st ~= 'failed' and st ~= 'rejected' then
  if not st then redis.call('HSET', KEYS[1], 'v', 1) end
  redis.call('HSET', KEYS[1], 'status', 'processing', 'action', ARGV[2], 'files', ARGV[3], 'steps', ARGV[4], 'updated', ARGV[5])
  redis.call('HINCRBY', KEYS[1], 'v', 1)
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  redis.call('PUBLISH', ARGV[6], ARGV[7])
end
return redis.call('HGETALL', KEYS[1])
`)

// appendDelivery adds one attempt to a step's delivery log (a JSON array
// in the status hash), keeping the last ARGV[3]; a status that is gone
// (erased) is not brought back.
var appendDelivery = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local raw = redis.call('HGET', KEYS[1], ARGV[1])
local log = {}
if raw then log = cjson.decode(raw) end
table.insert(log, cjson.decode(ARGV[2]))
local max = tonumber(ARGV[3])
while #log > max do table.remove(log, 1) end
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(log))
return #log
`)

// LogDelivery records a delivery attempt of step i. The step's end,
// written right after, moves the version and tells the streams.
func (s *StatusStore) LogDelivery(ctx context.Context, id string, i int, a submission.DeliveryAttempt) error {
	b, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("jobs: encode delivery of %s: %w", id, err)
	}
	err = appendDelivery.Run(ctx, s.rdb, []string{submission.StatusKey(id)}, stepField(i, "log"), b, submission.DeliveryLogSize).Err()
	if err != nil {
		return fmt.Errorf("jobs: log delivery of %s: %w", id, err)
	}
	return nil
}

// Queued records a freshly enqueued submission. The Enqueuer does not
// call it: until a worker writes the status, Status derives it from the
// queued task. It stays for writing a queued status explicitly.
func (s *StatusStore) Queued(ctx context.Context, sub *submission.Submission, steps []submission.Step) error {
	files, types, err := encodeBasics(sub, steps)
	if err != nil {
		return err
	}
	err = createQueued.Run(ctx, s.rdb, []string{submission.StatusKey(sub.ID)},
		StatusTTL.Milliseconds(), sub.Action, files, types, s.stamp(), submission.StatusChannel, sub.ID).Err()
	if err != nil {
		return fmt.Errorf("jobs: write queued status of %s: %w", sub.ID, err)
	}
	return nil
}

// Begin marks a submission processing and returns its status; a final
// status (completed, failed) is returned unchanged.
func (s *StatusStore) Begin(ctx context.Context, sub *submission.Submission, steps []submission.Step) (*submission.Status, error) {
	files, types, err := encodeBasics(sub, steps)
	if err != nil {
		return nil, err
	}
	h, err := beginStatus.Run(ctx, s.rdb, []string{submission.StatusKey(sub.ID)},
		StatusTTL.Milliseconds(), sub.Action, files, types, s.stamp(), submission.StatusChannel, sub.ID).Slice()
	if err != nil {
		return nil, fmt.Errorf("jobs: write status of %s: %w", sub.ID, err)
	}
	return decodeStatus(sub.ID, h)
}

// StepStarted marks step i running and returns its attempt number,
// counting this one.
func (s *StatusStore) StepStarted(ctx context.Context, id string, i int) (int, error) {
	var incr *redis.IntCmd
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		incr = p.HIncrBy(ctx, submission.StatusKey(id), stepField(i, "attempts"), 1)
		s.touch(ctx, p, id, stepField(i, "state"), submission.StepRunning)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("jobs: write step status of %s: %w", id, err)
	}
	return int(incr.Val()), nil
}

// StepEnded records how an attempt of step i ended: state is completed
// or failed; msg is the error for people.
func (s *StatusStore) StepEnded(ctx context.Context, id string, i int, state, msg string) error {
	return s.stepEnded(ctx, id, i, state, msg)
}

// StepSkipped records that step i chose not to act, and why.
func (s *StatusStore) StepSkipped(ctx context.Context, id string, i int, why string) error {
	return s.stepEnded(ctx, id, i, submission.StepSkipped, "", stepField(i, "note"), why)
}

// StepRetrying records a failed attempt of step i that runs again at
// next; msg is the error for people.
func (s *StatusStore) StepRetrying(ctx context.Context, id string, i int, msg string, next time.Time) error {
	return s.stepEnded(ctx, id, i, submission.StepRetrying, msg, stepField(i, "next"), strconv.FormatInt(next.UnixMilli(), 10))
}

// stepEnded writes a step's state, its error and extra field-value pairs.
func (s *StatusStore) stepEnded(ctx context.Context, id string, i int, state, msg string, extra ...any) error {
	fields := append([]any{stepField(i, "state"), state}, extra...)
	if msg != "" {
		fields = append(fields, stepField(i, "error"), msg)
	}
	return s.write(ctx, id, fields...)
}

// completedArgs are the status fields of completeOnce, after its event
// arguments: what finish writes for a completed submission.
func (s *StatusStore) completedArgs(id string) []any {
	return []any{s.stamp(), StatusTTL.Milliseconds(), submission.StatusChannel, id}
}

// Finish records the end of a submission: completed with its event id,
// or failed with why.
func (s *StatusStore) Finish(ctx context.Context, id, status, msg, event string) error {
	fields := []any{"status", status}
	if msg != "" {
		fields = append(fields, "error", msg)
	}
	if event != "" {
		fields = append(fields, "event", event)
	}
	return s.write(ctx, id, fields...)
}

func (s *StatusStore) write(ctx context.Context, id string, fields ...any) error {
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		s.touch(ctx, p, id, fields...)
		return nil
	})
	if err != nil {
		return fmt.Errorf("jobs: write status of %s: %w", id, err)
	}
	return nil
}

// touch sets fields and moves the version, time and expiry along.
func (s *StatusStore) touch(ctx context.Context, p redis.Pipeliner, id string, fields ...any) {
	key := submission.StatusKey(id)
	p.HSet(ctx, key, append(fields, "updated", s.stamp())...)
	p.HIncrBy(ctx, key, "v", 1)
	p.PExpire(ctx, key, StatusTTL)
	p.Publish(ctx, submission.StatusChannel, id)
}

func (s *StatusStore) stamp() string { return strconv.FormatInt(s.now().UnixMilli(), 10) }

// RetryTimes reads when each of the steps first..end-1 may run again
// (zero when it has no time set).
func (s *StatusStore) RetryTimes(ctx context.Context, id string, first, end int) ([]time.Time, error) {
	fields := make([]string, 0, end-first)
	for i := first; i < end; i++ {
		fields = append(fields, stepField(i, "next"))
	}
	out := make([]time.Time, len(fields))
	if len(fields) == 0 {
		return out, nil
	}
	vals, err := s.rdb.HMGet(ctx, submission.StatusKey(id), fields...).Result()
	if err != nil {
		return nil, fmt.Errorf("jobs: read status of %s: %w", id, err)
	}
	for i, v := range vals {
		if str, ok := v.(string); ok {
			if ms, err := strconv.ParseInt(str, 10, 64); err == nil {
				out[i] = time.UnixMilli(ms)
			}
		}
	}
	return out, nil
}

// readStatus answers a submission's status hash, or, while it has none,
// the state and message of its task in the first queue that holds it.
//
// KEYS[1] the status hash, KEYS[2..] the task hash in each queue
var readStatus = redis.NewScript(`
local h = redis.call('HGETALL', KEYS[1])
if #h > 0 then return {'status', h} end
for i = 2, #KEYS do
  local t = redis.call('HMGET', KEYS[i], 'state', 'msg')
  if t[1] and t[2] then return {'task', t[1], t[2]} end
end
return {'none'}
`)

// Status reads the status of a submission; an unknown id gives an error
// matching submission.ErrNotFound. Until a worker writes the status, it
// is derived from the submission's task, read in the same round trip:
// queued, version 1, with the files and declared steps of the task's
// submission. Accepting a submission thus writes only its task.
func (s *StatusStore) Status(ctx context.Context, id string) (*submission.Status, error) {
	keys := make([]string, 0, 1+len(submission.AllQueues))
	keys = append(keys, submission.StatusKey(id))
	for _, q := range submission.AllQueues {
		keys = append(keys, taskKey(q, id))
	}
	res, err := readStatus.Run(ctx, s.rdb, keys).Slice()
	if err != nil {
		return nil, fmt.Errorf("jobs: read status of %s: %w", id, err)
	}
	switch kind, _ := res[0].(string); {
	case kind == "status" && len(res) == 2:
		return decodeStatus(id, res[1])
	case kind == "task" && len(res) == 3:
		state, _ := res[1].(string)
		msg, _ := res[2].(string)
		return queuedFromTask(id, state, msg)
	default:
		return nil, submission.ErrNotFound
	}
}

// decodeStatus reads a status hash answered by readStatus as a flat list
// of fields and values.
func decodeStatus(id string, flat any) (*submission.Status, error) {
	list, _ := flat.([]any)
	h := make(map[string]string, len(list)/2)
	for i := 0; i+1 < len(list); i += 2 {
		k, _ := list[i].(string)
		v, _ := list[i+1].(string)
		h[k] = v
	}
	if h["status"] == "" {
		return nil, submission.ErrNotFound
	}
	st := &submission.Status{
		ID: id, Action: h["action"], Status: h["status"], StatusURL: "/submissions/" + id,
		Error: h["error"], Event: h["event"], Files: []submission.File{}, Steps: []submission.StepStatus{},
	}
	st.Version, _ = strconv.ParseInt(h["v"], 10, 64)
	if ms, err := strconv.ParseInt(h["updated"], 10, 64); err == nil {
		st.UpdatedAt = time.UnixMilli(ms).UTC()
	}
	var types []string
	if err := errors.Join(json.Unmarshal([]byte(h["files"]), &st.Files), json.Unmarshal([]byte(h["steps"]), &types)); err != nil {
		return nil, fmt.Errorf("jobs: decode status of %s: %w", id, err)
	}
	for i, t := range types {
		step := submission.StepStatus{Type: t, State: h[stepField(i, "state")], LastError: h[stepField(i, "error")], Note: h[stepField(i, "note")]}
		step.Attempts, _ = strconv.Atoi(h[stepField(i, "attempts")])
		if raw := h[stepField(i, "log")]; raw != "" {
			if err := json.Unmarshal([]byte(raw), &step.Deliveries); err != nil {
				return nil, fmt.Errorf("jobs: decode delivery log of %s: %w", id, err)
			}
		}
		if step.State == "" {
			step.State = submission.StepPending
		}
		st.Steps = append(st.Steps, step)
	}
	return st, decodeAnswer(st, h)
}

func encodeBasics(sub *submission.Submission, steps []submission.Step) (files, types string, err error) {
	fl := sub.Files
	if fl == nil {
		fl = []submission.File{}
	}
	names := make([]string, len(steps))
	for i, s := range steps {
		names[i] = s.Type
	}
	f, err1 := json.Marshal(fl)
	t, err2 := json.Marshal(names)
	if err := errors.Join(err1, err2); err != nil {
		return "", "", fmt.Errorf("jobs: encode status of %s: %w", sub.ID, err)
	}
	return string(f), string(t), nil
}

// queuedFromTask is the status of a submission no worker has started
// yet, read from its task: what the queued status written at acceptance
// was. A task that ended without a status (completed or archived, as
// after erasure) is not found.
func queuedFromTask(id, state, msg string) (*submission.Status, error) {
	switch state {
	case "pending", "scheduled", "retry", "active", "aggregating":
	default:
		return nil, submission.ErrNotFound
	}
	payload, err := taskPayload([]byte(msg))
	if err != nil {
		return nil, fmt.Errorf("jobs: read the task of %s: %w", id, err)
	}
	var sub submission.Submission
	if err := json.Unmarshal(payload, &sub); err != nil {
		return nil, fmt.Errorf("jobs: decode the task of %s: %w", id, err)
	}
	st := &submission.Status{
		ID: id, Action: sub.Action, Status: submission.StatusQueued, StatusURL: "/submissions/" + id,
		Files: sub.Files, Steps: make([]submission.StepStatus, len(sub.Steps)),
		UpdatedAt: time.UnixMilli(sub.ReceivedAt.UnixMilli()).UTC(), Version: 1,
	}
	if st.Files == nil {
		st.Files = []submission.File{}
	}
	for i, step := range sub.Steps {
		st.Steps[i] = submission.StepStatus{Type: step.Type, State: submission.StepPending}
	}
	return st, nil
}
