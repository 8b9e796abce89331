// Package admin serves the admin side of the API to the admin token and
// to named admins with roles: bound arguments (POST /admin/bind), the
// submissions inbox as JSON and as pages, redelivery of webhooks and the
// queue dashboard.
package admin

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/formq/formq/actions"
	"github.com/formq/formq/actions/web"
	"github.com/formq/formq/internal/audit"
	"github.com/formq/formq/submission"
	"github.com/labstack/echo/v4"
)

// Config is what the admin side takes from the deployment.
type Config struct {
	// Token is the shared admin token, for machines; it acts as an
	// admin. With neither a token nor Admins the admin routes do not
	// exist.
	Token string
	// Admins is the roster of named admins (FORMQ_ADMINS), like
	// "alice@example.org=admin,group:support=viewer".
	Admins string
	// Proxies are the addresses (CIDRs) of the authenticating proxy whose
	// identity headers are believed (FORMQ_ADMIN_PROXIES).
	Proxies []string
	// OIDC is formq's own sign-in with an OpenID Connect provider.
	OIDC OIDCConfig
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// StatusReader reads the status of a submission. It returns an error
// matching submission.ErrNotFound for an unknown id. *jobs.StatusStore is
// the implementation.
type StatusReader interface {
	Status(ctx context.Context, id string) (*submission.Status, error)
}

// Deps are the parts the admin side calls; a nil Inbox, Redeliveries or
// Queues answers 404 on its routes.
type Deps struct {
	Actions      *actions.Registry
	Sealer       actions.Sealer
	Inbox        Inbox
	Links        FileLinks
	Status       StatusReader
	Redeliveries Redeliverer
	// Spam and Releaser serve the Spam folder; nil answers 404 on its
	// routes.
	Spam     SpamFolder
	Releaser Releaser
	// Queues is the queue dashboard served under QueuesPath.
	Queues http.Handler
	Site   *web.Site
	Log    *slog.Logger
	// Audit records what people did; nil records nothing and answers
	// 404 on the audit routes.
	Audit AuditLog
}

// Handler serves the admin routes.
type Handler struct {
	cfg          Config
	actions      *actions.Registry
	sealer       actions.Sealer
	inbox        Inbox
	links        FileLinks
	status       StatusReader
	redeliveries Redeliverer
	spam         SpamFolder
	releaser     Releaser
	queues       http.Handler
	site         *web.Site
	log          *slog.Logger
	pages        *template.Template
	sameOrigin   *web.OriginGuard
	signIn       *signIn
	audit        AuditLog
}

//go:embed templates/*.html
var templateFS embed.FS

// New builds the admin side.
func New(cfg Config, d Deps) (*Handler, error) {
	if d.Actions == nil {
		d.Actions = actions.NewRegistry()
	}
	if d.Site == nil {
		d.Site = web.NewSite(web.SiteConfig{})
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	t, err := template.New("admin").Funcs(template.FuncMap{
		"add1":   func(i int) int { return i + 1 },
		"size":   actions.FormatSize,
		"marked": markedNotice,
		"nav": func(base string, me *Person, current string) map[string]any {
			return map[string]any{"Base": base, "Me": me, "Current": current}
		},
	}).ParseFS(templateFS, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("parse admin templates: %w", err)
	}
	guard, err := web.NewOriginGuard(d.Site.AllowedOrigins(), nil, false, "")
	if err != nil {
		return nil, err
	}
	signIn, err := newSignIn(cfg, d.Sealer, d.Site.URL(SignOutPath))
	if err != nil {
		return nil, err
	}
	return &Handler{
		cfg: cfg, actions: d.Actions, sealer: d.Sealer, inbox: d.Inbox, links: d.Links, status: d.Status,
		redeliveries: d.Redeliveries, spam: d.Spam, releaser: d.Releaser, queues: d.Queues, site: d.Site, log: d.Log, pages: t, sameOrigin: guard, signIn: signIn,
		audit: d.Audit,
	}, nil
}

func (h *Handler) now() time.Time {
	if h.cfg.Now != nil {
		return h.cfg.Now()
	}
	return time.Now()
}

// SameOrigin refuses cross-origin requests that change state (anything
// but GET, HEAD and OPTIONS) on the admin routes, with the same check as
// the actions: Sec-Fetch-Site, then Origin against Host; the deployment's
// allowed origins (and its public URL's) are trusted.
func (h *Handler) SameOrigin() echo.MiddlewareFunc {
	guard := h.sameOrigin
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if err := guard.Check(c.Request(), "admin"); err != nil {
				return web.ErrForbiddenOrigin.With(err, "Admin requests from other sites are not allowed.")
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

// Bind handles POST /admin/bind: it seals bound arguments for an
// action into a token for the form's _bound field.
func (h *Handler) Bind(c echo.Context) error {
	var req bindRequest
	dec := newStrictJSON(c.Request().Body)
	if err := dec.Decode(&req); err != nil {
		return web.ErrBadRequest.With(err, "Send JSON like {\"action\":\"...\",\"args\":{...},\"ttl\":\"1h\"}.")
	}
	a, ok := h.actions.Get(req.Action)
	if !ok {
		return web.ErrActionNotFound
	}
	ttl := time.Hour
	if req.TTL != "" {
		d, err := time.ParseDuration(req.TTL)
		if err != nil {
			return web.ErrBadRequest.With(err, "ttl must be a duration like 1h.")
		}
		ttl = d
	}
	token, err := actions.Bind(h.sealer, a, req.Args, req.Subject, ttl)
	if err != nil {
		return web.ErrBadRequest.With(err, "Cannot bind: "+err.Error()+".")
	}
	h.record(c, audit.Bind, a.Name, 0, "ttl="+ttl.String())
	return c.JSON(http.StatusOK, map[string]any{"token": token, "expiresAt": h.now().Add(ttl).UTC()})
}

// newStrictJSON decodes at most 64 KiB of JSON, refusing unknown fields.
func newStrictJSON(r io.Reader) *json.Decoder {
	dec := json.NewDecoder(io.LimitReader(r, 64<<10))
	dec.DisallowUnknownFields()
	return dec
}
