package uploads

import (
	"context"
	"sync/atomic"
)

// budget hands out fixed-size buffers, at most n at a time, so that any
// number of concurrent uploads holds a bounded amount of memory: an upload
// that finds the budget spent waits for a buffer instead of allocating.
// Buffers are kept for reuse once made, so the process's memory settles
// at the budget and never goes over it.
type budget struct {
	size  int
	free  chan []byte   // buffers ready for reuse
	slots chan struct{} // one token per buffer that may still be allocated
	inUse atomic.Int64  // buffers handed out now
	peak  atomic.Int64  // most buffers ever handed out at once
}

func newBudget(n, size int) *budget {
	b := &budget{size: size, free: make(chan []byte, n), slots: make(chan struct{}, n)}
	for range n {
		b.slots <- struct{}{}
	}
	return b
}

// get waits for a buffer or for ctx to end.
func (b *budget) get(ctx context.Context) ([]byte, error) {
	select {
	case buf := <-b.free:
		return b.out(buf), nil
	default:
	}
	select {
	case buf := <-b.free:
		return b.out(buf), nil
	case <-b.slots:
		return b.out(make([]byte, b.size)), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// tryGet returns a buffer only if one is available at once.
func (b *budget) tryGet() []byte {
	select {
	case buf := <-b.free:
		return b.out(buf)
	case <-b.slots:
		return b.out(make([]byte, b.size))
	default:
		return nil
	}
}

func (b *budget) out(buf []byte) []byte {
	n := b.inUse.Add(1)
	for {
		p := b.peak.Load()
		if n <= p || b.peak.CompareAndSwap(p, n) {
			return buf
		}
	}
}

// put returns a buffer for reuse.
func (b *budget) put(buf []byte) {
	if buf != nil {
		b.inUse.Add(-1)
		b.free <- buf[:b.size]
	}
}
