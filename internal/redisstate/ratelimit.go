package redisstate

import (
	"context"
	"fmt"
	"time"

	"github.com/formq/formq/actions"
	"github.com/formq/formq/jobs"
	"github.com/formq/formq/submission"
	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
)

// RateLimiter shares limits across API replicas through Redis, with
// the GCRA limiter of go-redis/redis_rate.
// The client's address is in the key only as a keyed digest (see
// jobs.Salt), so the limit's state names no one.
type RateLimiter struct {
	l    *redis_rate.Limiter
	salt *jobs.Salt
}

// NewRateLimiter builds the limiter on a Redis client.
func NewRateLimiter(rdb *redis.Client) *RateLimiter {
	return &RateLimiter{l: redis_rate.NewLimiter(rdb), salt: jobs.NewSalt(rdb)}
}

// Allow returns 0 when the client may submit to the action now, else how
// long to wait.
func (r *RateLimiter) Allow(ctx context.Context, action, client string, l actions.RateLimit) (time.Duration, error) {
	digest, err := r.salt.Digest(ctx, client)
	if err != nil {
		return 0, fmt.Errorf("rate limit: %w", err)
	}
	res, err := r.l.Allow(ctx, submission.RateLimitKey(action, digest), redis_rate.Limit{Rate: l.Limit, Burst: l.Limit, Period: l.Period})
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
