package admin

// Signing in with OpenID Connect, when no authenticating proxy stands in
// front of formq: the authorization code flow with PKCE, state and nonce
// against the deployment's identity provider, then a sealed session
// cookie that names the person; its role comes from FORMQ_ADMINS at
// every request.

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/formq/formq/actions"
	"github.com/formq/formq/actions/pages"
	"github.com/formq/formq/actions/web"
	"github.com/formq/formq/internal/audit"
	"github.com/labstack/echo/v4"
	"golang.org/x/oauth2"
)

// OIDCConfig is formq's own sign-in with an OpenID Connect provider.
type OIDCConfig struct {
	// Issuer is the provider's issuer URL; empty turns the sign-in off.
	Issuer       string
	ClientID     string
	ClientSecret string
	// Scopes asked for; openid is always asked for.
	Scopes []string
	// GroupsClaim names the ID token's claim listing the person's groups.
	GroupsClaim string
}

// The routes of the OIDC sign-in.
const (
	SignInPath   = "/admin/signin"
	CallbackPath = "/admin/oidc/callback"
	SignOutPath  = "/admin/signout"
)

// SessionTTL is how long an OIDC sign-in lasts.
const SessionTTL = 12 * time.Hour

// The cookies of the sign-in: the session, and the flow under way
// (state, nonce, PKCE verifier, where to go back), both sealed.
const (
	sessionCookie = "formq_admin"
	flowCookie    = "formq_admin_flow"
	flowTTL       = 10 * time.Minute
)

// Sealing purposes, so neither cookie opens as the other or as any other
// sealed token.
const (
	sessionPurpose = "admin-session"
	flowPurpose    = "admin-oidc-flow"
)

type oidcSession struct {
	Email  string   `json:"e,omitempty"`
	User   string   `json:"u,omitempty"`
	Groups []string `json:"g,omitempty"`
}

type oidcFlow struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	Next     string `json:"x"`
}

// oidcSignIn is the provider, discovered at first use (and again after
// a failed discovery), and the sealer of the cookies.
type oidcSignIn struct {
	cfg    OIDCConfig
	sealer actions.Sealer
	mu     sync.Mutex
	p      *oidc.Provider
	logout string // the provider's end_session_endpoint, if any
}

func newOIDCSignIn(cfg OIDCConfig, sealer actions.Sealer) (*oidcSignIn, error) {
	if cfg.Issuer == "" {
		return nil, nil
	}
	if cfg.ClientID == "" {
		return nil, errors.New("FORMQ_ADMIN_OIDC_ISSUER needs FORMQ_ADMIN_OIDC_CLIENT_ID")
	}
	if sealer == nil {
		return nil, errors.New("the OIDC sign-in needs a sealer for its cookies")
	}
	if cfg.GroupsClaim == "" {
		cfg.GroupsClaim = "groups"
	}
	return &oidcSignIn{cfg: cfg, sealer: sealer}, nil
}

func (o *oidcSignIn) provider(ctx context.Context) (*oidc.Provider, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.p != nil {
		return o.p, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	p, err := oidc.NewProvider(ctx, o.cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("discover the OIDC provider %s: %w", o.cfg.Issuer, err)
	}
	var extra struct {
		EndSession string `json:"end_session_endpoint"`
	}
	_ = p.Claims(&extra)
	o.p, o.logout = p, extra.EndSession
	return p, nil
}

func (o *oidcSignIn) oauth(p *oidc.Provider, redirect string) *oauth2.Config {
	scopes := []string{oidc.ScopeOpenID}
	for _, s := range o.cfg.Scopes {
		if s != oidc.ScopeOpenID && s != "" {
			scopes = append(scopes, s)
		}
	}
	return &oauth2.Config{ClientID: o.cfg.ClientID, ClientSecret: o.cfg.ClientSecret, Endpoint: p.Endpoint(), RedirectURL: redirect, Scopes: scopes}
}

// person is who the session cookie names, nil without a valid one.
func (o *oidcSignIn) person(c echo.Context, r *Roster, signOut string) (*Person, error) {
	ck, err := c.Cookie(sessionCookie)
	if err != nil || ck.Value == "" {
		return nil, nil
	}
	var s oidcSession
	if err := o.sealer.Open(sessionPurpose, ck.Value, &s); err != nil {
		return nil, nil // expired or not ours: not signed in
	}
	p, err := r.person(s.Email, s.User, s.Groups, ViaOIDC)
	if p != nil {
		p.SignOut = signOut
	}
	return p, err
}

// oidc is the OIDC sign-in; without one its routes answer 404.
func (h *Handler) oidc() (*oidcSignIn, error) {
	if h.signIn.oidc == nil {
		return nil, web.ErrNotFound.With(errors.New("no OIDC sign-in"))
	}
	return h.signIn.oidc, nil
}

// OIDCSignIn handles GET /admin/signin (?next=a path of the admin side):
// it sends the browser to the provider with a fresh state, nonce and
// PKCE challenge, kept in a sealed cookie for the callback.
func (h *Handler) OIDCSignIn(c echo.Context) error {
	o, err := h.oidc()
	if err != nil {
		return err
	}
	p, err := o.provider(c.Request().Context())
	if err != nil {
		return web.ErrUnavailable.With(err, "The identity provider cannot be reached; try again shortly.")
	}
	f := oidcFlow{State: rand.Text(), Nonce: rand.Text(), Verifier: oauth2.GenerateVerifier(), Next: h.backTo(c.QueryParam("next"))}
	sealed, err := o.sealer.Seal(flowPurpose, f, flowTTL)
	if err != nil {
		return err
	}
	h.setCookie(c, flowCookie, sealed, CallbackPath, flowTTL)
	u := o.oauth(p, h.site.Link(c, CallbackPath)).AuthCodeURL(f.State, oidc.Nonce(f.Nonce), oauth2.S256ChallengeOption(f.Verifier))
	return c.Redirect(http.StatusSeeOther, u)
}

// backTo is where a sign-in goes back to: a path of the admin side, else
// the inbox.
func (h *Handler) backTo(next string) string {
	base := h.site.URL("/admin")
	if next == "" || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") || (next != base && !strings.HasPrefix(next, base+"/")) {
		return h.site.URL(InboxPath)
	}
	return next
}

func (h *Handler) setCookie(c echo.Context, name, value, path string, ttl time.Duration) {
	c.SetCookie(&http.Cookie{
		Name: name, Value: value, Path: h.site.URL(path), MaxAge: int(ttl / time.Second), HttpOnly: true,
		SameSite: http.SameSiteLaxMode, Secure: strings.HasPrefix(h.site.Link(c, "/"), "https://"),
	})
}

// ErrSignInFailed answers a callback that proves nobody: a missing or
// expired flow, a wrong state, a refused code, a bad ID token.
var ErrSignInFailed = web.ErrUnauthenticated.With(errors.New("OIDC sign-in failed"), "Signing in did not work; start again from the sign-in page.")

// OIDCCallback handles GET /admin/oidc/callback: the provider sends the
// browser back with a code; formq checks the state against its cookie,
// exchanges the code with the PKCE verifier, verifies the ID token
// (signature, issuer, audience, expiry, nonce), and signs the person in
// when FORMQ_ADMINS names them.
func (h *Handler) OIDCCallback(c echo.Context) error {
	o, err := h.oidc()
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	ck, err := c.Cookie(flowCookie)
	if err != nil {
		return ErrSignInFailed.With(errors.New("no flow cookie"))
	}
	h.setCookie(c, flowCookie, "", CallbackPath, -time.Second)
	var f oidcFlow
	if err := o.sealer.Open(flowPurpose, ck.Value, &f); err != nil {
		return ErrSignInFailed.With(fmt.Errorf("flow cookie: %w", err))
	}
	if subtle.ConstantTimeCompare([]byte(c.QueryParam("state")), []byte(f.State)) != 1 {
		return ErrSignInFailed.With(errors.New("state does not match"))
	}
	if e := c.QueryParam("error"); e != "" {
		return ErrSignInFailed.With(fmt.Errorf("provider: %s: %s", e, c.QueryParam("error_description")))
	}
	p, err := o.provider(ctx)
	if err != nil {
		return web.ErrUnavailable.With(err, "The identity provider cannot be reached; try again shortly.")
	}
	xctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	tok, err := o.oauth(p, h.site.Link(c, CallbackPath)).Exchange(xctx, c.QueryParam("code"), oauth2.VerifierOption(f.Verifier))
	if err != nil {
		return ErrSignInFailed.With(fmt.Errorf("exchange: %w", err))
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := p.Verifier(&oidc.Config{ClientID: o.cfg.ClientID}).Verify(xctx, raw)
	if err != nil {
		return ErrSignInFailed.With(fmt.Errorf("ID token: %w", err))
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(f.Nonce)) != 1 {
		return ErrSignInFailed.With(errors.New("nonce does not match"))
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return ErrSignInFailed.With(err)
	}
	s := oidcSession{User: stringClaim(claims, "preferred_username"), Groups: listClaim(claims, o.cfg.GroupsClaim)}
	// Only an address the provider verified names someone.
	if v, _ := claims["email_verified"].(bool); v {
		s.Email = stringClaim(claims, "email")
	}
	if s.User == "" {
		s.User = idt.Subject
	}
	person, err := h.signIn.roster.person(s.Email, s.User, s.Groups, ViaOIDC)
	if err != nil {
		return err
	}
	sealed, err := o.sealer.Seal(sessionPurpose, s, SessionTTL)
	if err != nil {
		return err
	}
	h.setCookie(c, sessionCookie, sealed, "/admin", SessionTTL)
	c.Set(personKey, person)
	h.record(c, audit.SignIn, "", 0, "")
	return c.Redirect(http.StatusSeeOther, f.Next)
}

func stringClaim(claims map[string]any, name string) string {
	s, _ := claims[name].(string)
	return strings.TrimSpace(s)
}

// listClaim reads a claim that is a list of strings, or one string.
func listClaim(claims map[string]any, name string) []string {
	switch v := claims[name].(type) {
	case string:
		return splitGroups(v)
	case []any:
		var out []string
		for _, g := range v {
			if s, ok := g.(string); ok && s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// OIDCSignOut handles POST /admin/signout: the session cookie is
// cleared and the browser goes to the provider's end-session endpoint,
// or to a page saying it is signed out.
func (h *Handler) OIDCSignOut(c echo.Context) error {
	o, err := h.oidc()
	if err != nil {
		return err
	}
	if p, _ := o.person(c, h.signIn.roster, ""); p != nil {
		c.Set(personKey, p)
		h.record(c, audit.SignOut, "", 0, "")
	}
	h.setCookie(c, sessionCookie, "", "/admin", -time.Second)
	if _, err := o.provider(c.Request().Context()); err == nil && o.logout != "" {
		return c.Redirect(http.StatusSeeOther, o.logout+"?client_id="+o.cfg.ClientID)
	}
	return pages.Plain(c, h.pages, "signed-out", http.StatusOK, map[string]any{"Base": h.site.Base()})
}

// askToSignIn sends a browser that is not signed in to the OIDC sign-in,
// back to the page it asked for afterwards; nil when it should get the
// 401 instead (no OIDC, an API client, not a GET).
func (h *Handler) askToSignIn(c echo.Context) error {
	r := c.Request()
	if h.signIn.oidc == nil || r.Method != http.MethodGet || web.WantsJSON(r) {
		return nil
	}
	return c.Redirect(http.StatusSeeOther, h.site.URL(SignInPath)+"?next="+url.QueryEscape(r.URL.RequestURI()))
}
