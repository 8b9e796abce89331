package engine

import (
	"context"
	"sync"
	"time"

	"github.com/hibiken/asynq"
)

// Runners run task handlers on a fixed set of long-lived goroutines.
//
// asynq starts a new goroutine for every task, with a small stack, and a
// submission's S3 request alone needs 32-64 KiB of it: each task's stack
// was copied two or three times, deep in the S3 SDK, the large ones
// allocated and freed through the heap each time (about a tenth of the
// worker's CPU). A runner keeps its grown stack from task to task.
type Runners struct {
	work chan runJob
	quit chan struct{}
	once sync.Once
	wait time.Duration // for a free runner; 10 ms
}

type runJob struct {
	ctx  context.Context
	task *asynq.Task
	next asynq.Handler
	done chan runResult
}

type runResult struct {
	err      error
	panicked bool
	value    any
}

// NewRunners starts n runners; Close stops them.
func NewRunners(n int) *Runners {
	r := &Runners{work: make(chan runJob), quit: make(chan struct{}), wait: 10 * time.Millisecond}
	for range n {
		go r.loop()
	}
	return r
}

func (r *Runners) loop() {
	for {
		select {
		case j := <-r.work:
			j.done <- j.run()
		case <-r.quit:
			return
		}
	}
}

// run runs the job's handler, recovering a panic so that the task's own
// goroutine raises it again (asynq turns it into the task's failure).
func (j runJob) run() (res runResult) {
	defer func() {
		if x := recover(); x != nil {
			res = runResult{panicked: true, value: x}
		}
	}()
	return runResult{err: j.next.ProcessTask(j.ctx, j.task)}
}

// Handler runs next on a runner and returns when the task is done. With
// as many runners as the server's concurrency one is nearly always free
// (or about to be: one is handing back its last task); when none is
// within 10 ms (a runner is held by a task asynq gave up on at its
// deadline, which no longer counts against the concurrency), or once the
// runners are closed, the task runs on its own goroutine, as without
// runners: a handler that never returns costs its runner, never the tasks
// after it.
func (r *Runners) Handler(next asynq.Handler) asynq.Handler {
	return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		j := runJob{ctx: ctx, task: t, next: next, done: make(chan runResult, 1)}
		select {
		case r.work <- j:
		default:
			wait := time.NewTimer(r.wait)
			select {
			case r.work <- j:
				wait.Stop()
			case <-wait.C:
				return next.ProcessTask(ctx, t)
			case <-r.quit:
				wait.Stop()
				return next.ProcessTask(ctx, t)
			}
		}
		res := <-j.done
		if res.panicked {
			panic(res.value)
		}
		return res.err
	})
}

// Close stops the runners: an idle one ends at once, a busy one when its
// task ends; tasks after it run on their own goroutines. It does not wait
// for busy runners: a task asynq gave up on at shutdown (its context
// cancelled) ends on its runner as it would have on its own goroutine,
// without holding up the worker's exit.
func (r *Runners) Close() {
	r.once.Do(func() { close(r.quit) })
}
