package submit

import (
	"context"
	"time"

	"github.com/formq/formq/actions"
	"github.com/formq/formq/actions/staging"
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

// claimSlack covers clocks of API processes that differ a little.
const claimSlack = time.Minute

// claimTTL is how long a reference's claim lasts: until the reference
// stops opening. References sealed without an expiry last at most their
// scope's lifetime from now.
func (h *Handler) claimTTL(r staging.Ref) time.Duration {
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
		if p, ok := h.cfg.Profiles[r.Profile]; ok {
			return p.TTL + claimSlack
		}
	}
	return actions.DefaultUploadRefTTL + claimSlack
}

// releaseClaims gives back the staged uploads a submission that is not
// accepted claimed, so the sender can use them again.
func (h *Handler) releaseClaims(ctx context.Context, s *intake) {
	f := s.form
	if h.claims == nil || len(f.claimed) == 0 {
		return
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := h.claims.Release(rctx, s.sub.ID, f.claimed...); err != nil {
		h.log.WarnContext(ctx, "could not release upload reference claims; they expire with the references", "keys", f.claimed, "err", err)
	}
	f.claimed = nil
}
