package jobs

import (
	"context"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"
)

// asynq v0.26 gives a dequeued task a 30 s lease that a live worker
// extends every 5 s, and its recoverer runs once a minute, taking back
// only leases that expired at least 30 s ago: a killed worker's task
// waits 60 to 120 s. None of that is configurable. The Recoverer below
// runs every RecoverInterval and puts back tasks whose lease expired more
// than RecoverGrace ago (by Redis's clock), so a killed worker's step runs
// again about 30 to 40 s after the kill. It moves the task exactly as
// asynq's own Requeue does (active -> pending, lease dropped) and relies
// on asynq v0.26's key layout, checked by the two-worker test.
const (
	RecoverInterval = 5 * time.Second
	RecoverGrace    = 5 * time.Second
)

// requeueExpired moves every task of one queue whose lease expired before
// now - grace back to the front of the pending list.
//
// KEYS[1] lease zset, KEYS[2] active list, KEYS[3] pending list
// ARGV[1] grace in seconds, ARGV[2] task key prefix
var requeueExpired = redis.NewScript(`
local now = redis.call('TIME')
local cutoff = tonumber(now[1]) - tonumber(ARGV[1])
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', cutoff, 'LIMIT', 0, 1000)
local moved = 0
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[1], id)
  if redis.call('LREM', KEYS[2], 0, id) > 0 then
    redis.call('RPUSH', KEYS[3], id)
    redis.call('HSET', ARGV[2] .. id, 'state', 'pending',
      'pending_since', tostring(tonumber(now[1]) * 1000000000 + tonumber(now[2]) * 1000))
    moved = moved + 1
  end
end
return moved
`)

// Recoverer puts the tasks of dead workers back in their queues quickly.
// Several workers may run it at once; the script is atomic.
type Recoverer struct {
	rdb    redis.UniversalClient
	queues []string
	log    *slog.Logger
}

// NewRecoverer builds a recoverer for the named asynq queues.
func NewRecoverer(rdb redis.UniversalClient, queues []string, log *slog.Logger) *Recoverer {
	return &Recoverer{rdb: rdb, queues: queues, log: log}
}

// Run recovers every RecoverInterval until ctx ends.
func (r *Recoverer) Run(ctx context.Context) {
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

// Once recovers expired tasks of every queue now and returns how many it
// put back.
func (r *Recoverer) Once(ctx context.Context) int {
	total := 0
	for _, q := range r.queues {
		prefix := "asynq:{" + q + "}:"
		n, err := requeueExpired.Run(ctx, r.rdb,
			[]string{prefix + "lease", prefix + "active", prefix + "pending"},
			int64(RecoverGrace/time.Second), prefix+"t:").Int()
		if err != nil {
			if ctx.Err() == nil {
				r.log.Warn("recoverer: could not requeue expired tasks", "queue", q, "err", err)
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
