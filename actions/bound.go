package actions

import (
	"errors"
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

func boundPurpose(action string) string { return "bound:" + action }

// MaxBindTTL caps how long a bound-arguments token may live.
const MaxBindTTL = 366 * 24 * time.Hour

// Bind seals arguments for an action. Every argument the action declares
// in `bound` must be given, and no other.
func Bind(s *seal.Sealer, a *Action, args map[string]any, subject string, ttl time.Duration) (string, error) {
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
	return s.Seal(boundPurpose(a.Name), BoundArgs{Action: a.Name, Args: args, Subject: subject}, ttl)
}

// openBound checks a _bound token against the action and the subject.
func openBound(s *seal.Sealer, a *Action, token, subject string) (map[string]any, error) {
	if len(a.Bound) == 0 {
		return nil, nil
	}
	var b BoundArgs
	if err := s.Open(boundPurpose(a.Name), token, &b); err != nil {
		msg := "The form's bound arguments are missing, expired or were changed."
		if errors.Is(err, seal.ErrExpired) {
			msg = "This form has expired; reload it and submit again."
		}
		return nil, ErrInvalidBoundArgs.With(err, msg)
	}
	if b.Action != a.Name {
		return nil, ErrInvalidBoundArgs.With(errors.New("token of another action"))
	}
	if b.Subject != "" && b.Subject != subject {
		return nil, ErrForbidden.With(errors.New("bound token issued to another subject"), "This form was issued to another user.")
	}
	return b.Args, nil
}
