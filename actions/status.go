package actions

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
)

// Submission states, as GET /submissions/{id} reports them.
const (
	StatusQueued     = "queued"
	StatusProcessing = "processing"
	StatusCompleted  = "completed"
	StatusFailed     = "failed"
)

// Step states within a submission status.
const (
	StepPending   = "pending"
	StepRunning   = "running"
	StepCompleted = "completed"
	StepFailed    = "failed"
)

// SubmissionStatus is what the worker fleet has done with a submission.
type SubmissionStatus struct {
	ID        string       `json:"id"`
	Action    string       `json:"action"`
	Status    string       `json:"status"`
	StatusURL string       `json:"statusUrl"`
	Files     []File       `json:"files"`
	Steps     []StepStatus `json:"steps"`
	Error     string       `json:"error,omitempty"` // why it failed, for people
	Event     string       `json:"event,omitempty"` // the revalidation event's stream id, once published
	UpdatedAt time.Time    `json:"updatedAt"`
	// Version grows with every change; the status stream sends a new
	// message when it does.
	Version int64 `json:"version"`
}

// Done reports whether the submission reached a final state.
func (s *SubmissionStatus) Done() bool {
	return s.Status == StatusCompleted || s.Status == StatusFailed
}

// StepStatus is the progress of one follow-up step.
type StepStatus struct {
	Type      string `json:"type"`
	State     string `json:"state"`
	Attempts  int    `json:"attempts"`
	LastError string `json:"lastError,omitempty"`
}

// StatusReader reads the status of a submission. It returns an error
// matching ErrSubmissionMissing for an unknown id. *jobs.StatusStore is
// the implementation.
type StatusReader interface {
	Status(ctx context.Context, id string) (*SubmissionStatus, error)
}

// StatusAnswer is the JSON of GET /submissions/{id}.
type StatusAnswer struct {
	OK         bool              `json:"ok"`
	Submission *SubmissionStatus `json:"submission"`
}

// submissionIDPattern bounds what may be looked up: ULIDs and the ids
// tests make.
var submissionIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// statusPoll is how often the status stream looks for changes.
const statusPoll = 250 * time.Millisecond

// SubmissionStatus handles GET /submissions/{id}.
func (h *Handler) SubmissionStatus(c echo.Context) error {
	jsonErrors(c)
	st, err := h.readStatus(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, StatusAnswer{OK: true, Submission: st})
}

// SubmissionEvents handles GET /submissions/{id}/events: the status as
// server-sent events, one message per change (the same JSON as
// GET /submissions/{id} answers under "submission"), until the submission
// is completed or failed.
func (h *Handler) SubmissionEvents(c echo.Context) error {
	jsonErrors(c)
	ctx := c.Request().Context()
	st, err := h.readStatus(ctx, c.Param("id"))
	if err != nil {
		return err
	}
	sse, err := startSSE(c)
	if err != nil {
		return err
	}
	poll := time.NewTicker(statusPoll)
	defer poll.Stop()
	lastBeat := time.Now()
	var sent int64 = -1
	for {
		if st.Version != sent {
			if err := sse.send("", fmt.Sprint(st.Version), st); err != nil {
				return nil
			}
			sent = st.Version
			lastBeat = time.Now()
		}
		if st.Done() {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-h.stopping():
			return nil
		case <-poll.C:
		}
		if time.Since(lastBeat) >= h.heartbeat() {
			if err := sse.comment("heartbeat"); err != nil {
				return nil
			}
			lastBeat = time.Now()
		}
		next, err := h.Fleet.Status.Status(ctx, st.ID)
		if err != nil {
			// A Redis hiccup: end; the client's EventSource reconnects.
			return nil
		}
		st = next
		st.StatusURL = h.Pages.URL("/submissions/" + st.ID)
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

func (h *Handler) readStatus(ctx context.Context, id string) (*SubmissionStatus, error) {
	if h.Fleet.Status == nil || !submissionIDPattern.MatchString(id) {
		return nil, ErrSubmissionMissing
	}
	st, err := h.Fleet.Status.Status(ctx, id)
	switch {
	case errors.Is(err, ErrSubmissionMissing):
		return nil, ErrSubmissionMissing
	case err != nil:
		return nil, ErrUnavailable.With(err)
	}
	st.StatusURL = h.Pages.URL("/submissions/" + st.ID)
	return st, nil
}
