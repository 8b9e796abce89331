package admin

// The inbox pages under /admin/inbox: server-rendered HTML for people, on
// the same index as the JSON inbox, with no external assets.

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/formq/formq/actions/pages"
	"github.com/formq/formq/actions/web"
	"github.com/formq/formq/internal/audit"
	"github.com/formq/formq/submission"
	"github.com/labstack/echo/v4"
)

// InboxPath is where the inbox pages live.
const InboxPath = "/admin/inbox"

type inboxListData struct {
	Me                                                              *Person
	Base, Action, Status, Flag, Search, Next, NextURL, Erased, Here string
	Marked                                                          string
	// Folder is "spam" for the Spam folder, "" for the inbox.
	Folder            string
	Total             int64
	Scanned           int
	Actions, Statuses []string
	Items             []listedItem
}

// Statuses a listing can be filtered by.
var inboxStatuses = []string{"queued", "processing", "completed", "failed", "rejected", "archived"}

// InboxPage handles GET /admin/inbox: submissions newest first, each with
// who sent it and a preview, filtered by action, status, mark and search
// (q), 50 a page.
func (h *Handler) InboxPage(c echo.Context) error {
	page, q, err := h.listPage(c)
	if err != nil {
		return err
	}
	total, err := h.total(c.Request().Context(), q)
	if err != nil {
		return web.ErrUnavailable.With(err)
	}
	d := inboxListData{
		Me: Me(c), Base: h.site.Base(), Action: q.Action, Status: q.Status, Flag: q.Flag, Search: q.Search, Next: page.Next, Folder: q.Folder,
		Erased: c.QueryParam("erased"), Marked: c.QueryParam("marked"), Total: total,
		Actions: h.actions.Names(), Statuses: inboxStatuses,
	}
	here := c.Request().URL.Query()
	here.Del("marked")
	here.Del("erased")
	d.Here = h.site.URL(InboxPath)
	if len(here) > 0 {
		d.Here += "?" + here.Encode()
	}
	if q.Search != "" || q.Status != "" || q.Flag != "" {
		d.Scanned = page.Scanned
	}
	for _, it := range page.Items {
		d.Items = append(d.Items, h.item(it))
	}
	if page.Next != "" {
		v := url.Values{"cursor": {page.Next}}
		for k, val := range map[string]string{"action": q.Action, "status": q.Status, "flag": q.Flag, "q": q.Search, "folder": q.Folder} {
			if val != "" {
				v.Set(k, val)
			}
		}
		d.NextURL = h.site.URL(InboxPath + "?" + v.Encode())
	}
	return pages.Plain(c, h.pages, "inbox-list", http.StatusOK, d)
}

// bulkOps are the operations of POST /admin/inbox/bulk: a mark and
// whether it is set.
var bulkOps = map[string]struct {
	mark string
	on   bool
}{
	"read": {"read", true}, "unread": {"read", false}, "star": {"starred", true}, "unstar": {"starred", false},
}

// InboxBulk handles POST /admin/inbox/bulk: op (read, unread, star,
// unstar, erase) on the selected ids, then back to the page the form
// came from (303). An erasure asks first: op=erase answers a question
// page whose button posts op=erase-confirmed. op=export-csv and
// op=export-ndjson answer the selection's export as a download.
func (h *Handler) InboxBulk(c echo.Context) error {
	inbox, err := h.index()
	if err != nil {
		return err
	}
	form, err := c.FormParams()
	if err != nil {
		return web.ErrBadRequest.With(err)
	}
	ids := form["id"]
	if len(ids) > MaxPageSizeBulk {
		return web.ErrBadRequest.With(nil, fmt.Sprintf("Select at most %d submissions.", MaxPageSizeBulk))
	}
	back := form.Get("back")
	if !strings.HasPrefix(back, h.site.URL(InboxPath)) || strings.HasPrefix(back, "//") {
		back = h.site.URL(InboxPath)
	}
	ctx := c.Request().Context()
	op := form.Get("op")
	if len(ids) == 0 {
		return c.Redirect(http.StatusSeeOther, withParam(back, "marked", "none"))
	}
	switch op {
	case "erase", "erase-confirmed", "export-csv", "export-ndjson":
		if err := must(c, RoleAdmin); err != nil {
			return err
		}
	}
	switch op {
	case "export-csv", "export-ndjson":
		return h.exportSelection(c, "", strings.TrimPrefix(op, "export-"), ids)
	case "erase":
		return pages.Plain(c, h.pages, "inbox-bulk-confirm", http.StatusOK, map[string]any{"Me": Me(c), "Base": h.site.Base(), "IDs": ids, "Back": back})
	case "erase-confirmed":
		var erased []string
		for _, id := range ids {
			err := h.erase(ctx, id)
			if errors.Is(err, web.ErrSubmissionMissing) || errors.Is(err, ErrSubmissionBusy) {
				continue
			}
			if err != nil {
				h.record(c, audit.Erase, "", len(erased), "bulk, from the inbox, stopped by an error", erased...)
				return err
			}
			erased = append(erased, id)
		}
		h.record(c, audit.Erase, "", len(erased), "bulk, from the inbox", erased...)
		return c.Redirect(http.StatusSeeOther, withParam(back, "marked", fmt.Sprintf("erased-%d", len(erased))))
	}
	o, ok := bulkOps[op]
	if !ok {
		return web.ErrBadRequest.With(nil, "op: want read, unread, star, unstar, erase, export-csv or export-ndjson.")
	}
	n, err := inbox.Mark(ctx, o.mark, o.on, ids...)
	if err != nil {
		return web.ErrUnavailable.With(err)
	}
	h.record(c, audit.Bulk, "", n, op, ids...)
	return c.Redirect(http.StatusSeeOther, withParam(back, "marked", fmt.Sprintf("%s-%d", op, n)))
}

// MaxPageSizeBulk is the most submissions one bulk operation takes.
const MaxPageSizeBulk = 500

// withParam sets a query parameter of a same-site URL.
func withParam(u, key, value string) string {
	p, err := url.Parse(u)
	if err != nil {
		return u
	}
	q := p.Query()
	q.Set(key, value)
	p.RawQuery = q.Encode()
	return p.String()
}

type labelled struct{ Label, Value string }

type inboxDetailData struct {
	Me         *Person
	Base, Here string
	Starred    bool
	// Redelivered is the step (or "all") just queued again.
	Redelivered string
	// SpamDone is what a spam button just did (release, confirm, spam, ham).
	SpamDone string
	D        *SubmissionDetail
	Values   []labelled
}

// InboxDetailPage handles GET /admin/inbox/{id}: a submission's values,
// files with download links, and steps.
func (h *Handler) InboxDetailPage(c echo.Context) error {
	d, err := h.submissionDetail(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	// Opening a submission marks it read.
	ctx := c.Request().Context()
	if _, err := h.inbox.Mark(ctx, "read", true, d.Submission.ID); err != nil {
		return web.ErrUnavailable.With(err)
	}
	starred, err := h.inbox.Starred(ctx, d.Submission.ID)
	if err != nil {
		return web.ErrUnavailable.With(err)
	}
	data := inboxDetailData{Me: Me(c), Base: h.site.Base(), D: d, Redelivered: c.QueryParam("redelivered"), SpamDone: c.QueryParam("spam"), Here: c.Request().URL.Path}
	data.Starred = starred
	seen := map[string]bool{}
	if a, ok := h.actions.Get(d.Submission.Action); ok {
		for _, f := range a.Fields {
			if v, ok := d.Submission.Values[f.Name]; ok {
				seen[f.Name] = true
				data.Values = append(data.Values, labelled{f.Label, submission.CardText(v)})
			}
		}
	}
	for k, v := range d.Submission.Values {
		if !seen[k] {
			data.Values = append(data.Values, labelled{k, submission.CardText(v)})
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
	return pages.Plain(c, h.pages, "inbox-confirm", http.StatusOK, map[string]any{"Me": Me(c), "Base": h.site.Base(), "ID": id})
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
	h.record(c, audit.Erase, "", 1, "from the inbox", id)
	return c.Redirect(http.StatusSeeOther, h.site.URL(InboxPath+"?erased="+url.QueryEscape(id)))
}

// markedNotice says what a bulk operation did, from its marked= value
// ("star-3", "erased-2", "none").
func markedNotice(v string) string {
	op, n, _ := strings.Cut(v, "-")
	what := "submissions"
	if n == "1" {
		what = "submission"
	}
	switch op {
	case "none":
		return "Select submissions first."
	case "read":
		return n + " " + what + " marked read."
	case "unread":
		return n + " " + what + " marked unread."
	case "star":
		return n + " " + what + " starred."
	case "unstar":
		return n + " " + what + " unstarred."
	case "erased":
		return n + " " + what + " erased, with their files."
	}
	return ""
}
