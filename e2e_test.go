package formq_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/formq/formq/api"
	"github.com/formq/formq/internal/testenv"
	"github.com/formq/formq/internal/teststack"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

func TestSubmissionTravelsThroughS3AndQueueToEvent(t *testing.T) {
	st := teststack.Start(t, nil)
	ctx := context.Background()
	png, err := os.ReadFile("testdata/avatar.png")
	if err != nil {
		t.Fatal(err)
	}

	body, ctype := teststack.MultipartBody(t, map[string]string{"name": "Ada Lovelace", "email": "ada@example.com"}, map[string][]byte{"avatar": png})
	resp, raw := teststack.Post(t, st.APIURL+"/actions/create-user", body, ctype, map[string]string{"Accept": "application/json"})
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("status %d, body %s", resp.StatusCode, raw)
	}
	var ok struct {
		OK         bool   `json:"ok"`
		Message    string `json:"message"`
		Redirect   string `json:"redirect"`
		Submission struct {
			ID, Action, Status, StatusURL string
			Files                         []struct {
				Field, Key, ContentType, SHA256, Filename string
				Size                                      int64
			}
		} `json:"submission"`
	}
	if err := json.Unmarshal(raw, &ok); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
	id := ok.Submission.ID
	if !ok.OK || id == "" || ok.Message != "User created!" || ok.Submission.Status != "queued" || !strings.HasPrefix(ok.Submission.StatusURL, st.APIURL+"/submissions/"+id+"?t=") {
		t.Fatalf("unexpected answer %s", raw)
	}
	if !strings.HasPrefix(ok.Redirect, st.APIURL+"/forms/create-user/done?submission="+id+"&t=") {
		t.Errorf("redirect %q", ok.Redirect)
	}
	wantKey := "uploads/create-user/" + id + "/avatar/0"
	if len(ok.Submission.Files) != 1 || ok.Submission.Files[0].Key != wantKey || ok.Submission.Files[0].ContentType != "image/png" ||
		ok.Submission.Files[0].Size != int64(len(png)) || ok.Submission.Files[0].Filename != "me.png" || len(ok.Submission.Files[0].SHA256) != 64 {
		t.Fatalf("files in answer: %+v", ok.Submission.Files)
	}

	obj, err := st.Store.Head(ctx, wantKey)
	if err != nil {
		t.Fatalf("uploaded object: %v", err)
	}
	if obj.Size != int64(len(png)) || obj.ContentType != "image/png" || obj.SHA256 != ok.Submission.Files[0].SHA256 {
		t.Errorf("object %+v", obj)
	}
	stored, err := st.Store.Get(ctx, wantKey)
	if err != nil || !bytes.Equal(stored, png) {
		t.Errorf("stored bytes differ from the upload (err %v)", err)
	}

	// The worker writes the record and publishes the event.
	var record struct {
		ID     string            `json:"id"`
		Action string            `json:"action"`
		Values map[string]string `json:"values"`
		Files  []map[string]any  `json:"files"`
	}
	teststack.WaitFor(t, 15*time.Second, "record in S3", func() bool {
		b, err := st.Store.Get(ctx, "submissions/create-user/"+id+".json")
		return err == nil && json.Unmarshal(b, &record) == nil
	})
	if record.ID != id || record.Values["name"] != "Ada Lovelace" || record.Values["email"] != "ada@example.com" || len(record.Files) != 1 {
		t.Errorf("record %+v", record)
	}
	var event map[string]any
	teststack.WaitFor(t, 15*time.Second, "event in formq:events", func() bool {
		msgs, err := st.RDB.XRange(ctx, "formq:events", "-", "+").Result()
		if err != nil {
			return false
		}
		for _, m := range msgs {
			var ev map[string]any
			if json.Unmarshal([]byte(m.Values["event"].(string)), &ev) == nil && ev["submission"] == id {
				event = ev
				return true
			}
		}
		return false
	})
	if event["type"] != "revalidate" || event["action"] != "create-user" {
		t.Errorf("event %v", event)
	}
	if tags, _ := event["tags"].([]any); len(tags) != 2 || tags[0] != "users" || tags[1] != "user:"+id {
		t.Errorf("event tags %v", event["tags"])
	}
}

func TestInvalidPostAnswers422WithDeclaredMessage(t *testing.T) {
	st := teststack.Start(t, nil)
	body, ctype := teststack.MultipartBody(t, map[string]string{"name": "A", "email": "a@example.com"}, nil)
	resp, raw := teststack.Post(t, st.APIURL+"/actions/create-user", body, ctype, map[string]string{"Accept": "application/json"})
	if resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("status %d, body %s", resp.StatusCode, raw)
	}
	var got struct {
		OK    bool `json:"ok"`
		Error struct {
			Code, Message string
		} `json:"error"`
		Errors map[string][]string `json:"errors"`
		Values map[string]string   `json:"values"`
	}
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	if got.OK || got.Error.Code != "validation_failed" || got.Error.Message != "Please fix the errors below." {
		t.Errorf("answer %s", raw)
	}
	if len(got.Errors["name"]) != 1 || got.Errors["name"][0] != "Name must be at least 2 characters" {
		t.Errorf("errors %v", got.Errors)
	}
	if got.Values["name"] != "A" || got.Values["email"] != "a@example.com" {
		t.Errorf("values %v", got.Values)
	}
	// Nothing was queued for a refused submission.
	if n, _ := st.RDB.Keys(context.Background(), "asynq:{default}:t:*").Result(); len(n) != 0 {
		t.Errorf("tasks queued for an invalid post: %v", n)
	}
}

func TestBadConfigurationStopsAtStartWithOneLine(t *testing.T) {
	env := map[string]string{"FORMQ_ENV": "development"}
	err := api.Main(context.Background(), nil, func(k string) string { return env[k] }, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "FORMQ_S3_BUCKET") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("err = %v, want one line naming FORMQ_S3_BUCKET", err)
	}
}
