package handler

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// Form handles GET /forms/{name}: the hosted form of an action, with a
// fresh idempotency key so a double-clicked submit creates one submission.
func (h *Handler) Form(c echo.Context) error {
	a, ok := h.Actions.Get(c.Param("name"))
	if !ok {
		return ErrActionNotFound
	}
	return h.Pages.Form(c, http.StatusOK, &FormData{
		Action: a, ActionURL: h.Pages.URL("/actions/" + a.Name),
		IdempotencyKey: newIdempotencyKey(),
		Bound:          c.QueryParam(FieldBound),
	})
}

// Done handles GET /forms/{name}/done, the default success page.
func (h *Handler) Done(c echo.Context) error {
	a, ok := h.Actions.Get(c.Param("name"))
	if !ok {
		return ErrActionNotFound
	}
	return h.Pages.Done(c, a, c.QueryParam("submission"))
}

// Check is one readiness dependency, such as Redis or S3.
type Check func(ctx context.Context) error

// Ready handles GET /readyz: 200 when every dependency answers, else 503
// naming the ones that did not.
func Ready(checks map[string]Check) echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
		defer cancel()
		status := map[string]string{}
		ok := true
		for name, check := range checks {
			if err := check(ctx); err != nil {
				status[name] = "unavailable"
				ok = false
			} else {
				status[name] = "ok"
			}
		}
		code := http.StatusOK
		if !ok {
			code = http.StatusServiceUnavailable
		}
		return c.JSON(code, map[string]any{"ok": ok, "checks": status})
	}
}

// Healthz handles GET /healthz: the process is alive.
func Healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]any{"ok": true})
}
