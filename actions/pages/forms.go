package handler

import (
	"net/http"
	"strings"

	"github.com/formq/formq/actions"

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
	id := c.QueryParam("submission")
	// Like the statusUrl, the page needs the submission's capability (t=)
	// or the admin token: without them, 404 as for an unknown id.
	v, err := h.statusViewer(c, id)
	if err != nil {
		return err
	}
	st, err := h.viewStatus(c, id, v)
	if err != nil {
		return err // 404 submission_not_found for an id formq does not know
	}
	if st.Action != a.Name {
		return ErrSubmissionMissing
	}
	return h.Pages.Done(c, a, id, st.StatusURL, statusText(st.Status))
}

// statusText is a status as the done page first shows it.
func statusText(s string) string {
	if s == "" {
		return ""
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// Healthz handles GET /healthz: the process is alive.
func Healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]any{"ok": true})
}

// Schema handles GET /actions/{name}/schema: the public part of the
// action's declaration (fields, rules, messages, upload limits), for
// client.js and for front ends of your own. Secrets, bound values, auth,
// origins, rate limits and steps are never in it.
func (h *Handler) Schema(c echo.Context) error {
	jsonErrors(c)
	a, ok := h.Actions.Get(c.Param("name"))
	if !ok {
		return ErrActionNotFound
	}
	ans := schemaAnswer{Public: a.Public(h.link(c, "/actions/"+a.Name), h.Pages.theme(a))}
	hd := c.Response().Header()
	if origin := c.Request().Header.Get(echo.HeaderOrigin); origin != "" {
		// Tell the asking page whether it may post, so client.js can say
		// why before sending anything.
		ans.Origin = &originInfo{Allowed: true}
		guard, err := h.originGuard(a)
		if err != nil {
			return err
		}
		probe := c.Request().Clone(c.Request().Context())
		probe.Method = http.MethodPost
		if err := guard.check(probe, a.Name); err != nil {
			ans.Origin = &originInfo{Message: AsError(err).Message}
		}
		hd.Add(echo.HeaderVary, echo.HeaderOrigin)
		hd.Set("Cache-Control", "private, max-age=60")
	} else {
		hd.Set("Cache-Control", "public, max-age=60")
	}
	if hd.Get(echo.HeaderAccessControlAllowOrigin) == "" {
		hd.Set(echo.HeaderAccessControlAllowOrigin, "*") // public, read without credentials
	}
	return c.JSON(http.StatusOK, ans)
}

// schemaAnswer is the JSON of GET /actions/{name}/schema.
type schemaAnswer struct {
	actions.Public
	// Origin says whether the page asking (its Origin header) may post.
	Origin *originInfo `json:"origin,omitempty"`
}

type originInfo struct {
	Allowed bool   `json:"allowed"`
	Message string `json:"message,omitempty"`
}
