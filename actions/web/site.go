package web

// Links in answers: absolute, so a page on another origin can follow
// them; and the redirect targets a form may ask for, held to the
// action's allowed origins.

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/formq/formq/actions"
	"github.com/labstack/echo/v4"
)

// Reserved form fields: the idempotency key and bound arguments a hosted
// form embeds, and the no-JavaScript path back to the sender's page.
const (
	FieldIdempotency   = "_idempotency"
	FieldBound         = "_bound"
	FieldRedirect      = "_redirect"
	FieldErrorRedirect = "_error_redirect"
)

// StateParam is the query parameter an error redirect adds.
const StateParam = "formq_state"

// SiteConfig says where formq is reached and which other origins its
// visitors may be sent to.
type SiteConfig struct {
	// Base is the public URL (with any path prefix) links and form
	// actions start with. Empty, they are root-relative or built from the
	// request's own scheme and host.
	Base string
	// AllowedOrigins are the deployment's origins, beside each action's
	// own, that a form's redirect may go to.
	AllowedOrigins []string
	// OriginsSetting names the setting that holds AllowedOrigins, for
	// messages.
	OriginsSetting string
}

// Site makes the links of formq's answers and pages, and checks the
// redirect targets forms ask for. One is shared by every feature, so a
// prefix set when the API is mounted reaches them all.
type Site struct {
	base    atomic.Pointer[string]
	allowed []string
	setting string
}

// NewSite builds the site from its configuration.
func NewSite(cfg SiteConfig) *Site {
	s := &Site{allowed: cfg.AllowedOrigins, setting: cfg.OriginsSetting}
	if s.setting == "" {
		s.setting = "the deployment's allowed origins"
	}
	s.SetBase(cfg.Base)
	return s
}

// SetBase changes the base links start with; the API sets it to the
// prefix it is mounted under, before serving.
func (s *Site) SetBase(base string) { s.base.Store(&base) }

// Base is what links start with: the public URL, a mount prefix, or "".
func (s *Site) Base() string {
	if s == nil {
		return ""
	}
	return *s.base.Load()
}

// URL is a path of the API as a link: prefixed with Base when set.
func (s *Site) URL(path string) string { return s.Base() + path }

// AllowedOrigins are the deployment's allowed origins.
func (s *Site) AllowedOrigins() []string {
	if s == nil {
		return nil
	}
	return s.allowed
}

// Origin is the scheme and host formq is reached at: the public URL's,
// else the request's.
func (s *Site) Origin(c echo.Context) string {
	if base := s.Base(); base != "" {
		if u, err := url.Parse(base); err == nil {
			return u.Scheme + "://" + u.Host
		}
	}
	return c.Scheme() + "://" + c.Request().Host
}

// Link is an absolute URL of one of formq's own paths: the public URL
// (with its path prefix) when set, else the request's scheme and host.
func (s *Site) Link(c echo.Context, path string) string {
	if base := s.Base(); base != "" {
		return base + path
	}
	return s.Origin(c) + path
}

// Absolute makes a redirect absolute: root-relative paths are resolved
// against formq's origin.
func (s *Site) Absolute(c echo.Context, target string) string {
	if strings.HasPrefix(target, "//") {
		return c.Scheme() + ":" + target
	}
	if strings.HasPrefix(target, "/") {
		return s.Origin(c) + target
	}
	return target
}

// RedirectTarget checks a target sent in a reserved field: a path on
// formq's origin, or an absolute http(s) URL on formq's own origin or on
// one the action allows (its origins and the deployment's). Anything
// else is 400 bad_request naming the field.
func (s *Site) RedirectTarget(c echo.Context, a *actions.Action, field, target string) (string, error) {
	target = strings.TrimSpace(target)
	if target == "" {
		return "", nil
	}
	bad := func(why string) error {
		return ErrBadRequest.With(nil, "The "+field+" field "+why)
	}
	if len(target) > 2048 {
		return "", bad("is longer than 2048 characters.")
	}
	if !actions.LinkTarget(target) {
		return "", bad("must be an http(s) URL or a path starting with /.")
	}
	if actions.PlaceholderInHost(target) {
		return "", bad("may hold placeholders like {id} only in its path, query or fragment.")
	}
	if strings.HasPrefix(target, "/") {
		return s.Absolute(c, target), nil
	}
	u, _ := url.Parse(target)
	o := u.Scheme + "://" + u.Host
	if o == s.Origin(c) || slices.Contains(s.allowed, o) || slices.Contains(trimmed(a.Origins), o) {
		return target, nil
	}
	return "", bad("points to " + o + ", which may not receive this action's visitors: add it to " + s.setting + " or to the action's origins.")
}

func trimmed(origins []string) []string {
	out := make([]string, len(origins))
	for i, o := range origins {
		out[i] = strings.TrimRight(o, "/")
	}
	return out
}

// WithState adds formq_state to an error redirect's query.
func WithState(target, token string) string {
	u, err := url.Parse(target)
	if err != nil {
		return target
	}
	q := u.Query()
	q.Set(StateParam, token)
	u.RawQuery = q.Encode()
	return u.String()
}

// CheckRedirects refuses, at start, an action whose redirect or
// error_redirect is an absolute URL on an origin the action does not
// allow (allowed holds the deployment's allowed origins, named by setting
// in the error, and the public URL's origin): people would be sent to a
// site that may not receive them. Paths stay on formq's origin and are
// always fine.
func CheckRedirects(list []*actions.Action, allowed []string, setting string) error {
	for _, a := range list {
		ok := append(trimmed(allowed), trimmed(a.Origins)...)
		for _, key := range []string{"redirect", "error_redirect"} {
			target := a.Redirect
			if key == "error_redirect" {
				target = a.ErrorRedirect
			}
			origins := targetOrigins(target)
			if len(origins) == 0 || slices.ContainsFunc(origins, func(o string) bool { return slices.Contains(ok, o) }) {
				continue
			}
			return fmt.Errorf("action %q: %s %q goes to %s, which is not an allowed origin of the action: add it to the action's origins or to %s, or use a path",
				a.Name, key, target, origins[0], setting)
		}
	}
	return nil
}

// targetOrigins is the origin of an absolute URL, both origins of a
// scheme-relative one (//host/...), none for a path.
func targetOrigins(target string) []string {
	rel := strings.HasPrefix(target, "//")
	if rel {
		target = "https:" + target
	}
	if !strings.HasPrefix(target, "http://") && !strings.HasPrefix(target, "https://") {
		return nil
	}
	u, err := url.Parse(target)
	if err != nil || u.Host == "" {
		return []string{target}
	}
	if rel {
		return []string{"https://" + u.Host, "http://" + u.Host}
	}
	return []string{u.Scheme + "://" + u.Host}
}
