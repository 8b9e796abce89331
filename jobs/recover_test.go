package jobs

import (
	"context"
	"testing"
	"time"

	"github.com/hibiken/asynq"
)

// TestRecovererRequeuesTaskOfDeadWorker leaves a task active with an
// expired lease, as a SIGKILLed worker does, and checks that the
// Recoverer hands it back to asynq, which then runs it.
func TestRecovererRequeuesTaskOfDeadWorker(t *testing.T) {
	rdb := testRedis(t)
	ctx := context.Background()
	client := asynq.NewClientFromRedisClient(rdb)
	if _, err := client.Enqueue(asynq.NewTask("t", nil), asynq.TaskID("dead1"), asynq.Queue("default")); err != nil {
		t.Fatal(err)
	}
	// What asynq's dequeue does, with a lease that ran out a minute ago.
	const q = "asynq:{default}:"
	if err := rdb.RPopLPush(ctx, q+"pending", q+"active").Err(); err != nil {
		t.Fatal(err)
	}
	rdb.HSet(ctx, q+"t:dead1", "state", "active")
	rdb.ZAdd(ctx, q+"lease", redisZ(time.Now().Add(-time.Minute).Unix(), "dead1"))
	// A live worker's lease (still valid) must be left alone.
	if _, err := client.Enqueue(asynq.NewTask("t", nil), asynq.TaskID("alive1"), asynq.Queue("default")); err != nil {
		t.Fatal(err)
	}
	rdb.RPopLPush(ctx, q+"pending", q+"active")
	rdb.HSet(ctx, q+"t:alive1", "state", "active")
	rdb.ZAdd(ctx, q+"lease", redisZ(time.Now().Add(25*time.Second).Unix(), "alive1"))

	r := NewRecoverer(rdb, []string{"default", "low"}, quietLog())
	if n := r.Once(ctx); n != 1 {
		t.Fatalf("requeued %d tasks, want 1", n)
	}
	insp := asynq.NewInspectorFromRedisClient(rdb)
	info, err := insp.GetTaskInfo("default", "dead1")
	if err != nil || info.State != asynq.TaskStatePending {
		t.Fatalf("dead task: %+v, %v; want pending", info, err)
	}
	if info, _ := insp.GetTaskInfo("default", "alive1"); info.State != asynq.TaskStateActive {
		t.Errorf("live task moved to %v", info.State)
	}

	// asynq picks the recovered task up again.
	ran := make(chan string, 1)
	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{Concurrency: 1, Queues: map[string]int{"default": 1}, TaskCheckInterval: 50 * time.Millisecond, LogLevel: asynq.FatalLevel})
	if err := srv.Start(asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		id, _ := asynq.GetTaskID(ctx)
		ran <- id
		return nil
	})); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	select {
	case id := <-ran:
		if id != "dead1" {
			t.Errorf("ran %s", id)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the recovered task never ran")
	}
}
