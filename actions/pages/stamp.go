package pages

import (
	"fmt"
	"net/http"
	"time"

	"github.com/formq/formq/actions"
	"github.com/formq/formq/actions/web"
	"github.com/labstack/echo/v4"
)

// Stamp answers GET /actions/{name}/stamp: a sealed render time, the
// _rendered field a page of its own (or client.js) posts with a form of
// an action with min_fill_time. Every known action answers; one without
// min_fill_time ignores the field. It is never cached, since the stamp is
// the time of the request.
func (h *Pages) Stamp(c echo.Context) error {
	web.JSONErrors(c)
	a, ok := h.actions.Get(c.Param("name"))
	if !ok {
		return web.ErrActionNotFound
	}
	if h.sealer == nil {
		return web.ErrUnavailable.With(fmt.Errorf("no sealer for render stamps"))
	}
	tok, err := web.SealRendered(h.sealer, a, h.now())
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

// renderStamp is what a hosted form of an action with min_fill_time
// carries in _rendered: its render time, sealed.
func (h *Pages) renderStamp(a *actions.Action) string {
	if a.MinFillTime <= 0 || h.sealer == nil {
		return ""
	}
	tok, err := web.SealRendered(h.sealer, a, h.now())
	if err != nil {
		h.log.Error("could not seal a render time", "action", a.Name, "err", err)
		return ""
	}
	return tok
}

func (h *Pages) now() time.Time {
	if h.cfg.Now != nil {
		return h.cfg.Now()
	}
	return time.Now()
}
