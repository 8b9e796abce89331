// Package lifecycle gives formq's long-lived loops (the janitor, the
// retention sweep, the recoverer, the events hub) one shape: New builds
// the part without starting anything, Run works until its context ends or
// Close is called, and Close stops a Run under way and waits for it.
//
// A part keeps a Loop and writes its Run and Close through it:
//
//	func (j *Janitor) Run(ctx context.Context) error { return j.loop.Run(ctx, j.work) }
//	func (j *Janitor) Close() error                  { return j.loop.Close() }
package lifecycle

import (
	"context"
	"errors"
	"sync"
)

// ErrClosed is returned by Run after Close.
var ErrClosed = errors.New("lifecycle: closed")

// Loop runs one part's work at a time and stops it on Close. The zero
// value is ready to use.
type Loop struct {
	mu      sync.Mutex
	closed  bool
	cancels map[*struct{}]context.CancelFunc
	running sync.WaitGroup
}

// Run calls work with a context that ends when ctx ends or Close is
// called, and returns when work does. After Close it returns ErrClosed
// without calling work.
func (l *Loop) Run(ctx context.Context, work func(context.Context)) error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	ctx, cancel := context.WithCancel(ctx)
	key := new(struct{})
	if l.cancels == nil {
		l.cancels = map[*struct{}]context.CancelFunc{}
	}
	l.cancels[key] = cancel
	l.running.Add(1)
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		delete(l.cancels, key)
		l.mu.Unlock()
		cancel()
		l.running.Done()
	}()
	work(ctx)
	return nil
}

// Close ends every Run under way and waits for them; later Runs return
// ErrClosed. It may be called more than once.
func (l *Loop) Close() error {
	l.mu.Lock()
	l.closed = true
	for _, cancel := range l.cancels {
		cancel()
	}
	l.mu.Unlock()
	l.running.Wait()
	return nil
}
