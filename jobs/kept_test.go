package jobs

import (
	"context"
	"testing"
	"time"

	"github.com/formq/formq/internal/testenv"
	"github.com/formq/formq/submission"
	"github.com/formq/formq/uploads"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// TestSubmissionKept: the janitor keeps the files of a submission whose
// record is stored or whose task is still queued, and refuses to decide
// when Redis cannot be asked.
func TestSubmissionKept(t *testing.T) {
	ctx := testenv.Context(t)
	r := testenv.StartRedis(t)
	s := testenv.StartS3(t)
	store, err := uploads.NewStore(ctx, uploads.Config{Endpoint: s.Endpoint, Region: s.Region, Bucket: s.Bucket, AccessKey: s.AccessKey, SecretKey: s.SecretKey})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.EnsureBucket(ctx); err != nil {
		t.Fatal(err)
	}
	rdb := r.Client(t)

	client := asynq.NewClientFromRedisClient(rdb)
	if _, err := client.EnqueueContext(ctx, asynq.NewTask("submission:process", nil, asynq.TaskID("01QUEUED"), asynq.Queue("low"))); err != nil {
		t.Fatal(err)
	}
	if _, err := client.EnqueueContext(ctx, asynq.NewTask("submission:process", nil, asynq.TaskID("01LATER"), asynq.ProcessIn(time.Hour))); err != nil {
		t.Fatal(err)
	}
	if err := store.PutJSON(ctx, submission.RecordKey("a", "01RECORD"), []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	kept := SubmissionKept(store, asynq.NewInspectorFromRedisClient(rdb))
	for id, want := range map[string]bool{"01QUEUED": true, "01LATER": true, "01RECORD": true, "01ORPHAN": false} {
		got, err := kept(ctx, "a", id)
		if err != nil || got != want {
			t.Errorf("%s: kept = %v, %v; want %v", id, got, err, want)
		}
	}

	down := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer down.Close()
	if got, err := SubmissionKept(store, asynq.NewInspectorFromRedisClient(down))(context.Background(), "a", "01ORPHAN"); err == nil || got {
		t.Fatalf("with Redis down: kept = %v, err = %v; want an error so nothing is deleted", got, err)
	}
}
