package status

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/formq/formq/actions/web"
	"github.com/formq/formq/submission"
	"github.com/labstack/echo/v4"
)

// DefaultHeartbeat is how often an idle event stream sends a comment line,
// so proxies and browsers keep the connection open.
const DefaultHeartbeat = 15 * time.Second

// EventFeed is the one fan-out of an API process: it hands out
// subscriptions to revalidation events (GET /events) and watches of
// submission status (GET /submissions/{id}/events), from one reader of
// Redis. *jobs.Hub is the implementation.
type EventFeed interface {
	// Subscribe starts a subscription. When after is not empty, the
	// subscription first replays every event after that stream id still
	// held in the stream, then continues live without gap or repeat.
	Subscribe(ctx context.Context, after string) (submission.Subscription, error)
	// WatchStatus tells when a submission's status changed.
	WatchStatus(id string) (submission.StatusWatch, error)
}

// streamIDPattern is the shape of a Redis stream id.
var streamIDPattern = regexp.MustCompile(`^[0-9]{1,20}-[0-9]{1,20}$`)

// Events handles GET /events: revalidation events as server-sent events,
// filtered by ?tag= and ?path= (repeatable; an event matches when it has
// any of them), resumed after the Last-Event-ID header. Every event needs
// the bearer events token (or the admin token); without it only the
// events of actions declaring `revalidate: {public: true}` are sent, and
// without their submission ids.
func (h *Handler) Events(c echo.Context) error {
	web.JSONErrors(c)
	if h.events == nil {
		return web.ErrNotFound
	}
	req := c.Request()
	full, err := h.eventsReader(c)
	if err != nil {
		return err
	}
	q := req.URL.Query()
	tags, paths := q["tag"], q["path"]
	after := strings.TrimSpace(req.Header.Get("Last-Event-ID"))
	if after != "" && !streamIDPattern.MatchString(after) {
		return web.ErrBadRequest.With(nil, "Last-Event-ID must be an event id like 1732400000000-0.")
	}
	ctx := req.Context()
	release, err := h.streams.acquire(ctx, c.RealIP())
	if err != nil {
		return err
	}
	defer release()
	sub, err := h.events.Subscribe(ctx, after)
	if err != nil {
		return web.ErrUnavailable.With(err)
	}
	defer sub.Close()
	sse, err := startSSE(c)
	if err != nil {
		return err
	}
	// The feed ends every subscription when the process shuts down.
	beat := h.heartbeat()
	for {
		wctx, wcancel := context.WithTimeout(ctx, beat)
		ev, err := sub.Next(wctx)
		wcancel()
		switch {
		case err == nil:
			if !matches(ev, tags, paths) {
				continue
			}
			data := ev.JSON
			if !full {
				if data = h.publicEvent(ev); data == nil {
					continue
				}
			}
			if err := sse.raw("", ev.ID, data); err != nil {
				return nil
			}
		case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
			if err := sse.comment("heartbeat"); err != nil {
				return nil
			}
		default:
			return nil
		}
	}
}

// eventsReader says whether the request may read every event: it carries
// the events or admin token as a bearer. A wrong token is refused rather
// than silently narrowed.
func (h *Handler) eventsReader(c echo.Context) (bool, error) {
	auth := c.Request().Header.Get("Authorization")
	if auth == "" {
		return false, nil
	}
	scheme, given, ok := strings.Cut(auth, " ")
	given = strings.TrimSpace(given)
	if !ok || !strings.EqualFold(scheme, "Bearer") || given == "" {
		return false, web.ErrUnauthenticated.With(errors.New("events: not a bearer token"), "Send the events token as Authorization: Bearer.")
	}
	for _, tok := range []string{h.cfg.EventsToken, h.cfg.AdminToken} {
		if tok != "" && subtle.ConstantTimeCompare([]byte(given), []byte(tok)) == 1 {
			return true, nil
		}
	}
	return false, web.ErrForbidden.With(errors.New("events: wrong token"))
}

// publicEvent is what a subscriber without a token receives of an event:
// nothing unless its action declares public revalidation, and never the
// submission id.
func (h *Handler) publicEvent(ev *submission.Published) []byte {
	a, ok := h.actions.Get(ev.Action)
	if !ok || !a.Revalidate.Public {
		return nil
	}
	e := ev.Event
	e.Submission = ""
	b, err := json.Marshal(e)
	if err != nil {
		return nil
	}
	return b
}

// matches reports whether an event passes the tag and path filters.
func matches(ev *submission.Published, tags, paths []string) bool {
	if len(tags) == 0 && len(paths) == 0 {
		return true
	}
	for _, t := range ev.Tags {
		if slices.Contains(tags, t) {
			return true
		}
	}
	for _, p := range ev.Paths {
		if slices.Contains(paths, p) {
			return true
		}
	}
	return false
}

func (h *Handler) heartbeat() time.Duration {
	if h.cfg.Heartbeat > 0 {
		return h.cfg.Heartbeat
	}
	return DefaultHeartbeat
}

// stopping is closed when the process shuts down; never when unset.
func (h *Handler) stopping() <-chan struct{} { return h.done }

// sseStream writes server-sent events and flushes each one.
type sseStream struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

// startSSE sends the headers of an event stream. Proxies are asked not to
// buffer it, and clients to reconnect after 3 seconds.
func startSSE(c echo.Context) (*sseStream, error) {
	h := c.Response().Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	c.Response().WriteHeader(http.StatusOK)
	s := &sseStream{w: c.Response(), rc: http.NewResponseController(c.Response().Writer)}
	if _, err := fmt.Fprint(s.w, "retry: 3000\n\n"); err != nil {
		return nil, err
	}
	return s, s.rc.Flush()
}

func (s *sseStream) send(event, id string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.raw(event, id, data)
}

// raw writes one message; data must be a single line (compact JSON is).
func (s *sseStream) raw(event, id string, data []byte) error {
	var b []byte
	if event != "" {
		b = append(append(append(b, "event: "...), event...), '\n')
	}
	if id != "" {
		b = append(append(append(b, "id: "...), id...), '\n')
	}
	b = append(append(append(b, "data: "...), data...), "\n\n"...)
	if _, err := s.w.Write(b); err != nil {
		return err
	}
	return s.rc.Flush()
}

func (s *sseStream) comment(text string) error {
	if _, err := fmt.Fprintf(s.w, ": %s\n\n", text); err != nil {
		return err
	}
	return s.rc.Flush()
}
