package redisstate

import (
	"context"
	"crypto/rand"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/formq/formq/internal/lifecycle"
	"github.com/formq/formq/jobs"
	"github.com/formq/formq/submission"
	"github.com/redis/go-redis/v9"
)

// StreamCounts counts the event streams each client holds open on every
// API process, so that a cap per client (FORMQ_STREAMS_PER_CLIENT) holds
// across the replicas rather than on each. Every process keeps its own
// counts in a hash (submission.StreamCountsKey) of keyed digests of the
// client addresses, which lives while the process renews it: the streams
// of a process that crashed stop counting within streamsTTL. A stream is
// admitted while the counts of every live process add up to less than
// the cap.
type StreamCounts struct {
	rdb      redis.UniversalClient
	salt     *jobs.Salt
	instance string // this process, among the live ones
	key      string // this process's counts
	held     atomic.Int64
	loop     lifecycle.Loop
}

// streamsTTL is how long a process's counts outlive its last renewal;
// it renews them every streamsTTL/3 while it holds streams.
const streamsTTL = 30 * time.Second

// acquireStream counts one more stream of a client (ARGV[1]) on this
// process unless the processes' counts reach the cap (ARGV[2]). KEYS[1]
// holds the live processes, KEYS[2] this one's counts, the others the
// counts of the other live processes.
var acquireStream = redis.NewScript(`
local n = 0
for i = 2, #KEYS do n = n + tonumber(redis.call('HGET', KEYS[i], ARGV[1]) or '0') end
if n >= tonumber(ARGV[2]) then return 0 end
redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
redis.call('PEXPIRE', KEYS[2], ARGV[4])
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[5])
return 1`)

// releaseStream counts one stream less; a client at none is removed.
var releaseStream = redis.NewScript(`
if redis.call('HINCRBY', KEYS[1], ARGV[1], -1) <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
return 0`)

// NewStreamCounts builds the counts of one API process on a Redis client.
func NewStreamCounts(rdb redis.UniversalClient) *StreamCounts {
	instance := rand.Text()
	return &StreamCounts{rdb: rdb, salt: jobs.NewSalt(rdb), instance: instance, key: submission.StreamCountsKey(instance)}
}

// Acquire counts one more open stream of client, unless the client holds
// max streams already on all the processes together: then ok is false.
// release counts it back; call it once the stream ends.
func (s *StreamCounts) Acquire(ctx context.Context, client string, max int) (release func(), ok bool, err error) {
	digest, err := s.salt.Digest(ctx, client)
	if err != nil {
		return nil, false, fmt.Errorf("stream counts: %w", err)
	}
	now := time.Now()
	live, err := s.rdb.ZRangeByScore(ctx, submission.StreamProcessesKey, &redis.ZRangeBy{
		Min: strconv.FormatInt(now.Add(-streamsTTL).UnixMilli(), 10), Max: "+inf",
	}).Result()
	if err != nil {
		return nil, false, fmt.Errorf("stream counts: %w", err)
	}
	keys := []string{submission.StreamProcessesKey, s.key}
	for _, p := range live {
		if p != s.instance {
			keys = append(keys, submission.StreamCountsKey(p))
		}
	}
	n, err := acquireStream.Run(ctx, s.rdb, keys, digest, max, now.UnixMilli(), streamsTTL.Milliseconds(), s.instance).Int()
	if err != nil {
		return nil, false, fmt.Errorf("stream counts: %w", err)
	}
	if n == 0 {
		return nil, false, nil
	}
	s.held.Add(1)
	var once sync.Once
	return func() {
		once.Do(func() {
			s.held.Add(-1)
			// The request has ended: its context may be done already.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = releaseStream.Run(ctx, s.rdb, []string{s.key}, digest).Err()
		})
	}, true, nil
}

// Run renews this process's counts while it holds streams, until ctx
// ends or Close is called; then it removes them (the process's streams
// end with it).
func (s *StreamCounts) Run(ctx context.Context) error { return s.loop.Run(ctx, s.renew) }

// Close stops Run and waits for it.
func (s *StreamCounts) Close() error { return s.loop.Close() }

func (s *StreamCounts) renew(ctx context.Context) {
	tick := time.NewTicker(streamsTTL / 3)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			_, _ = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Del(ctx, s.key)
				p.ZRem(ctx, submission.StreamProcessesKey, s.instance)
				return nil
			})
			return
		case now := <-tick.C:
			if s.held.Load() <= 0 {
				continue
			}
			_, _ = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.ZAdd(ctx, submission.StreamProcessesKey, redis.Z{Score: float64(now.UnixMilli()), Member: s.instance})
				p.ZRemRangeByScore(ctx, submission.StreamProcessesKey, "-inf", strconv.FormatInt(now.Add(-streamsTTL).UnixMilli(), 10))
				p.PExpire(ctx, s.key, streamsTTL)
				return nil
			})
		}
	}
}
