package notify_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/formq/formq/jobs/step"
	"github.com/formq/formq/jobs/step/notify"
	"github.com/formq/formq/jobs/step/webhook"
	"github.com/formq/formq/submission"
	"github.com/hibiken/asynq"
)

// chatServer is a local stand-in for a chat service's incoming webhook: it
// checks each post against the shape the service documents and answers
// 400 with the problem, as the services do, or the status it is told.
type chatServer struct {
	*httptest.Server
	mu     sync.Mutex
	bodies []map[string]any
	answer int
}

func newChatServer(t *testing.T, check func(msg map[string]any) error) *chatServer {
	t.Helper()
	cs := &chatServer{answer: http.StatusOK}
	cs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var msg map[string]any
		if r.Method != http.MethodPost || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
			http.Error(w, "want a JSON POST", http.StatusBadRequest)
			return
		}
		if err := json.Unmarshal(raw, &msg); err != nil {
			http.Error(w, "invalid_payload", http.StatusBadRequest)
			return
		}
		if err := check(msg); err != nil {
			http.Error(w, "invalid_payload: "+err.Error(), http.StatusBadRequest)
			return
		}
		cs.mu.Lock()
		defer cs.mu.Unlock()
		cs.bodies = append(cs.bodies, msg)
		w.WriteHeader(cs.answer)
	}))
	t.Cleanup(cs.Close)
	return cs
}

func str(v any) (string, bool) { s, ok := v.(string); return s, ok }

// checkSlack holds a message to Slack's incoming-webhook rules: a text
// (required as the notification's fallback when there are blocks), and
// blocks of known types whose mrkdwn texts are at most 3,000 characters.
func checkSlack(msg map[string]any) error {
	if s, ok := str(msg["text"]); !ok || s == "" {
		return errors.New("no text")
	}
	blocks, ok := msg["blocks"].([]any)
	if !ok || len(blocks) == 0 || len(blocks) > 50 {
		return errors.New("blocks: want 1 to 50")
	}
	for _, b := range blocks {
		bm, _ := b.(map[string]any)
		switch bm["type"] {
		case "section":
			text, _ := bm["text"].(map[string]any)
			s, ok := str(text["text"])
			if text["type"] != "mrkdwn" || !ok || s == "" || utf8.RuneCountInString(s) > 3000 {
				return fmt.Errorf("section text: %v", text)
			}
		case "context":
			els, _ := bm["elements"].([]any)
			if len(els) == 0 || len(els) > 10 {
				return errors.New("context: want 1 to 10 elements")
			}
		default:
			return fmt.Errorf("block type %v", bm["type"])
		}
	}
	return nil
}

// checkDiscord holds a message to Discord's Execute Webhook rules:
// content at most 2,000 characters, at most 10 embeds, an embed's title
// 256, description 4,096, at most 25 fields of name 256 and value 1,024,
// 6,000 characters in all; url a URL; allowed_mentions.parse a list.
func checkDiscord(msg map[string]any) error {
	content, _ := str(msg["content"])
	embeds, _ := msg["embeds"].([]any)
	if content == "" && len(embeds) == 0 {
		return errors.New("Cannot send an empty message")
	}
	if utf8.RuneCountInString(content) > 2000 || len(embeds) > 10 {
		return errors.New("content or embeds too long")
	}
	am, _ := msg["allowed_mentions"].(map[string]any)
	if _, ok := am["parse"].([]any); !ok {
		return errors.New("allowed_mentions.parse: want a list")
	}
	for _, e := range embeds {
		em, _ := e.(map[string]any)
		total := 0
		for k, limit := range map[string]int{"title": 256, "description": 4096} {
			s, _ := str(em[k])
			if n := utf8.RuneCountInString(s); n > limit {
				return fmt.Errorf("embed %s: %d characters", k, n)
			} else {
				total += n
			}
		}
		if u, ok := em["url"]; ok {
			if s, _ := str(u); !strings.HasPrefix(s, "http") {
				return errors.New("embed url: not a URL")
			}
		}
		if ts, ok := em["timestamp"]; ok {
			if s, _ := str(ts); s == "" {
				return errors.New("embed timestamp")
			} else if _, err := time.Parse(time.RFC3339, s); err != nil {
				return err
			}
		}
		fields, _ := em["fields"].([]any)
		if len(fields) > 25 {
			return errors.New("more than 25 fields")
		}
		for _, f := range fields {
			fm, _ := f.(map[string]any)
			name, _ := str(fm["name"])
			value, _ := str(fm["value"])
			if name == "" || value == "" || utf8.RuneCountInString(name) > 256 || utf8.RuneCountInString(value) > 1024 {
				return fmt.Errorf("field %v", fm)
			}
			total += utf8.RuneCountInString(name) + utf8.RuneCountInString(value)
		}
		if total > 6000 {
			return errors.New("embed over 6000 characters")
		}
	}
	return nil
}

// checkTeams holds a message to the Teams incoming-webhook shape: type
// message with one attachment of content type
// application/vnd.microsoft.card.adaptive whose content is an
// AdaptiveCard with a version and a body of typed elements; an OpenUrl
// action has a title and a URL.
func checkTeams(msg map[string]any) error {
	if msg["type"] != "message" {
		return errors.New("type: want message")
	}
	atts, _ := msg["attachments"].([]any)
	if len(atts) != 1 {
		return errors.New("attachments: want one")
	}
	att, _ := atts[0].(map[string]any)
	if att["contentType"] != "application/vnd.microsoft.card.adaptive" {
		return fmt.Errorf("contentType %v", att["contentType"])
	}
	card, _ := att["content"].(map[string]any)
	if card["type"] != "AdaptiveCard" {
		return errors.New("content.type: want AdaptiveCard")
	}
	if v, _ := str(card["version"]); v == "" {
		return errors.New("content.version missing")
	}
	body, _ := card["body"].([]any)
	if len(body) == 0 {
		return errors.New("content.body empty")
	}
	for _, b := range body {
		bm, _ := b.(map[string]any)
		switch bm["type"] {
		case "TextBlock":
			if s, _ := str(bm["text"]); s == "" {
				return errors.New("TextBlock without text")
			}
		case "FactSet":
			facts, _ := bm["facts"].([]any)
			for _, f := range facts {
				fm, _ := f.(map[string]any)
				if _, ok := str(fm["title"]); !ok {
					return errors.New("fact without title")
				}
				if _, ok := str(fm["value"]); !ok {
					return errors.New("fact without value")
				}
			}
		default:
			return fmt.Errorf("body element %v", bm["type"])
		}
	}
	if acts, ok := card["actions"].([]any); ok {
		for _, a := range acts {
			am, _ := a.(map[string]any)
			if am["type"] != "Action.OpenUrl" || am["url"] == nil || am["title"] == nil {
				return fmt.Errorf("action %v", am)
			}
		}
	}
	return nil
}

// plainJSON is v as JSON without HTML escapes, to read as it was sent.
func plainJSON(v any) []byte {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
	return []byte(b.String())
}

func testSubmission() *submission.Submission {
	long := strings.Repeat("ça va ", 200)
	values := map[string]any{"name": "Ada <Lovelace> & co", "email": "ada@example.com", "message": "Hi @everyone, see <https://evil.example|this>", "notes": long}
	for i := range 12 {
		values[fmt.Sprintf("zz%02d", i)] = "x"
	}
	return &submission.Submission{ID: "01JABCDEFGHJKMNPQRSTVWXYZ0", Action: "contact", ReceivedAt: time.Date(2026, 12, 7, 14, 0, 0, 0, time.UTC), Values: values,
		Files: []submission.File{{Field: "cv"}}}
}

// post runs one attempt of a notify step against a server.
func post(t *testing.T, service string, srv *chatServer, fields []string) error {
	t.Helper()
	env := map[string]string{"CHAT_URL": srv.URL + "/hooks/T000/B000/XXXX"}
	typ := notify.Step(webhook.NewClient(true), notify.Config{InboxURL: "https://forms.example.com/admin/inbox", Getenv: func(k string) string { return env[k] }})
	cfg := map[string]any{"service": service, "url_env": "CHAT_URL"}
	if fields != nil {
		f := make([]any, len(fields))
		for i, v := range fields {
			f[i] = v
		}
		cfg["fields"] = f
	}
	if err := typ.Check(cfg); err != nil {
		t.Fatalf("check: %v", err)
	}
	var logged []submission.DeliveryAttempt
	err := typ.Run(context.Background(), step.Run{Submission: testSubmission(), Config: cfg, Attempt: 1, LogDelivery: func(a submission.DeliveryAttempt) { logged = append(logged, a) }})
	if len(logged) != 1 || strings.Contains(logged[0].URL, "XXXX") {
		t.Errorf("delivery log: %+v (the URL's secret path must not show)", logged)
	}
	return err
}

// TestNotifyShapesCheckedByLocalSlackDiscordAndTeamsServers posts one
// submission to a local server per service that refuses (400) anything
// off the service's documented incoming-webhook shape; each post is
// accepted and carries the summary and the inbox link.
func TestNotifyShapesCheckedByLocalSlackDiscordAndTeamsServers(t *testing.T) {
	link := "https://forms.example.com/admin/inbox/01JABCDEFGHJKMNPQRSTVWXYZ0"
	for _, tc := range []struct {
		service string
		check   func(map[string]any) error
		has     []string
		hasnt   []string
	}{
		{"slack", checkSlack, []string{"<" + link + "|New submission to contact>", "*name*: Ada &lt;Lovelace&gt; &amp; co", "&lt;https://evil.example|this&gt;", "and 6 more"}, []string{"<Lovelace>", "<https://evil.example"}},
		{"discord", checkDiscord, []string{`"url":"` + link + `"`, `"title":"New submission to contact"`, `"parse":[]`, `"value":"Ada <Lovelace> & co"`}, nil},
		{"teams", checkTeams, []string{`"url":"` + link + `"`, `"title":"name"`, `"AdaptiveCard"`, `"title":"files","value":"1 attached"`}, nil},
	} {
		t.Run(tc.service, func(t *testing.T) {
			srv := newChatServer(t, tc.check)
			if err := post(t, tc.service, srv, nil); err != nil {
				t.Fatalf("post: %v", err)
			}
			if len(srv.bodies) != 1 {
				t.Fatalf("%d messages", len(srv.bodies))
			}
			raw := plainJSON(srv.bodies[0])
			for _, want := range tc.has {
				if !strings.Contains(string(raw), want) {
					t.Errorf("the message lacks %q:\n%s", want, raw)
				}
			}
			for _, not := range tc.hasnt {
				if strings.Contains(string(raw), not) {
					t.Errorf("the message has %q unescaped:\n%s", not, raw)
				}
			}
			// The checking server refuses what is off shape: the check is real.
			if err := tc.check(map[string]any{"text": "x", "content": "", "type": "nope"}); err == nil {
				t.Error("the local server accepts a message off the shape")
			}
		})
	}
}

// TestNotifyFieldsAndAnswers: fields picks and orders the values; 429
// and 5xx are retried, a 404 (a revoked URL) is not.
func TestNotifyFieldsAndAnswers(t *testing.T) {
	srv := newChatServer(t, checkSlack)
	if err := post(t, "slack", srv, []string{"email", "name", "absent"}); err != nil {
		t.Fatal(err)
	}
	raw := plainJSON(srv.bodies[0])
	if s := string(raw); !strings.Contains(s, `*email*: ada@example.com\n*name*: Ada`) || strings.Contains(s, "message") {
		t.Errorf("fields [email, name]: %s", raw)
	}
	for status, retried := range map[int]bool{429: true, 503: true, 404: false, 403: false, 302: false} {
		srv.answer = status
		err := post(t, "slack", srv, nil)
		if err == nil || errors.Is(err, asynq.SkipRetry) == retried {
			t.Errorf("answer %d: %v (want retried %v)", status, err, retried)
		}
	}
}

// TestNotifyCheck: the settings a notify step refuses.
func TestNotifyCheck(t *testing.T) {
	env := map[string]string{"OK": "https://hooks.slack.com/services/T/B/X", "BAD": "hooks.slack.com"}
	typ := notify.Step(nil, notify.Config{Getenv: func(k string) string { return env[k] }})
	for _, tc := range []struct {
		cfg  map[string]any
		want string
	}{
		{map[string]any{"service": "slack", "url_env": "OK"}, ""},
		{map[string]any{"service": "mattermost", "url_env": "OK"}, "want slack, discord or teams"},
		{map[string]any{"service": "teams"}, "url_env"},
		{map[string]any{"service": "teams", "url_env": "UNSET"}, "not set in this environment"},
		{map[string]any{"service": "discord", "url_env": "BAD"}, "incoming-webhook URL"},
		{map[string]any{"service": "slack", "url_env": "OK", "url": "x"}, "url"},
	} {
		err := typ.Check(tc.cfg)
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%v: %v, want %q", tc.cfg, err, tc.want)
		}
	}
}
