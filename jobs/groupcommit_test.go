package jobs

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/formq/formq/internal/testenv"
	"github.com/formq/formq/submission"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// gate holds the first round trip that reaches it until released, so a
// test can line commands up behind it.
type gate struct {
	once    sync.Once
	reached chan struct{}
	release chan struct{}
}

func newGate() *gate { return &gate{reached: make(chan struct{}), release: make(chan struct{})} }

func (g *gate) hold() {
	g.once.Do(func() {
		close(g.reached)
		<-g.release
	})
}

func (g *gate) DialHook(next redis.DialHook) redis.DialHook { return next }
func (g *gate) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { g.hold(); return next(ctx, cmd) }
}
func (g *gate) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { g.hold(); return next(ctx, cmds) }
}

// queued is how many calls wait for the next batch.
func (g *groupCommit) queued() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.queue)
}

// waitQueued waits until n calls wait behind the batch on the wire.
func waitQueued(t *testing.T, g *groupCommit, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for g.queued() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d calls queued, want %d", g.queued(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// Enqueues that arrive while one is on the wire go together as the next
// pipeline, and every submission is queued.
func TestConcurrentEnqueuesShareARoundTrip(t *testing.T) {
	ctx := testenv.Context(t)
	rdb := testRedis(t)
	enq := NewEnqueuer(asynq.NewClientFromRedisClient(rdb), nil, quietLog()).WithGroupCommit(rdb)
	// The queue is registered with asynq once per client; do it first,
	// so every later enqueue is its script alone.
	if err := enq.Enqueue(ctx, &submission.Submission{ID: "01FIRST", Action: "contact"}); err != nil {
		t.Fatal(err)
	}
	counter, hold := &testenv.RoundTrips{}, newGate()
	rdb.AddHook(counter)
	rdb.AddHook(hold)
	gc := enq.group

	const n = 40
	errs := make(chan error, n)
	send := func(i int) {
		errs <- enq.Enqueue(ctx, &submission.Submission{ID: fmt.Sprintf("01SUB%02d", i), Action: "contact"})
	}
	go send(0)
	<-hold.reached // the first enqueue is on the wire
	for i := 1; i < n; i++ {
		go send(i)
	}
	waitQueued(t, gc, n-1)
	close(hold.release)
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	trips := counter.Take()
	if len(trips) != 2 {
		t.Fatalf("%d enqueues took %d round trips, want 2 (one alone, then %d together): %v", n, len(trips), n-1, trips)
	}
	ins := asynq.NewInspectorFromRedisClient(rdb)
	for i := range n {
		id := fmt.Sprintf("01SUB%02d", i)
		if _, err := ins.GetTaskInfo(submission.DefaultQueue, id); err != nil {
			t.Errorf("submission %s is not queued: %v", id, err)
		}
	}
}

// Each command of a batch gets its own reply: one failing does not fail
// the others, and a command sent without the mark is not held.
func TestGroupedCommandsKeepTheirOwnReplies(t *testing.T) {
	ctx := testenv.Context(t)
	rdb := testRedis(t)
	gc := newGroupCommit(rdb)
	if err := rdb.Set(ctx, "text", "not a number", 0).Err(); err != nil {
		t.Fatal(err)
	}
	hold := newGate()
	rdb.AddHook(hold)
	marked := withGroupCommit(ctx)
	first := make(chan error, 1)
	go func() { first <- rdb.Incr(marked, "a").Err() }()
	<-hold.reached
	var wg sync.WaitGroup
	results := make([]*redis.IntCmd, 6)
	for i := range results {
		wg.Go(func() {
			key := fmt.Sprintf("n%d", i)
			if i == 3 {
				key = "text"
			}
			results[i] = rdb.IncrBy(marked, key, int64(i+1))
		})
	}
	waitQueued(t, gc, len(results))
	close(hold.release)
	wg.Wait()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	for i, r := range results {
		switch {
		case i == 3 && r.Err() == nil:
			t.Errorf("INCRBY of a text value succeeded: %d", r.Val())
		case i != 3 && (r.Err() != nil || r.Val() != int64(i+1)):
			t.Errorf("INCRBY n%d = %d, %v; want %d", i, r.Val(), r.Err(), i+1)
		}
	}
	if v, err := rdb.Get(ctx, "text").Result(); err != nil || v != "not a number" {
		t.Errorf("text = %q, %v", v, err)
	}
}

// When Redis is gone, every grouped caller gets an error; none waits for
// ever.
func TestGroupedCommandsFailTogetherWhenRedisIsGone(t *testing.T) {
	ctx := testenv.Context(t)
	r, srv := testenv.StartPrivateRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr, MaxRetries: -1, DialTimeout: time.Second})
	t.Cleanup(func() { rdb.Close() })
	gc := newGroupCommit(rdb)
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	srv.Kill(t)
	hold := newGate()
	rdb.AddHook(hold)
	marked := withGroupCommit(ctx)
	errs := make([]error, 16)
	var wg sync.WaitGroup
	wg.Go(func() { errs[0] = rdb.Incr(marked, "k").Err() })
	<-hold.reached
	for i := 1; i < len(errs); i++ {
		wg.Go(func() { errs[i] = rdb.Incr(marked, "k").Err() })
	}
	waitQueued(t, gc, len(errs)-1)
	close(hold.release)
	wg.Wait()
	for i, err := range errs {
		if err == nil {
			t.Errorf("call %d succeeded with Redis gone", i)
		}
	}
}
