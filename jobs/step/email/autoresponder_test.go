package email

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/formq/formq/jobs/step"
	"github.com/formq/formq/submission"
	"github.com/hibiken/asynq"
)

// outbox keeps what a Mailer was asked to send.
type outbox struct{ sent []*Email }

func (o *outbox) Send(_ context.Context, e *Email) error {
	o.sent = append(o.sent, e)
	return nil
}

// TestAutoresponderMailsTheSubmitter: "{email}" becomes the address the
// submission holds; a value that is not one bare address fails the step
// for good instead of mailing anything.
func TestAutoresponderMailsTheSubmitter(t *testing.T) {
	box := &outbox{}
	st := Step(box, nil)
	cfg := map[string]any{"to": []any{"team@example.com", "{email}"}, "subject": "Thanks {name}"}
	if err := st.Check(cfg); err != nil {
		t.Fatalf("check: %v", err)
	}
	sub := &submission.Submission{ID: "01A", Action: "contact", Values: map[string]any{"email": "ada@example.com", "name": "Ada"}}
	if err := st.Run(context.Background(), step.Run{Submission: sub, Config: cfg}); err != nil {
		t.Fatal(err)
	}
	if len(box.sent) != 1 || len(box.sent[0].To) != 2 || box.sent[0].To[1] != "ada@example.com" {
		t.Fatalf("sent %+v", box.sent)
	}
	for _, bad := range []any{"Eve <eve@example.com>, x@example.com", "", nil, "not an address", "ada@example.com\r\nBcc: x@example.com"} {
		sub.Values["email"] = bad
		err := st.Run(context.Background(), step.Run{Submission: sub, Config: cfg})
		if !errors.Is(err, asynq.SkipRetry) {
			t.Errorf("value %q: %v, want a permanent failure", bad, err)
		}
	}
	if len(box.sent) != 1 {
		t.Errorf("bad values were mailed: %d messages", len(box.sent))
	}
}

// TestAutoresponderDefaultBodyIsAReceipt: without a body, an
// autoresponder mails a receipt, not the submission's values or the
// storage keys of its files; a message to the team keeps the summary.
func TestAutoresponderDefaultBodyIsAReceipt(t *testing.T) {
	box := &outbox{}
	st := Step(box, nil)
	sub := &submission.Submission{ID: "01R", Action: "contact", Values: map[string]any{"email": "ada@example.com", "message": "spam text"},
		Files: []submission.File{{Field: "cv", Object: submission.Object{Key: "uploads/contact/01R/cv/0", Filename: "cv.pdf", Size: 3}}}}
	for _, to := range []any{"{email}", "team@example.com"} {
		if err := st.Run(context.Background(), step.Run{Submission: sub, Config: map[string]any{"to": to, "subject": "Thanks"}}); err != nil {
			t.Fatal(err)
		}
	}
	if len(box.sent) != 2 {
		t.Fatalf("sent %d", len(box.sent))
	}
	if b := box.sent[0].Body; strings.Contains(b, "uploads/") || strings.Contains(b, "spam text") || !strings.Contains(b, "01R") {
		t.Errorf("the autoresponder's default body: %q", b)
	}
	if b := box.sent[1].Body; !strings.Contains(b, "spam text") {
		t.Errorf("the team's default body: %q", b)
	}
}
