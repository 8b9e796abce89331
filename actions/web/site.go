package handler

// Links in answers: absolute, so a page on another origin can follow
// them; and the redirect targets a form may ask for, held to the
// action's allowed origins.

import (
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/formq/formq/actions"
	"github.com/labstack/echo/v4"
)

// Reserved fields of the no-JavaScript path back to the sender's page.
const (
	FieldRedirect      = "_redirect"
	FieldErrorRedirect = "_error_redirect"
)

// StateParam is the query parameter an error redirect adds.
const StateParam = "formq_state"

// origin is the scheme and host formq is reached at: FORMQ_PUBLIC_URL's,
// else the request's.
func (h *Handler) origin(c echo.Context) string {
	if h.Pages != nil && h.Pages.Base != "" {
		if u, err := url.Parse(h.Pages.Base); err == nil {
			return u.Scheme + "://" + u.Host
		}
	}
	return c.Scheme() + "://" + c.Request().Host
}

// link is an absolute URL of one of formq's own paths: FORMQ_PUBLIC_URL
// (with its path prefix) when set, else the request's scheme and host.
func (h *Handler) link(c echo.Context, path string) string {
	if h.Pages != nil && h.Pages.Base != "" {
		return h.Pages.Base + path
	}
	return h.origin(c) + path
}

// absolute makes a redirect absolute: root-relative paths are resolved
// against formq's origin.
func (h *Handler) absolute(c echo.Context, target string) string {
	if strings.HasPrefix(target, "//") {
		return c.Scheme() + ":" + target
	}
	if strings.HasPrefix(target, "/") {
		return h.origin(c) + target
	}
	return target
}

// redirectTarget checks a target sent in a reserved field: a path on
// formq's origin, or an absolute http(s) URL on formq's own origin or on
// one the action allows (its origins and FORMQ_ALLOWED_ORIGINS). Anything
// else is 400 bad_request naming the field.
func (h *Handler) redirectTarget(c echo.Context, a *actions.Action, field, target string) (string, error) {
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
		return h.absolute(c, target), nil
	}
	u, _ := url.Parse(target)
	o := u.Scheme + "://" + u.Host
	if o == h.origin(c) || slices.Contains(h.AllowedOrigins, o) || slices.Contains(trimmed(a.Origins), o) {
		return target, nil
	}
	return "", bad("points to " + o + ", which may not receive this action's visitors: add it to FORMQ_ALLOWED_ORIGINS or to the action's origins.")
}

func trimmed(origins []string) []string {
	out := make([]string, len(origins))
	for i, o := range origins {
		out[i] = strings.TrimRight(o, "/")
	}
	return out
}

// withState adds formq_state to an error redirect's query.
func withState(target, token string) string {
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
// allow (allowed holds FORMQ_ALLOWED_ORIGINS and FORMQ_PUBLIC_URL's
// origin): people would be sent to a site that may not receive them.
// Paths stay on formq's origin and are always fine.
func CheckRedirects(list []*actions.Action, allowed []string) error {
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
			return fmt.Errorf("action %q: %s %q goes to %s, which is not an allowed origin of the action: add it to the action's origins or to FORMQ_ALLOWED_ORIGINS, or use a path",
				a.Name, key, target, origins[0])
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
