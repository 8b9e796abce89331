package jobs

import (
	"context"
	"sync"

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
	r := &Runners{work: make(chan runJob), quit: make(chan struct{})}
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

// Handler runs next on a runner, waiting for one to be free (with as
// many runners as the server's concurrency, one always is), or on the
// task's own goroutine once the runners are closed; it returns when the
// task is done.
func (r *Runners) Handler(next asynq.Handler) asynq.Handler {
	return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		select {
		case <-r.quit:
			return next.ProcessTask(ctx, t)
		default:
		}
		j := runJob{ctx: ctx, task: t, next: next, done: make(chan runResult, 1)}
		select {
		case r.work <- j:
		case <-r.quit:
			return next.ProcessTask(ctx, t)
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
