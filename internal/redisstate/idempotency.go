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
// for and replay its answer. A claim is pending ("pending:{holder}", for
// 2 minutes) while its request is read, held ("held:{holder}", for the
// answer's window) from just before its submission is queued, and then
// replaced by the answer.
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

const (
	pendingPrefix = "pending:"
	heldPrefix    = "held:"
)

// claimed reports whether a key's value is a claim rather than an answer.
func claimed(v string) bool {
	return strings.HasPrefix(v, pendingPrefix) || strings.HasPrefix(v, heldPrefix)
}

// Claim takes the key for holder, or returns the answer already kept for
// it. It waits while another holder's claim is pending (up to 30 s) or
// held (up to 2 s); when that takes too long, the error matches
// submission.ErrBusy.
func (r *Idempotency) Claim(ctx context.Context, key, holder string) ([]byte, error) {
	deadline := time.Now().Add(r.wait)
	var heldDeadline time.Time
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
		if v != "" && !claimed(v) {
			return []byte(v), nil
		}
		if strings.HasPrefix(v, heldPrefix) {
			if heldDeadline.IsZero() {
				heldDeadline = time.Now().Add(heldWait)
			}
			if heldDeadline.Before(deadline) {
				deadline = heldDeadline
			}
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

// Holder is the holder of the key's claim, and whether it is held (its
// submission was being queued): "" when the key is free or its answer is
// kept.
func (r *Idempotency) Holder(ctx context.Context, key string) (holder string, held bool, err error) {
	v, err := r.rdb.Get(ctx, key).Result()
	if errors.Is(err, redis.Nil) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("idempotency read: %w", err)
	}
	if h, ok := strings.CutPrefix(v, heldPrefix); ok {
		return h, true, nil
	}
	if h, ok := strings.CutPrefix(v, pendingPrefix); ok {
		return h, false, nil
	}
	return "", false, nil
}

// holdScript makes ARGV[1]'s pending claim held, as ARGV[2], for ARGV[3]
// ms; also a claim that lapsed with nobody taking the key meanwhile.
var holdScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] or v == ARGV[2] or not v then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0`)

// Hold keeps holder's claim for ttl, from just before its submission is
// queued until the answer is kept: when the process dies in between, a
// client that retries finds the claim, and through it the queued
// submission, for that long, not only for a pending claim's 2 minutes.
// false: the claim lapsed (a request read for longer than 2 minutes) and
// another request took the key.
func (r *Idempotency) Hold(ctx context.Context, key, holder string, ttl time.Duration) (bool, error) {
	n, err := holdScript.Run(ctx, r.rdb, []string{key}, pendingPrefix+holder, heldPrefix+holder, ttl.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("idempotency hold: %w", err)
	}
	return n == 1, nil
}

// heldWait is how long Claim waits for the answer of a held claim: it is
// kept within milliseconds of the queueing, so a claim still held after
// it lost its process, and the caller looks for its submission in the
// queue.
const heldWait = 2 * time.Second

// takeoverScript gives a claim held (ARGV[1]) for ARGV[4] ms of at least
// ARGV[5] ms to another holder, pending (ARGV[2] for ARGV[3] ms). How
// long it was held is read off its TTL, by Redis's clock alone.
var takeoverScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if redis.call('PTTL', KEYS[1]) > tonumber(ARGV[4]) - tonumber(ARGV[5]) then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1`)

// heldLongEnough is how long a claim must have been held before another
// request may take it over: holding and queueing are two calls to Redis
// in a row, so a holder still not queued after it never will be.
const heldLongEnough = 10 * time.Second

// Takeover gives the key to holder when it is still held by from, held
// for ttl (the window Hold was given) at least 10 s ago, and from's
// submission never reached the queue (its process died between holding
// the key and queueing: the caller checked); false otherwise.
func (r *Idempotency) Takeover(ctx context.Context, key, from, holder string, ttl time.Duration) (bool, error) {
	n, err := takeoverScript.Run(ctx, r.rdb, []string{key}, heldPrefix+from, pendingPrefix+holder, r.pending.Milliseconds(),
		ttl.Milliseconds(), heldLongEnough.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("idempotency takeover: %w", err)
	}
	return n == 1, nil
}

// Complete keeps the answer for the window.
func (r *Idempotency) Complete(ctx context.Context, key string, answer []byte, window time.Duration) error {
	return r.rdb.Set(ctx, key, answer, window).Err()
}

// Release gives the key back when the holder's submission was refused
// (or could not be queued).
func (r *Idempotency) Release(ctx context.Context, key, holder string) error {
	return releaseScript.Run(ctx, r.rdb, []string{key}, pendingPrefix+holder, heldPrefix+holder).Err()
}
