package admin

// The inbox pages under /admin/inbox: server-rendered HTML for people, on
// the same index as the JSON inbox, with no external assets.

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/formq/formq/actions/pages"
	"github.com/formq/formq/actions/web"
	"github.com/formq/formq/submission"
	"github.com/labstack/echo/v4"
)

// InboxPath is where the inbox pages live.
const InboxPath = "/admin/inbox"

type inboxListData struct {
	Base, Action, Status, Next, NextURL, Erased string
	Actions, Statuses                           []string
	Items                                       []submission.Listed
}

// InboxPage handles GET /admin/inbox: submissions newest first, filtered
// by action and status, 50 a page.
func (h *Handler) InboxPage(c echo.Context) error {
	page, q, err := h.listPage(c)
	if err != nil {
		return err
	}
	d := inboxListData{
		Base: h.site.Base(), Action: q.Action, Status: q.Status, Items: page.Items, Next: page.Next, Erased: c.QueryParam("erased"),
		Actions: h.actions.Names(), Statuses: []string{"queued", "processing", "completed", "failed", "archived"},
	}
	if page.Next != "" {
		v := url.Values{"cursor": {page.Next}}
		if q.Action != "" {
			v.Set("action", q.Action)
		}
		if q.Status != "" {
			v.Set("status", q.Status)
		}
		d.NextURL = h.site.URL(InboxPath + "?" + v.Encode())
	}
	return pages.Plain(c, h.pages, "inbox-list", http.StatusOK, d)
}

type labelled struct{ Label, Value string }

type inboxDetailData struct {
	Base string
	// Redelivered is the step (or "all") just queued again.
	Redelivered string
	D           *SubmissionDetail
	Values      []labelled
}

// InboxDetailPage handles GET /admin/inbox/{id}: a submission's values,
// files with download links, and steps.
func (h *Handler) InboxDetailPage(c echo.Context) error {
	d, err := h.submissionDetail(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	data := inboxDetailData{Base: h.site.Base(), D: d, Redelivered: c.QueryParam("redelivered")}
	seen := map[string]bool{}
	if a, ok := h.actions.Get(d.Submission.Action); ok {
		for _, f := range a.Fields {
			if v, ok := d.Submission.Values[f.Name]; ok {
				seen[f.Name] = true
				data.Values = append(data.Values, labelled{f.Label, cellText(v)})
			}
		}
	}
	for k, v := range d.Submission.Values {
		if !seen[k] {
			data.Values = append(data.Values, labelled{k, cellText(v)})
		}
	}
	return pages.Plain(c, h.pages, "inbox-detail", http.StatusOK, data)
}

// InboxConfirmPage handles GET /admin/inbox/{id}/delete: the question
// before an erasure.
func (h *Handler) InboxConfirmPage(c echo.Context) error {
	inbox, err := h.index()
	if err != nil {
		return err
	}
	id := c.Param("id")
	if _, err := inbox.Record(c.Request().Context(), id); err != nil {
		return web.ErrSubmissionMissing.With(err)
	}
	return pages.Plain(c, h.pages, "inbox-confirm", http.StatusOK, map[string]string{"Base": h.site.Base(), "ID": id})
}

// InboxErase handles POST /admin/inbox/{id}/delete: it erases the
// submission and goes back to the list (303).
func (h *Handler) InboxErase(c echo.Context) error {
	id := c.Param("id")
	if strings.ContainsAny(id, "/?#") {
		return web.ErrBadRequest.With(fmt.Errorf("bad id %q", id))
	}
	if err := h.erase(c.Request().Context(), id); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, h.site.URL(InboxPath+"?erased="+url.QueryEscape(id)))
}
