package handler

import (
	"errors"
	"fmt"
	"net/http"
)

// originGuard applies net/http.CrossOriginProtection to one action:
// Sec-Fetch-Site first, then Origin against Host, with the action's and
// the deployment's allowed origins trusted. Strict also refuses posts that
// carry neither header (no browser sends such a post; scripts do).
type originGuard struct {
	cop    *http.CrossOriginProtection
	strict bool
}

func newOriginGuard(global, action []string, strict bool) (*originGuard, error) {
	cop := http.NewCrossOriginProtection()
	for _, o := range append(append([]string{}, global...), action...) {
		if err := cop.AddTrustedOrigin(o); err != nil {
			return nil, fmt.Errorf("origin %q: %w", o, err)
		}
	}
	return &originGuard{cop: cop, strict: strict}, nil
}

func (g *originGuard) check(r *http.Request) error {
	if err := g.cop.Check(r); err != nil {
		return ErrForbiddenOrigin.With(err)
	}
	if g.strict && r.Header.Get("Sec-Fetch-Site") == "" && r.Header.Get("Origin") == "" {
		return ErrForbiddenOrigin.With(errors.New("strict origins: neither Sec-Fetch-Site nor Origin"),
			"This action only accepts posts from browsers that send Origin or Sec-Fetch-Site.")
	}
	return nil
}
