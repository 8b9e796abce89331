package handler

import (
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"
)

// Stamp answers GET /actions/{name}/stamp: a sealed render time, the
// _rendered field a page of its own (or client.js) posts with a form of
// an action with min_fill_time. Every known action answers; one without
// min_fill_time ignores the field. It is never cached, since the stamp is
// the time of the request.
func (h *Handler) Stamp(c echo.Context) error {
	jsonErrors(c)
	a, ok := h.Actions.Get(c.Param("name"))
	if !ok {
		return ErrActionNotFound
	}
	if h.Sealer == nil {
		return ErrUnavailable.With(fmt.Errorf("no sealer for render stamps"))
	}
	tok, err := h.sealRendered(a)
	if err != nil {
		return fmt.Errorf("seal a render stamp for %s: %w", a.Name, err)
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, stampAnswer{Rendered: tok})
}

// stampAnswer is the JSON of GET /actions/{name}/stamp.
type stampAnswer struct {
	Rendered string `json:"rendered"`
}
