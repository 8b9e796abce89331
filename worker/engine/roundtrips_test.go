package engine

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/formq/formq/internal/testenv"
	"github.com/formq/formq/jobs"
	"github.com/formq/formq/jobs/step"
	"github.com/formq/formq/submission"
	"github.com/hibiken/asynq"
)

// A processed submission without steps costs the worker one Redis round
// trip of formq's own (asynq's dequeue and completion aside), after its
// record is stored: its index entry, its event and its completed status
// together. Its status goes from the queued derived from its task
// (version 1) to completed (version 2).
func TestProcessedSubmissionRoundTrips(t *testing.T) {
	ctx := context.Background()
	rdb := testRedis(t)
	counter := &testenv.RoundTrips{}
	rdb.AddHook(counter)
	status := jobs.NewStatusStore(rdb)
	records := &memRecords{}
	d := Deps{
		Records: records, Index: jobs.NewIndex(rdb, nil).WithPersonal(map[string][]string{"contact": {"name"}}), Publisher: jobs.NewRedisPublisher(rdb, 1000),
		Status: status, Steps: step.Steps{}, Log: quietLog(), Now: time.Now,
	}
	run := func(id string) {
		t.Helper()
		sub := &submission.Submission{
			ID: id, Action: "contact", Values: map[string]any{"name": "Ada"}, Files: []submission.File{},
			ReceivedAt: time.Now().UTC(), Revalidate: submission.Revalidate{Paths: []string{"/"}, Tags: []string{}},
		}
		payload, err := json.Marshal(sub)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.processSubmission(ctx, asynq.NewTask(jobs.TypeSubmission, payload)); err != nil {
			t.Fatal(err)
		}
	}
	run("01WARM") // loads the scripts
	counter.Take()

	run("01COUNTED")
	calls := counter.Take()
	t.Logf("round trips: %v", calls)
	if len(calls) > 1 {
		t.Fatalf("processing a submission without steps made %d Redis round trips, want 1: %v", len(calls), calls)
	}
	st, err := status.Status(ctx, "01COUNTED")
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != submission.StatusCompleted || st.Event == "" || st.Version != 2 || st.Action != "contact" ||
		st.Files == nil || len(st.Files) != 0 || st.Steps == nil || len(st.Steps) != 0 {
		t.Fatalf("status after processing: %+v; want completed with its event at version 2", st)
	}
	var ev struct{ Submission string }
	if xs, err := rdb.XRange(ctx, submission.EventsStream, st.Event, st.Event).Result(); err != nil || len(xs) != 1 ||
		json.Unmarshal([]byte(xs[0].Values["event"].(string)), &ev) != nil || ev.Submission != "01COUNTED" {
		t.Fatalf("event %s in the stream: %v %v", st.Event, xs, err)
	}
	if page, err := d.Index.List(ctx, submission.Query{}); err != nil || len(page.Items) != 2 ||
		page.Items[0].Status != submission.StatusCompleted || page.Items[1].Status != submission.StatusCompleted {
		t.Fatalf("index after two submissions: %+v, %v", page, err)
	}
	if ids, err := d.Index.ByPersonal(ctx, "contact", "name", "Ada"); err != nil || len(ids) != 2 {
		t.Fatalf("personal index after two submissions: %v, %v", ids, err)
	}
	if len(records.m) != 2 {
		t.Fatalf("%d records stored, want 2", len(records.m))
	}
	// Processing again changes nothing: the same event, still completed.
	run("01COUNTED")
	if again, err := status.Status(ctx, "01COUNTED"); err != nil || again.Event != st.Event || again.Status != submission.StatusCompleted || again.Version != st.Version {
		t.Fatalf("after a repeat: %+v, %v", again, err)
	}
}
