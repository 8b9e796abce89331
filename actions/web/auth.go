package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
)

// AuthConfig says how users prove who they are to actions declared with
// `auth: required` or `auth: optional`.
type AuthConfig struct {
	HS256Secret string // shared secret for HS256 tokens
	JWKSURL     string // JSON Web Key Set for RS256/ES256 tokens
	Cookie      string // cookie holding the token when there is no bearer header
	Issuer      string // required iss, if set
	Audience    string // required aud, if set
}

// Authenticator verifies the bearer JWT or session cookie of a request.
type Authenticator struct {
	cookie  string
	keyfunc jwt.Keyfunc
	parser  *jwt.Parser
}

// Errors of authentication.
var (
	ErrNoCredentials = errors.New("actions: no credentials")
	ErrBadToken      = errors.New("actions: invalid token")
)

// NewAuthenticator builds an Authenticator, or returns nil when neither an
// HS256 secret nor a JWKS URL is configured. A JWKS is fetched at start and
// refreshed in the background until ctx ends.
func NewAuthenticator(ctx context.Context, c AuthConfig) (*Authenticator, error) {
	if c.HS256Secret == "" && c.JWKSURL == "" {
		return nil, nil
	}
	a := &Authenticator{cookie: c.Cookie}
	var methods []string
	var jwks jwt.Keyfunc
	if c.JWKSURL != "" {
		k, err := keyfunc.NewDefaultCtx(ctx, []string{c.JWKSURL})
		if err != nil {
			return nil, fmt.Errorf("auth: JWKS %s: %w", c.JWKSURL, err)
		}
		jwks = k.Keyfunc
		methods = append(methods, "RS256", "ES256")
	}
	if c.HS256Secret != "" {
		methods = append(methods, "HS256")
	}
	secret := []byte(c.HS256Secret)
	a.keyfunc = func(t *jwt.Token) (any, error) {
		if t.Method.Alg() == "HS256" {
			if len(secret) == 0 {
				return nil, ErrBadToken
			}
			return secret, nil
		}
		if jwks == nil {
			return nil, ErrBadToken
		}
		return jwks(t)
	}
	opts := []jwt.ParserOption{jwt.WithValidMethods(methods), jwt.WithExpirationRequired(), jwt.WithLeeway(30 * time.Second)}
	if c.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(c.Issuer))
	}
	if c.Audience != "" {
		opts = append(opts, jwt.WithAudience(c.Audience))
	}
	a.parser = jwt.NewParser(opts...)
	return a, nil
}

// Subject returns the verified subject (sub claim) of the request's
// token: the bearer token, else the cookie.
func (a *Authenticator) Subject(r *http.Request) (string, error) {
	raw := ""
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, token, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return "", ErrBadToken
		}
		raw = strings.TrimSpace(token)
	} else if c, err := r.Cookie(a.cookie); err == nil {
		raw = c.Value
	}
	if raw == "" {
		return "", ErrNoCredentials
	}
	tok, err := a.parser.Parse(raw, a.keyfunc)
	if err != nil || !tok.Valid {
		return "", fmt.Errorf("%w: %v", ErrBadToken, err)
	}
	sub, err := tok.Claims.GetSubject()
	if err != nil || sub == "" {
		return "", fmt.Errorf("%w: no sub claim", ErrBadToken)
	}
	return sub, nil
}
