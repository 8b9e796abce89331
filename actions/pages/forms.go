package pages

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/formq/formq/actions"
	"github.com/formq/formq/actions/web"
	"github.com/formq/formq/submission"

	"github.com/labstack/echo/v4"
)

// Form handles GET /forms/{name}: the hosted form of an action, with a
// fresh idempotency key so a double-clicked submit creates one submission.
func (h *Pages) Form(c echo.Context) error {
	a, ok := h.actions.Get(c.Param("name"))
	if !ok {
		return web.ErrActionNotFound
	}
	return h.renderForm(c, http.StatusOK, &FormData{
		Action: a, ActionURL: h.site.URL("/actions/" + a.Name),
		IdempotencyKey: newIdempotencyKey(),
		Bound:          c.QueryParam(web.FieldBound),
	})
}

// Done handles GET /forms/{name}/done, the default success page.
func (h *Pages) Done(c echo.Context) error {
	a, ok := h.actions.Get(c.Param("name"))
	if !ok {
		return web.ErrActionNotFound
	}
	id := c.QueryParam("submission")
	// Like the statusUrl, the page needs the submission's capability (t=)
	// or the admin token: without them, 404 as for an unknown id.
	if h.status == nil {
		return web.ErrSubmissionMissing
	}
	st, err := h.status.View(c, id)
	if err != nil {
		return err // 404 submission_not_found for an id formq does not know
	}
	if st.Action != a.Name {
		return web.ErrSubmissionMissing
	}
	if st.Status == submission.StatusRejected {
		// The app refused it: the filled form again, with the app's errors
		// and the files kept, to fix and send again.
		return h.renderForm(c, http.StatusOK, &FormData{
			Action: a, ActionURL: h.site.URL("/actions/" + a.Name), IdempotencyKey: newIdempotencyKey(),
			Failed: Failed{Values: h.sentValues(c.Request().Context(), a, st.ID), Errors: st.Errors, Message: st.Message, Kept: st.Kept},
		})
	}
	return h.renderDone(c, a, st, h.backTo(c, a, id))
}

// backTo is the page the submission was posted from, as its capability
// (t=) keeps it, when that page is still on an allowed origin of the
// action; empty otherwise (the done page then links to the hosted form).
func (h *Pages) backTo(c echo.Context, a *actions.Action, id string) string {
	cp, ok := web.OpenCapability(h.sealer, c.QueryParam("t"), id)
	if !ok || cp.Back == "" {
		return ""
	}
	if back, err := h.site.RedirectTarget(c, a, "Referer", cp.Back); err == nil {
		return back
	}
	return ""
}

// sentValues are the values a stored submission was sent with, as a
// re-rendered form shows them: declared fields only, never sensitive ones;
// none when the record cannot be read.
func (h *Pages) sentValues(ctx context.Context, a *actions.Action, id string) map[string][]string {
	out := map[string][]string{}
	if h.records == nil {
		return out
	}
	b, err := h.records.Get(ctx, submission.RecordKey(a.Name, id))
	var rec struct {
		Values map[string]any `json:"values"`
	}
	if err == nil {
		err = json.Unmarshal(b, &rec)
	}
	if err != nil {
		h.log.DebugContext(ctx, "no record for a refused submission's values", "submission", id, "err", err)
		return out
	}
	for _, f := range a.Fields {
		v, ok := rec.Values[f.Name]
		if !ok || f.Sensitive() {
			continue
		}
		list, many := v.([]any)
		if !many {
			list = []any{v}
		}
		for _, x := range list {
			switch x := x.(type) {
			case nil:
			case string:
				out[f.Name] = append(out[f.Name], x)
			case float64:
				out[f.Name] = append(out[f.Name], strconv.FormatFloat(x, 'f', -1, 64))
			default:
				out[f.Name] = append(out[f.Name], fmt.Sprint(x))
			}
		}
	}
	return out
}

// statusText is a status as the done page first shows it.
func statusText(lang, s string) string {
	if s == "" {
		return ""
	}
	if w, ok := words["en"][s]; ok && w != "" {
		return word(lang, s)
	}
	return upperFirst(s)
}

// Schema handles GET /actions/{name}/schema: the public part of the
// action's declaration (fields, rules, messages, upload limits), for
// client.js and for front ends of your own. Secrets, bound values, auth,
// origins, rate limits and steps are never in it.
func (h *Pages) Schema(c echo.Context) error {
	web.JSONErrors(c)
	a, ok := h.actions.Get(c.Param("name"))
	if !ok {
		return web.ErrActionNotFound
	}
	ans := schemaAnswer{Public: a.Public(h.site.Link(c, "/actions/"+a.Name), h.theme(a))}
	hd := c.Response().Header()
	if origin := c.Request().Header.Get(echo.HeaderOrigin); origin != "" {
		// Tell the asking page whether it may post, so client.js can say
		// why before sending anything.
		ans.Origin = &originInfo{Allowed: true}
		guard, err := h.gate.Guard(a)
		if err != nil {
			return err
		}
		probe := c.Request().Clone(c.Request().Context())
		probe.Method = http.MethodPost
		if err := guard.Check(probe, a.Name); err != nil {
			ans.Origin = &originInfo{Message: web.AsError(err).Message}
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
