package admin

import (
	"net/http"

	"github.com/formq/formq/actions/web"
	"github.com/labstack/echo/v4"
)

// QueuesPath is where the queue dashboard (asynqmon) is mounted.
const QueuesPath = "/admin/queues"

// Queues serves the queue dashboard behind the admin token. Browsers
// cannot send a bearer token by themselves, so the admin middleware also
// takes the token as the password of HTTP Basic authentication here (see
// BasicAsBearer).
func (h *Handler) Queues(c echo.Context) error {
	if h.queues == nil {
		return web.ErrNotFound
	}
	// No other site may frame the dashboard (its buttons delete and
	// retry tasks) nor make a browser read its files as another type.
	hd := c.Response().Header()
	hd.Set("Content-Security-Policy", "frame-ancestors 'none'")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	h.queues.ServeHTTP(c.Response(), c.Request())
	return nil
}

// BasicAsBearer lets browsers reach the dashboard: the password of HTTP
// Basic authentication is taken as the bearer token, and a refusal asks
// the browser for it.
func BasicAsBearer(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		if _, pass, ok := req.BasicAuth(); ok {
			req.Header.Set("Authorization", "Bearer "+pass)
		}
		err := next(c)
		if err != nil && web.AsError(err).Status == http.StatusUnauthorized {
			c.Response().Header().Set("WWW-Authenticate", `Basic realm="formq admin", charset="UTF-8"`)
		}
		return err
	}
}
