package jobs

// Waiting answers: the API holds the answer to a submission of an action
// with wait: until its steps end, on the status notices the events hub
// already receives (no polling, no Redis connection per waiting request).

import (
	"context"
	"errors"
	"time"

	"github.com/formq/formq/submission"
)

// ErrWaitersFull means as many requests as allowed already wait: the
// answer goes out at once, as for an action without wait:.
var ErrWaitersFull = errors.New("jobs: too many answers waiting")

// Waiter holds answers until submissions end. At most max wait at once
// in one API process; each holds a goroutine and a channel of the hub.
type Waiter struct {
	hub    *Hub
	status *StatusStore
	slots  chan struct{}
}

// NewWaiter builds a waiter on the process's hub and status store,
// letting max requests wait at once.
func NewWaiter(hub *Hub, status *StatusStore, max int) *Waiter {
	return &Waiter{hub: hub, status: status, slots: make(chan struct{}, max)}
}

// Wait returns the status of submission id once it is final (completed,
// rejected or failed), or as it stands when d runs out or ctx ends (not
// final then; nil when it could not be read). It fails at once with
// ErrWaitersFull when max requests already wait.
func (w *Waiter) Wait(ctx context.Context, id string, d time.Duration) (*submission.Status, error) {
	select {
	case w.slots <- struct{}{}:
		defer func() { <-w.slots }()
	default:
		return nil, ErrWaitersFull
	}
	// Watch before the first read: a change in between is not missed.
	watch, err := w.hub.WatchStatus(id)
	if err != nil {
		return nil, err
	}
	defer watch.Close()
	timer := time.NewTimer(d)
	defer timer.Stop()
	var last *submission.Status
	for {
		st, err := w.status.Status(ctx, id)
		switch {
		case err == nil:
			last = st
			if st.Done() {
				return st, nil
			}
		case !errors.Is(err, submission.ErrNotFound):
			return last, err
		}
		select {
		case _, ok := <-watch.Changed():
			if !ok {
				return last, nil // the hub stopped: the process is shutting down
			}
		case <-timer.C:
			return last, nil
		case <-ctx.Done():
			return last, nil
		}
	}
}

// Waiting is how many answers wait now.
func (w *Waiter) Waiting() int { return len(w.slots) }
