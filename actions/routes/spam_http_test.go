package routes_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/formq/formq/internal/audit"
	"github.com/formq/formq/internal/teststack"
	"github.com/formq/formq/jobs"
	"github.com/formq/formq/submission"
)

const spamActions = `actions:
  contact:
    fields:
      name: {type: text}
      message: {type: textarea, required: true}
    spam:
      threshold: 5
      links: {max: 1, score: 3}
      blocked_words: {list: [casino], score: 3}
      model: {weight: 4, min_examples: 1}
    steps:
      - webhook: {url: "{{hook}}/hook", secret_env: SPAM_HOOK_SECRET, max_attempts: 3, backoff: 50ms}
  strict:
    fields:
      message: {type: textarea, required: true}
    spam: {on_spam: drop, blocked_words: {list: [casino]}}
`

// postForm posts an urlencoded form as a script and answers the
// submission id.
func postForm(t *testing.T, st *teststack.Stack, action string, values url.Values) string {
	t.Helper()
	resp, raw := teststack.Post(t, st.APIURL+"/actions/"+action, strings.NewReader(values.Encode()),
		"application/x-www-form-urlencoded", map[string]string{"Accept": "application/json"})
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("post to %s: %d %s", action, resp.StatusCode, raw)
	}
	var acc struct {
		OK         bool `json:"ok"`
		Submission struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		} `json:"submission"`
	}
	if err := json.Unmarshal(raw, &acc); err != nil || !acc.OK || acc.Submission.ID == "" || acc.Submission.Status != "queued" {
		t.Fatalf("post to %s: an answer unlike an accepted one: %s", action, raw)
	}
	return acc.Submission.ID
}

type spamList struct {
	Submissions []submission.Listed `json:"submissions"`
	Total       int64               `json:"total"`
}

func listed(t *testing.T, st *teststack.Stack, query, id string) *submission.Listed {
	t.Helper()
	var l spamList
	admin(t, st, "GET", "/admin/submissions?"+query, &l)
	for i := range l.Submissions {
		if l.Submissions[i].ID == id {
			return &l.Submissions[i]
		}
	}
	return nil
}

func rules(v *submission.Spam) []string {
	var out []string
	for _, r := range v.Reasons {
		out = append(out, r.Rule)
	}
	return out
}

// TestSpamFolderHoldsReleasesOnceAndLearns posts a message, a spammy one
// (two links, a blocked word) and one with the honeypot filled to an
// action with spam:. All three answer the same 202; the message runs its
// webhook and is listed with a ham verdict; the other two are held in the
// Spam folder with their reasons, their webhook never posted. Two
// releases of the spammy one at once: one wins, the other is 409, and the
// receiver gets its webhook exactly once. Confirming the honeypot one
// keeps it in the folder; the model, taught by the release and the
// confirmation, then shows in the reasons of a new post. Erasure takes a
// held submission out of the folder and the model. An action with
// on_spam: drop keeps nothing of spam.
func TestSpamFolderHoldsReleasesOnceAndLearns(t *testing.T) {
	hook := newHookReceiver(t)
	hook.accept.Store(true)
	st := startWithActions(t, strings.ReplaceAll(spamActions, "{{hook}}", hook.URL), map[string]string{
		"FORMQ_WEBHOOK_ALLOW_PRIVATE": "true", "SPAM_HOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
	})
	ctx := context.Background()

	ham := postForm(t, st, "contact", url.Values{"name": {"Ada"}, "message": {"Could you send me a quote for the garden wall?"}})
	spammy := postForm(t, st, "contact", url.Values{"name": {"Win"}, "message": {"Best casino bonus http://a.example/x and http://b.example/y"}})
	bot := postForm(t, st, "contact", url.Values{"name": {"Bob"}, "message": {"Just saying hello to the team"}, "_gotcha": {"http://bot.example"}})

	var hamItem *submission.Listed
	teststack.WaitFor(t, 30*time.Second, "the message completed in the inbox", func() bool {
		hamItem = listed(t, st, "action=contact", ham)
		return hamItem != nil && hamItem.Status == submission.StatusCompleted
	})
	if hamItem.Spam == nil || hamItem.Spam.Verdict != submission.SpamHam || hamItem.Spam.Score != 0 || len(hamItem.Spam.Reasons) != 0 {
		t.Errorf("the message's verdict: %+v", hamItem.Spam)
	}
	var held map[string]*submission.Listed
	teststack.WaitFor(t, 30*time.Second, "both spam held in the Spam folder", func() bool {
		held = map[string]*submission.Listed{"spammy": listed(t, st, "folder=spam", spammy), "bot": listed(t, st, "folder=spam", bot)}
		return held["spammy"] != nil && held["bot"] != nil
	})
	if v := held["spammy"].Spam; v == nil || v.Verdict != submission.SpamHeld || v.Score != 6 || strings.Join(rules(v), ",") != "links,blocked_words" {
		t.Errorf("the spammy one's verdict: %+v", v)
	}
	if v := held["bot"].Spam; v == nil || v.Verdict != submission.SpamHeld || v.Score != 10 || strings.Join(rules(v), ",") != "honeypot" {
		t.Errorf("the bot's verdict: %+v", v)
	}
	if held["spammy"].Status != submission.StatusSpam {
		t.Errorf("a held submission's status: %q", held["spammy"].Status)
	}
	for _, id := range []string{spammy, bot} {
		if listed(t, st, "", id) != nil {
			t.Errorf("%s is held, yet listed in the inbox", id)
		}
	}
	var d struct {
		Submission *submission.Submission `json:"submission"`
		Status     *submission.Status     `json:"status"`
	}
	admin(t, st, "GET", "/admin/submissions/"+spammy, &d)
	if d.Submission == nil || d.Submission.Spam == nil || d.Submission.Spam.Verdict != submission.SpamHeld ||
		d.Status == nil || d.Status.Steps[0].State != submission.StepPending {
		t.Fatalf("the held submission's detail: %+v %+v", d.Submission, d.Status)
	}
	if n := len(hook.seen()); n != 1 {
		t.Fatalf("the receiver got %d webhooks before any release; want 1 (the message's)", n)
	}

	// Two releases at once: exactly one wins.
	codes := make([]int, 2)
	var wg sync.WaitGroup
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i] = admin(t, st, "POST", "/admin/submissions/"+spammy+"/release", nil).StatusCode
		}()
	}
	wg.Wait()
	if !(codes[0] == 200 && codes[1] == 409) && !(codes[0] == 409 && codes[1] == 200) {
		t.Fatalf("two releases answered %v; want one 200 and one 409", codes)
	}
	var again errorAnswer
	if resp := admin(t, st, "POST", "/admin/submissions/"+spammy+"/release", &again); resp.StatusCode != 409 || again.Error.Code != "not_held" {
		t.Errorf("a third release: %d %+v", resp.StatusCode, again)
	}
	// The audit log has the one release that happened, about this
	// submission.
	var log auditAnswer
	if admin(t, st, "GET", "/admin/audit?submission="+spammy, &log); len(log.Entries) != 1 || log.Entries[0].What != audit.SpamRelease || log.Entries[0].Who != "token" {
		t.Errorf("the audit log of the release: %+v", log)
	}
	var released *submission.Listed
	teststack.WaitFor(t, 30*time.Second, "the released one completed in the inbox", func() bool {
		released = listed(t, st, "action=contact", spammy)
		return released != nil && released.Status == submission.StatusCompleted
	})
	if released.Spam == nil || released.Spam.Verdict != submission.SpamReleased {
		t.Errorf("the released one's verdict: %+v", released.Spam)
	}
	if listed(t, st, "folder=spam", spammy) != nil {
		t.Errorf("the released one is still in the Spam folder")
	}
	time.Sleep(500 * time.Millisecond) // a second run of its steps would post by now
	want := []string{"msg_" + ham + "_0", "msg_" + spammy + "_0"}
	if got := hook.seen(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("webhook ids received %v; want %v (the released one's once)", got, want)
	}

	var conf struct {
		OK   bool             `json:"ok"`
		Spam *submission.Spam `json:"spam"`
	}
	if resp := admin(t, st, "POST", "/admin/submissions/"+bot+"/confirm", &conf); resp.StatusCode != 200 || conf.Spam == nil || conf.Spam.Verdict != submission.SpamConfirmed {
		t.Fatalf("confirm: %d %+v", resp.StatusCode, conf.Spam)
	}
	if resp := admin(t, st, "POST", "/admin/submissions/"+bot+"/release", nil); resp.StatusCode != 409 {
		t.Errorf("release after confirm: %d; want 409", resp.StatusCode)
	}
	if it := listed(t, st, "folder=spam", bot); it == nil || it.Spam.Verdict != submission.SpamConfirmed {
		t.Errorf("the confirmed one in the folder: %+v", it)
	}
	model := st.RDB.HGetAll(ctx, submission.SpamModel).Val()
	if model["docs:s"] != "1" || model["docs:h"] != "1" || model["s:hello"] != "1" || model["h:casino"] != "1" {
		t.Errorf("the model after one release and one confirmation: docs:s=%s docs:h=%s s:hello=%s h:casino=%s",
			model["docs:s"], model["docs:h"], model["s:hello"], model["h:casino"])
	}

	// The model has one example of each: a post like the confirmed one
	// gets its part, shown in the reasons.
	like := postForm(t, st, "contact", url.Values{"name": {"Bob"}, "message": {"Just saying hello to the team again"}})
	var likeItem *submission.Listed
	teststack.WaitFor(t, 30*time.Second, "the new post listed", func() bool {
		likeItem = listed(t, st, "action=contact", like)
		if likeItem == nil {
			likeItem = listed(t, st, "folder=spam", like)
		}
		return likeItem != nil && likeItem.Spam != nil
	})
	if rs := likeItem.Spam.Reasons; len(rs) != 1 || rs[0].Rule != "model" || rs[0].Score <= 0 || !strings.Contains(rs[0].Detail, "% spam") {
		t.Errorf("the new post's reasons: %+v", rs)
	}

	// Marking teaches the model: the message becomes a spam example.
	if resp := admin(t, st, "POST", "/admin/submissions/"+ham+"/mark?spam=true", nil); resp.StatusCode != 200 {
		t.Errorf("mark: %d", resp.StatusCode)
	}
	if model := st.RDB.HGetAll(ctx, submission.SpamModel).Val(); model["docs:s"] != "2" || model["docs:h"] != "1" || model["s:quote"] != "1" {
		t.Errorf("the model after marking: %v", model)
	}

	if resp := admin(t, st, "DELETE", "/admin/submissions/"+bot, nil); resp.StatusCode != 200 {
		t.Fatalf("erase the confirmed one: %d", resp.StatusCode)
	}
	if listed(t, st, "folder=spam", bot) != nil || st.RDB.HExists(ctx, submission.SpamVerdicts, bot).Val() || st.RDB.HExists(ctx, submission.SpamLabels, bot).Val() {
		t.Errorf("the erased one left its place in the Spam folder")
	}
	if model := st.RDB.HGetAll(ctx, submission.SpamModel).Val(); model["docs:s"] != "1" || model["s:hello"] != "" {
		t.Errorf("the erased one is still in the model: docs:s=%s s:hello=%s", model["docs:s"], model["s:hello"])
	}

	// on_spam: drop keeps nothing: no task, no record.
	dropped := postForm(t, st, "strict", url.Values{"message": {"casino night"}})
	kept := postForm(t, st, "strict", url.Values{"message": {"a plain note"}})
	if n := countKeys(t, st, "asynq:{*}:t:"+dropped); n != 0 {
		t.Errorf("dropped spam has a task")
	}
	if n := countKeys(t, st, "asynq:{*}:t:"+kept); n != 1 {
		t.Errorf("the plain note has %d tasks; want 1", n)
	}
}

// TestSpamLeavesTheFolderAfterKeepFor: the worker's sweep erases spam
// older than its action's keep_for (record, verdict, place in the
// folder) and leaves younger spam and the inbox's submissions, which the
// action's retention (none here) governs.
func TestSpamLeavesTheFolderAfterKeepFor(t *testing.T) {
	st := startWithActions(t, `actions:
  contact:
    fields: {message: {type: textarea}}
    spam: {keep_for: 1h}
`, map[string]string{"FORMQ_JANITOR_INTERVAL": "300ms"})
	ctx := context.Background()
	idx := jobs.NewIndex(st.RDB, st.Store)
	now := time.Now().UTC()
	seed := func(prefix string, age time.Duration, n int, held bool) []string {
		var ids []string
		for i := range n {
			id := fmt.Sprintf("01SPAMKEEP%s%05d", prefix, i)
			sub := &submission.Submission{ID: id, Action: "contact", ReceivedAt: now.Add(-age).Add(time.Duration(i) * time.Millisecond),
				Values: map[string]any{"message": "casino " + id}, Files: []submission.File{},
				Spam: &submission.Spam{Verdict: submission.SpamHam, Reasons: []submission.SpamReason{}}}
			if held {
				sub.Spam = &submission.Spam{Verdict: submission.SpamHeld, Score: 5, Reasons: []submission.SpamReason{{Rule: "blocked_words", Score: 5, Detail: "blocked words: casino"}}}
			}
			b, _ := json.Marshal(sub)
			if err := st.Store.PutJSON(ctx, submission.RecordKey("contact", id), b); err != nil {
				t.Fatal(err)
			}
			var err error
			if held {
				_, err = idx.Hold(ctx, sub)
			} else {
				err = idx.Add(ctx, sub)
			}
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		return ids
	}
	old := seed("OLD", 2*time.Hour, 3, true)
	young := seed("NEW", 10*time.Minute, 2, true)
	inbox := seed("HAM", 2*time.Hour, 2, false)

	teststack.WaitFor(t, 30*time.Second, "old spam erased", func() bool {
		return st.RDB.ZCard(ctx, submission.SpamFolder).Val() == 2
	})
	for _, id := range old {
		if st.RDB.HExists(ctx, submission.IndexIDs, id).Val() || st.RDB.HExists(ctx, submission.SpamVerdicts, id).Val() {
			t.Errorf("%s: expired spam left in the index", id)
		}
		if _, err := st.Store.Get(ctx, submission.RecordKey("contact", id)); err == nil {
			t.Errorf("%s: expired spam's record left", id)
		}
	}
	for _, id := range append(young, inbox...) {
		if _, err := st.Store.Get(ctx, submission.RecordKey("contact", id)); err != nil {
			t.Errorf("%s was erased: %v", id, err)
		}
	}
	var l spamList
	admin(t, st, "GET", "/admin/submissions?folder=spam", &l)
	if l.Total != 2 || len(l.Submissions) != 2 || l.Submissions[0].ID != young[1] {
		t.Errorf("the Spam folder after the sweep: total %d, %+v", l.Total, l.Submissions)
	}
}
