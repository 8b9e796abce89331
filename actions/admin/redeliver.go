package admin

// Redelivery: the admin runs a stored submission's webhook steps again,
// from the JSON API or the inbox page.

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/formq/formq/actions/web"
	"github.com/formq/formq/internal/audit"
	"github.com/formq/formq/submission"
	"github.com/labstack/echo/v4"
)

// Redeliverer queues webhook steps of a finished submission to run again
// with their first webhook-id; *jobs.Redeliverer is the implementation. step
// counts from 1; 0 means every webhook step. It answers the steps queued.
type Redeliverer interface {
	Redeliver(ctx context.Context, sub *submission.Submission, step int) ([]int, error)
}

// Errors of a redelivery.
var (
	ErrRedeliverBusy    = &web.Error{Status: http.StatusConflict, Code: "submission_busy", Message: "The submission is still queued or being processed; redeliver once it is done.", RetryAfter: 5 * time.Second}
	ErrNotRedeliverable = &web.Error{Status: http.StatusUnprocessableEntity, Code: "not_redeliverable", Message: "That step posts no webhook, so it cannot be delivered again."}
)

// Redelivered is the JSON of a queued redelivery (202).
type Redelivered struct {
	OK         bool `json:"ok"`
	Submission struct {
		ID        string `json:"id"`
		StatusURL string `json:"statusUrl"`
	} `json:"submission"`
	Steps []int `json:"steps"` // the steps queued, from 1
}

// Redeliver handles POST /admin/submissions/{id}/redeliver
// (?step=N): the webhook step N, or every webhook step, runs again.
func (h *Handler) Redeliver(c echo.Context) error {
	id := c.Param("id")
	steps, err := h.redeliver(c.Request().Context(), id, c.QueryParam("step"))
	if err != nil {
		return err
	}
	h.record(c, audit.Redeliver, "", len(steps), stepsDetail(steps), id)
	a := Redelivered{OK: true, Steps: steps}
	a.Submission.ID, a.Submission.StatusURL = id, h.site.Link(c, "/submissions/"+id)
	c.Response().Header().Set("Location", a.Submission.StatusURL)
	return c.JSON(http.StatusAccepted, a)
}

// InboxRedeliver handles POST /admin/inbox/{id}/redeliver from the
// detail page's Redeliver button, then shows the page again (303).
func (h *Handler) InboxRedeliver(c echo.Context) error {
	id := c.Param("id")
	if strings.ContainsAny(id, "/?#") {
		return web.ErrBadRequest.With(nil, "bad submission id")
	}
	step := c.FormValue("step")
	steps, err := h.redeliver(c.Request().Context(), id, step)
	if err != nil {
		return err
	}
	h.record(c, audit.Redeliver, "", len(steps), stepsDetail(steps), id)
	v := url.Values{"redelivered": {step}}
	if step == "" {
		v.Set("redelivered", "all")
	}
	return c.Redirect(http.StatusSeeOther, h.site.URL(InboxPath+"/"+url.PathEscape(id)+"?"+v.Encode()))
}

func (h *Handler) redeliver(ctx context.Context, id, rawStep string) ([]int, error) {
	inbox, err := h.index()
	if err != nil {
		return nil, err
	}
	if h.redeliveries == nil {
		return nil, web.ErrNotFound.With(errors.New("no redelivery"))
	}
	step := 0
	if rawStep != "" {
		n, err := strconv.Atoi(rawStep)
		if err != nil || n < 1 {
			return nil, web.ErrBadRequest.With(err, "step: want the step's number, counted from 1 as in the status.")
		}
		step = n
	}
	sub, err := inbox.Record(ctx, id)
	if errors.Is(err, submission.ErrNotFound) {
		return nil, web.ErrSubmissionMissing.With(err)
	}
	if err != nil {
		return nil, web.ErrUnavailable.With(err)
	}
	steps, err := h.redeliveries.Redeliver(ctx, sub, step)
	switch {
	case errors.Is(err, submission.ErrBusy):
		return nil, ErrRedeliverBusy.With(err)
	case errors.Is(err, submission.ErrNotRedeliverable):
		return nil, ErrNotRedeliverable.With(err, "Only webhook steps (webhook, revalidate, next) can be delivered again: "+strings.TrimPrefix(err.Error(), submission.ErrNotRedeliverable.Error()+": ")+".")
	case errors.Is(err, submission.ErrNotFound):
		return nil, ErrNotRedeliverable.With(err, "The submission's step history has expired, so its steps cannot be run again.")
	case err != nil:
		return nil, web.ErrUnavailable.With(err)
	}
	h.log.InfoContext(ctx, "redelivery queued", "submission", id, "steps", steps)
	return steps, nil
}

// stepsDetail names the steps of a redelivery in the audit log.
func stepsDetail(steps []int) string {
	parts := make([]string, len(steps))
	for i, s := range steps {
		parts[i] = strconv.Itoa(s)
	}
	return "steps " + strings.Join(parts, ", ")
}
