package web

import (
	"errors"
	"fmt"
	"net/http"
)

// OriginGuard applies net/http.CrossOriginProtection to one action:
// Sec-Fetch-Site first, then Origin against Host, with the action's and
// the deployment's allowed origins trusted. Strict also refuses posts that
// carry neither header (no browser sends such a post; scripts do).
type OriginGuard struct {
	cop     *http.CrossOriginProtection
	strict  bool
	setting string
}

// NewOriginGuard builds the guard of one action (or of the admin routes):
// global are the deployment's allowed origins, named by setting in
// refusals; action the action's own.
func NewOriginGuard(global, action []string, strict bool, setting string) (*OriginGuard, error) {
	cop := http.NewCrossOriginProtection()
	for _, o := range append(append([]string{}, global...), action...) {
		if err := cop.AddTrustedOrigin(o); err != nil {
			return nil, fmt.Errorf("origin %q: %w", o, err)
		}
	}
	if setting == "" {
		setting = "the deployment's allowed origins"
	}
	return &OriginGuard{cop: cop, strict: strict, setting: setting}, nil
}

// Check refuses a cross-site post from an origin not allowed. The message
// names the origin, what it posted to and the settings that allow it, so
// the developer of the page knows what to change.
func (g *OriginGuard) Check(r *http.Request, name string) error {
	if err := g.cop.Check(r); err != nil {
		origin := r.Header.Get("Origin")
		if origin == "" {
			origin = "(the browser sent no Origin header)"
		}
		return ErrForbiddenOrigin.With(err, fmt.Sprintf(
			"Cross-site submissions to this action are not allowed: origin %s may not post to %q. "+
				"Allow it in %s (every action) or in the origins of %q in the actions file.",
			origin, name, g.setting, name))
	}
	if g.strict && r.Header.Get("Sec-Fetch-Site") == "" && r.Header.Get("Origin") == "" {
		return ErrForbiddenOrigin.With(errors.New("strict origins: neither Sec-Fetch-Site nor Origin"),
			"This action only accepts posts from browsers that send Origin or Sec-Fetch-Site.")
	}
	return nil
}
