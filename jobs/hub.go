package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/formq/formq/internal/lifecycle"
	"github.com/formq/formq/submission"
	"github.com/redis/go-redis/v9"
)

// Hub tuning.
const (
	// hubBuffer is how many events a subscriber may lag behind before it
	// is dropped; it reconnects with Last-Event-ID and misses nothing.
	hubBuffer = 64
	// hubBlock is how long one XREAD waits for new events; a cancelled
	// context does not interrupt it, so it also bounds how long the reader
	// outlives its process's shutdown.
	hubBlock = time.Second
	// replayPage is how many past events one XRANGE reads on resume.
	replayPage = 500
)

// Hub is the one reader of the formq:events stream in an API process: a
// single goroutine blocks on XREAD and hands every event, encoded once, to
// all subscribers, so a thousand idle subscribers cost a goroutine and a
// small channel each and no Redis connection. The same hub tells status
// streams when a submission's status changed: workers publish the id of
// every submission they touch on formq:status, and one subscription per
// process fans it out (see WatchStatus).
type Hub struct {
	rdb redis.UniversalClient
	log *slog.Logger

	mu       sync.Mutex
	subs     map[*hubSub]struct{}
	watchers map[string]map[*statusWatch]struct{} // by submission id
	stopped  bool
	ready    chan struct{} // closed once the reader knows where the stream ends
	// statusUp is closed once the hub first listens on formq:status.
	statusUp   chan struct{}
	statusOnce sync.Once
	loop       lifecycle.Loop
}

// NewHub builds a hub; Run starts it.
func NewHub(rdb redis.UniversalClient, log *slog.Logger) *Hub {
	return &Hub{rdb: rdb, log: log, subs: map[*hubSub]struct{}{}, watchers: map[string]map[*statusWatch]struct{}{}, ready: make(chan struct{}), statusUp: make(chan struct{})}
}

// Run reads the stream until ctx ends or Close is called, then ends every
// subscription. Redis failures are logged and retried; the reader resumes
// where it was, so no event is skipped.
func (h *Hub) Run(ctx context.Context) error { return h.loop.Run(ctx, h.run) }

// Close stops a Run under way and waits for it.
func (h *Hub) Close() error { return h.loop.Close() }

func (h *Hub) run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); h.runStatus(ctx) }()
	defer wg.Wait()
	defer h.stop()
	// End the subscriptions at once; the reader itself may sit in XREAD
	// for up to hubBlock more.
	go func() { <-ctx.Done(); h.stop() }()
	last := ""
	for last == "" {
		id, err := h.tail(ctx)
		if err == nil {
			last = id
			break
		}
		if ctx.Err() != nil {
			return
		}
		h.log.Warn("events hub: cannot read the stream, retrying", "err", err)
		if !sleep(ctx, time.Second) {
			return
		}
	}
	close(h.ready)
	for ctx.Err() == nil {
		res, err := h.rdb.XRead(ctx, &redis.XReadArgs{Streams: []string{submission.EventsStream, last}, Count: 100, Block: hubBlock}).Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			h.log.Warn("events hub: XREAD failed, retrying", "err", err)
			sleep(ctx, time.Second)
			continue
		}
		for _, s := range res {
			for _, m := range s.Messages {
				last = m.ID
				if ev := decodeFeedEvent(m); ev != nil {
					h.broadcast(ev)
				}
			}
		}
	}
}

// tail is the id of the stream's newest entry, or 0-0 when it is empty.
func (h *Hub) tail(ctx context.Context) (string, error) {
	msgs, err := h.rdb.XRevRangeN(ctx, submission.EventsStream, "+", "-", 1).Result()
	if err != nil {
		return "", err
	}
	if len(msgs) == 0 {
		return "0-0", nil
	}
	return msgs[0].ID, nil
}

func (h *Hub) broadcast(ev *submission.Published) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		select {
		case s.live <- ev:
		default:
			// Too slow: end it rather than hold events for it.
			delete(h.subs, s)
			close(s.dropped)
		}
	}
}

func (h *Hub) stop() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopped {
		return
	}
	h.stopped = true
	for s := range h.subs {
		delete(h.subs, s)
		close(s.dropped)
	}
	for id, set := range h.watchers {
		for w := range set {
			close(w.changed)
		}
		delete(h.watchers, id)
	}
}

// ErrHubStopped is returned by Subscribe once the hub stopped.
var ErrHubStopped = errors.New("jobs: events hub stopped")

// Subscribe registers a subscriber; with after, it first replays the
// events after that id still in the stream. The subscriber is registered
// before the replay is read, and live events up to the replay's end are
// skipped, so nothing is missed or sent twice.
func (h *Hub) Subscribe(ctx context.Context, after string) (submission.Subscription, error) {
	wait := time.NewTimer(5 * time.Second)
	defer wait.Stop()
	select {
	case <-h.ready:
	case <-wait.C:
		return nil, errors.New("jobs: events hub is not reading the stream yet (is Redis reachable?)")
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	s := &hubSub{hub: h, live: make(chan *submission.Published, hubBuffer), dropped: make(chan struct{})}
	h.mu.Lock()
	if h.stopped {
		h.mu.Unlock()
		return nil, ErrHubStopped
	}
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	if after == "" {
		return s, nil
	}
	cursor, err := parseStreamID(after)
	if err != nil {
		s.Close()
		return nil, err
	}
	s.cursor, s.skip = cursor, true
	start := "(" + after
	for {
		msgs, err := h.rdb.XRangeN(ctx, submission.EventsStream, start, "+", replayPage).Result()
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("jobs: replay events after %s: %w", after, err)
		}
		for _, m := range msgs {
			if ev := decodeFeedEvent(m); ev != nil {
				s.backlog = append(s.backlog, ev)
			}
		}
		if len(msgs) < replayPage {
			break
		}
		start = "(" + msgs[len(msgs)-1].ID
	}
	if n := len(s.backlog); n > 0 {
		s.cursor, _ = parseStreamID(s.backlog[n-1].ID)
	}
	return s, nil
}

// hubSub is one subscriber: its replay, then live events.
type hubSub struct {
	hub     *Hub
	backlog []*submission.Published
	live    chan *submission.Published
	dropped chan struct{}
	once    sync.Once
	// cursor is the last event sent; live events up to it are repeats of
	// the replay when skip is set.
	cursor streamID
	skip   bool
}

// Next returns the next event: the replay first, then live ones.
func (s *hubSub) Next(ctx context.Context) (*submission.Published, error) {
	if len(s.backlog) > 0 {
		ev := s.backlog[0]
		s.backlog[0] = nil
		s.backlog = s.backlog[1:]
		return ev, nil
	}
	for {
		select {
		case ev := <-s.live:
			if s.skip {
				id, err := parseStreamID(ev.ID)
				if err != nil || !s.cursor.less(id) {
					continue
				}
				s.skip = false
			}
			return ev, nil
		case <-s.dropped:
			return nil, submission.ErrSubscriptionEnded
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Close unregisters the subscriber.
func (s *hubSub) Close() {
	s.once.Do(func() {
		s.hub.mu.Lock()
		defer s.hub.mu.Unlock()
		if _, ok := s.hub.subs[s]; ok {
			delete(s.hub.subs, s)
			close(s.dropped)
		}
	})
}

// decodeFeedEvent turns a stream entry into the event GET /events sends:
// the stored JSON has no id (the entry id is the id), so it is added.
func decodeFeedEvent(m redis.XMessage) *submission.Published {
	raw, _ := m.Values["event"].(string)
	var ev submission.Event
	if err := json.Unmarshal([]byte(raw), &ev); err != nil {
		return nil
	}
	ev.ID = m.ID
	data, err := json.Marshal(ev)
	if err != nil {
		return nil
	}
	return &submission.Published{Event: ev, JSON: data}
}

// streamID is a parsed Redis stream id, for ordering.
type streamID struct{ ms, seq uint64 }

func parseStreamID(s string) (streamID, error) {
	a, b, ok := strings.Cut(s, "-")
	ms, err1 := strconv.ParseUint(a, 10, 64)
	seq, err2 := strconv.ParseUint(b, 10, 64)
	if !ok || err1 != nil || err2 != nil {
		return streamID{}, fmt.Errorf("jobs: bad stream id %q", s)
	}
	return streamID{ms, seq}, nil
}

func (a streamID) less(b streamID) bool { return a.ms < b.ms || (a.ms == b.ms && a.seq < b.seq) }

// sleep waits d or until ctx ends; it reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
