package jobs

import (
	"context"
	"time"

	"github.com/formq/formq/submission"
	"github.com/redis/go-redis/v9"
)

// statusWatch is one status stream's interest in one submission.
type statusWatch struct {
	hub     *Hub
	id      string
	changed chan struct{}
}

// WatchStatus starts watching a submission's status. Watch before reading
// the status, so a change between the read and the watch is not missed.
func (h *Hub) WatchStatus(id string) (submission.StatusWatch, error) {
	w := &statusWatch{hub: h, id: id, changed: make(chan struct{}, 1)}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopped {
		return nil, ErrHubStopped
	}
	set := h.watchers[id]
	if set == nil {
		set = map[*statusWatch]struct{}{}
		h.watchers[id] = set
	}
	set[w] = struct{}{}
	return w, nil
}

func (w *statusWatch) Changed() <-chan struct{} { return w.changed }

func (w *statusWatch) Close() {
	h := w.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	set := h.watchers[w.id]
	if _, ok := set[w]; !ok {
		return
	}
	delete(set, w)
	if len(set) == 0 {
		delete(h.watchers, w.id)
	}
	close(w.changed)
}

// notify tells the watchers of one submission that its status changed;
// a watcher already told and not yet caught up is not told twice.
func (h *Hub) notify(id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for w := range h.watchers[id] {
		select {
		case w.changed <- struct{}{}:
		default:
		}
	}
}

// notifyAll tells every watcher to look again: after the subscription to
// formq:status was re-established, changes in between were not heard.
func (h *Hub) notifyAll() {
	h.mu.Lock()
	ids := make([]string, 0, len(h.watchers))
	for id := range h.watchers {
		ids = append(ids, id)
	}
	h.mu.Unlock()
	for _, id := range ids {
		h.notify(id)
	}
}

// runStatus listens on formq:status until ctx ends. go-redis re-subscribes
// by itself after a connection loss; every watcher is then told to read
// again, since notices sent meanwhile are gone.
func (h *Hub) runStatus(ctx context.Context) {
	for ctx.Err() == nil {
		ps := h.rdb.Subscribe(ctx, submission.StatusChannel)
		if _, err := ps.Receive(ctx); err != nil {
			ps.Close()
			if ctx.Err() != nil {
				return
			}
			h.log.Warn("events hub: cannot subscribe to status changes, retrying", "err", err)
			sleep(ctx, time.Second)
			continue
		}
		h.notifyAll()
		h.statusOnce.Do(func() { close(h.statusUp) })
		h.listenStatus(ctx, ps.Channel())
		ps.Close()
	}
}

func (h *Hub) listenStatus(ctx context.Context, ch <-chan *redis.Message) {
	for {
		select {
		case <-ctx.Done():
			return
		case m, ok := <-ch:
			if !ok {
				return
			}
			h.notify(m.Payload)
		}
	}
}
