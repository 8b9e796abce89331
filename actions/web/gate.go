package web

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/formq/formq/actions"
	"github.com/labstack/echo/v4"
)

// RateLimiter decides whether a client may submit to an action now.
// *redisstate.RateLimiter is the implementation.
type RateLimiter interface {
	// Allow returns 0 when allowed, else how long to wait.
	Allow(ctx context.Context, action, client string, l actions.RateLimit) (time.Duration, error)
}

// GateConfig says who may post to the actions and upload endpoints.
type GateConfig struct {
	// AllowedOrigins may post cross-site to every action; StrictOrigins
	// refuses posts without any origin information.
	AllowedOrigins []string
	StrictOrigins  bool
	// OriginsSetting names the setting that holds AllowedOrigins, for the
	// messages that tell a developer or an operator how to allow an
	// origin.
	OriginsSetting string
	// Health says whether Redis and S3 answered their last background
	// probe; while it returns an error, posts are refused with 503 before
	// their first call to either. Nil refuses nothing.
	Health func() error
}

// Gate runs the checks that come before any byte of a post's body is
// read: the health of Redis and S3, the origin of the request, the
// client's rate limit and, for actions with auth, the user's token. The
// submit and upload endpoints share one.
type Gate struct {
	cfg     GateConfig
	limiter RateLimiter
	auth    *Authenticator
	metrics *Metrics
	log     *slog.Logger

	mu     sync.Mutex
	guards map[string]*OriginGuard
}

// NewGate builds the gate. A nil limiter turns rate limits off; a nil
// authenticator refuses actions with auth; nil metrics record nothing.
func NewGate(cfg GateConfig, limiter RateLimiter, auth *Authenticator, m *Metrics, log *slog.Logger) *Gate {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Gate{cfg: cfg, limiter: limiter, auth: auth, metrics: m, log: log, guards: map[string]*OriginGuard{}}
}

// Metrics are the series the gate counts refusals in; nil records nothing.
func (g *Gate) Metrics() *Metrics { return g.metrics }

// Guard returns the action's origin guard, built on first use.
func (g *Gate) Guard(a *actions.Action) (*OriginGuard, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if og, ok := g.guards[a.Name]; ok {
		return og, nil
	}
	og, err := NewOriginGuard(g.cfg.AllowedOrigins, a.Origins, g.cfg.StrictOrigins || a.StrictOrigin, g.cfg.OriginsSetting)
	if err != nil {
		return nil, ErrInternal.With(err)
	}
	g.guards[a.Name] = og
	return og, nil
}

// Admit runs the checks that come before any byte of a body is read: the
// health of Redis and S3, the origin of the request and the client's rate
// limit.
func (g *Gate) Admit(c echo.Context, a *actions.Action) error {
	if g.cfg.Health != nil {
		if err := g.cfg.Health(); err != nil {
			// The outage was logged once when it began; each refusal
			// is counted, not logged.
			g.metrics.ObserveRejection(a.Name, RejectDependencyDown)
			e := ErrUnavailable.With(err)
			e.Quiet = true
			return e
		}
	}
	guard, err := g.Guard(a)
	if err != nil {
		return err
	}
	if err := guard.Check(c.Request(), a.Name); err != nil {
		g.log.WarnContext(c.Request().Context(), "cross-origin post refused",
			"origin", c.Request().Header.Get("Origin"), "action", a.Name,
			"allow_with", guard.setting+" or the action's origins")
		return err
	}
	return g.rateLimit(c.Request().Context(), a, c.RealIP())
}

// rateLimit applies the action's rate_limit to the client.
func (g *Gate) rateLimit(ctx context.Context, a *actions.Action, client string) error {
	if a.RateLimit == nil || g.limiter == nil {
		return nil
	}
	wait, err := g.limiter.Allow(ctx, a.Name, client, *a.RateLimit)
	if err != nil {
		return ErrUnavailable.With(err)
	}
	if wait > 0 {
		e := ErrRateLimited.With(nil, a.Say(actions.MessageRateLimited, ErrRateLimited.Message))
		e.RetryAfter = wait
		return e
	}
	return nil
}

// Authenticate applies the action's auth option to the request: the
// verified subject, "" for an anonymous sender of an optional action.
func (g *Gate) Authenticate(a *actions.Action, r *http.Request) (string, error) {
	if a.Auth == "" {
		return "", nil
	}
	if g.auth == nil {
		return "", ErrInternal.With(errors.New("action requires auth but no authenticator is configured"))
	}
	sub, err := g.auth.Subject(r)
	switch {
	case err == nil:
		return sub, nil
	case errors.Is(err, ErrNoCredentials) && a.Auth == "optional":
		return "", nil
	case errors.Is(err, ErrNoCredentials):
		return "", ErrUnauthenticated.With(err)
	default:
		return "", ErrUnauthenticated.With(err, "Your sign-in is invalid or expired; sign in again.")
	}
}

// HasAuth reports whether the gate can verify users, for the start-up
// check of actions and profiles with auth.
func (g *Gate) HasAuth() bool { return g.auth != nil }
