// Package status serves what a sender and the sites behind formq follow
// after a post: a submission's status (GET /submissions/{id}), its
// changes as server-sent events, and the revalidation events of every
// submission (GET /events).
package status

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"time"

	"github.com/formq/formq/actions"
	"github.com/formq/formq/actions/web"
	"github.com/formq/formq/submission"
	"github.com/labstack/echo/v4"
)

// StatusReader reads the status of a submission. It returns an error
// matching submission.ErrNotFound for an unknown id. *jobs.StatusStore is
// the implementation.
type StatusReader interface {
	Status(ctx context.Context, id string) (*submission.Status, error)
}

// Config is what the status endpoints take from the deployment.
type Config struct {
	// AdminToken reads every submission's full status; EventsToken (or
	// the admin token) reads every revalidation event.
	AdminToken, EventsToken string
	// Heartbeat is the interval of comment lines on idle streams;
	// DefaultHeartbeat when zero.
	Heartbeat time.Duration
	// StreamsPerClient and StreamsMax cap the open event streams per
	// client address and in all; the defaults when zero.
	StreamsPerClient, StreamsMax int
}

// Deps are the parts the status endpoints read; a nil Status or Events
// answers 404 for what it would show.
type Deps struct {
	Actions *actions.Registry
	Sealer  actions.Sealer
	Status  StatusReader
	Events  EventFeed
	// Done is closed when the process shuts down: open streams end so
	// the server can stop.
	Done <-chan struct{}
	Site *web.Site
	Log  *slog.Logger
	// Records reads stored records, for the field placeholders of a
	// completed submission's message and redirect; nil leaves them.
	Records RecordReader
	// Streams counts each client's open event streams on every API
	// process, so that StreamsPerClient holds across them; nil counts
	// on this process alone.
	Streams StreamCounter
}

// Handler serves the status and event endpoints.
type Handler struct {
	cfg     Config
	actions *actions.Registry
	sealer  actions.Sealer
	status  StatusReader
	events  EventFeed
	done    <-chan struct{}
	site    *web.Site
	log     *slog.Logger
	streams *streamLimits
	records RecordReader
}

// New builds the status endpoints.
func New(cfg Config, d Deps) *Handler {
	if d.Actions == nil {
		d.Actions = actions.NewRegistry()
	}
	if d.Site == nil {
		d.Site = web.NewSite(web.SiteConfig{})
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	return &Handler{
		cfg: cfg, actions: d.Actions, sealer: d.Sealer, status: d.Status, events: d.Events, done: d.Done,
		site: d.Site, log: d.Log, streams: newStreamLimits(cfg.StreamsPerClient, cfg.StreamsMax, d.Streams), records: d.Records,
	}
}

// View is the status of a submission as the request may see it: all of
// it with the admin token, the submitter's view with the statusUrl's
// capability (t=), and 404 submission_not_found without either, as for an
// unknown id. The hosted done page shows it.
func (h *Handler) View(c echo.Context, id string) (*submission.Status, error) {
	v, err := h.statusViewer(c, id)
	if err != nil {
		return nil, err
	}
	return h.viewStatus(c, id, v)
}

// StatusAnswer is the JSON of GET /submissions/{id} as the admin sees it.
type StatusAnswer struct {
	OK         bool               `json:"ok"`
	Submission *submission.Status `json:"submission"`
}

// submissionIDPattern bounds what may be looked up: ULIDs and the ids
// tests make.
var submissionIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// SubmissionStatus handles GET /submissions/{id}. It needs the statusUrl's
// capability (?t=) or the admin token; without them a submission does not
// exist (404 submission_not_found, as for an unknown id).
func (h *Handler) SubmissionStatus(c echo.Context) error {
	web.JSONErrors(c)
	id := c.Param("id")
	v, err := h.statusViewer(c, id)
	if err != nil {
		return err
	}
	st, err := h.viewStatus(c, id, v)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, map[string]any{"ok": true, "submission": v.render(st)})
}

// SubmissionEvents handles GET /submissions/{id}/events: the status as
// server-sent events, one message per change (the same JSON as
// GET /submissions/{id} answers under "submission"), until the submission
// is completed or failed. Changes are pushed by the workers through the
// process's event feed; the status is also read again at every heartbeat,
// in case a notice was lost while Redis reconnected.
func (h *Handler) SubmissionEvents(c echo.Context) error {
	web.JSONErrors(c)
	ctx := c.Request().Context()
	id := c.Param("id")
	if h.events == nil || !submissionIDPattern.MatchString(id) {
		return web.ErrSubmissionMissing
	}
	v, err := h.statusViewer(c, id)
	if err != nil {
		return err
	}
	release, err := h.streams.acquire(ctx, c.RealIP())
	if err != nil {
		return err
	}
	defer release()
	// Watch before the first read, so no change falls between the two.
	watch, err := h.events.WatchStatus(id)
	if err != nil {
		return web.ErrUnavailable.With(err)
	}
	defer watch.Close()
	if v.cap.Decoy {
		st, _ := h.viewStatus(c, id, v)
		sse, err := startSSE(c)
		if err == nil {
			_ = sse.send("", fmt.Sprint(st.Version), v.render(st))
		}
		return nil
	}
	st, err := h.viewStatus(c, id, v)
	if err != nil {
		return err
	}
	sse, err := startSSE(c)
	if err != nil {
		return err
	}
	beat := time.NewTicker(h.heartbeat())
	defer beat.Stop()
	var sent int64 = -1
	for {
		if st.Version != sent {
			if err := sse.send("", fmt.Sprint(st.Version), v.render(st)); err != nil {
				return nil
			}
			sent = st.Version
		}
		if st.Done() {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-h.stopping():
			return nil
		case _, ok := <-watch.Changed():
			if !ok {
				return nil // the feed stopped: the process is shutting down
			}
		case <-beat.C:
			if err := sse.comment("heartbeat"); err != nil {
				return nil
			}
		}
		next, err := h.viewStatus(c, id, v)
		if err != nil {
			// A Redis hiccup: end; the client's EventSource reconnects.
			return nil
		}
		st = next
	}
}

func (h *Handler) readStatus(c echo.Context, id string) (*submission.Status, error) {
	ctx := c.Request().Context()
	if h.status == nil || !submissionIDPattern.MatchString(id) {
		return nil, web.ErrSubmissionMissing
	}
	st, err := h.status.Status(ctx, id)
	switch {
	case errors.Is(err, submission.ErrNotFound):
		return nil, web.ErrSubmissionMissing
	case err != nil:
		return nil, web.ErrUnavailable.With(err)
	}
	st.StatusURL = h.site.Link(c, "/submissions/"+st.ID)
	return st, nil
}

// viewStatus is the status as the viewer may see it: all of it for the
// admin, the submitter's view otherwise; the statusUrl keeps the token.
func (h *Handler) viewStatus(c echo.Context, id string, v viewer) (*submission.Status, error) {
	var st *submission.Status
	if v.cap.Decoy {
		st = h.decoyStatus(v.cap)
	} else {
		var err error
		if st, err = h.readStatus(c, id); err != nil {
			return nil, err
		}
		h.present(c, st)
		if !v.admin {
			st = forSubmitter(st)
		}
	}
	st.StatusURL = h.site.Link(c, "/submissions/"+id)
	if v.token != "" {
		st.StatusURL += "?t=" + url.QueryEscape(v.token)
	}
	return st, nil
}
