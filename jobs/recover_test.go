package jobs

import (
	"context"
	"os"
	"strings"
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
	// What asynq's dequeue does, with a lease last extended 15 s ago (its
	// worker was killed).
	const q = "asynq:{default}:"
	if err := rdb.RPopLPush(ctx, q+"pending", q+"active").Err(); err != nil {
		t.Fatal(err)
	}
	rdb.HSet(ctx, q+"t:dead1", "state", "active")
	rdb.ZAdd(ctx, q+"lease", redisZ(time.Now().Add(LeaseDuration-15*time.Second).Unix(), "dead1"))
	// A live worker's lease (extended within the last 5 s) is left alone.
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

// TestCheckLayoutFindsAsynqsKeys runs the start-up probe against the real
// asynq and Redis, and checks that it fails loudly when the keys are not
// where the recoverer looks.
func TestCheckLayoutFindsAsynqsKeys(t *testing.T) {
	rdb := testRedis(t)
	ctx := context.Background()
	if err := CheckLayout(ctx, rdb); err != nil {
		t.Fatalf("probe of asynq %s: %v", AsynqVersion, err)
	}
	if n, _ := rdb.Exists(ctx, "asynq:{"+layoutProbeQueue+"}:pending").Result(); n != 0 {
		t.Error("the probe left its task behind")
	}
	// A changed layout: the pending list is another type of key.
	rdb.Set(ctx, "asynq:{"+layoutProbeQueue+"}:pending", "x", 0)
	if err := CheckLayout(ctx, rdb); err == nil {
		t.Error("the probe passed with the pending list replaced")
	}
}

// TestAsynqVersionIsPinned keeps go.mod on the asynq version whose
// internals recover.go uses.
func TestAsynqVersionIsPinned(t *testing.T) {
	b, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "github.com/hibiken/asynq "+AsynqVersion+"\n") {
		t.Errorf("go.mod does not require github.com/hibiken/asynq %s; check recover.go against the new version and update AsynqVersion", AsynqVersion)
	}
}
