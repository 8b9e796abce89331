package routes_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/formq/formq/internal/teststack"
	"github.com/formq/formq/submission"
)

// TestErasureLeavesNothingAnywhere: one person's submissions leave
// traces beyond the record: a webhook redelivery (a task of its own whose
// payload is the whole record), the revalidation event in formq:events
// (tags made of the address), the staged copies of a submission the app
// refused, the rate limit's state (the client's IP). After the erasure
// by the personal value, no Redis key or value and no S3 object names
// the submissions, the address or the client's IP.
func TestErasureLeavesNothingAnywhere(t *testing.T) {
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if bytes.Contains(b, []byte("refuse-me")) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnprocessableEntity)
			io.WriteString(w, `{"errors": {"email": ["already registered"]}}`)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(hook.Close)
	st := startWithActions(t, `actions:
  apply:
    fields:
      email: {type: email, required: true, personal: true}
      note: {type: text}
    uploads:
      avatar: {max_size: 1MB, types: [image/png]}
    rate_limit: 20/1h
    revalidate: {tags: ["pub:{email}"], paths: ["/people/{email}"]}
    steps:
      - webhook: {url: "`+hook.URL+`/hook", secret_env: ERASE_HOOK_SECRET, max_attempts: 1}
`, map[string]string{"FORMQ_WEBHOOK_ALLOW_PRIVATE": "true", "ERASE_HOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"})
	const email = "alice.erased@example.com"
	post := func(note string) string {
		body, ct := teststack.MultipartBody(t, map[string]string{"email": email, "note": note}, map[string][]byte{"avatar": pngBytes(t)})
		resp, raw := teststack.Post(t, st.APIURL+"/actions/apply", body, ct, map[string]string{"Accept": "application/json"})
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("post: %d %s", resp.StatusCode, raw)
		}
		var acc struct {
			Submission struct{ ID string } `json:"submission"`
		}
		json.Unmarshal(raw, &acc)
		return acc.Submission.ID
	}
	done := func(id, want string) {
		t.Helper()
		teststack.WaitFor(t, 60*time.Second, id+" "+want, func() bool {
			var d detailAnswer
			admin(t, st, "GET", "/admin/submissions/"+id, &d)
			return d.Status != nil && d.Status.Status == want
		})
	}
	accepted, refused := post("hello"), post("refuse-me")
	done(accepted, submission.StatusCompleted)
	done(refused, submission.StatusRejected)
	var e errorAnswer
	if r := admin(t, st, "POST", "/admin/submissions/"+accepted+"/redeliver", &e); r.StatusCode != http.StatusAccepted && r.StatusCode != http.StatusOK {
		t.Fatalf("redeliver: %d %+v", r.StatusCode, e)
	}
	done(accepted, submission.StatusCompleted)
	ctx := context.Background()
	if n := countKeys(t, st, "asynq:{*}:t:"+accepted+"-redeliver-*"); n != 1 {
		t.Fatalf("redelivery tasks before the erasure: %d", n)
	}
	if n := st.RDB.XLen(ctx, submission.EventsStream).Val(); n != 1 {
		t.Fatalf("events before the erasure: %d", n)
	}
	if staged, _ := st.Store.List(ctx, submission.StagedPrefix); len(staged) != 1 {
		t.Fatalf("staged copies of the refused submission before the erasure: %v", staged)
	}

	var erased struct {
		OK     bool     `json:"ok"`
		Erased []string `json:"erased"`
	}
	if r := admin(t, st, "DELETE", "/admin/submissions?action=apply&field=email&value="+email, &erased); r.StatusCode != http.StatusOK || len(erased.Erased) != 2 {
		t.Fatalf("erase: %d %+v", r.StatusCode, erased)
	}
	needles := []string{accepted, refused, email, "127.0.0.1"}
	keys, _ := st.RDB.Keys(ctx, "*").Result()
	for _, k := range keys {
		for _, n := range needles {
			if strings.Contains(k, n) {
				t.Errorf("left in Redis: key %s names %s", k, n)
			}
		}
		var vals []string
		switch st.RDB.Type(ctx, k).Val() {
		case "string":
			vals = []string{st.RDB.Get(ctx, k).Val()}
		case "hash":
			for f, v := range st.RDB.HGetAll(ctx, k).Val() {
				vals = append(vals, f, v)
			}
		case "zset":
			vals = st.RDB.ZRange(ctx, k, 0, -1).Val()
		case "set":
			vals = st.RDB.SMembers(ctx, k).Val()
		case "list":
			vals = st.RDB.LRange(ctx, k, 0, -1).Val()
		case "stream":
			for _, m := range st.RDB.XRange(ctx, k, "-", "+").Val() {
				for f, v := range m.Values {
					vals = append(vals, f, toString(v))
				}
			}
		}
		for _, v := range vals {
			for _, n := range needles {
				if strings.Contains(v, n) {
					t.Errorf("left in Redis: %s holds %s", k, n)
				}
			}
		}
	}
	if left, _ := st.Store.List(ctx, submission.UploadsPrefix); len(left) != 0 {
		t.Errorf("left in S3: %v", left)
	}
	if left, _ := st.Store.List(ctx, submission.RecordsPrefix); len(left) != 0 {
		t.Errorf("records left in S3: %v", left)
	}
}

func toString(v any) string {
	s, _ := v.(string)
	return s
}
