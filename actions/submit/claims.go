package handler

import (
	"context"
	"fmt"
	"time"

	"github.com/formq/formq/actions"
	"github.com/formq/formq/submission"
	"github.com/redis/go-redis/v9"
)

// RefClaims makes upload references single-use: the first submission to
// attach a staged upload claims it, and the claim outlives the reference,
// so neither a concurrent submission nor a later one (after the file was
// uploaded again with a presign's fields) has it too.
type RefClaims interface {
	// Claim takes the staged key for holder; false when another
	// submission (or this one, earlier) holds it.
	Claim(ctx context.Context, staged, holder string, ttl time.Duration) (bool, error)
	// Release gives the keys back, those the holder still holds.
	Release(ctx context.Context, holder string, staged ...string) error
}

// RedisRefClaims keeps claims in Redis under formq:refclaim:{id}.
type RedisRefClaims struct{ rdb redis.UniversalClient }

// NewRedisRefClaims builds the Redis-backed claims.
func NewRedisRefClaims(rdb redis.UniversalClient) *RedisRefClaims { return &RedisRefClaims{rdb: rdb} }

var _ RefClaims = (*RedisRefClaims)(nil)

// Claim implements RefClaims.
func (r *RedisRefClaims) Claim(ctx context.Context, staged, holder string, ttl time.Duration) (bool, error) {
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

// Release implements RefClaims.
func (r *RedisRefClaims) Release(ctx context.Context, holder string, staged ...string) error {
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

// claimSlack covers clocks of API processes that differ a little.
const claimSlack = time.Minute

// claimTTL is how long a reference's claim lasts: until the reference
// stops opening. References sealed without an expiry last at most their
// scope's lifetime from now.
func (h *Handler) claimTTL(r uploadRef) time.Duration {
	if r.Expires > 0 {
		if d := time.Unix(r.Expires, 0).Sub(h.now()); d > 0 {
			return d + claimSlack
		}
		return claimSlack
	}
	switch {
	case r.Kept:
		return KeptTTL + claimSlack
	case r.Profile != "":
		if p, ok := h.Profiles[r.Profile]; ok {
			return p.TTL + claimSlack
		}
	}
	return actions.DefaultUploadRefTTL + claimSlack
}

// releaseClaims gives back the staged uploads a submission that is not
// accepted claimed, so the sender can use them again.
func (h *Handler) releaseClaims(ctx context.Context, s *intake) {
	f := s.form
	if h.Claims == nil || len(f.claimed) == 0 {
		return
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := h.Claims.Release(rctx, s.sub.ID, f.claimed...); err != nil {
		h.Log.WarnContext(ctx, "could not release upload reference claims; they expire with the references", "keys", f.claimed, "err", err)
	}
	f.claimed = nil
}
