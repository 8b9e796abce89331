package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/formq/formq/internal/lifecycle"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/encoding/protowire"
)

// This file is the one place formq relies on asynq's internals: its Redis
// key layout (asynq:{queue}:pending, :active, :lease, :t:{id}), pinned to
// the asynq version in go.mod (AsynqVersion). CheckLayout probes it when a
// worker starts, so an upgrade that changed it fails loudly.
//
// asynq v0.26 gives a dequeued task a 30 s lease (LeaseDuration) that a
// live worker extends every 5 s, and its recoverer runs once a minute,
// taking back only leases that expired at least 30 s ago: a killed
// worker's task waits 60 to 120 s. None of that is configurable. The
// Recoverer below looks every RecoverInterval and puts back tasks whose
// lease it has seen unchanged for StaleLease (two missed extensions and
// more), so a killed worker's tasks run again about 7 to 14 s after the
// kill. It judges a lease by whether it moves, on its own monotonic
// clock, never by the time the lease names: that time is the lease
// holder's clock, which may be minutes off Redis's and this worker's (a
// lease compared with Redis's clock made a worker 2 minutes behind lose
// every task it was running). It moves the task exactly as asynq's own
// Requeue does (active -> pending, lease dropped). A worker stalled for
// longer than StaleLease (a frozen host) may see its task run elsewhere
// meanwhile; steps are idempotent and a finished step is never run again.
const (
	AsynqVersion    = "v0.26.0"
	LeaseDuration   = 30 * time.Second
	RecoverInterval = 2 * time.Second
	StaleLease      = 12 * time.Second
)

// requeueStale moves each given task whose lease still has the score the
// recoverer saw back to the front of the pending list; a lease extended
// meanwhile has another score and is left alone.
//
// KEYS[1] lease zset, KEYS[2] active list, KEYS[3] pending list
// ARGV[1] task key prefix, then pairs of task id and the lease score seen
var requeueStale = redis.NewScript(`
local now = redis.call('TIME')
local moved = 0
for i = 2, #ARGV, 2 do
  local id = ARGV[i]
  local score = redis.call('ZSCORE', KEYS[1], id)
  if score and tonumber(score) == tonumber(ARGV[i + 1]) then
    redis.call('ZREM', KEYS[1], id)
    if redis.call('LREM', KEYS[2], 0, id) > 0 then
      redis.call('RPUSH', KEYS[3], id)
      redis.call('HSET', ARGV[1] .. id, 'state', 'pending',
        'pending_since', tostring(tonumber(now[1]) * 1000000000 + tonumber(now[2]) * 1000))
      moved = moved + 1
    end
  end
end
return moved
`)

// ErrLayout means asynq's keys are not where the Recoverer expects them:
// the asynq version changed; update recover.go before running it.
var ErrLayout = errors.New("jobs: asynq's Redis key layout is not the one formq's recoverer was written for (" + AsynqVersion + ")")

// layoutProbeQueue is a queue no worker serves, for CheckLayout.
const layoutProbeQueue = "formq-layout-probe"

// CheckLayout enqueues a probe task with asynq itself and checks that it
// sits where the Recoverer looks (the pending list, the task hash with its
// state), then removes it. Workers call it at start.
func CheckLayout(ctx context.Context, rdb redis.UniversalClient) error {
	client := asynq.NewClientFromRedisClient(rdb)
	insp := asynq.NewInspectorFromRedisClient(rdb)
	id := fmt.Sprintf("probe-%d", time.Now().UnixNano())
	if _, err := client.EnqueueContext(ctx, asynq.NewTask("formq:layout-probe", []byte(id)), asynq.TaskID(id), asynq.Queue(layoutProbeQueue)); err != nil {
		return fmt.Errorf("jobs: probe asynq's key layout: %w", err)
	}
	defer func() {
		_ = insp.DeleteTask(layoutProbeQueue, id)
		_ = insp.DeleteQueue(layoutProbeQueue, true)
	}()
	prefix := "asynq:{" + layoutProbeQueue + "}:"
	pending, err := rdb.LRange(ctx, prefix+"pending", 0, -1).Result()
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrLayout, prefix+"pending", err)
	}
	state, err := rdb.HGet(ctx, prefix+"t:"+id, "state").Result()
	if err != nil || state != "pending" || !slices.Contains(pending, id) {
		return fmt.Errorf("%w: a task asynq queued is not in %s with state pending (state %q, err %v)", ErrLayout, prefix+"pending", state, err)
	}
	// The API reads a queued submission's status out of its task.
	msg, err := rdb.HGet(ctx, taskKey(layoutProbeQueue, id), "msg").Bytes()
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrLayout, taskKey(layoutProbeQueue, id), err)
	}
	if p, err := taskPayload(msg); err != nil || string(p) != id {
		return fmt.Errorf("%w: the payload of a task asynq queued is not field 2 of its msg (err %v)", ErrLayout, err)
	}
	return nil
}

// Recoverer puts the tasks of dead workers back in their queues quickly.
// Several workers may run it at once; the script is atomic. NewRecoverer
// builds it; Run works until its context ends or Close is called.
type Recoverer struct {
	rdb    redis.UniversalClient
	queues []string
	log    *slog.Logger
	loop   lifecycle.Loop
	stale  time.Duration                   // StaleLease; shorter in tests
	seen   map[string]map[string]leaseSeen // queue: task id: its lease as last seen
}

// leaseSeen is a lease's score and when the recoverer first saw it so.
type leaseSeen struct {
	score float64
	since time.Time
}

// NewRecoverer builds a recoverer for the named asynq queues.
func NewRecoverer(rdb redis.UniversalClient, queues []string, log *slog.Logger) *Recoverer {
	return &Recoverer{rdb: rdb, queues: queues, log: log, stale: StaleLease, seen: map[string]map[string]leaseSeen{}}
}

// Run recovers every RecoverInterval until ctx ends or Close is called.
func (r *Recoverer) Run(ctx context.Context) error { return r.loop.Run(ctx, r.recoverEvery) }

// Close stops a Run under way and waits for it.
func (r *Recoverer) Close() error { return r.loop.Close() }

func (r *Recoverer) recoverEvery(ctx context.Context) {
	t := time.NewTicker(RecoverInterval)
	defer t.Stop()
	for {
		r.Once(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Once looks at every queue's leases now, puts back the tasks whose lease
// it has seen unchanged for StaleLease, and returns how many it put back.
// A lease is only judged after it has been watched that long, so a
// recoverer that just started puts nothing back. Several workers' Runs
// share no state: each judges by its own observations.
func (r *Recoverer) Once(ctx context.Context) int {
	total := 0
	for _, q := range r.queues {
		prefix := "asynq:{" + q + "}:"
		n, err := r.requeueStale(ctx, q, prefix)
		if err != nil {
			if ctx.Err() == nil {
				r.log.Warn("recoverer: could not requeue stale tasks", "queue", q, "err", err)
			}
			continue
		}
		if n > 0 {
			r.log.Warn("recoverer: requeued tasks of a worker that stopped without finishing them", "queue", q, "tasks", n)
		}
		total += n
	}
	return total
}

// requeueStale notes the leases of one queue and requeues the stale ones.
func (r *Recoverer) requeueStale(ctx context.Context, q, prefix string) (int, error) {
	leases, err := r.rdb.ZRangeWithScores(ctx, prefix+"lease", 0, -1).Result()
	if err != nil {
		return 0, err
	}
	now := time.Now()
	before, seen := r.seen[q], make(map[string]leaseSeen, len(leases))
	args := []any{prefix + "t:"}
	for _, z := range leases {
		id, _ := z.Member.(string)
		l, ok := before[id]
		if !ok || l.score != z.Score {
			l = leaseSeen{score: z.Score, since: now}
		}
		seen[id] = l
		if now.Sub(l.since) >= r.stale {
			args = append(args, id, z.Score)
		}
	}
	r.seen[q] = seen
	if len(args) == 1 {
		return 0, nil
	}
	return requeueStale.Run(ctx, r.rdb, []string{prefix + "lease", prefix + "active", prefix + "pending"}, args...).Int()
}

// taskKey is the hash asynq keeps a task in.
func taskKey(queue, id string) string { return "asynq:{" + queue + "}:t:" + id }

// taskPayload reads the payload out of a task hash's msg field: asynq's
// TaskMessage, protobuf, payload as field 2.
func taskPayload(msg []byte) ([]byte, error) {
	for len(msg) > 0 {
		num, typ, n := protowire.ConsumeTag(msg)
		if n < 0 {
			return nil, fmt.Errorf("%w: task message: %v", ErrLayout, protowire.ParseError(n))
		}
		msg = msg[n:]
		if num == 2 && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(msg)
			if n < 0 {
				return nil, fmt.Errorf("%w: task payload: %v", ErrLayout, protowire.ParseError(n))
			}
			return v, nil
		}
		n = protowire.ConsumeFieldValue(num, typ, msg)
		if n < 0 {
			return nil, fmt.Errorf("%w: task message: %v", ErrLayout, protowire.ParseError(n))
		}
		msg = msg[n:]
	}
	return nil, nil
}

// withdrawPending deletes a task that no worker has taken yet, exactly as
// asynq's Inspector.DeleteTask does for a pending one (its id out of the
// pending list, its hash gone). It answers "withdrawn", "missing" when
// the task is not there at all, or the task's state when it is no longer
// pending (active, retry, completed, ...: a worker took it), which it
// leaves alone. Unlike DeleteTask it never deletes a completed task.
//
// KEYS[1] task hash, KEYS[2] pending list; ARGV[1] task id
var withdrawPending = redis.NewScript(`
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return 'missing' end
if state ~= 'pending' then return state end
redis.call('LREM', KEYS[2], 0, ARGV[1])
redis.call('DEL', KEYS[1])
return 'withdrawn'
`)

// withdrawTask runs withdrawPending for the task id of queue.
func withdrawTask(ctx context.Context, rdb redis.UniversalClient, queue, id string) (string, error) {
	prefix := "asynq:{" + queue + "}:"
	return withdrawPending.Run(ctx, rdb, []string{prefix + "t:" + id, prefix + "pending"}, id).Text()
}
