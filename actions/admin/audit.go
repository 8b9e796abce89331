package admin

// The audit log as the admin side writes and shows it: every export,
// erasure, redelivery, bulk action and sign-in, with who did it.

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"

	"github.com/formq/formq/actions/pages"
	"github.com/formq/formq/actions/web"
	"github.com/formq/formq/internal/audit"
	"github.com/formq/formq/submission"
	"github.com/labstack/echo/v4"
)

// AuditLog is where the admin side records what people did;
// *audit.Log is the implementation.
type AuditLog interface {
	Append(ctx context.Context, e audit.Entry, ids ...string) error
	FirstSignIn(ctx context.Context, who, via string) (bool, error)
	List(ctx context.Context, q audit.Query) ([]audit.Entry, string, error)
}

// AuditPagePath is the inbox's page of the audit log.
const AuditPagePath = InboxPath + "/audit"

// record appends an entry of what the request's person did about the
// submissions with these ids. The operation is done by then: a log that
// cannot be written is logged as an error, not answered.
func (h *Handler) record(c echo.Context, what, action string, count int, detail string, ids ...string) {
	if h.audit == nil {
		return
	}
	p := Me(c)
	if p == nil {
		return
	}
	ctx := c.Request().Context()
	e := audit.Entry{Who: p.Who, Role: p.Role.String(), Via: p.Via, What: what, Action: action, Count: count, Detail: detail}
	if err := h.audit.Append(ctx, e, ids...); err != nil {
		h.log.ErrorContext(ctx, "audit log not written", "what", what, "who", p.Who, "count", count, "err", err)
	}
}

// noteSignIn logs a person's sign-in, once per audit.SignInEvery for a
// person the proxy signs in (it names them on every request). The
// token signs no one in.
func (h *Handler) noteSignIn(c echo.Context, p *Person) {
	if h.audit == nil || p.Via != ViaProxy {
		return
	}
	first, err := h.audit.FirstSignIn(c.Request().Context(), p.Who, p.Via)
	if err != nil {
		h.log.ErrorContext(c.Request().Context(), "audit log not written", "what", audit.SignIn, "who", p.Who, "err", err)
		return
	}
	if first {
		h.record(c, audit.SignIn, "", 0, "")
	}
}

// recordSpam logs a spam decision: a release or confirmation (the
// verdict), or a mark for the model ("true": spam, "false": not spam).
func (h *Handler) recordSpam(c echo.Context, decision, id string) {
	switch decision {
	case submission.SpamReleased:
		h.record(c, audit.SpamRelease, "", 1, "", id)
	case submission.SpamConfirmed:
		h.record(c, audit.SpamConfirm, "", 1, "", id)
	case "true":
		h.record(c, audit.SpamMark, "", 1, "spam", id)
	case "false":
		h.record(c, audit.SpamMark, "", 1, "not spam", id)
	}
}

// AuditPage is the JSON of GET /admin/audit.
type AuditPage struct {
	OK      bool          `json:"ok"`
	Entries []audit.Entry `json:"entries"`
	// Next is the cursor (before=) of the older entries; empty at the end.
	Next string `json:"next"`
}

// Audit handles GET /admin/audit: the audit log newest first, 50 a
// page (limit= up to 500), before= a cursor, submission= only the
// entries about one submission.
func (h *Handler) Audit(c echo.Context) error {
	page, err := h.auditPage(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, page)
}

func (h *Handler) auditPage(c echo.Context) (*AuditPage, error) {
	if h.audit == nil {
		return nil, web.ErrNotFound.With(errors.New("no audit log"))
	}
	q := audit.Query{Before: c.QueryParam("before"), Submission: c.QueryParam("submission")}
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			return nil, web.ErrBadRequest.With(err, "limit: want a number from 1 to 500.")
		}
		q.Limit = n
	}
	entries, next, err := h.audit.List(c.Request().Context(), q)
	if errors.Is(err, audit.ErrBadCursor) {
		return nil, web.ErrBadRequest.With(err, "before: use the next value of a previous page.")
	}
	if err != nil {
		return nil, web.ErrUnavailable.With(err)
	}
	return &AuditPage{OK: true, Entries: entries, Next: next}, nil
}

// AuditLogPage handles GET /admin/inbox/audit: the audit log as a page.
func (h *Handler) AuditLogPage(c echo.Context) error {
	page, err := h.auditPage(c)
	if err != nil {
		return err
	}
	d := map[string]any{"Me": Me(c), "Base": h.site.Base(), "Page": page, "Submission": c.QueryParam("submission")}
	if page.Next != "" {
		v := url.Values{"before": {page.Next}}
		if s := c.QueryParam("submission"); s != "" {
			v.Set("submission", s)
		}
		d["NextURL"] = h.site.URL(AuditPagePath + "?" + v.Encode())
	}
	return pages.Plain(c, h.pages, "inbox-audit", http.StatusOK, d)
}
