package handler

import (
	"net/http"

	"github.com/formq/formq/internal/openapi"
	"github.com/labstack/echo/v4"
)

// Routes lists every route of the API. ready answers GET /readyz (the
// process's dependency checks); nil answers ready always.
func Routes(e *echo.Echo, h *Handler, ready http.Handler, adminToken string) {
	if ready == nil {
		ready = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"ok":true,"checks":{}}` + "\n"))
		})
	}
	e.GET("/healthz", Healthz)
	e.GET("/readyz", echo.WrapHandler(ready))
	if !h.MetricsElsewhere {
		e.GET("/metrics", echo.WrapHandler(h.Metrics.Handler()))
	}
	e.GET(openapi.Path, echo.WrapHandler(openapi.Handler()))

	e.POST("/actions/:name", h.Submit)
	e.GET("/actions/:name/schema", h.Schema)
	e.GET("/actions/:name/stamp", h.Stamp)
	e.GET("/actions/:name/state/:token", h.State)
	e.GET(ScriptPath, Script)
	e.GET("/forms/:name", h.Form)
	e.GET("/forms/:name/done", h.Done)
	e.POST("/uploads", h.Upload)
	e.POST("/uploads/presign", h.Presign)
	e.POST(TusPath, h.TusCreate)
	e.HEAD(TusPath+":id", h.TusHead)
	e.PATCH(TusPath+":id", h.TusPatch)
	e.GET("/submissions/:id", h.SubmissionStatus)
	e.GET("/submissions/:id/events", h.SubmissionEvents)
	e.GET("/events", h.Events)

	// Every admin route refuses cross-site requests first: browsers may
	// hold the dashboard's Basic credentials and send them on their own.
	sameOrigin := h.AdminOrigin()
	admin := e.Group("/admin", sameOrigin, RequireAdmin(adminToken))
	admin.POST("/bind", h.AdminBind)
	admin.GET("/submissions", h.AdminSubmissions)
	admin.GET("/submissions/export", h.AdminExport)
	admin.GET("/submissions/:id", h.AdminSubmission)
	admin.DELETE("/submissions/:id", h.AdminEraseSubmission)
	admin.POST("/submissions/:id/redeliver", h.AdminRedeliver)
	admin.DELETE("/submissions", h.AdminErasePersonal)
	// The queue dashboard also takes the token by Basic auth, for browsers.
	queues := []echo.MiddlewareFunc{sameOrigin, BasicAsBearer, RequireAdmin(adminToken)}
	// The inbox pages, like the dashboard, take the token by Basic auth too.
	e.GET(InboxPath, h.InboxPage, queues...)
	e.GET(InboxPath+"/:id", h.InboxDetailPage, queues...)
	e.GET(InboxPath+"/:id/delete", h.InboxConfirmPage, queues...)
	e.POST(InboxPath+"/:id/delete", h.InboxErase, queues...)
	e.POST(InboxPath+"/:id/redeliver", h.InboxRedeliver, queues...)
	e.Any(QueuesPath, h.AdminQueues, queues...)
	e.Any(QueuesPath+"/*", h.AdminQueues, queues...)
}
