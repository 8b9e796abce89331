package admin

// Signing in to the admin side: the shared token for machines, the
// identity headers of an authenticating proxy in front of formq (such as
// oauth2-proxy) for people, believed only from the proxy's addresses.

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/formq/formq/actions"
	"github.com/formq/formq/actions/web"
	"github.com/labstack/echo/v4"
)

// The headers an authenticating proxy sets for the person it signed in
// (oauth2-proxy's names). Groups are a comma list.
const (
	HeaderEmail  = "X-Forwarded-Email"
	HeaderUser   = "X-Forwarded-User"
	HeaderGroups = "X-Forwarded-Groups"
)

// ProxySignOutPath is where the inbox sends people signed in by the
// proxy to sign out: oauth2-proxy's sign-out endpoint.
const ProxySignOutPath = "/oauth2/sign_out"

// signIn finds the person of a request.
type signIn struct {
	token   string
	roster  *Roster
	proxies []netip.Prefix
	oidc    *oidcSignIn
	signOut string // where OIDC sessions sign out
}

// newSignIn checks the sign-in settings: a roster needs a way for its
// people to sign in, and a proxy or OIDC needs a roster.
func newSignIn(cfg Config, sealer actions.Sealer, signOutURL string) (*signIn, error) {
	roster, err := ParseRoster(cfg.Admins)
	if err != nil {
		return nil, err
	}
	s := &signIn{token: cfg.Token, roster: roster, signOut: signOutURL}
	for _, p := range cfg.Proxies {
		prefix, err := parsePrefix(p)
		if err != nil {
			return nil, fmt.Errorf("FORMQ_ADMIN_PROXIES: %w", err)
		}
		s.proxies = append(s.proxies, prefix)
	}
	if s.oidc, err = newOIDCSignIn(cfg.OIDC, sealer); err != nil {
		return nil, err
	}
	switch {
	case !roster.Empty() && len(s.proxies) == 0 && s.oidc == nil:
		return nil, errors.New("FORMQ_ADMINS is set but nobody can sign in: set FORMQ_ADMIN_PROXIES (an authenticating proxy's addresses) or FORMQ_ADMIN_OIDC_ISSUER")
	case roster.Empty() && (len(s.proxies) > 0 || s.oidc != nil):
		return nil, errors.New("FORMQ_ADMIN_PROXIES or FORMQ_ADMIN_OIDC_ISSUER is set but FORMQ_ADMINS names nobody: list who may sign in, like alice@example.org=admin")
	}
	return s, nil
}

// parsePrefix reads a CIDR or a single address.
func parsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q: want a CIDR like 10.0.0.0/8 or an address", s)
	}
	return netip.PrefixFrom(a.Unmap(), a.BitLen()), nil
}

// enabled says whether the admin side exists: a token or named admins.
func (s *signIn) enabled() bool { return s.token != "" || !s.roster.Empty() }

// fromProxy says whether the request's connection comes from a trusted
// authenticating proxy. It looks at the connection's own address, never
// at X-Forwarded-For, which any client can write.
func (s *signIn) fromProxy(r *http.Request) bool {
	if len(s.proxies) == 0 {
		return false
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, p := range s.proxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// person finds who the request acts for: the person a trusted proxy
// signed in, else the admin token (bearer, or the password of Basic
// authentication from browsers), else formq's own OIDC sign-in session.
func (s *signIn) person(c echo.Context) (*Person, error) {
	r := c.Request()
	if s.fromProxy(r) {
		email, user := strings.TrimSpace(r.Header.Get(HeaderEmail)), strings.TrimSpace(r.Header.Get(HeaderUser))
		if email != "" || user != "" {
			p, err := s.roster.person(email, user, splitGroups(r.Header.Get(HeaderGroups)), ViaProxy)
			if p != nil {
				p.SignOut = ProxySignOutPath
			}
			return p, err
		}
	}
	if given, ok := presentedToken(r); ok {
		if s.token == "" || subtle.ConstantTimeCompare([]byte(given), []byte(s.token)) != 1 {
			return nil, web.ErrForbidden.With(errors.New("wrong admin token"))
		}
		return tokenPerson, nil
	}
	if s.oidc != nil {
		if p, err := s.oidc.person(c, s.roster, s.signOut); p != nil || err != nil {
			return p, err
		}
	}
	return nil, web.ErrUnauthenticated.With(errors.New("no admin credentials"), "This needs the admin token or signing in.")
}

// presentedToken is the admin token a request presents: the bearer
// token, or the password of HTTP Basic authentication (browsers cannot
// send a bearer token by themselves). ok is false with neither.
func presentedToken(r *http.Request) (string, bool) {
	if _, pass, ok := r.BasicAuth(); ok && pass != "" {
		return pass, true
	}
	scheme, given, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(given) == "" {
		return "", false
	}
	return strings.TrimSpace(given), true
}

func splitGroups(h string) []string {
	var out []string
	for g := range strings.SplitSeq(h, ",") {
		if g = strings.TrimSpace(g); g != "" {
			out = append(out, g)
		}
	}
	return out
}

// SignIn finds the person of every admin request and refuses requests
// of nobody (401) or of people not named in FORMQ_ADMINS (403); the
// routes then check the role with Allow. With neither an admin token nor
// named admins, the admin routes do not exist (404).
func (h *Handler) SignIn() echo.MiddlewareFunc {
	s := h.signIn
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if !s.enabled() {
				return web.ErrNotFound
			}
			p, err := s.person(c)
			if err == nil {
				c.Set(personKey, p)
				h.noteSignIn(c, p)
				err = next(c)
			}
			if statusOf(err) == http.StatusUnauthorized {
				if redirect := h.askToSignIn(c); redirect != nil {
					return redirect
				}
				if s.token != "" {
					c.Response().Header().Set("WWW-Authenticate", `Basic realm="formq admin", charset="UTF-8"`)
				}
			}
			return err
		}
	}
}
