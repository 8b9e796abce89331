package redisstate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/formq/formq/submission"
	"github.com/redis/go-redis/v9"
)

// Idempotency keeps the answers of accepted submissions by idempotency
// key, under formq:idem:{action}:{hash}. Claim is atomic: of any number of
// concurrent requests with one key, exactly one claims it; the others wait
// for and replay its answer.
type Idempotency struct {
	rdb redis.UniversalClient
	// pending is how long a claim lasts before its answer is kept; a
	// crashed holder's claim frees itself after it.
	pending time.Duration
	// wait is how long a repeat waits for the first request's answer.
	wait time.Duration
}

// NewIdempotency builds the store on a Redis client.
func NewIdempotency(rdb redis.UniversalClient) *Idempotency {
	return &Idempotency{rdb: rdb, pending: 2 * time.Minute, wait: 30 * time.Second}
}

const pendingPrefix = "pending:"

// Claim takes the key for holder, or returns the answer already kept for
// it. It waits while another holder's claim is pending; when that takes
// too long, the error matches submission.ErrBusy.
func (r *Idempotency) Claim(ctx context.Context, key, holder string) ([]byte, error) {
	deadline := time.Now().Add(r.wait)
	for {
		ok, err := r.rdb.SetNX(ctx, key, pendingPrefix+holder, r.pending).Result()
		if err != nil {
			return nil, fmt.Errorf("idempotency claim: %w", err)
		}
		if ok {
			return nil, nil
		}
		v, err := r.rdb.Get(ctx, key).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("idempotency read: %w", err)
		}
		if v != "" && !strings.HasPrefix(v, pendingPrefix) {
			return []byte(v), nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("idempotency key in use: %w", submission.ErrBusy)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Holder is the holder of the key's pending claim: "" when the key is
// free or its answer is kept.
func (r *Idempotency) Holder(ctx context.Context, key string) (string, error) {
	v, err := r.rdb.Get(ctx, key).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("idempotency read: %w", err)
	}
	holder, _ := strings.CutPrefix(v, pendingPrefix)
	if holder == v {
		return "", nil
	}
	return holder, nil
}

// Complete keeps the answer for the window.
func (r *Idempotency) Complete(ctx context.Context, key string, answer []byte, window time.Duration) error {
	return r.rdb.Set(ctx, key, answer, window).Err()
}

// Release gives the key back when the holder's submission was refused.
func (r *Idempotency) Release(ctx context.Context, key, holder string) error {
	return releaseScript.Run(ctx, r.rdb, []string{key}, pendingPrefix+holder).Err()
}
