package handler

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/formq/formq/actions"
	"github.com/labstack/echo/v4"
)

// RequireAdmin guards /admin routes with the bearer FORMQ_ADMIN_TOKEN.
// With no token configured the admin routes do not exist (404).
func RequireAdmin(token string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if token == "" {
				return ErrNotFound
			}
			scheme, given, ok := strings.Cut(c.Request().Header.Get("Authorization"), " ")
			if !ok || !strings.EqualFold(scheme, "Bearer") || given == "" {
				return ErrUnauthenticated.With(errors.New("no admin token"), "This needs the admin token.")
			}
			if subtle.ConstantTimeCompare([]byte(strings.TrimSpace(given)), []byte(token)) != 1 {
				return ErrForbidden.With(errors.New("wrong admin token"))
			}
			return next(c)
		}
	}
}

// AdminOrigin refuses cross-origin requests that change state (anything
// but GET, HEAD and OPTIONS) on the admin routes, with the same check as
// the actions: Sec-Fetch-Site, then Origin against Host; the deployment's
// allowed origins (FORMQ_ALLOWED_ORIGINS, FORMQ_PUBLIC_URL) are trusted.
func (h *Handler) AdminOrigin() echo.MiddlewareFunc {
	guard, err := newOriginGuard(h.AllowedOrigins, nil, false)
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if err != nil {
				return ErrInternal.With(err)
			}
			if err := guard.check(c.Request(), "admin"); err != nil {
				return ErrForbiddenOrigin.With(err, "Admin requests from other sites are not allowed.")
			}
			return next(c)
		}
	}
}

// bindRequest is the body of POST /admin/bind.
type bindRequest struct {
	Action  string         `json:"action"`
	Args    map[string]any `json:"args"`
	TTL     string         `json:"ttl"`
	Subject string         `json:"subject"`
}

// AdminBind handles POST /admin/bind: it seals bound arguments for an
// action into a token for the form's _bound field.
func (h *Handler) AdminBind(c echo.Context) error {
	var req bindRequest
	dec := newStrictJSON(c.Request().Body)
	if err := dec.Decode(&req); err != nil {
		return ErrBadRequest.With(err, "Send JSON like {\"action\":\"...\",\"args\":{...},\"ttl\":\"1h\"}.")
	}
	a, ok := h.Actions.Get(req.Action)
	if !ok {
		return ErrActionNotFound
	}
	ttl := time.Hour
	if req.TTL != "" {
		d, err := time.ParseDuration(req.TTL)
		if err != nil {
			return ErrBadRequest.With(err, "ttl must be a duration like 1h.")
		}
		ttl = d
	}
	token, err := actions.Bind(h.Sealer, a, req.Args, req.Subject, ttl)
	if err != nil {
		return ErrBadRequest.With(err, "Cannot bind: "+err.Error()+".")
	}
	return c.JSON(http.StatusOK, map[string]any{"token": token, "expiresAt": h.now().Add(ttl).UTC()})
}

// newStrictJSON decodes at most 64 KiB of JSON, refusing unknown fields.
func newStrictJSON(r io.Reader) *json.Decoder {
	dec := json.NewDecoder(io.LimitReader(r, 64<<10))
	dec.DisallowUnknownFields()
	return dec
}
