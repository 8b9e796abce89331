package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/formq/formq/submission"
	"github.com/hibiken/asynq"
)

// Until a worker writes a submission's status, the status read from its
// task is the queued status the API used to write at acceptance: the same
// JSON; the worker's first write is version 2, and a watch opened on the
// derived status hears it.
func TestQueuedStatusComesFromTheTask(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rdb := testRedis(t)
	store := NewStatusStore(rdb)
	enq := NewEnqueuer(asynq.NewClientFromRedisClient(rdb), store, quietLog())

	sub := func(id string) *submission.Submission {
		return &submission.Submission{
			ID: id, Action: "signup", Values: map[string]any{"name": "Ada"}, Queue: "low",
			Files: []submission.File{{Field: "avatar", Object: submission.Object{
				Key: "uploads/signup/" + id + "/avatar/0", Size: 42, ContentType: "image/png", SHA256: "ab", Filename: "me.png",
			}}},
			Steps:      []submission.Step{{Type: "webhook", Config: map[string]any{"url": "https://example.com"}}, {Type: "email"}},
			ReceivedAt: time.UnixMilli(1_700_000_000_123).UTC(),
		}
	}
	derived := sub("01DERIVED")
	if err := enq.Enqueue(ctx, derived); err != nil {
		t.Fatal(err)
	}
	if n, err := rdb.Exists(ctx, submission.StatusKey(derived.ID)).Result(); err != nil || n != 0 {
		t.Fatalf("Enqueue wrote a status hash (exists %d, err %v)", n, err)
	}
	// The status as the API wrote it before, at the same moment.
	written := sub("01WRITTEN")
	store.now = func() time.Time { return written.ReceivedAt }
	if err := store.Queued(ctx, written, written.Steps); err != nil {
		t.Fatal(err)
	}
	got, err := store.Status(ctx, derived.ID)
	if err != nil {
		t.Fatal(err)
	}
	want, err := store.Status(ctx, written.ID)
	if err != nil {
		t.Fatal(err)
	}
	want.ID, want.StatusURL = derived.ID, "/submissions/"+derived.ID
	want.Files[0].Key = derived.Files[0].Key
	gotJSON, _ := json.Marshal(got)
	wantJSON, _ := json.Marshal(want)
	if string(gotJSON) != string(wantJSON) {
		t.Fatalf("derived queued status\n%s\nwant, as written at acceptance,\n%s", gotJSON, wantJSON)
	}

	hub := NewHub(rdb, quietLog())
	done := make(chan struct{})
	go func() { hub.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	select {
	case <-hub.statusUp:
	case <-time.After(5 * time.Second):
		t.Fatal("the hub never listened on formq:status")
	}
	watch, err := hub.WatchStatus(derived.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer watch.Close()
	select { // subscribing told the watcher to read again
	case <-watch.Changed():
	default:
	}
	st, err := store.Begin(ctx, derived, derived.Steps)
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != submission.StatusProcessing || st.Version != 2 {
		t.Fatalf("the worker's first write: %s version %d, want processing version 2", st.Status, st.Version)
	}
	select {
	case <-watch.Changed():
	case <-time.After(5 * time.Second):
		t.Fatal("a watch opened on the derived status did not hear the worker start")
	}
	if st, err := store.Begin(ctx, written, written.Steps); err != nil || st.Version != 2 {
		t.Fatalf("begin after a written queued status: version %v, err %v; want 2", st, err)
	}

	// A task that ended without a status (erased) is no submission.
	gone := sub("01GONE")
	if err := enq.Enqueue(ctx, gone); err != nil {
		t.Fatal(err)
	}
	if err := rdb.HSet(ctx, taskKey("low", gone.ID), "state", "completed").Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Status(ctx, gone.ID); !errors.Is(err, submission.ErrNotFound) {
		t.Fatalf("status of a finished task without status: %v, want ErrNotFound", err)
	}
	if _, err := store.Status(ctx, "01NEVER"); !errors.Is(err, submission.ErrNotFound) {
		t.Fatalf("status of an unknown id: %v, want ErrNotFound", err)
	}
}
