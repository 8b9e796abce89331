package handler

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/formq/formq/submission"
	"github.com/labstack/echo/v4"
)

// StatusReader reads the status of a submission. It returns an error
// matching submission.ErrNotFound for an unknown id. *jobs.StatusStore is
// the implementation.
type StatusReader interface {
	Status(ctx context.Context, id string) (*submission.Status, error)
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
	jsonErrors(c)
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
	jsonErrors(c)
	ctx := c.Request().Context()
	id := c.Param("id")
	if h.Fleet.Events == nil || !submissionIDPattern.MatchString(id) {
		return ErrSubmissionMissing
	}
	v, err := h.statusViewer(c, id)
	if err != nil {
		return err
	}
	release, err := h.Streams.acquire(c.RealIP())
	if err != nil {
		return err
	}
	defer release()
	// Watch before the first read, so no change falls between the two.
	watch, err := h.Fleet.Events.WatchStatus(id)
	if err != nil {
		return ErrUnavailable.With(err)
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

// jsonErrors makes the failures of a JSON or event-stream endpoint JSON
// too, unless the client asks for HTML (a browser opening the URL).
func jsonErrors(c echo.Context) {
	req := c.Request()
	if !strings.Contains(req.Header.Get("Accept"), "html") {
		req.Header.Set("Accept", echo.MIMEApplicationJSON)
	}
}

func (h *Handler) readStatus(c echo.Context, id string) (*submission.Status, error) {
	ctx := c.Request().Context()
	if h.Fleet.Status == nil || !submissionIDPattern.MatchString(id) {
		return nil, ErrSubmissionMissing
	}
	st, err := h.Fleet.Status.Status(ctx, id)
	switch {
	case errors.Is(err, submission.ErrNotFound):
		return nil, ErrSubmissionMissing
	case err != nil:
		return nil, ErrUnavailable.With(err)
	}
	st.StatusURL = h.link(c, "/submissions/"+st.ID)
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
		if !v.admin {
			st = forSubmitter(st)
		}
	}
	st.StatusURL = h.link(c, "/submissions/"+id)
	if v.token != "" {
		st.StatusURL += "?t=" + url.QueryEscape(v.token)
	}
	return st, nil
}
