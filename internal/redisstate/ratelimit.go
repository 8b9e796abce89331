package handler

import (
	"context"
	"fmt"
	"time"

	"github.com/formq/formq/actions"
	"github.com/formq/formq/submission"
	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
)

// RateLimiter decides whether a client may submit to an action now.
type RateLimiter interface {
	// Allow returns 0 when allowed, else how long to wait.
	Allow(ctx context.Context, action, client string, l actions.RateLimit) (time.Duration, error)
}

// RedisRateLimiter shares limits across API replicas through Redis, with
// the GCRA limiter of go-redis/redis_rate.
type RedisRateLimiter struct{ l *redis_rate.Limiter }

// NewRedisRateLimiter builds the Redis-backed limiter.
func NewRedisRateLimiter(rdb *redis.Client) *RedisRateLimiter {
	return &RedisRateLimiter{l: redis_rate.NewLimiter(rdb)}
}

var _ RateLimiter = (*RedisRateLimiter)(nil)

// Allow implements RateLimiter.
func (r *RedisRateLimiter) Allow(ctx context.Context, action, client string, l actions.RateLimit) (time.Duration, error) {
	res, err := r.l.Allow(ctx, submission.RateLimitKey(action, client), redis_rate.Limit{Rate: l.Limit, Burst: l.Limit, Period: l.Period})
	if err != nil {
		return 0, fmt.Errorf("rate limit: %w", err)
	}
	if res.Allowed > 0 {
		return 0, nil
	}
	if res.RetryAfter < time.Second {
		return time.Second, nil
	}
	return res.RetryAfter, nil
}
