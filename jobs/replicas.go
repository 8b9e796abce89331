package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/formq/formq/submission"
	"github.com/redis/go-redis/v9"
)

// ErrNotReplicated means a submission did not reach the replicas
// FORMQ_REDIS_MIN_REPLICAS asks for in time and was withdrawn: it is not
// accepted, and the client should send it again.
var ErrNotReplicated = errors.New("jobs: the submission did not reach enough Redis replicas in time")

// Replication is the durability an acknowledged submission must have:
// Replicas replicas hold its task, waited for at most Timeout. Zero
// Replicas does not wait.
type Replication struct {
	Replicas int
	Timeout  time.Duration
}

// WithReplication makes Enqueue wait, on rdb (the client asynq enqueues
// with), until r.Replicas replicas have each submission's task.
func (e *Enqueuer) WithReplication(rdb *redis.Client, r Replication) *Enqueuer {
	e.rdb, e.replication = rdb, r
	return e
}

// awaitReplicas returns once the replicas hold sub's task, or withdraws
// the task and returns ErrNotReplicated. A task a worker has already
// taken cannot be withdrawn: it is being processed, so the submission
// counts as accepted (nil).
func (e *Enqueuer) awaitReplicas(ctx context.Context, sub *submission.Submission) error {
	if e.replication.Replicas <= 0 || e.rdb == nil {
		return nil
	}
	// The client leaving must not stop the withdrawal half way.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.replication.Timeout+5*time.Second)
	defer cancel()
	got, err := replicatedTo(ctx, e.rdb, sub.ID, e.replication)
	if err == nil && got >= e.replication.Replicas {
		return nil
	}
	queue := sub.Queue
	if queue == "" {
		queue = submission.DefaultQueue
	}
	state, werr := withdrawTask(ctx, e.rdb, queue, sub.ID)
	switch {
	case werr != nil:
		// Redis itself failed: the task may stay queued and run, but
		// nothing says it is safe, so the client is told to retry.
		return fmt.Errorf("%w: %d of %d replicas (%v); withdrawing the task failed too, it may still run: %v",
			ErrNotReplicated, got, e.replication.Replicas, err, werr)
	case state == "withdrawn" || state == "missing":
		if e.log != nil {
			e.log.WarnContext(ctx, "submission withdrawn: it did not reach FORMQ_REDIS_MIN_REPLICAS replicas in time; answered 503",
				"submission", sub.ID, "replicas", got, "want", e.replication.Replicas, "timeout", e.replication.Timeout.String(), "err", err)
		}
		return fmt.Errorf("%w: %d of %d replicas within %s", ErrNotReplicated, got, e.replication.Replicas, e.replication.Timeout)
	default:
		if e.log != nil {
			e.log.WarnContext(ctx, "submission below FORMQ_REDIS_MIN_REPLICAS replicas but already taken by a worker; accepted",
				"submission", sub.ID, "replicas", got, "want", e.replication.Replicas, "state", state)
		}
		return nil
	}
}

// replicatedTo answers how many replicas hold every write made before it
// was called, waiting up to r.Timeout for r.Replicas of them.
//
// WAIT counts the replicas that acknowledged the writes of its own
// connection: Redis remembers, per client, the replication offset of that
// client's last write, and WAIT waits until replicas acknowledge that
// offset or a greater one. asynq enqueued the task on some connection of
// the shared pool, not necessarily this one. But replication is one
// ordered stream with one offset: a write made on this connection after
// the enqueue returned sits later in that stream than the enqueue, so a
// replica that acknowledged it has the enqueue (and the queued status)
// too. Hence one cheap write of our own, then WAIT, on one connection
// taken from the pool. (Not a pipeline: go-redis reads a pipeline's
// answers within the client's ReadTimeout, not WAIT's own timeout; not
// MULTI, inside which WAIT does not block.)
func replicatedTo(ctx context.Context, rdb *redis.Client, id string, r Replication) (int, error) {
	conn := rdb.Conn()
	defer conn.Close()
	if err := conn.Set(ctx, submission.ReplicatedMark, id, time.Minute).Err(); err != nil {
		return 0, fmt.Errorf("write the replication mark: %w", err)
	}
	n, err := conn.Wait(ctx, r.Replicas, r.Timeout).Result()
	if err != nil {
		return 0, fmt.Errorf("wait for replicas: %w", err)
	}
	return int(n), nil
}
