package actions

import (
	"fmt"
	"slices"
	"time"

	"github.com/formq/formq/internal/seal"
)

// BoundArgs is what a _bound token carries: arguments the server fixed for
// one action (the seed's .bind()), optionally for one subject only.
type BoundArgs struct {
	Action  string         `json:"action"`
	Args    map[string]any `json:"args"`
	Subject string         `json:"subject,omitempty"`
}

// BoundPurpose is the seal purpose of an action's bound-arguments token.
func BoundPurpose(action string) string { return "bound:" + action }

// Sealer seals values into tamper-proof, expiring tokens and opens them;
// formq's is AES-GCM keyed by FORMQ_SECRET. Open fails with an error
// matching ErrTokenExpired for a token past its time.
type Sealer interface {
	Seal(purpose string, v any, ttl time.Duration) (string, error)
	Open(purpose, token string, v any) error
}

// ErrTokenExpired is what Sealer.Open's error matches for an expired token.
var ErrTokenExpired = seal.ErrExpired

// MaxBindTTL caps how long a bound-arguments token may live.
const MaxBindTTL = 366 * 24 * time.Hour

// Bind seals arguments for an action. Every argument the action declares
// in `bound` must be given, and no other.
func Bind(s Sealer, a *Action, args map[string]any, subject string, ttl time.Duration) (string, error) {
	if len(a.Bound) == 0 {
		return "", fmt.Errorf("action %s declares no bound arguments", a.Name)
	}
	for _, name := range a.Bound {
		if _, ok := args[name]; !ok {
			return "", fmt.Errorf("argument %q is missing", name)
		}
	}
	for name := range args {
		if !slices.Contains(a.Bound, name) {
			return "", fmt.Errorf("argument %q is not declared in the action's bound list", name)
		}
	}
	if ttl <= 0 || ttl > MaxBindTTL {
		return "", fmt.Errorf("ttl must be between 1s and %s", MaxBindTTL)
	}
	return s.Seal(BoundPurpose(a.Name), BoundArgs{Action: a.Name, Args: args, Subject: subject}, ttl)
}
