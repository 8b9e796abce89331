package status

// What the app answered, as the status shows it: a completed submission's
// message and redirect filled in with its steps' data; a rejected one's
// errors beside the declared fields and its kept files sealed for the
// resend.

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"time"

	"github.com/formq/formq/actions"
	"github.com/formq/formq/actions/staging"
	"github.com/formq/formq/actions/web"
	"github.com/formq/formq/submission"
	"github.com/labstack/echo/v4"
)

// RecordReader reads a stored submission record, for the field
// placeholders of a completed submission's message and redirect;
// *uploads.Objects is the implementation.
type RecordReader interface {
	Get(ctx context.Context, key string) ([]byte, error)
}

// present fills in what the app answered, for the action as it is
// declared now.
func (h *Handler) present(c echo.Context, st *submission.Status) {
	a, ok := h.actions.Get(st.Action)
	if !ok {
		return
	}
	switch st.Status {
	case submission.StatusRejected:
		st.Errors, st.Message = web.AppErrors(a, st)
		st.Kept = staging.KeepStaged(h.sealer, a, st.Staged, time.Now())
	case submission.StatusCompleted:
		if len(st.Data) == 0 && !actions.UsesStepData(a.Message) && !actions.UsesStepData(a.Redirect) {
			return
		}
		sub := &submission.Submission{ID: st.ID, Action: st.Action}
		message, redirect := fill(a, sub, st.Data)
		if strings.Contains(message+redirect, "{") && h.records != nil {
			// Field placeholders: their values are in the stored record.
			if stored := h.record(c.Request().Context(), st); stored != nil {
				message, redirect = fill(a, stored, st.Data)
			}
		}
		st.Message = message
		if redirect != "" {
			st.Redirect = h.site.Absolute(c, redirect)
		}
	}
}

// fill expands the action's message and redirect (not its own done page,
// which needs no data).
func fill(a *actions.Action, sub *submission.Submission, data map[string]map[string]string) (message, redirect string) {
	message = actions.Expand(a.Message, sub, data, func(s string) string { return s })
	if a.Redirect != "" && !strings.HasPrefix(a.Redirect, "/forms/"+a.Name+"/done") {
		redirect = actions.Expand(a.Redirect, sub, data, url.QueryEscape)
	}
	return message, redirect
}

// record reads a submission's stored record, or nil.
func (h *Handler) record(ctx context.Context, st *submission.Status) *submission.Submission {
	b, err := h.records.Get(ctx, submission.RecordKey(st.Action, st.ID))
	if err != nil {
		h.log.DebugContext(ctx, "no record for a completed submission's message", "submission", st.ID, "err", err)
		return nil
	}
	var sub submission.Submission
	if err := json.Unmarshal(b, &sub); err != nil {
		return nil
	}
	return &sub
}
