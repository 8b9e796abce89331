package jobs

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
)

// TestRecovererRequeuesTaskOfDeadWorker leaves a task active with a lease
// nobody extends, as a SIGKILLed worker does, and checks that the
// Recoverer hands it back to asynq, which then runs it, while a task
// whose lease is being extended stays with its worker. The leases name
// times 2 minutes off, as workers with clocks off write them: the dead
// worker's clock ahead (its lease looks far from over), the live one's
// behind (its lease looks long expired); only whether a lease moves
// counts.
func TestRecovererRequeuesTaskOfDeadWorker(t *testing.T) {
	rdb := testRedis(t)
	ctx := context.Background()
	client := asynq.NewClientFromRedisClient(rdb)
	const q = "asynq:{default}:"
	activate := func(id string, lease time.Time) {
		t.Helper()
		if _, err := client.Enqueue(asynq.NewTask("t", nil), asynq.TaskID(id), asynq.Queue("default")); err != nil {
			t.Fatal(err)
		}
		// What asynq's dequeue does.
		if err := rdb.RPopLPush(ctx, q+"pending", q+"active").Err(); err != nil {
			t.Fatal(err)
		}
		rdb.HSet(ctx, q+"t:"+id, "state", "active")
		rdb.ZAdd(ctx, q+"lease", redisZ(lease.Unix(), id))
	}
	activate("dead1", time.Now().Add(2*time.Minute+LeaseDuration))
	alive := time.Now().Add(-2*time.Minute + LeaseDuration)
	activate("alive1", alive)

	r := NewRecoverer(rdb, []string{"default", "low"}, quietLog())
	r.stale = 300 * time.Millisecond
	if n := r.Once(ctx); n != 0 {
		t.Fatalf("requeued %d tasks on the first look, before any lease was watched for StaleLease", n)
	}
	for range 3 { // the live worker extends its lease
		time.Sleep(150 * time.Millisecond)
		alive = alive.Add(5 * time.Second)
		rdb.ZAddXX(ctx, q+"lease", redisZ(alive.Unix(), "alive1"))
		r.Once(ctx)
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
