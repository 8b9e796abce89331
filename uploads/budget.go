package uploads

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// ErrBusy means no upload buffer came free within the admission wait
// (Config.BufferWait), or the client already holds its share: try again
// shortly. Nothing of the file was stored.
var ErrBusy = errors.New("uploads: too many uploads in progress")

// ErrTooSlow means a body that held an upload buffer sent less than the
// minimum rate for the whole rate period: it is cut so that its buffer
// goes to someone else. Nothing of the file was stored.
var ErrTooSlow = errors.New("uploads: the upload is too slow")

type clientKey struct{}

// WithClient tells the Store which client an upload comes from (its IP
// address as the API resolves it), for the per-client share of buffers.
func WithClient(ctx context.Context, client string) context.Context {
	return context.WithValue(ctx, clientKey{}, client)
}

func clientOf(ctx context.Context) string {
	c, _ := ctx.Value(clientKey{}).(string)
	return c
}

// budget admits uploads to part buffers, at most n at a time, so that any
// number of concurrent uploads holds a bounded amount of memory. A lease
// is the right to hold up to one part of bytes; the memory itself grows
// with the file, in chunks (see chunks), so a 1 MiB file holds about
// 1 MiB while its lease counts for a whole part. Waiting uploads are
// served in arrival order (a channel's waiters are FIFO), one client
// holds at most perClient leases, and nobody waits longer than wait: then
// the upload is refused with ErrBusy instead of hanging.
type budget struct {
	wait      time.Duration
	perClient int
	slots     chan struct{} // one token per lease that may be handed out
	inUse     atomic.Int64  // leases handed out now
	waiting   atomic.Int64  // uploads waiting for a lease now
	peak      atomic.Int64  // most leases ever handed out at once

	mu      sync.Mutex
	clients map[string]*share
}

// share is one client's leases: a token per lease it holds.
type share struct {
	tokens chan struct{}
	refs   int // holders and waiters; the share is dropped at 0
}

// lease is one part buffer's worth of memory handed out, to give back
// with put.
type lease struct {
	share *share
	key   string
}

func newBudget(n int, wait time.Duration, perClient int) *budget {
	if wait <= 0 {
		wait = DefaultBufferWait
	}
	if perClient <= 0 {
		perClient = n
	}
	b := &budget{wait: wait, perClient: perClient, slots: make(chan struct{}, n), clients: map[string]*share{}}
	for range n {
		b.slots <- struct{}{}
	}
	return b
}

func (b *budget) join(client string) *share {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.clients[client]
	if s == nil {
		s = &share{tokens: make(chan struct{}, b.perClient)}
		b.clients[client] = s
	}
	s.refs++
	return s
}

func (b *budget) leave(client string, s *share) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if s.refs--; s.refs == 0 {
		delete(b.clients, client)
	}
}

// get waits, within the budget's wait, for the client's share and then a
// lease; ErrBusy when the wait runs out, ctx's error when it ends.
func (b *budget) get(ctx context.Context) (*lease, error) {
	client := clientOf(ctx)
	s := b.join(client)
	if l := b.tryTake(s, client); l != nil {
		return l, nil
	}
	b.waiting.Add(1)
	defer b.waiting.Add(-1)
	timer := time.NewTimer(b.wait)
	defer timer.Stop()
	select {
	case s.tokens <- struct{}{}:
	case <-timer.C:
		b.leave(client, s)
		return nil, ErrBusy
	case <-ctx.Done():
		b.leave(client, s)
		return nil, ctx.Err()
	}
	fail := func(err error) (*lease, error) {
		<-s.tokens
		b.leave(client, s)
		return nil, err
	}
	select {
	case <-b.slots:
		return b.out(s, client), nil
	case <-timer.C:
		return fail(ErrBusy)
	case <-ctx.Done():
		return fail(ctx.Err())
	}
}

// tryGet returns a lease only if one is available at once, within the
// client's share.
func (b *budget) tryGet(ctx context.Context) *lease {
	client := clientOf(ctx)
	s := b.join(client)
	if l := b.tryTake(s, client); l != nil {
		return l
	}
	b.leave(client, s)
	return nil
}

// tryTake takes a token of s and a lease if both are free at once; the
// caller has joined s.
func (b *budget) tryTake(s *share, client string) *lease {
	select {
	case s.tokens <- struct{}{}:
	default:
		return nil
	}
	select {
	case <-b.slots:
		return b.out(s, client)
	default:
		<-s.tokens
		return nil
	}
}

func (b *budget) out(s *share, client string) *lease {
	n := b.inUse.Add(1)
	for {
		p := b.peak.Load()
		if n <= p || b.peak.CompareAndSwap(p, n) {
			return &lease{share: s, key: client}
		}
	}
}

// put gives a lease back.
func (b *budget) put(l *lease) {
	if l == nil {
		return
	}
	b.inUse.Add(-1)
	b.slots <- struct{}{}
	<-l.share.tokens
	b.leave(l.key, l.share)
}

// rateReader cuts a body that holds a buffer and sends less than min
// bytes per second over any whole period. While other uploads wait for a
// buffer (pressure), the pace is measured over the shorter period short,
// so a slow body gives its buffer to a waiting one within about short
// instead of period: the same minimum pace, checked more often when it
// matters.
type rateReader struct {
	r        io.Reader
	min      int64 // bytes per second
	period   time.Duration
	short    time.Duration
	pressure func() bool // nil: never under pressure
	start    time.Time   // of the current period
	n        int64       // bytes read in the current period
}

// newRateReader paces r on b's settings; b's waiters are the pressure.
func newRateReader(r io.Reader, min int64, period time.Duration, b *budget) *rateReader {
	rr := &rateReader{r: r, min: min, period: period, short: max(period/10, 500*time.Millisecond), start: time.Now()}
	if b != nil {
		rr.pressure = func() bool { return b.waiting.Load() > 0 }
	}
	return rr
}

func (r *rateReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.n += int64(n)
	period := r.period
	if r.pressure != nil && r.short < period && r.pressure() {
		period = r.short
	}
	if now := time.Now(); now.Sub(r.start) >= period {
		if float64(r.n) < float64(r.min)*now.Sub(r.start).Seconds() && err == nil {
			return n, ErrTooSlow
		}
		r.start, r.n = now, 0
	}
	return n, err
}

// Admit holds a request body the Store does not read itself (a resumable
// upload's PATCH, which tusd buffers on disk) to the admission of Put: it
// waits, within the BufferWait, for a part buffer of the budget within
// the client's share (WithClient), failing with ErrBusy when none comes
// free, and the body it answers fails its reads with ErrTooSlow when the
// client sends less than MinRate. release gives the buffer back once the
// body is done with.
func (s *Store) Admit(ctx context.Context, body io.Reader) (paced io.Reader, release func(), err error) {
	l, err := s.buffers.get(ctx)
	if err != nil {
		return nil, nil, err
	}
	if s.minRate > 0 {
		body = newRateReader(body, s.minRate, s.period, s.buffers)
	}
	var once sync.Once
	return body, func() { once.Do(func() { s.buffers.put(l) }) }, nil
}
