package status

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/formq/formq/actions/web"
)

// Default caps of open event streams: per client across every API
// process, and in all on each process.
const (
	DefaultStreamsPerClient = 16
	DefaultStreamsMax       = 10_000
)

// StreamCounter counts the event streams each client holds open on every
// API process; *redisstate.StreamCounts is the implementation. Acquire
// answers ok false when the client holds max already; release counts the
// stream back once it ended.
type StreamCounter interface {
	Acquire(ctx context.Context, client string, max int) (release func(), ok bool, err error)
}

// streamLimits caps the event streams: per client address, on every API
// process together when a StreamCounter is given (so one client cannot
// take them all, whichever replica it reaches), and in all on this
// process (so they cannot exhaust it).
type streamLimits struct {
	perClient int
	max       int
	shared    StreamCounter // nil: per client on this process

	mu    sync.Mutex
	open  map[string]int
	total int
}

// newStreamLimits builds the caps; zero values take the defaults.
func newStreamLimits(perClient, max int, shared StreamCounter) *streamLimits {
	if perClient <= 0 {
		perClient = DefaultStreamsPerClient
	}
	if max <= 0 {
		max = DefaultStreamsMax
	}
	return &streamLimits{perClient: perClient, max: max, shared: shared, open: map[string]int{}}
}

// errStreamsPerClient and errStreamsInAll answer a stream over a cap.
func errStreamsPerClient() error {
	return rateLimited(web.ErrRateLimited.With(errors.New("event streams per client"),
		"Too many open event streams from your address; close some and try again."))
}

func errStreamsInAll() error {
	return rateLimited(web.ErrRateLimited.With(errors.New("event streams in all"),
		"Too many open event streams on this server; try again shortly."))
}

func rateLimited(e *web.Error) error {
	e.RetryAfter = 5 * time.Second
	return e
}

// acquire claims a stream for client, or answers 429 rate_limited with
// a message saying which cap was reached; release gives it back.
func (l *streamLimits) acquire(ctx context.Context, client string) (release func(), err error) {
	l.mu.Lock()
	switch {
	case l.total >= l.max:
		l.mu.Unlock()
		return nil, errStreamsInAll()
	case l.shared == nil && l.open[client] >= l.perClient:
		l.mu.Unlock()
		return nil, errStreamsPerClient()
	}
	l.open[client]++
	l.total++
	l.mu.Unlock()
	local := func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.total--
		if l.open[client]--; l.open[client] <= 0 {
			delete(l.open, client)
		}
	}
	shared := func() {}
	if l.shared != nil {
		rel, ok, err := l.shared.Acquire(ctx, client, l.perClient)
		switch {
		case err != nil:
			local()
			return nil, web.ErrUnavailable.With(err)
		case !ok:
			local()
			return nil, errStreamsPerClient()
		}
		shared = rel
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			shared()
			local()
		})
	}, nil
}
