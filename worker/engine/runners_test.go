package engine

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
)

// goroutineID is the running goroutine's number, from its stack header.
func goroutineID() int {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	f := bytes.Fields(buf)
	n, _ := strconv.Atoi(string(f[1]))
	return n
}

func TestRunnersRunTasksOnLongLivedGoroutines(t *testing.T) {
	r := NewRunners(1)
	defer r.Close()
	ctx := context.Background()
	var ran []int
	failed := errors.New("step failed")
	h := r.Handler(asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		ran = append(ran, goroutineID())
		if string(t.Payload()) == "fail" {
			return failed
		}
		return nil
	}))
	for _, p := range []string{"a", "b", "fail"} {
		done := make(chan error)
		// Each task on a new goroutine, as asynq runs them.
		go func() { done <- h.ProcessTask(ctx, asynq.NewTask("t", []byte(p))) }()
		err := <-done
		if p == "fail" && !errors.Is(err, failed) || p != "fail" && err != nil {
			t.Fatalf("task %s: %v", p, err)
		}
	}
	if len(ran) != 3 || ran[0] != ran[1] || ran[1] != ran[2] {
		t.Fatalf("tasks ran on goroutines %v; want all three on the one runner", ran)
	}
}

func TestRunnersWaitForAFreeRunnerUntilClosed(t *testing.T) {
	r := NewRunners(1)
	r.wait = time.Hour // this test is about waiting, not about giving up on it
	ctx := context.Background()
	release := make(chan struct{})
	started := make(chan int, 1)
	var quick atomic.Int64
	h := r.Handler(asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		switch string(t.Payload()) {
		case "slow":
			started <- goroutineID()
			<-release
		default:
			quick.Store(int64(goroutineID()))
		}
		return nil
	}))
	slow := make(chan error)
	go func() { slow <- h.ProcessTask(ctx, asynq.NewTask("t", []byte("slow"))) }()
	runner := <-started
	// The only runner is busy: the next task waits for it.
	second := make(chan error)
	go func() { second <- h.ProcessTask(ctx, asynq.NewTask("t", []byte("quick"))) }()
	close(release)
	if err := errors.Join(<-slow, <-second); err != nil || quick.Load() != int64(runner) {
		t.Fatalf("second task: err %v, ran on goroutine %d, want the runner %d", err, quick.Load(), runner)
	}

	r.Close()
	// Closed: a task runs on its own goroutine.
	if err := h.ProcessTask(ctx, asynq.NewTask("t", []byte("after"))); err != nil || quick.Load() != int64(goroutineID()) {
		t.Fatalf("after Close: err %v, ran on %d, want the caller %d", err, quick.Load(), goroutineID())
	}
}

func TestRunnersPanicInTheTasksGoroutine(t *testing.T) {
	r := NewRunners(1)
	defer r.Close()
	h := r.Handler(asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		if string(t.Payload()) == "boom" {
			panic("boom")
		}
		return nil
	}))
	got := make(chan any)
	go func() {
		defer func() { got <- recover() }()
		_ = h.ProcessTask(context.Background(), asynq.NewTask("t", []byte("boom")))
	}()
	if v := <-got; v != "boom" {
		t.Fatalf("recovered %v in the task's goroutine, want the handler's panic", v)
	}
	// The runner survived it and takes the next task.
	if err := h.ProcessTask(context.Background(), asynq.NewTask("t", nil)); err != nil {
		t.Fatal(err)
	}
}

// A task whose handler never returns holds its runner, not the tasks
// after it: they run on their own goroutines.
func TestRunnersDoNotWaitBehindAStuckTask(t *testing.T) {
	r := NewRunners(1)
	defer r.Close()
	stuck, running := make(chan struct{}), make(chan struct{})
	defer close(stuck)
	h := r.Handler(asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		if string(t.Payload()) == "stuck" {
			close(running)
			<-stuck // ignores its context, as a buggy step might
		}
		return nil
	}))
	go func() { _ = h.ProcessTask(context.Background(), asynq.NewTask("t", []byte("stuck"))) }()
	<-running // the only runner is held
	for i := range 3 {
		done := make(chan error, 1)
		go func() { done <- h.ProcessTask(context.Background(), asynq.NewTask("t", []byte("next"))) }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("task %d waited behind a stuck one", i)
		}
	}
}
