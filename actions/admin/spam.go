package admin

// The Spam folder: an admin releases a held submission (its steps then
// run, once), confirms it is spam, or marks any submission as spam or
// not; each teaches the spam model.

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/formq/formq/actions/web"
	"github.com/formq/formq/submission"
	"github.com/labstack/echo/v4"
)

// SpamFolder is what the admin side changes of spam verdicts and the
// model; *jobs.Index is the implementation.
type SpamFolder interface {
	Verdict(ctx context.Context, id string) (*submission.Spam, error)
	Decide(ctx context.Context, id, verdict string, now time.Time) (*submission.Spam, error)
	Unrelease(ctx context.Context, id string, v *submission.Spam) error
	Learn(ctx context.Context, id string, values map[string]any, isSpam bool) error
	SpamCount(ctx context.Context) (int64, error)
}

// Releaser queues a released submission's steps under a task of its own,
// once; *jobs.Releaser is the implementation.
type Releaser interface {
	Release(ctx context.Context, sub *submission.Submission) error
}

// ErrNotHeld answers a release or confirmation of a submission that is
// not waiting in the Spam folder (never spam, or decided already).
var ErrNotHeld = &web.Error{Status: http.StatusConflict, Code: "not_held", Message: "The submission is not waiting in the Spam folder: it was released or confirmed already, or never held."}

// SpamDecision is the JSON of a release, confirmation or mark.
type SpamDecision struct {
	OK         bool   `json:"ok"`
	Submission string `json:"submission"`
	// Spam is the verdict now.
	Spam *submission.Spam `json:"spam"`
}

// ReleaseSpam handles POST /admin/submissions/{id}/release: a held
// submission leaves the Spam folder for the inbox and its steps run,
// once; the model learns it is not spam.
func (h *Handler) ReleaseSpam(c echo.Context) error {
	return h.decideJSON(c, submission.SpamReleased)
}

// ConfirmSpam handles POST /admin/submissions/{id}/confirm: a held
// submission stays in the Spam folder as confirmed spam until its time
// there ends; the model learns it is spam.
func (h *Handler) ConfirmSpam(c echo.Context) error {
	return h.decideJSON(c, submission.SpamConfirmed)
}

func (h *Handler) decideJSON(c echo.Context, verdict string) error {
	id := c.Param("id")
	v, err := h.decide(c.Request().Context(), id, verdict)
	if err != nil {
		return err
	}
	h.recordSpam(c, verdict, id)
	return c.JSON(http.StatusOK, SpamDecision{OK: true, Submission: id, Spam: v})
}

// decide releases or confirms a held submission.
func (h *Handler) decide(ctx context.Context, id, verdict string) (*submission.Spam, error) {
	if h.releaser == nil {
		return nil, web.ErrNotFound.With(errors.New("no spam folder"))
	}
	sub, err := h.spamRecord(ctx, id)
	if err != nil {
		return nil, err
	}
	v, err := h.spam.Decide(ctx, id, verdict, h.now())
	switch {
	case errors.Is(err, submission.ErrNotFound):
		return nil, web.ErrSubmissionMissing.With(err)
	case errors.Is(err, submission.ErrNotHeld):
		return nil, ErrNotHeld.With(err)
	case err != nil:
		return nil, web.ErrUnavailable.With(err)
	}
	if verdict == submission.SpamReleased {
		sub.Spam = v
		if err := h.releaser.Release(ctx, sub); err != nil {
			if uerr := h.spam.Unrelease(context.WithoutCancel(ctx), id, v); uerr != nil {
				h.log.ErrorContext(ctx, "a release could not be queued nor undone", "submission", id, "err", uerr)
			}
			return nil, web.ErrUnavailable.With(err)
		}
	}
	if err := h.spam.Learn(context.WithoutCancel(ctx), id, sub.Values, verdict == submission.SpamConfirmed); err != nil {
		h.log.WarnContext(ctx, "the spam model could not learn from a decision", "submission", id, "err", err)
	}
	h.log.InfoContext(ctx, "spam decided", "submission", id, "verdict", verdict)
	return v, nil
}

// MarkSpam handles POST /admin/submissions/{id}/mark?spam=true|false:
// the model learns the submission is spam or not (once per submission:
// marking it again the other way moves it). Nothing else changes.
func (h *Handler) MarkSpam(c echo.Context) error {
	id := c.Param("id")
	isSpam, err := strconv.ParseBool(c.QueryParam("spam"))
	if err != nil {
		return web.ErrBadRequest.With(err, "spam: want true or false.")
	}
	v, err := h.mark(c.Request().Context(), id, isSpam)
	if err != nil {
		return err
	}
	h.recordSpam(c, strconv.FormatBool(isSpam), id)
	return c.JSON(http.StatusOK, SpamDecision{OK: true, Submission: id, Spam: v})
}

func (h *Handler) mark(ctx context.Context, id string, isSpam bool) (*submission.Spam, error) {
	sub, err := h.spamRecord(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := h.spam.Learn(ctx, id, sub.Values, isSpam); err != nil {
		return nil, web.ErrUnavailable.With(err)
	}
	v, err := h.spam.Verdict(ctx, id)
	if err != nil {
		return nil, web.ErrUnavailable.With(err)
	}
	return v, nil
}

// spamRecord reads the record of a submission the Spam folder's routes
// act on.
func (h *Handler) spamRecord(ctx context.Context, id string) (*submission.Submission, error) {
	inbox, err := h.index()
	if err != nil {
		return nil, err
	}
	if h.spam == nil {
		return nil, web.ErrNotFound.With(errors.New("no spam folder"))
	}
	sub, err := inbox.Record(ctx, id)
	if errors.Is(err, submission.ErrNotFound) {
		return nil, web.ErrSubmissionMissing.With(err)
	}
	if err != nil {
		return nil, web.ErrUnavailable.With(err)
	}
	return sub, nil
}

// InboxSpam handles POST /admin/inbox/{id}/spam from the detail page's
// buttons (do=release, confirm, spam or ham), then shows the page again.
func (h *Handler) InboxSpam(c echo.Context) error {
	id := c.Param("id")
	if strings.ContainsAny(id, "/?#") {
		return web.ErrBadRequest.With(nil, "bad submission id")
	}
	ctx := c.Request().Context()
	do := c.FormValue("do")
	var err error
	switch do {
	case "release":
		_, err = h.decide(ctx, id, submission.SpamReleased)
	case "confirm":
		_, err = h.decide(ctx, id, submission.SpamConfirmed)
	case "spam", "ham":
		_, err = h.mark(ctx, id, do == "spam")
	default:
		return web.ErrBadRequest.With(nil, "do: want release, confirm, spam or ham.")
	}
	if err != nil {
		return err
	}
	h.recordSpam(c, map[string]string{"release": submission.SpamReleased, "confirm": submission.SpamConfirmed, "spam": "true", "ham": "false"}[do], id)
	return c.Redirect(http.StatusSeeOther, h.site.URL(InboxPath+"/"+url.PathEscape(id)+"?"+url.Values{"spam": {do}}.Encode()))
}
