package status

import (
	"errors"
	"sync"
	"time"

	"github.com/formq/formq/actions/web"
)

// Default caps of open event streams, per API process.
const (
	DefaultStreamsPerClient = 16
	DefaultStreamsMax       = 10_000
)

// streamLimits caps the event streams one API process holds open: per
// client address (so one client cannot take them all) and in all (so
// they cannot exhaust the process).
type streamLimits struct {
	perClient int
	max       int

	mu    sync.Mutex
	open  map[string]int
	total int
}

// newStreamLimits builds the caps; zero values take the defaults.
func newStreamLimits(perClient, max int) *streamLimits {
	if perClient <= 0 {
		perClient = DefaultStreamsPerClient
	}
	if max <= 0 {
		max = DefaultStreamsMax
	}
	return &streamLimits{perClient: perClient, max: max, open: map[string]int{}}
}

// acquire claims a stream for client, or answers 429 rate_limited with
// a message saying which cap was reached; release gives it back.
func (l *streamLimits) acquire(client string) (release func(), err error) {
	perClient, max := l.perClient, l.max
	l.mu.Lock()
	defer l.mu.Unlock()
	var e *web.Error
	switch {
	case l.open[client] >= perClient:
		e = web.ErrRateLimited.With(errors.New("event streams per client"),
			"Too many open event streams from your address; close some and try again.")
	case l.total >= max:
		e = web.ErrRateLimited.With(errors.New("event streams in all"),
			"Too many open event streams on this server; try again shortly.")
	}
	if e != nil {
		e.RetryAfter = 5 * time.Second
		return nil, e
	}
	l.open[client]++
	l.total++
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.total--
			if l.open[client]--; l.open[client] <= 0 {
				delete(l.open, client)
			}
		})
	}, nil
}
