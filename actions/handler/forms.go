package handler

import (
	"net/http"

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

// Healthz handles GET /healthz: the process is alive.
func Healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]any{"ok": true})
}
