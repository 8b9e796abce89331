package smtp

import (
	"context"
	"io"
	"mime/quotedprintable"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/formq/formq/actions"
	"github.com/formq/formq/internal/testenv"
	"github.com/formq/formq/jobs"
	"github.com/formq/formq/submission"
	"github.com/formq/formq/worker/engine"
)

// TestDigestOncePerDayFromTwoWorkersAtLocalRelay: two workers' digests on
// one Redis, each with a clock moved across day boundaries in
// Europe/Paris, looking at the same moments over and over. Before 08:00
// nothing new goes out; after it, exactly one email to the team at the local
// SMTP server lists the submissions of the day before it (not those
// before the previous 08:00, nor after this one), each with who and what
// and its inbox link. A day with no submissions sends nothing.
func TestDigestOncePerDayFromTwoWorkersAtLocalRelay(t *testing.T) {
	srv := startSMTP(t)
	rdb := testenv.StartRedis(t).Client(t)
	declared, err := actions.Parse("actions.yaml", []byte(`actions:
  contact:
    fields:
      name: {type: text}
      email: {type: email}
      message: {type: textarea}
    digest: {to: [team@example.com], at: "08:00", timezone: Europe/Paris}
  other:
    fields:
      email: {type: email}
`))
	if err != nil {
		t.Fatal(err)
	}
	paris, _ := time.LoadLocation("Europe/Paris")
	at := func(day, clock string) time.Time {
		tm, err := time.ParseInLocation("2006-01-02 15:04:05", "2026-03-"+day+" "+clock, paris)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	ctx := context.Background()
	index := jobs.NewIndex(rdb, nil)
	for _, s := range []struct {
		id, action, name, when string
	}{
		{"01EARLY", "contact", "Before", at("09", "07:59:59").UTC().Format(time.RFC3339)},
		{"01ADA", "contact", "Ada Lovelace", at("09", "08:00:00").UTC().Format(time.RFC3339)},
		{"01GRACE", "contact", "Grace Hopper", at("10", "07:59:00").UTC().Format(time.RFC3339)},
		{"01LATE", "contact", "After", at("10", "08:00:00").UTC().Format(time.RFC3339)},
		{"01OTHER", "other", "Other", at("09", "12:00:00").UTC().Format(time.RFC3339)},
	} {
		received, _ := time.Parse(time.RFC3339, s.when)
		sub := &submission.Submission{ID: s.id, Action: s.action, ReceivedAt: received, Values: map[string]any{
			"name": s.name, "email": strings.ToLower(strings.Fields(s.name)[0]) + "@example.com", "message": "A question from " + s.name}}
		if err := index.Add(ctx, sub); err != nil {
			t.Fatal(err)
		}
	}

	var mu sync.Mutex
	now := at("09", "07:00:00")
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	set := func(tm time.Time) { mu.Lock(); now = tm; mu.Unlock() }
	mailer := srv.mailer(t, "smtp://"+srv.addr+"?from=forms@example.com")
	workers := []*engine.Digests{
		engine.NewDigests(index, declared, engine.DigestConfig{Redis: rdb, Mailer: mailer, InboxURL: "https://forms.example.com/admin/inbox", Now: clock}),
		engine.NewDigests(index, declared, engine.DigestConfig{Redis: rdb, Mailer: mailer, InboxURL: "https://forms.example.com/admin/inbox", Now: clock}),
	}
	look := func() int {
		t.Helper()
		var wg sync.WaitGroup
		var total int
		var tmu sync.Mutex
		for range 5 {
			for _, w := range workers {
				wg.Go(func() {
					n, err := w.Send(ctx)
					if err != nil {
						t.Errorf("send: %v", err)
					}
					tmu.Lock()
					total += n
					tmu.Unlock()
				})
			}
		}
		wg.Wait()
		return total
	}

	// The 9th's digest, of the day before it: 01EARLY.
	set(at("09", "08:00:00"))
	if n := look(); n != 1 || len(srv.messages()) != 1 || !strings.Contains(srv.messages()[0].data, "Before") {
		t.Fatalf("the 9th at 08:00: %d sent, %d messages", n, len(srv.messages()))
	}
	set(at("10", "07:59:00"))
	if n := look(); n != 0 || len(srv.messages()) != 1 {
		t.Fatalf("the 10th before 08:00: %d sent, %d messages", n, len(srv.messages()))
	}
	set(at("10", "08:00:30"))
	if n := look(); n != 1 {
		t.Errorf("at 08:00 two workers looking ten times sent %d digests, want 1", n)
	}
	set(at("10", "13:00:00"))
	look()
	msgs := srv.messages()
	if len(msgs) != 2 {
		t.Fatalf("%d messages by the 10th, want 2", len(msgs))
	}
	m := msgs[1]
	_, qp, _ := strings.Cut(m.data, "\r\n\r\n")
	decoded, err := io.ReadAll(quotedprintable.NewReader(strings.NewReader(qp)))
	if err != nil {
		t.Fatal(err)
	}
	body := m.data[:len(m.data)-len(qp)] + string(decoded)
	if strings.Join(m.to, ",") != "team@example.com" || !strings.Contains(body, "contact: 2 submissions, digest of 2026-03-10") {
		t.Errorf("the digest went to %v:\n%s", m.to, body)
	}
	for _, want := range []string{"Ada Lovelace <ada@example.com>", "A question from Grace Hopper", "https://forms.example.com/admin/inbox/01ADA", "https://forms.example.com/admin/inbox/01GRACE",
		"https://forms.example.com/admin/inbox?action=contact&since=2026-03-09T07%3A00%3A00Z&until=2026-03-10T07%3A00%3A00Z"} {
		if !strings.Contains(body, want) {
			t.Errorf("the digest lacks %q:\n%s", want, body)
		}
	}
	for _, not := range []string{"Before", "After", "Other"} {
		if strings.Contains(body, not) {
			t.Errorf("the digest lists %q, not of its day or action:\n%s", not, body)
		}
	}

	// The next day: 01LATE only. The day after: none, so no email.
	set(at("11", "08:01:00"))
	if n := look(); n != 1 || len(srv.messages()) != 3 || !strings.Contains(srv.messages()[2].data, "After") {
		t.Errorf("the next day: %d sent, %d messages", n, len(srv.messages()))
	}
	set(at("12", "09:00:00"))
	if n := look(); n != 0 || len(srv.messages()) != 3 {
		t.Errorf("a day without submissions: %d sent, %d messages", n, len(srv.messages()))
	}
}
