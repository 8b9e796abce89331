package submit

// Answers that wait (an action's wait:): the answer goes out once the
// submission's steps ended, with what the app answered.

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/formq/formq/actions"
	"github.com/formq/formq/actions/staging"
	"github.com/formq/formq/actions/web"
	"github.com/formq/formq/submission"
	"github.com/labstack/echo/v4"
)

// Waiter holds an answer until a submission ends: it returns the status
// once final, or as it stands when d ran out; *jobs.Waiter, on the
// process's events hub.
type Waiter interface {
	Wait(ctx context.Context, id string, d time.Duration) (*submission.Status, error)
}

// waitAnswer waits for the submission s accepted and answers it when it
// ended within the action's wait: completed, the success answer with the
// steps' data; rejected by the app, exactly what a validation failure
// answers. Otherwise (the wait ran out, the waiters are full, it failed)
// done is false and the usual 202 goes out.
func (h *Handler) waitAnswer(c echo.Context, s *intake) (done bool, err error) {
	ctx := c.Request().Context()
	st, werr := h.waiter.Wait(ctx, s.sub.ID, s.a.Wait)
	if werr != nil || st == nil {
		if werr != nil {
			h.log.DebugContext(ctx, "answering without waiting", "submission", s.sub.ID, "why", werr)
		}
		return false, nil
	}
	switch st.Status {
	case submission.StatusCompleted:
		return true, h.completedAnswer(c, s, st)
	case submission.StatusRejected:
		return true, h.rejectedAnswer(c, s, st)
	}
	return false, nil
}

// completedAnswer is the success answer of a submission whose steps
// completed within the wait: 200 with its data, the message and redirect
// filled in with it; browsers the 303 to that redirect.
func (h *Handler) completedAnswer(c echo.Context, s *intake, st *submission.Status) error {
	var accepted Accepted
	if err := json.Unmarshal(s.accepted.Body, &accepted); err != nil {
		return web.ErrInternal.With(err)
	}
	accepted.Message = actions.Expand(s.a.Message, s.sub, st.Data, plain)
	accepted.Redirect = h.redirect(c, s.a, s.sub, s.redirect, st.Data, accepted.Redirect)
	accepted.Submission.Status = submission.StatusCompleted
	accepted.Submission.Data = st.Data
	body, err := json.Marshal(accepted)
	if err != nil {
		return web.ErrInternal.With(err)
	}
	return h.answer(c, Answer{Status: http.StatusOK, Body: body, Redirect: accepted.Redirect})
}

// rejectedAnswer answers a submission the app refused within the wait as
// a validation failure: its errors (beside declared fields, the rest in
// the message), the values sent, its files kept for the resend.
func (h *Handler) rejectedAnswer(c echo.Context, s *intake, st *submission.Status) error {
	fields, msg := web.AppErrors(s.a, st)
	e := web.ErrValidation.WithForm(s.a, fields, echoValues(s.a, s.form.values))
	e.Message = msg
	var accepted Accepted
	if err := json.Unmarshal(s.accepted.Body, &accepted); err == nil {
		e.Submission = &web.Refused{ID: s.sub.ID, Status: submission.StatusRejected, StatusURL: accepted.Submission.StatusURL}
	}
	return h.invalid(c, s, e, staging.KeepStaged(h.sealer, s.a, st.Staged, h.now()))
}

// redirect is where a completed submission sends the person: the form's
// _redirect, else the action's, with {steps.NAME.KEY} filled in; else
// fallback (the done page of the accepted answer).
func (h *Handler) redirect(c echo.Context, a *actions.Action, sub *submission.Submission, override string, data map[string]map[string]string, fallback string) string {
	switch {
	case override != "":
		return actions.Expand(override, sub, data, url.QueryEscape)
	case a.Redirect != "" && !strings.HasPrefix(a.Redirect, "/forms/"+a.Name+"/done"):
		return h.site.Absolute(c, actions.Expand(a.Redirect, sub, data, url.QueryEscape))
	}
	return fallback
}

// queueOf is the queue of an action's submissions: the waiting queue when
// someone waits for the answer (workers look at it every few ms, ahead of
// the others), else the action's own.
func queueOf(a *actions.Action) string {
	if a.Wait > 0 {
		return submission.WaitQueue
	}
	return a.Queue
}

// plain leaves a value as it is: messages are text, escaped where shown.
func plain(s string) string { return s }
