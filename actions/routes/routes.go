// Package routes lists every route of formq's HTTP API in one place, and
// the CORS rules in front of them. The features behind the routes live in
// their own packages: submit, staging, status, pages and admin.
package routes

import (
	"net/http"

	"github.com/formq/formq/actions"
	"github.com/formq/formq/actions/admin"
	"github.com/formq/formq/actions/captcha"
	"github.com/formq/formq/actions/pages"
	"github.com/formq/formq/actions/staging"
	"github.com/formq/formq/actions/status"
	"github.com/formq/formq/actions/submit"
	"github.com/formq/formq/actions/web"
	"github.com/formq/formq/client"
	"github.com/formq/formq/internal/openapi"
	"github.com/labstack/echo/v4"
)

// Parts are the features the routes serve. A nil part is built with an
// empty configuration (its routes answer, mostly 404), so a reader of the
// route list, like the OpenAPI test, needs none.
type Parts struct {
	Submit  *submit.Handler
	Staging *staging.Handler
	Status  *status.Handler
	Pages   *pages.Pages
	Admin   *admin.Handler
	// Captcha issues the ALTCHA challenges of actions with one.
	Captcha *captcha.Verifier
	// Metrics are served at /metrics, unless MetricsElsewhere: they are
	// served on an address of their own.
	Metrics          *web.Metrics
	MetricsElsewhere bool
	// Ready answers GET /readyz (the process's dependency checks); nil
	// answers ready always.
	Ready http.Handler
}

// Register adds every route of the API to e.
func Register(e *echo.Echo, p Parts) error {
	if err := p.defaults(); err != nil {
		return err
	}
	ready := p.Ready
	if ready == nil {
		ready = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"ok":true,"checks":{}}` + "\n"))
		})
	}
	e.GET("/healthz", Healthz)
	e.GET("/readyz", echo.WrapHandler(ready))
	if !p.MetricsElsewhere {
		e.GET("/metrics", echo.WrapHandler(p.Metrics.Handler()))
	}
	e.GET(openapi.Path, echo.WrapHandler(openapi.Handler()))

	e.POST("/actions/:name", p.Submit.Submit)
	e.GET("/actions/:name/schema", p.Pages.Schema)
	e.GET("/actions/:name/schema.json", p.Pages.JSONSchema)
	e.GET("/actions/:name/stamp", p.Pages.Stamp)
	e.GET("/actions/:name/challenge", p.Captcha.Challenge)
	e.GET(pages.AltchaPath+":file", pages.AltchaAsset)
	e.GET("/actions/:name/state/:token", p.Submit.State)
	e.GET(pages.ScriptPath, pages.Script)
	e.GET(pages.TusPath, pages.TusScript)
	e.GET(pages.ReactPath, pages.ReactScript)
	e.GET(pages.FaviconPath, pages.Favicon())
	e.GET(pages.OfflinePath, pages.Asset(client.OfflineJS))
	e.GET(pages.WorkerPath, pages.Asset(client.WorkerJS))
	e.GET(pages.StylePath, pages.Asset(client.StyleCSS))
	for lang, a := range client.Languages {
		e.GET(pages.LanguagePath(lang), pages.Asset(a))
	}
	e.GET("/forms/:name", p.Pages.Form)
	e.GET("/forms/:name/done", p.Pages.Done)
	e.POST("/uploads", p.Staging.Upload)
	e.POST("/uploads/presign", p.Staging.Presign)
	e.OPTIONS(staging.TusPath, p.Staging.TusOptions, web.JSONOnly)
	e.POST(staging.TusPath, p.Staging.TusCreate, web.JSONOnly)
	e.OPTIONS(staging.TusPath+":id", p.Staging.TusOptions, web.JSONOnly)
	e.HEAD(staging.TusPath+":id", p.Staging.TusHead, web.JSONOnly)
	e.PATCH(staging.TusPath+":id", p.Staging.TusPatch, web.JSONOnly)
	e.DELETE(staging.TusPath+":id", p.Staging.TusDelete, web.JSONOnly)
	e.GET("/submissions/:id", p.Status.SubmissionStatus)
	e.GET("/submissions/:id/events", p.Status.SubmissionEvents)
	e.GET("/events", p.Status.Events)

	// Every admin route refuses cross-site requests first: browsers may
	// hold the dashboard's Basic credentials and send them on their own.
	// Then the sign-in finds the person (the token, a trusted proxy's
	// headers), and each route names the least role it needs: viewers
	// read, admins also export, erase and redeliver.
	a := p.Admin
	signIn := []echo.MiddlewareFunc{a.SameOrigin(), a.SignIn()}
	viewer, adminOnly := admin.Allow(admin.RoleViewer), admin.Allow(admin.RoleAdmin)
	group := e.Group("/admin", signIn...)
	group.POST("/bind", a.Bind, adminOnly)
	group.GET("/submissions", a.Submissions, viewer)
	group.GET("/submissions/export", a.Export, adminOnly)
	group.GET("/submissions/:id", a.Submission, viewer)
	group.DELETE("/submissions/:id", a.EraseSubmission, adminOnly)
	group.POST("/submissions/:id/redeliver", a.Redeliver, adminOnly)
	group.POST("/submissions/:id/release", a.ReleaseSpam, adminOnly)
	group.POST("/submissions/:id/confirm", a.ConfirmSpam, adminOnly)
	group.POST("/submissions/:id/mark", a.MarkSpam, adminOnly)
	group.DELETE("/submissions", a.ErasePersonal, adminOnly)
	group.GET("/audit", a.Audit, adminOnly)
	// The inbox pages and the queue dashboard are for browsers, which
	// sign in the same ways (the token as Basic auth's password).
	// Bulk marks are a viewer's; a bulk erasure checks for an admin.
	e.GET(admin.InboxPath, a.InboxPage, append(signIn, viewer)...)
	e.GET(admin.AuditPagePath, a.AuditLogPage, append(signIn, adminOnly)...)
	e.GET(admin.InboxPath+"/:id", a.InboxDetailPage, append(signIn, viewer)...)
	e.GET(admin.InboxPath+"/:id/delete", a.InboxConfirmPage, append(signIn, adminOnly)...)
	e.POST(admin.InboxPath+"/:id/delete", a.InboxErase, append(signIn, adminOnly)...)
	e.POST(admin.InboxPath+"/bulk", a.InboxBulk, append(signIn, viewer)...)
	e.POST(admin.InboxPath+"/:id/redeliver", a.InboxRedeliver, append(signIn, adminOnly)...)
	e.POST(admin.InboxPath+"/:id/spam", a.InboxSpam, append(signIn, adminOnly)...)
	// formq's own OIDC sign-in (404 unless configured).
	e.GET(admin.SignInPath, a.OIDCSignIn)
	e.GET(admin.CallbackPath, a.OIDCCallback)
	e.POST(admin.SignOutPath, a.OIDCSignOut, a.SameOrigin())
	e.Any(admin.QueuesPath, a.Queues, append(signIn, adminOnly)...)
	e.Any(admin.QueuesPath+"/*", a.Queues, append(signIn, adminOnly)...)
	return nil
}

// defaults builds the parts not given, with empty configurations.
func (p *Parts) defaults() error {
	var err error
	if p.Submit == nil {
		if p.Submit, err = submit.New(submit.Config{}, submit.Deps{}); err != nil {
			return err
		}
	}
	if p.Staging == nil {
		if p.Staging, err = staging.New(staging.Config{}, nil, nil, nil, nil, nil, nil); err != nil {
			return err
		}
	}
	if p.Captcha == nil {
		if p.Captcha, err = captcha.New(captcha.Config{}, actions.NewRegistry(), nil); err != nil {
			return err
		}
	}
	if p.Status == nil {
		p.Status = status.New(status.Config{}, status.Deps{})
	}
	if p.Pages == nil {
		if p.Pages, err = pages.New(pages.Config{}, pages.Deps{}); err != nil {
			return err
		}
	}
	if p.Admin == nil {
		if p.Admin, err = admin.New(admin.Config{}, admin.Deps{}); err != nil {
			return err
		}
	}
	return nil
}

// Healthz handles GET /healthz: the process is alive.
func Healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]any{"ok": true})
}
