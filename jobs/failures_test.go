package jobs_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/formq/formq/internal/testenv"
	"github.com/formq/formq/internal/teststack"
	"github.com/formq/formq/jobs"
	"github.com/formq/formq/jobs/step"
	"github.com/formq/formq/submission"
	"github.com/formq/formq/uploads"
	"github.com/formq/formq/worker/engine"
	"github.com/hibiken/asynq"
)

// syncBuffer is a log destination the test reads while the worker writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// lines are the JSON log lines with msg for the submission id.
func (b *syncBuffer) lines(msg, id string) []map[string]any {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b.buf.Bytes()))
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil && m["msg"] == msg && m["submission"] == id {
			out = append(out, m)
		}
	}
	return out
}

// TestRecordWriteFailureIsLoggedOnceAndRetriedOnStepBackoff runs a real
// asynq server on real Redis whose records go to a versitygw that is down
// when the submission arrives: each failed run is logged once with the
// submission, action, attempt and error, the retry is scheduled on the
// step backoff (seconds, not asynq's default of 15 s and more), and the
// submission completes once S3 is back.
func TestRecordWriteFailureIsLoggedOnceAndRetriedOnStepBackoff(t *testing.T) {
	ctx := testenv.Context(t)
	r := testenv.StartRedis(t)
	rdb := r.Client(t)
	s, s3srv := testenv.StartPrivateS3(t)
	store, err := uploads.NewStore(ctx, uploads.Config{
		Endpoint: s.Endpoint, Region: s.Region, Bucket: s.Bucket, AccessKey: s.AccessKey, SecretKey: s.SecretKey,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.EnsureBucket(ctx); err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	status := jobs.NewStatusStore(rdb)
	mux := engine.NewMux(engine.Deps{
		Records: store, Publisher: jobs.NewRedisPublisher(rdb, 1000), Status: status, Log: log,
	})
	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{
		Concurrency: 2, Queues: submission.QueueWeights,
		TaskCheckInterval: 100 * time.Millisecond, DelayedTaskCheckInterval: 100 * time.Millisecond,
		RetryDelayFunc: engine.RetryDelay, LogLevel: asynq.ErrorLevel,
	})
	if err := srv.Start(mux); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	client := asynq.NewClientFromRedisClient(rdb)
	inspector := asynq.NewInspectorFromRedisClient(rdb)

	s3srv.Kill(t)
	sub := &submission.Submission{ID: "01FAILVISIBLE", Action: "contact", Values: map[string]any{"name": "Ada"}, Files: []submission.File{}}
	if err := jobs.NewEnqueuer(client, status, log).Enqueue(ctx, sub); err != nil {
		t.Fatal(err)
	}
	teststack.WaitFor(t, 30*time.Second, "the failed record write in the log", func() bool {
		return len(logs.lines("task failed", sub.ID)) > 0
	})
	first := logs.lines("task failed", sub.ID)[0]
	if first["action"] != "contact" || first["attempt"] != float64(1) || first["level"] != "WARN" ||
		!strings.Contains(first["err"].(string), "store record") || first["retry_in"] == nil {
		t.Errorf("failure line %v; want action, attempt 1, the record error and when it retries", first)
	}
	info, err := inspector.GetTaskInfo(submission.DefaultQueue, sub.ID)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("after the first failure: state %s, retry in %s; log %v", info.State, info.NextProcessAt.Sub(info.LastFailedAt), first)
	if info.State == asynq.TaskStateRetry {
		// Scheduled on the step backoff (2 s and up to 20% jitter for the
		// first retry), not asynq's default.
		if wait := info.NextProcessAt.Sub(info.LastFailedAt); wait > step.DefaultBackoff*6/5+time.Second {
			t.Errorf("retry scheduled %s after the failure, want the step backoff (%s)", wait, step.DefaultBackoff)
		}
	}

	s3srv.Start(t)
	teststack.WaitFor(t, 60*time.Second, "the submission completed after S3 came back", func() bool {
		st, err := status.Status(ctx, sub.ID)
		return err == nil && st.Status == submission.StatusCompleted
	})
	if _, err := store.Get(ctx, submission.RecordKey(sub.Action, sub.ID)); err != nil {
		t.Errorf("record after recovery: %v", err)
	}
	teststack.WaitFor(t, 10*time.Second, "the task marked completed", func() bool {
		info, err = inspector.GetTaskInfo(submission.DefaultQueue, sub.ID)
		return err == nil && info.State == asynq.TaskStateCompleted
	})
	if n := len(logs.lines("task failed", sub.ID)); n != info.Retried || n == 0 {
		t.Errorf("%d failure lines for %d failed runs; want one per failed run", n, info.Retried)
	}
}
