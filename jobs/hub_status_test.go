package jobs

import (
	"context"
	"testing"
	"time"

	"github.com/formq/formq/submission"
)

// TestHubPushesStatusChanges: every status write a worker makes reaches
// the watchers of that submission through formq:status, and only theirs;
// a closed watch and a stopped hub close the channel.
func TestHubPushesStatusChanges(t *testing.T) {
	rdb := testRedis(t)
	ctx, cancel := context.WithCancel(context.Background())
	hub := NewHub(rdb, quietLog())
	done := make(chan struct{})
	go func() { hub.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	mine, err := hub.WatchStatus("01MINE")
	if err != nil {
		t.Fatal(err)
	}
	other, err := hub.WatchStatus("01OTHER")
	if err != nil {
		t.Fatal(err)
	}
	store := NewStatusStore(rdb)
	sub := &submission.Submission{ID: "01MINE", Action: "a"}
	steps := []submission.Step{{Type: "webhook"}}
	changed := func(w submission.StatusWatch, what string) {
		t.Helper()
		select {
		case <-w.Changed():
		case <-time.After(5 * time.Second):
			t.Fatalf("no change notice for %s", what)
		}
	}
	select {
	case <-hub.statusUp:
	case <-time.After(5 * time.Second):
		t.Fatal("the hub never listened on formq:status")
	}
	// Subscribing tells every watcher to read again; start from quiet.
	for _, w := range []submission.StatusWatch{mine, other} {
		select {
		case <-w.Changed():
		default:
		}
	}
	if err := store.Queued(ctx, sub, steps); err != nil {
		t.Fatal(err)
	}
	changed(mine, "queued")
	if _, err := store.Begin(ctx, sub, steps); err != nil {
		t.Fatal(err)
	}
	changed(mine, "processing")
	if _, err := store.StepStarted(ctx, sub.ID, 0); err != nil {
		t.Fatal(err)
	}
	changed(mine, "a step starting")
	if err := store.Finish(ctx, sub.ID, submission.StatusCompleted, "", "1-0"); err != nil {
		t.Fatal(err)
	}
	changed(mine, "completed")
	select {
	case <-other.Changed():
		t.Fatal("a watcher of another submission was told")
	case <-time.After(200 * time.Millisecond):
	}
	other.Close()
	if _, ok := <-other.Changed(); ok {
		t.Fatal("a closed watch's channel is still open")
	}
	cancel()
	<-done
	for range mine.Changed() {
	} // closed by the hub's stop; a hang here fails the test by timeout
	if _, err := hub.WatchStatus("01LATE"); err == nil {
		t.Fatal("a stopped hub handed out a watch")
	}
}
