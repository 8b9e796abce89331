package uploads

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// DefaultStallTimeout is how long one S3 request of an upload may make no
// progress before the upload fails with ErrUnavailable.
const DefaultStallTimeout = 15 * time.Second

// errStalled is the cause of a request cut by its stall deadline.
var errStalled = errors.New("S3 made no progress")

// stallWatch is the deadline of one S3 request that carries a body: it
// moves forward whenever S3 takes more of the body, so a request of any
// size may take as long as it keeps going, and one to an S3 that hangs
// (no bytes taken, no answer) ends after the stall timeout whatever its
// size.
type stallWatch struct {
	d      time.Duration
	timer  *time.Timer
	last   atomic.Int64 // unix nanos of the last reset
	ctx    context.Context
	cancel context.CancelCauseFunc // cuts the request with a cause
}

// watch gives one S3 request its stall deadline; stop ends it.
func (s *Store) watch(ctx context.Context) (context.Context, *stallWatch, func()) {
	wctx, cancel := context.WithCancelCause(ctx)
	w := &stallWatch{d: s.stall, ctx: wctx, cancel: cancel}
	w.last.Store(time.Now().UnixNano())
	w.timer = time.AfterFunc(s.stall, func() {
		cancel(fmt.Errorf("%w for %s (FORMQ_S3_STALL_TIMEOUT)", errStalled, s.stall))
	})
	return wctx, w, func() {
		w.timer.Stop()
		cancel(nil)
	}
}

// progress moves the deadline forward; at most every d/16, so that a fast
// body does not pay for a timer reset on every read.
func (w *stallWatch) progress() {
	now := time.Now().UnixNano()
	if last := w.last.Load(); time.Duration(now-last) > w.d/16 && w.last.CompareAndSwap(last, now) {
		w.timer.Reset(w.d)
	}
}

// cause names the stall when the deadline cut err's request.
func (w *stallWatch) cause(err error) error {
	if err == nil {
		return nil
	}
	if c := context.Cause(w.ctx); c != nil && errors.Is(c, errStalled) {
		return fmt.Errorf("%w: %w", c, err)
	}
	return err
}

// completeTimeout bounds a request that S3 answers only after work of its
// own on size bytes (completing a multipart upload copies the parts on
// some servers): the stall timeout plus a second per 32 MiB.
func (s *Store) completeTimeout(size int64) time.Duration {
	return s.stall + time.Duration(size/(32<<20))*time.Second
}
