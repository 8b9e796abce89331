package redisstate

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Replays remembers accepted captcha answers: SET NX with an expiry.
type Replays struct{ rdb redis.UniversalClient }

// NewReplays builds the replay cache on a Redis client.
func NewReplays(rdb redis.UniversalClient) *Replays { return &Replays{rdb: rdb} }

// Claim claims a key once: the first claim within ttl answers true, every
// later one false.
func (r *Replays) Claim(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	ok, err := r.rdb.SetNX(ctx, key, 1, ttl).Result()
	if err != nil {
		return false, fmt.Errorf("captcha replay cache: %w", err)
	}
	return ok, nil
}

// Use counts one use of a key that lives ttl from its first use, and
// answers how many uses it has had, this one included.
func (r *Replays) Use(ctx context.Context, key string, ttl time.Duration) (int64, error) {
	pipe := r.rdb.TxPipeline()
	n := pipe.Incr(ctx, key)
	pipe.ExpireNX(ctx, key, ttl)
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, fmt.Errorf("captcha grant uses: %w", err)
	}
	return n.Val(), nil
}
