package admin

import (
	"github.com/formq/formq/actions/web"
	"github.com/labstack/echo/v4"
)

// QueuesPath is where the queue dashboard (asynqmon) is mounted.
const QueuesPath = "/admin/queues"

// Queues serves the queue dashboard to admins. Browsers cannot send a
// bearer token by themselves, so the sign-in also takes the token as the
// password of HTTP Basic authentication (see SignIn).
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
