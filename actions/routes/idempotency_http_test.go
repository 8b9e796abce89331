package routes_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/formq/formq/internal/teststack"
	"github.com/formq/formq/submission"
)

// orderedBody is a multipart body with its parts in the order given:
// values as [name, value], files as [name, filename, content].
func orderedBody(t *testing.T, parts ...[]string) (*bytes.Buffer, string) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for _, p := range parts {
		var err error
		if len(p) == 3 {
			var fw io.Writer
			if fw, err = w.CreateFormFile(p[0], p[1]); err == nil {
				_, err = fw.Write([]byte(p[2]))
			}
		} else {
			err = w.WriteField(p[0], p[1])
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf, w.FormDataContentType()
}

// storedState is what a refused or replayed request must not change:
// queued tasks and stored objects.
func storedState(t *testing.T, st *teststack.Stack) (tasks, objects []string) {
	t.Helper()
	ctx := context.Background()
	tasks, err := st.RDB.Keys(ctx, "asynq:{*}:t:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	objects, err = st.Store.List(ctx, "uploads/")
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(tasks)
	slices.Sort(objects)
	return tasks, objects
}

// TestAttackIdempotencyKeyReusedWithOtherContent: a client that knows
// (or guesses) another request's idempotency key sends other content with
// it. It must neither get the first answer nor leave anything stored; the
// same content again gets the first answer.
func TestAttackIdempotencyKeyReusedWithOtherContent(t *testing.T) {
	st := startActions(t, nil)
	png := string(pngBytes(t))
	other := png[:len(png)-1] + "!"
	post := func(key string, parts ...[]string) (*http.Response, []byte) {
		t.Helper()
		body, ct := orderedBody(t, parts...)
		h := map[string]string{"Accept": "application/json"}
		if key != "" {
			h["Idempotency-Key"] = key
		}
		return teststack.Post(t, st.APIURL+"/actions/create-user", body, ct, h)
	}
	name, email, avatar := []string{"name", "Ada"}, []string{"email", "ada@example.com"}, []string{"avatar", "me.png", png}

	resp, first := post("order-1", name, email, avatar)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("first: %d %s", resp.StatusCode, first)
	}
	tasks, objects := storedState(t, st)
	if len(tasks) != 1 || len(objects) != 1 {
		t.Fatalf("after the first: tasks %v, objects %v", tasks, objects)
	}
	unchanged := func(what string) {
		t.Helper()
		gotTasks, gotObjects := storedState(t, st)
		if !slices.Equal(gotTasks, tasks) || !slices.Equal(gotObjects, objects) {
			t.Errorf("%s: tasks %v, objects %v; want %v, %v", what, gotTasks, gotObjects, tasks, objects)
		}
	}

	for _, tc := range []struct {
		name  string
		parts [][]string
	}{
		{"another value", [][]string{{"name", "Eve"}, email, avatar}},
		{"another file", [][]string{name, email, {"avatar", "me.png", other}}},
		{"no file", [][]string{name, email}},
		{"an extra value of the field", [][]string{name, {"name", "Eve"}, email, avatar}},
		{"the key in the body after the file", [][]string{name, email, {"avatar", "me.png", other}, {"_idempotency", "order-1"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := "order-1"
			if slices.ContainsFunc(tc.parts, func(p []string) bool { return p[0] == "_idempotency" }) {
				key = ""
			}
			resp, raw := post(key, tc.parts...)
			wantCode(t, resp, raw, http.StatusConflict, "idempotency_conflict")
			if resp.Header.Get("Idempotent-Replayed") != "" {
				t.Errorf("a conflict is marked replayed")
			}
			unchanged(tc.name)
		})
	}

	t.Run("the same content", func(t *testing.T) {
		// The parts in another order are the same submission.
		resp, raw := post("order-1", avatar, email, name)
		if resp.StatusCode != http.StatusAccepted || string(raw) != string(first) || resp.Header.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("repeat: %d %s (replayed %q); want the first answer %s", resp.StatusCode, raw, resp.Header.Get("Idempotent-Replayed"), first)
		}
		unchanged("a replay")
	})
	t.Run("the same content, urlencoded without the file", func(t *testing.T) {
		resp, raw := send(t, st, "create-user", url.Values{"name": {"Ada"}, "email": {"ada@example.com"}}, map[string]string{"Idempotency-Key": "order-1"})
		wantCode(t, resp, raw, http.StatusConflict, "idempotency_conflict")
		unchanged("urlencoded")
	})
}

// TestAttackReplayBoundActionWithoutBound: a repeat of a bound action's
// idempotency key needs a valid _bound like any request; a missing or
// forged one is refused, not answered with the first submission.
func TestAttackReplayBoundActionWithoutBound(t *testing.T) {
	st := startActions(t, nil)
	token := bind(t, st, `{"action":"update-user","args":{"userId":42},"ttl":"1h"}`)
	key := map[string]string{"Idempotency-Key": "update-42"}
	resp, first := send(t, st, "update-user", url.Values{"name": {"Ada"}, "_bound": {token}}, key)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("first: %d %s", resp.StatusCode, first)
	}
	tasks, objects := storedState(t, st)

	resp, raw := send(t, st, "update-user", url.Values{"name": {"Ada"}}, key)
	wantCode(t, resp, raw, http.StatusBadRequest, "invalid_bound_args")
	resp, raw = send(t, st, "update-user", url.Values{"name": {"Ada"}, "_bound": {"forged"}}, key)
	wantCode(t, resp, raw, http.StatusBadRequest, "invalid_bound_args")
	// Another valid token (other arguments) is another submission.
	other := bind(t, st, `{"action":"update-user","args":{"userId":7},"ttl":"1h"}`)
	resp, raw = send(t, st, "update-user", url.Values{"name": {"Ada"}, "_bound": {other}}, key)
	wantCode(t, resp, raw, http.StatusConflict, "idempotency_conflict")

	resp, raw = send(t, st, "update-user", url.Values{"name": {"Ada"}, "_bound": {token}}, key)
	if resp.StatusCode != http.StatusAccepted || string(raw) != string(first) || resp.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("repeat with the token: %d %s, want the first answer %s", resp.StatusCode, raw, first)
	}
	if gotTasks, gotObjects := storedState(t, st); !slices.Equal(gotTasks, tasks) || !slices.Equal(gotObjects, objects) {
		t.Errorf("repeats changed what is stored: tasks %v, objects %v", gotTasks, gotObjects)
	}
}

// TestIdempotentRepeatWithAReference: a repeat sending the same upload
// reference is the same submission (the reference, used by the first,
// is not claimed again); another reference under the key is a conflict.
func TestIdempotentRepeatWithAReference(t *testing.T) {
	st := startActions(t, nil)
	stageOne := func() string {
		t.Helper()
		body, ct := orderedBody(t, []string{"file", "me.png", string(pngBytes(t))})
		resp, raw := teststack.Post(t, st.APIURL+"/uploads?action=create-user&field=avatar", body, ct, map[string]string{"Accept": "application/json"})
		var a answer
		if err := json.Unmarshal(raw, &a); err != nil || resp.StatusCode != http.StatusCreated || len(a.Uploads) != 1 {
			t.Fatalf("POST /uploads: %d %s", resp.StatusCode, raw)
		}
		return a.Uploads[0].Ref
	}
	ref := stageOne()
	key := map[string]string{"Idempotency-Key": "with-ref"}
	vals := url.Values{"name": {"Ada"}, "email": {"ada@example.com"}, "avatar": {ref}}
	resp, first := send(t, st, "create-user", vals, key)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("first: %d %s", resp.StatusCode, first)
	}
	tasks, objects := storedState(t, st)
	resp, raw := send(t, st, "create-user", vals, key)
	if resp.StatusCode != http.StatusAccepted || string(raw) != string(first) {
		t.Fatalf("repeat with the same reference: %d %s, want the first answer", resp.StatusCode, raw)
	}
	vals.Set("avatar", stageOne())
	resp, raw = send(t, st, "create-user", vals, key)
	wantCode(t, resp, raw, http.StatusConflict, "idempotency_conflict")
	gotTasks, gotObjects := storedState(t, st)
	gotObjects = slices.DeleteFunc(gotObjects, func(k string) bool { return strings.HasPrefix(k, submission.StagedPrefix) })
	if !slices.Equal(gotTasks, tasks) || !slices.Equal(gotObjects, objects) {
		t.Errorf("repeats changed what is stored: tasks %v, objects %v; want %v, %v", gotTasks, gotObjects, tasks, objects)
	}
}

// TestIdempotentRepeatOfACaptchaForm: a double submit of a form with a
// captcha sends the answer the first request spent; the repeat gets the
// first answer (urlencoded and multipart), without asking the provider.
func TestIdempotentRepeatOfACaptchaForm(t *testing.T) {
	sv := newSiteverify(t, "turnstile")
	st := startWithActions(t, captchaActions("turnstile", sv.srv.URL+"/siteverify", closedURL(t)), map[string]string{"CAPTCHA_SECRET": sv.secret})
	vals := url.Values{"email": {"a@example.com"}, "cf-turnstile-response": {"ok-1"}, "_idempotency": {"captcha-1"}}
	resp, first := send(t, st, "contact", vals, nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("first: %d %s", resp.StatusCode, first)
	}
	resp, raw := send(t, st, "contact", vals, nil)
	if resp.StatusCode != http.StatusAccepted || string(raw) != string(first) {
		t.Errorf("urlencoded repeat: %d %s, want the first answer", resp.StatusCode, raw)
	}
	body, ct := orderedBody(t, []string{"_idempotency", "captcha-1"}, []string{"cf-turnstile-response", "ok-1"}, []string{"email", "a@example.com"})
	resp, raw = teststack.Post(t, st.APIURL+"/actions/contact", body, ct, map[string]string{"Accept": "application/json"})
	if resp.StatusCode != http.StatusAccepted || string(raw) != string(first) {
		t.Errorf("multipart repeat: %d %s, want the first answer", resp.StatusCode, raw)
	}
	if n := sv.callCount(); n != 1 {
		t.Errorf("siteverify called %d times, want once", n)
	}
}

// TestIdempotentRepeatAfterTheAPIDied leaves an idempotency key as an API
// process that died leaves it: held (its submission was being queued) and
// never answered. A repeat must be answered within seconds, not after a
// pending claim's 30 s: with the queued submission when there is one (one
// submission, however late the repeat), and as a new submission when the
// dead process never queued it.
func TestIdempotentRepeatAfterTheAPIDied(t *testing.T) {
	st := startActions(t, nil)
	ctx := context.Background()
	form := url.Values{"name": {"Ada"}, "email": {"ada@example.com"}}
	idOf := func(raw []byte) string {
		var out struct{ Submission struct{ ID string } }
		json.Unmarshal(raw, &out)
		return out.Submission.ID
	}
	redisKey := func(clientKey string) string {
		sum := sha256.Sum256([]byte("\x00" + clientKey))
		return submission.IdempotencyKey("create-user", hex.EncodeToString(sum[:16]))
	}

	// Queued, then the process died before keeping the answer.
	resp, raw := send(t, st, "create-user", form, map[string]string{"Idempotency-Key": "died-after-queueing"})
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("first: %d %s", resp.StatusCode, raw)
	}
	first, key := idOf(raw), redisKey("died-after-queueing")
	window := st.RDB.PTTL(ctx, key).Val()
	if window < time.Minute {
		t.Fatalf("the kept answer lasts %s", window)
	}
	st.RDB.Set(ctx, key, "held:"+first, window)
	start := time.Now()
	resp, raw = send(t, st, "create-user", form, map[string]string{"Idempotency-Key": "died-after-queueing"})
	if resp.StatusCode != http.StatusAccepted || idOf(raw) != first || time.Since(start) > 10*time.Second {
		t.Fatalf("repeat of a held key whose submission is queued: %d %s after %s; want 202 with %s within seconds", resp.StatusCode, raw, time.Since(start), first)
	}

	// Held 11 s ago and never queued: the repeat takes the key over.
	key = redisKey("died-before-queueing")
	st.RDB.Set(ctx, key, "held:01ARZ3NDEKTSV4RRFFQ69G5FAV", window-11*time.Second)
	tasks, _ := storedState(t, st)
	start = time.Now()
	resp, raw = send(t, st, "create-user", form, map[string]string{"Idempotency-Key": "died-before-queueing"})
	if resp.StatusCode != http.StatusAccepted || idOf(raw) == "" || idOf(raw) == "01ARZ3NDEKTSV4RRFFQ69G5FAV" || time.Since(start) > 10*time.Second {
		t.Fatalf("repeat of a held key whose submission was never queued: %d %s after %s; want 202 with a new submission within seconds", resp.StatusCode, raw, time.Since(start))
	}
	if after, _ := storedState(t, st); len(after) != len(tasks)+1 {
		t.Errorf("tasks %d before, %d after; want one more", len(tasks), len(after))
	}
	resp, again := send(t, st, "create-user", form, map[string]string{"Idempotency-Key": "died-before-queueing"})
	if resp.StatusCode != http.StatusAccepted || idOf(again) != idOf(raw) {
		t.Errorf("a repeat after the takeover: %d %s; want the taken-over key's answer %s", resp.StatusCode, again, idOf(raw))
	}
}
