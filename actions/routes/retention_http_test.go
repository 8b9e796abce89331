package routes_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/formq/formq/internal/teststack"
	"github.com/formq/formq/jobs"
	"github.com/formq/formq/submission"
)

// TestRetentionErasesOnlyExpiredSubmissions: the worker's janitor erases
// the submissions older than their action's retention (or
// FORMQ_RETENTION), record and files, in batches, counts them in
// formq_retention_erased_total, and leaves every younger one.
func TestRetentionErasesOnlyExpiredSubmissions(t *testing.T) {
	st := startWithActions(t, `actions:
  old:
    fields: {email: {type: email}}
    retention: 1h
  longer:
    fields: {email: {type: email}}
    retention: 30d
  plain:
    fields: {email: {type: email}}
`, map[string]string{"FORMQ_RETENTION": "3h", "FORMQ_JANITOR_INTERVAL": "300ms"})
	ctx := context.Background()
	idx := jobs.NewIndex(st.RDB, st.Store)
	now := time.Now().UTC()
	seed := func(action string, age time.Duration, n int, withFile bool) {
		for i := range n {
			id := fmt.Sprintf("01RET%s%05d%d", strings.ToUpper(action), i, age/time.Minute)
			sub := &submission.Submission{ID: id, Action: action, ReceivedAt: now.Add(-age).Add(time.Duration(i) * time.Millisecond),
				Values: map[string]any{"email": "a@example.com"}, Files: []submission.File{}}
			if withFile {
				key := submission.UploadKey(action, id, "doc", 0)
				if err := st.Store.PutJSON(ctx, key, []byte(`{}`)); err != nil {
					t.Fatal(err)
				}
				if err := st.Store.PutJSON(ctx, submission.VariantKey(key, "64"), []byte(`{}`)); err != nil {
					t.Fatal(err)
				}
				sub.Files = []submission.File{{Field: "doc", Object: submission.Object{Key: key}}}
			}
			b, _ := json.Marshal(sub)
			if err := st.Store.PutJSON(ctx, submission.RecordKey(action, id), b); err != nil {
				t.Fatal(err)
			}
			if err := idx.Add(ctx, sub); err != nil {
				t.Fatal(err)
			}
		}
	}
	seed("old", 2*time.Hour, 250, false)
	seed("old", 3*time.Hour, 3, true)
	seed("old", 10*time.Minute, 5, false)
	seed("longer", 2*time.Hour, 3, false)
	seed("plain", 4*time.Hour, 4, false)
	seed("plain", 2*time.Hour, 2, false)

	teststack.WaitFor(t, 60*time.Second, "expired submissions erased", func() bool {
		return st.RDB.HLen(ctx, submission.IndexIDs).Val() == 10
	})
	for action, want := range map[string]int{"old": 5, "longer": 3, "plain": 2} {
		keys, err := st.Store.List(ctx, submission.RecordsPrefix+action+"/")
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) != want {
			t.Errorf("%s: %d records left, want %d", action, len(keys), want)
		}
		var page listAnswer
		admin(t, st, "GET", "/admin/submissions?action="+action, &page)
		if len(page.Submissions) != want {
			t.Errorf("%s: the inbox lists %d, want %d", action, len(page.Submissions), want)
		}
		for _, it := range page.Submissions {
			if it.ReceivedAt.Before(now.Add(-3 * time.Hour)) {
				t.Errorf("%s: %s of %s was kept", action, it.ID, it.ReceivedAt)
			}
		}
	}
	if files, _ := st.Store.List(ctx, submission.UploadsPrefix+"old/"); len(files) != 0 {
		t.Errorf("files of expired submissions left: %v", files)
	}
	resp, err := http.Get(st.WorkerURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics := readAll(t, resp)
	for _, want := range []string{`formq_retention_erased_total{action="old"} 253`, `formq_retention_erased_total{action="plain"} 4`, `formq_retention_erased_total{action="longer"} 0`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("worker metrics lack %s", want)
		}
	}
}
