package redisstate

import (
	"context"
	"fmt"
	"time"

	"github.com/formq/formq/submission"
	"github.com/redis/go-redis/v9"
)

// RefClaims makes upload references single-use, with claims in Redis
// under formq:refclaim:{id}.
type RefClaims struct{ rdb redis.UniversalClient }

// NewRefClaims builds the claims on a Redis client.
func NewRefClaims(rdb redis.UniversalClient) *RefClaims { return &RefClaims{rdb: rdb} }

// Claim takes the staged key for holder; false when another submission
// (or this one, earlier) holds it.
func (r *RefClaims) Claim(ctx context.Context, staged, holder string, ttl time.Duration) (bool, error) {
	key, err := refClaimKey(staged)
	if err != nil {
		return false, err
	}
	ok, err := r.rdb.SetNX(ctx, key, holder, ttl).Result()
	if err != nil {
		return false, fmt.Errorf("upload reference claim: %w", err)
	}
	return ok, nil
}

// Release gives the keys back, those the holder still holds.
func (r *RefClaims) Release(ctx context.Context, holder string, staged ...string) error {
	for _, s := range staged {
		key, err := refClaimKey(s)
		if err != nil {
			return err
		}
		if err := releaseScript.Run(ctx, r.rdb, []string{key}, holder).Err(); err != nil {
			return fmt.Errorf("upload reference release: %w", err)
		}
	}
	return nil
}

func refClaimKey(staged string) (string, error) {
	id, ok := submission.ParseStagedKey(staged)
	if !ok {
		// A resumable upload's file: its id is a ULID like staged ids.
		var suffix string
		id, suffix, ok = submission.ParseTusKey(staged)
		ok = ok && suffix == ""
	}
	if !ok {
		return "", fmt.Errorf("upload reference claim: %q is not a staged key", staged)
	}
	return submission.RefClaimKey(id), nil
}
