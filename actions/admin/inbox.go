package admin

// The submissions inbox of the admin API: list, read, export and erase
// submissions through the index the worker keeps.

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/formq/formq/actions"
	"github.com/formq/formq/actions/web"
	"github.com/formq/formq/internal/audit"
	"github.com/formq/formq/submission"
	"github.com/labstack/echo/v4"
)

// Inbox is the submissions index: listing, records, erasure.
type Inbox interface {
	List(ctx context.Context, q submission.Query) (submission.Page, error)
	Record(ctx context.Context, id string) (*submission.Submission, error)
	Each(ctx context.Context, action string, fn func(*submission.Submission) error) error
	Erase(ctx context.Context, id string) error
	ByPersonal(ctx context.Context, action, field, value string) ([]string, error)
	NoteIdempotency(ctx context.Context, id, key string, ttl time.Duration) error
	Count(ctx context.Context, action string) (int64, error)
	Mark(ctx context.Context, mark string, on bool, ids ...string) (int, error)
	Starred(ctx context.Context, id string) (bool, error)
}

// FileLinks makes short-lived download links of stored files.
type FileLinks interface {
	PresignGet(ctx context.Context, key, filename string, ttl time.Duration) (string, error)
}

// DownloadTTL is how long a file link of the admin detail works.
const DownloadTTL = 15 * time.Minute

// ErrSubmissionBusy answers an erasure of a submission still in the queue.
var ErrSubmissionBusy = &web.Error{Status: http.StatusConflict, Code: "submission_busy", Message: "The submission is still being processed; erase it once it is done.", RetryAfter: 5 * time.Second}

// Submissions handles GET /admin/submissions: one page of the index,
// newest first, each with its preview; total is how many the action (or
// the index) holds, before the filters.
func (h *Handler) Submissions(c echo.Context) error {
	page, q, err := h.listPage(c)
	if err != nil {
		return err
	}
	total, err := h.total(c.Request().Context(), q)
	if err != nil {
		return web.ErrUnavailable.With(err)
	}
	items := make([]listedItem, len(page.Items))
	for i, it := range page.Items {
		items[i] = h.item(it)
	}
	return c.JSON(http.StatusOK, map[string]any{"ok": true, "submissions": items, "next": page.Next, "total": total})
}

// total is how many submissions the query's folder holds: the action's
// (or all) in the inbox, all in the Spam folder.
func (h *Handler) total(ctx context.Context, q submission.Query) (int64, error) {
	if q.Folder == submission.FolderSpam {
		if h.spam == nil {
			return 0, nil
		}
		return h.spam.SpamCount(ctx)
	}
	return h.inbox.Count(ctx, q.Action)
}

// listedItem is a listed submission with its preview.
type listedItem struct {
	submission.Listed
	Preview actions.Preview `json:"preview"`
}

func (h *Handler) item(it submission.Listed) listedItem {
	a, _ := h.actions.Get(it.Action)
	return listedItem{Listed: it, Preview: actions.PreviewOf(a, it.Values)}
}

// listPage reads the request's filters and cursor and lists that page of
// the index, for the JSON list and the inbox page alike.
func (h *Handler) listPage(c echo.Context) (submission.Page, submission.Query, error) {
	inbox, err := h.index()
	if err != nil {
		return submission.Page{}, submission.Query{}, err
	}
	q, err := h.inboxQuery(c)
	if err != nil {
		return submission.Page{}, q, err
	}
	page, err := inbox.List(c.Request().Context(), q)
	if errors.Is(err, submission.ErrBadCursor) {
		return page, q, web.ErrBadRequest.With(err, "cursor: use the next value of a previous page.")
	}
	if err != nil {
		return page, q, web.ErrUnavailable.With(err)
	}
	return page, q, nil
}

func (h *Handler) index() (Inbox, error) {
	if h.inbox == nil {
		return nil, web.ErrNotFound.With(errors.New("no submissions inbox"))
	}
	return h.inbox, nil
}

// inboxQuery reads the filters of a listing.
func (h *Handler) inboxQuery(c echo.Context) (submission.Query, error) {
	q := submission.Query{Action: c.QueryParam("action"), Status: c.QueryParam("status"), Cursor: c.QueryParam("cursor"),
		Search: strings.TrimSpace(c.QueryParam("q")), Flag: c.QueryParam("flag"), Folder: c.QueryParam("folder")}
	switch q.Folder {
	case "", "inbox":
		q.Folder = ""
	case submission.FolderSpam:
	default:
		return q, web.ErrBadRequest.With(nil, "folder: want inbox or spam.")
	}
	if len(q.Search) > 200 {
		return q, web.ErrBadRequest.With(nil, "q: search for at most 200 characters.")
	}
	switch q.Flag {
	case "", "read", "unread", "starred":
	default:
		return q, web.ErrBadRequest.With(nil, "flag: want read, unread or starred.")
	}
	if q.Action != "" {
		if _, ok := h.actions.Get(q.Action); !ok {
			return q, web.ErrActionNotFound
		}
	}
	switch q.Status {
	case "", submission.StatusQueued, submission.StatusProcessing, submission.StatusCompleted, submission.StatusFailed, submission.StatusRejected, "archived":
	default:
		return q, web.ErrBadRequest.With(nil, "status: want queued, processing, completed, failed, rejected or archived.")
	}
	for name, dst := range map[string]*time.Time{"since": &q.Since, "until": &q.Until} {
		if v := c.QueryParam(name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return q, web.ErrBadRequest.With(err, name+": want an RFC 3339 time like 2026-01-02T15:04:05Z.")
			}
			*dst = t
		}
	}
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			return q, web.ErrBadRequest.With(err, "limit: want a number from 1 to 500.")
		}
		q.Limit = n
	}
	return q, nil
}

// DownloadLink is a file of the admin detail with its download link.
type DownloadLink struct {
	submission.File
	URL       string    `json:"url"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// SubmissionDetail is the JSON of GET /admin/submissions/{id}.
type SubmissionDetail struct {
	OK         bool                   `json:"ok"`
	Submission *submission.Submission `json:"submission"`
	Status     *submission.Status     `json:"status"` // null once expired
	Downloads  []DownloadLink         `json:"downloads"`
}

// Submission handles GET /admin/submissions/{id}: the record, its
// status and steps, and links to download its files.
func (h *Handler) Submission(c echo.Context) error {
	d, err := h.submissionDetail(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, d)
}

func (h *Handler) submissionDetail(ctx context.Context, id string) (*SubmissionDetail, error) {
	inbox, err := h.index()
	if err != nil {
		return nil, err
	}
	sub, err := inbox.Record(ctx, id)
	if errors.Is(err, submission.ErrNotFound) {
		return nil, web.ErrSubmissionMissing.With(err)
	}
	if err != nil {
		return nil, web.ErrUnavailable.With(err)
	}
	if h.spam != nil {
		// The record keeps the verdict it was accepted with; an admin's
		// decision since is in the folder.
		v, err := h.spam.Verdict(ctx, id)
		if err != nil {
			return nil, web.ErrUnavailable.With(err)
		}
		if v != nil {
			sub.Spam = v
		}
	}
	d := &SubmissionDetail{OK: true, Submission: sub, Downloads: []DownloadLink{}}
	if h.status != nil {
		st, err := h.status.Status(ctx, id)
		switch {
		case err == nil:
			d.Status = st
		case !errors.Is(err, submission.ErrNotFound):
			return nil, web.ErrUnavailable.With(err)
		}
	}
	if h.links != nil {
		for _, f := range sub.Files {
			u, err := h.links.PresignGet(ctx, f.Key, f.Filename, DownloadTTL)
			if err != nil {
				return nil, web.ErrUnavailable.With(err)
			}
			d.Downloads = append(d.Downloads, DownloadLink{File: f, URL: u, ExpiresAt: h.now().Add(DownloadTTL).UTC()})
		}
	}
	return d, nil
}

// EraseSubmission handles DELETE /admin/submissions/{id}: the
// record, files and variants, status, idempotency and index entries are
// removed, and the answer comes once none is left.
func (h *Handler) EraseSubmission(c echo.Context) error {
	id := c.Param("id")
	if err := h.erase(c.Request().Context(), id); err != nil {
		return err
	}
	h.record(c, audit.Erase, "", 1, "", id)
	return c.JSON(http.StatusOK, map[string]any{"ok": true, "erased": []string{id}})
}

func (h *Handler) erase(ctx context.Context, id string) error {
	inbox, err := h.index()
	if err != nil {
		return err
	}
	err = inbox.Erase(ctx, id)
	switch {
	case errors.Is(err, submission.ErrNotFound):
		return web.ErrSubmissionMissing.With(err)
	case errors.Is(err, submission.ErrBusy):
		return ErrSubmissionBusy.With(err)
	case err != nil:
		return web.ErrUnavailable.With(err, "The submission could not be erased completely; nothing is reported gone. Try again.")
	}
	h.log.InfoContext(ctx, "submission erased", "submission", id)
	return nil
}

// ErasePersonal handles DELETE /admin/submissions?action=&field=&value=:
// a right-to-erasure request, every submission of the action whose
// personal field holds the value (compared trimmed, ignoring case).
func (h *Handler) ErasePersonal(c echo.Context) error {
	inbox, err := h.index()
	if err != nil {
		return err
	}
	a, ok := h.actions.Get(c.QueryParam("action"))
	if !ok {
		return web.ErrActionNotFound.With(nil, "action: name a declared action.")
	}
	f := a.Field(c.QueryParam("field"))
	if f == nil || !f.Personal {
		return web.ErrBadRequest.With(nil, "field: name a field the action declares personal: true.")
	}
	value := c.QueryParam("value")
	if strings.TrimSpace(value) == "" {
		return web.ErrBadRequest.With(nil, "value: give the value to erase.")
	}
	ctx := c.Request().Context()
	ids, err := inbox.ByPersonal(ctx, a.Name, f.Name, value)
	if err != nil {
		return web.ErrUnavailable.With(err)
	}
	erased := []string{}
	for _, id := range ids {
		err := h.erase(ctx, id)
		if errors.Is(err, web.ErrSubmissionMissing) {
			continue // erased meanwhile
		}
		if err != nil {
			h.record(c, audit.ErasePersonal, a.Name, len(erased), "by the personal field "+f.Name+", stopped by an error", erased...)
			return err
		}
		erased = append(erased, id)
	}
	// The log names the field, never the value.
	h.record(c, audit.ErasePersonal, a.Name, len(erased), "by the personal field "+f.Name, erased...)
	return c.JSON(http.StatusOK, map[string]any{"ok": true, "erased": erased})
}

// Export handles GET /admin/submissions/export?action=&format=:
// every record of an action, newest first, streamed as CSV (one column
// per declared field and upload) or NDJSON, in constant memory. With
// ids= (comma-separated or repeated) it exports those submissions only,
// newest first; action is then optional.
func (h *Handler) Export(c echo.Context) error {
	ids := splitIDs(c.QueryParams()["ids"])
	if len(ids) > 0 {
		return h.exportSelection(c, c.QueryParam("action"), c.QueryParam("format"), ids)
	}
	inbox, err := h.index()
	if err != nil {
		return err
	}
	a, ok := h.actions.Get(c.QueryParam("action"))
	if !ok {
		return web.ErrActionNotFound.With(nil, "action: name a declared action.")
	}
	format, err := exportFormat(c.QueryParam("format"))
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	return h.writeExport(c, a, format, a.Name, func(each func(*submission.Submission) error) error {
		return inbox.Each(ctx, a.Name, each)
	})
}

// exportFormat checks an export's format: csv when empty.
func exportFormat(format string) (string, error) {
	switch format {
	case "":
		return "csv", nil
	case "csv", "ndjson":
		return format, nil
	}
	return "", web.ErrBadRequest.With(nil, "format: want csv or ndjson.")
}

// splitIDs reads ids given repeated or comma-separated.
func splitIDs(values []string) []string {
	var ids []string
	for _, v := range values {
		for id := range strings.SplitSeq(v, ",") {
			if id = strings.TrimSpace(id); id != "" {
				ids = append(ids, id)
			}
		}
	}
	return ids
}

// exportSelection exports the selected submissions, newest first: of one
// action for CSV (its columns), of any for NDJSON. Ids erased meanwhile
// are left out.
func (h *Handler) exportSelection(c echo.Context, action, format string, ids []string) error {
	inbox, err := h.index()
	if err != nil {
		return err
	}
	if format, err = exportFormat(format); err != nil {
		return err
	}
	if len(ids) > MaxPageSizeBulk {
		return web.ErrBadRequest.With(nil, fmt.Sprintf("ids: select at most %d submissions.", MaxPageSizeBulk))
	}
	var a *actions.Action
	if action != "" {
		var ok bool
		if a, ok = h.actions.Get(action); !ok {
			return web.ErrActionNotFound.With(nil, "action: name a declared action.")
		}
	}
	ctx := c.Request().Context()
	seen := map[string]bool{}
	var subs []*submission.Submission
	for _, id := range ids {
		if seen[id] {
			continue
		}
		seen[id] = true
		sub, err := inbox.Record(ctx, id)
		if errors.Is(err, submission.ErrNotFound) {
			continue
		}
		if err != nil {
			return web.ErrUnavailable.With(err)
		}
		if action != "" && sub.Action != action {
			return web.ErrBadRequest.With(nil, fmt.Sprintf("ids: submission %s is not one of %s.", id, action))
		}
		subs = append(subs, sub)
	}
	slices.SortStableFunc(subs, func(x, y *submission.Submission) int { return y.ReceivedAt.Compare(x.ReceivedAt) })
	if a == nil && len(subs) > 0 {
		a, _ = h.actions.Get(subs[0].Action)
		for _, sub := range subs {
			if sub.Action != subs[0].Action && format == "csv" {
				return web.ErrBadRequest.With(nil, "A CSV export has the columns of one action: select submissions of one action, or export NDJSON.")
			}
		}
	}
	if a == nil && format == "csv" {
		return web.ErrBadRequest.With(nil, "ids: none of the selected submissions is left; nothing to export.")
	}
	name := "selection"
	if a != nil {
		name = a.Name + "-selection"
	}
	return h.writeExport(c, a, format, name, func(each func(*submission.Submission) error) error {
		for _, sub := range subs {
			if err := each(sub); err != nil {
				return err
			}
		}
		return nil
	})
}

// writeExport streams records as CSV with a's columns, or as NDJSON, to
// a download named after name and the time.
func (h *Handler) writeExport(c echo.Context, a *actions.Action, format, name string, records func(each func(*submission.Submission) error) error) error {
	resp := c.Response()
	ctx := c.Request().Context()
	name += "-" + h.now().UTC().Format("20060102-150405")
	if format == "csv" {
		resp.Header().Set(echo.HeaderContentType, "text/csv; charset=utf-8")
		resp.Header().Set(echo.HeaderContentDisposition, `attachment; filename="`+name+`.csv"`)
	} else {
		resp.Header().Set(echo.HeaderContentType, "application/x-ndjson")
		resp.Header().Set(echo.HeaderContentDisposition, `attachment; filename="`+name+`.ndjson"`)
	}
	resp.Header().Set("Cache-Control", "no-store")
	resp.Header().Set("X-Content-Type-Options", "nosniff")
	resp.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(resp, 32<<10)
	rows := 0
	flush := func() error {
		if err := bw.Flush(); err != nil {
			return err
		}
		resp.Flush()
		return nil
	}
	// The ids exported, for the audit log, while they are few.
	var ids []string
	var each func(*submission.Submission) error
	var cw *csv.Writer
	if format == "csv" {
		cw = csv.NewWriter(bw)
		if err := cw.Write(append(csvHeader(a), "status")); err != nil {
			return err
		}
		each = func(s *submission.Submission) error {
			if err := cw.Write(append(csvRow(a, s), h.exportStatus(ctx, s.ID))); err != nil {
				return err
			}
			if rows++; rows%200 == 0 {
				cw.Flush()
				return flush()
			}
			return nil
		}
	} else {
		enc := json.NewEncoder(bw)
		each = func(s *submission.Submission) error {
			if err := enc.Encode(exported{Submission: s, Status: h.exportStatus(ctx, s.ID)}); err != nil {
				return err
			}
			if rows++; rows%200 == 0 {
				return flush()
			}
			return nil
		}
	}
	write := each
	each = func(s *submission.Submission) error {
		if len(ids) <= MaxPageSizeBulk {
			ids = append(ids, s.ID)
		}
		return write(s)
	}
	if err := records(each); err != nil {
		// The status is sent; a cut-off export ends without its last rows.
		h.log.ErrorContext(ctx, "export stopped", "export", name, "rows", rows, "err", err)
		h.recordExport(c, a, format+", stopped before the end", rows, ids)
		return nil
	}
	if cw != nil {
		cw.Flush()
	}
	h.recordExport(c, a, format, rows, ids)
	return flush()
}

// recordExport logs an export: the action, how many rows, and which
// submissions when they are a selection's few.
func (h *Handler) recordExport(c echo.Context, a *actions.Action, detail string, rows int, ids []string) {
	action := ""
	if a != nil {
		action = a.Name
	}
	if len(ids) > MaxPageSizeBulk {
		ids = nil
	}
	h.record(c, audit.Export, action, rows, detail, ids...)
}

// exported is one line of an NDJSON export: the record and its status.
type exported struct {
	*submission.Submission
	Status string `json:"status,omitempty"`
}

// exportStatus is the status of an exported submission: queued,
// processing, completed, failed or rejected (the app refused it);
// archived once its status expired; empty when it cannot be read.
func (h *Handler) exportStatus(ctx context.Context, id string) string {
	if h.status == nil {
		return ""
	}
	st, err := h.status.Status(ctx, id)
	switch {
	case errors.Is(err, submission.ErrNotFound):
		return "archived"
	case err != nil:
		return ""
	}
	return st.Status
}

// csvHeader is the export's first row.
func csvHeader(a *actions.Action) []string {
	row := []string{"id", "received_at"}
	for _, f := range a.Fields {
		if !f.Sensitive() {
			row = append(row, f.Name)
		}
	}
	for _, u := range a.Uploads {
		row = append(row, u.Name)
	}
	return append(row, "subject", "client_ip")
}

// csvRow is one submission in the export, every cell escaped against
// formula injection.
func csvRow(a *actions.Action, s *submission.Submission) []string {
	row := []string{s.ID, s.ReceivedAt.UTC().Format(time.RFC3339Nano)}
	for _, f := range a.Fields {
		if f.Sensitive() {
			continue
		}
		row = append(row, CSVCell(submission.CardText(s.Values[f.Name])))
	}
	for _, u := range a.Uploads {
		var names []string
		for _, file := range s.Files {
			if file.Field == u.Name {
				names = append(names, file.Filename)
			}
		}
		row = append(row, CSVCell(strings.Join(names, "; ")))
	}
	return append(row, CSVCell(s.Subject), CSVCell(s.ClientIP))
}

// CSVCell escapes a cell that a spreadsheet would run as a formula (it
// starts with =, +, -, @, a tab or a carriage return, also after leading
// spaces or line breaks, which spreadsheets skip) by putting a single
// quote first, as OWASP advises.
func CSVCell(s string) string {
	if s == "" {
		return s
	}
	if s[0] == '\t' || s[0] == '\r' {
		return "'" + s
	}
	switch t := strings.TrimLeft(s, " \t\r\n"); {
	case t == "":
	case strings.ContainsRune("=+-@", rune(t[0])):
		return "'" + s
	}
	return s
}
