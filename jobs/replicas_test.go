package jobs

import (
	"context"
	"testing"

	"github.com/hibiken/asynq"
)

// TestWithdrawTaskOnlyTakesBackPendingTasks: a task no worker took is
// withdrawn (out of the pending list, its hash gone); one a worker holds
// (active) or finished is left alone and its state answered; an absent
// one is "missing".
func TestWithdrawTaskOnlyTakesBackPendingTasks(t *testing.T) {
	rdb := testRedis(t)
	ctx := context.Background()
	client := asynq.NewClientFromRedisClient(rdb)
	insp := asynq.NewInspectorFromRedisClient(rdb)
	for _, id := range []string{"w-pending", "w-active", "w-done"} {
		if _, err := client.Enqueue(asynq.NewTask("t", nil), asynq.TaskID(id), asynq.Queue("default")); err != nil {
			t.Fatal(err)
		}
	}
	// What asynq's dequeue and completion leave on the task's hash.
	rdb.HSet(ctx, "asynq:{default}:t:w-active", "state", "active")
	rdb.HSet(ctx, "asynq:{default}:t:w-done", "state", "completed")

	if got, err := withdrawTask(ctx, rdb, "default", "w-pending"); err != nil || got != "withdrawn" {
		t.Fatalf("pending task: %q, %v; want withdrawn", got, err)
	}
	if _, err := insp.GetTaskInfo("default", "w-pending"); err == nil {
		t.Error("the withdrawn task is still there")
	}
	if ids, _ := rdb.LRange(ctx, "asynq:{default}:pending", 0, -1).Result(); len(ids) != 2 {
		t.Errorf("pending list after the withdrawal: %v, want the two others only", ids)
	}
	for id, state := range map[string]string{"w-active": "active", "w-done": "completed"} {
		if got, err := withdrawTask(ctx, rdb, "default", id); err != nil || got != state {
			t.Errorf("%s: %q, %v; want %q and the task left alone", id, got, err, state)
		}
		if n, _ := rdb.Exists(ctx, "asynq:{default}:t:"+id).Result(); n != 1 {
			t.Errorf("%s was deleted", id)
		}
	}
	if got, err := withdrawTask(ctx, rdb, "default", "never-queued"); err != nil || got != "missing" {
		t.Errorf("absent task: %q, %v; want missing", got, err)
	}
}
